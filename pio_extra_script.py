"""PlatformIO extra script: partition table and real app/bootloader size checks by partkit.

    [env:myboard]
    extra_scripts = pre:path/to/pio_extra_script.py
    board_build.partitions = partitions.csv

A thin layer over the SCons tool (plugins/scons/partkit.py); options and behaviour are
documented in docs/platformio.md. The platform (and, on platform-espressif32, the
framework) define the program, ``$PROGNAME``, ``$PARTITIONS_TABLE_CSV``, their own
``partitions.bin`` and ``FLASH_EXTRA_IMAGES`` only inside ``env.BuildProgram()``, so a pre:
script wires the build right after it; as a post: script it wires at once. A platform
that never calls ``BuildProgram()`` is wired when PlatformIO has read all build scripts.
"""

# ruff: noqa: F821  (Import and the SCons globals come from the SConscript context)
from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
import sys

import SCons.Errors
import SCons.Util

Import("env")

# SConscript files have no __file__; the code object knows where it was read from.
_HERE = os.path.dirname(os.path.abspath(inspect.currentframe().f_code.co_filename))
PREFIX = "custom_partkit_"
_state = {"wired": False, "table_error": None}


def _tool_dir() -> str:
    checkout = os.path.join(_HERE, "plugins", "scons")
    if os.path.isfile(os.path.join(checkout, "partkit.py")):
        return checkout
    from partkit.common.resources import resource_dir  # installed with pip

    return resource_dir("scons")


def _option(name: str, default: str = "") -> str:
    return str(env.GetProjectOption(PREFIX + name, default)).strip()


def _board(path: str, default: str = "") -> str:
    return str(env.BoardConfig().get(path, default)).strip()


def _literal(text: str) -> str:
    """``text`` for a SCons-substituted argument: ``$`` escaped, nothing else touched."""
    return text.replace("$", "$$")


def _configure() -> None:
    """PARTKIT_* construction variables from the board and custom_partkit_* options."""
    env.Replace(
        PARTKIT_OFFSET=_option("offset") or _board("upload.partition_table_offset", "0x8000"),
        PARTKIT_CHIP=_board("build.mcu"),
        PARTKIT_FLASH_SIZE=_board("upload.flash_size"),
        PARTKIT_SECURE=_option("secure"),
        PARTKIT_NO_MD5=_option("no_md5", "no"),
        PARTKIT_STRICT=_option("strict", "no"),
        PARTKIT_EXTRA_SUBTYPES=_option("extra_subtypes").split(),
        PARTKIT_WARN_FREE=_option("warn_free"),
        PARTKIT_FAIL_FREE=_option("fail_free"),
        PARTKIT_BOOTLOADER_OFFSET=_option("bootloader_offset"),
        PARTKIT_APP_PARTITION=_option("app_partition") or _board("build.app_partition_name"),
        PARTKIT_MAP=_option("map", "$BUILD_DIR/partitions.svg"),
    )


def _platform_has_partitions(name: str) -> bool:
    """Whether the platform's framework resolves ``board_build.partitions = name`` itself
    (Arduino: the variant's directory, then tools/partitions; ESP-IDF: partition_table)."""
    try:
        platform = env.PioPlatform()
    except Exception:  # no platform object: nothing to look in
        return False
    for package, subdirs in (
            ("framework-arduinoespressif32",
             (os.path.join("variants", _board("build.variant")), os.path.join("tools",
                                                                             "partitions"))),
            ("framework-espidf", (os.path.join("components", "partition_table"),))):
        try:
            root = platform.get_package_dir(package)
        except Exception:  # the platform has no such package
            root = None
        if root and any(os.path.isfile(os.path.join(root, d, name)) for d in subdirs):
            return True
    return False


def _resolve_builtin_partitions() -> None:
    """``board_build.partitions = two_ota``: a partkit built-in table when neither the
    project nor the platform has a file of that name. Its CSV is written to the build
    directory and the board option points there, so whichever generator runs (partkit's
    or the framework's gen_esp32part) reads the same table."""
    from partkit.common.errors import PartkitError
    from partkit.common.fileio import write_atomic
    from partkit.table import builtin

    name = _board("build.partitions")
    if (not name or os.path.isabs(name) or os.path.dirname(name)
            or os.path.exists(os.path.join(env.subst("$PROJECT_DIR"), name))
            or _platform_has_partitions(name)):
        return
    try:
        table = builtin.lookup(name)
    except PartkitError as exc:
        if name.lower().endswith(".csv"):
            return  # a missing file: the table builder reports it
        sys.stderr.write(f"partkit: error: board_build.partitions = {name}: no such file, "
                         f"and {exc}\n")
        env.Exit(2)
        return
    path = os.path.join(env.subst("$BUILD_DIR"), "partkit", f"builtin-{table.name}.csv")
    text = builtin.csv_text(table).encode("utf-8")
    try:
        with open(path, "rb") as f:
            unchanged = f.read() == text
    except OSError:
        unchanged = False
    if not unchanged:  # an unchanged CSV keeps the table up to date
        write_atomic(path, text)
    env.BoardConfig().update("build.partitions", path)
    env.Replace(PARTKIT_BUILTIN_NAME=table.name)


def _set_maximum_size(*_args, **_kw) -> None:
    """upload.maximum_size := size of the app slot partkit checks against."""
    from partkit.common.errors import PartkitError

    try:
        found = env.PartkitAppSlot(env["PARTKIT_TABLE_PATH"],
                                   env.subst("$PARTKIT_APP_PARTITION") or None)
    except (PartkitError, OSError, KeyError) as exc:
        # Reported with file:line by the table's pre-action or builder, before compiling.
        _state["table_error"] = exc
        return
    _state["table_error"] = None
    if found is not None:
        slot, subtype = found
        env.BoardConfig().update("upload.maximum_size", slot.size)
        env.Replace(PARTKIT_APP_SLOT=slot.name, PARTKIT_APP_MAXIMUM_SIZE=slot.size,
                    PARTKIT_APP_SUBTYPE=subtype)


def _validate_table(target, source, env) -> int:
    """Pre-action of a platform-built partitions.bin: partkit validates the CSV first,
    so a bad table stops the build with partkit's file:line:col message."""
    from partkit.common.errors import PartkitError

    try:
        env.PartkitAppSlot(env["PARTKIT_TABLE_PATH"])
    except PartkitError as exc:
        raise SCons.Errors.BuildError(node=target[0], errstr=str(exc),
                                      exitstatus=exc.exit_code) from None
    return 0


def _esptool(env) -> tuple[list[str], str]:
    """How this platform runs esptool (argv prefix) and how that esptool spells write-flash.

    platform-espressif32 runs ``"$PYTHONEXE" <tool-esptoolpy>/esptool.py`` (4.x:
    ``write_flash``); pioarduino runs an ``esptool`` executable (5.x: ``write-flash``).
    Both name it in $UPLOADER (upload_protocol = esptool) and $OBJCOPY.
    """
    python = env.subst("$PYTHONEXE", raw=1) or sys.executable
    tool = ""
    for name in ("UPLOADER", "OBJCOPY"):
        value = env.subst(f"${name}", raw=1).strip().strip('"')
        if os.path.basename(value).startswith("esptool") and os.path.isfile(value):
            tool = value
            break
    if not tool:
        try:
            package = env.PioPlatform().get_package_dir("tool-esptoolpy")
        except Exception:  # no such package on this platform
            package = None
        if package and os.path.isfile(os.path.join(package, "esptool.py")):
            tool = os.path.join(package, "esptool.py")
    if tool.endswith(".py"):
        prefix = [python, tool]
    else:
        prefix = [tool] if tool else [python, "-m", "esptool"]
    flags = [str(f) for f in SCons.Util.flatten(env.get("UPLOADERFLAGS", []))]
    for spelling in ("write_flash", "write-flash"):
        if spelling in flags:  # the platform's own upload command
            return prefix, spelling
    return prefix, _write_flash_spelling(prefix)


def _write_flash_spelling(prefix: list[str]) -> str:
    """esptool 5 spells its commands with dashes; 4.x and older know only underscores."""
    try:
        proc = subprocess.run([*prefix, "version"], capture_output=True, text=True,
                              timeout=120, check=False)
        major = int(re.search(r"\bv?(\d+)\.\d+", proc.stdout).group(1))
    except (OSError, subprocess.SubprocessError, AttributeError, ValueError):
        return "write_flash"  # every esptool version still accepts it
    return "write-flash" if major >= 5 else "write_flash"


def _show_table(target, source, env) -> int:
    table = str(source[0])
    argv = ["show", _literal(table), "--offset", "$PARTKIT_OFFSET"]
    for flag, name in (("--chip", "PARTKIT_CHIP"), ("--flash-size", "PARTKIT_FLASH_SIZE")):
        if env.subst(f"${name}"):
            argv += [flag, f"${name}"]
    code = env.PartkitRun(argv)
    if code == 0:
        prefix, write_flash = _esptool(env)
        chip = env.subst("$PARTKIT_CHIP")
        command = [*prefix, *(["--chip", chip] if chip else []), write_flash,
                   env.subst("$PARTKIT_OFFSET"), os.path.relpath(table)]
        print("\nTo flash the partition table (add --port PORT to choose the port), run:\n "
              + shlex.join(command))
    return code


def _flash_argv(env, table: str) -> list[str]:
    """The platform's esptool writing only the table, at the platform's upload port."""
    prefix, write_flash = _esptool(env)
    dashes = write_flash == "write-flash"  # esptool 5 spelling; 4.x wants underscores
    port = env.subst("$UPLOAD_PORT")
    speed = env.subst("$UPLOAD_SPEED") or _board("upload.speed") or "460800"
    argv = [*prefix, "--chip", env.subst("$PARTKIT_CHIP") or "auto"]
    if port:
        argv += ["--port", port]
    return [*argv, "--baud", speed,
            "--before", "default-reset" if dashes else "default_reset",
            "--after", "hard-reset" if dashes else "hard_reset",
            write_flash, env.subst("$PARTKIT_OFFSET"), table]


def _flash_table(target, source, env) -> int:
    if not env.subst("$UPLOAD_PORT") and hasattr(env, "AutodetectUploadPort"):
        env.AutodetectUploadPort()
    argv = _flash_argv(env, str(source[0]))
    print(shlex.join(argv))
    return subprocess.call(argv)


def _draw_map(target, source, env) -> int:
    output = env.subst("$PARTKIT_MAP", raw=1)  # raw: a path keeps its spaces
    argv = ["map", _literal(str(source[0])), "--offset", "$PARTKIT_OFFSET",
            "--output", _literal(output)]
    for flag, name in (("--chip", "PARTKIT_CHIP"), ("--flash-size", "PARTKIT_FLASH_SIZE")):
        if env.subst(f"${name}"):
            argv += [flag, f"${name}"]
    app = env.File("$BUILD_DIR/${PROGNAME}.bin")
    if app.exists():  # drawn into its slot when it has been built
        argv += ["--app", _literal(app.abspath)]
    code = env.PartkitRun(argv)
    if code == 0:
        print(f"partkit: wrote {output}")
    return code


def _bootloader_offset() -> int | None:
    from partkit.common.numbers import parse_int

    text = env.subst("$PARTKIT_BOOTLOADER_OFFSET")
    if text:
        return parse_int(text)
    from partkit.common.chips import BOOTLOADER_OFFSET

    return BOOTLOADER_OFFSET.get(env.subst("$PARTKIT_CHIP").lower())


def _extra_image_bootloader():
    """The FLASH_EXTRA_IMAGES entry at the bootloader offset: (offset text, file node).

    platform-espressif32's Arduino 2.0.x flashes a prebuilt bootloader from the framework
    package instead of building $BUILD_DIR/bootloader.bin.
    """
    from partkit.common.numbers import parse_int

    wanted = _bootloader_offset()
    if wanted is None:
        return None
    for entry in env.get("FLASH_EXTRA_IMAGES", []):
        try:
            offset, path = entry[0], entry[1]
            if parse_int(env.subst(str(offset))) == wanted:
                return env.subst(str(offset)), env.File(env.subst(str(path), raw=1))
        except (ValueError, IndexError, TypeError):
            continue
    return None


def _check_extra_bootloader(target, source, env) -> int:
    """`partkit check --bootloader` of a file the platform flashes but does not build."""
    argv = ["check", f"--bootloader={_literal(str(source[0]))}", "--offset=$PARTKIT_OFFSET"]
    # --chip (which also checks the image's chip) unless the platform flashes it elsewhere.
    if env.subst("$PARTKIT_CHIP") and not env.subst("$PARTKIT_BOOTLOADER_OFFSET"):
        argv.append("--chip=$PARTKIT_CHIP")
    else:
        argv.append("--bootloader-offset=$PARTKIT_EXTRA_BOOTLOADER_OFFSET")
    if env.subst("$PARTKIT_FLASH_SIZE"):
        argv.append("--flash-size=$PARTKIT_FLASH_SIZE")
    if env.subst("$PARTKIT_STRICT").lower() in ("1", "true", "yes", "on"):
        argv.append("--strict")
    extra = env.get("PARTKIT_EXTRA_SUBTYPES") or []
    if extra:
        argv += ["--extra-partition-subtypes", *extra]
    code = env.PartkitRun([*argv, "--", _literal(str(source[1]))])
    if code != 0:
        raise SCons.Errors.BuildError(node=target[0], exitstatus=code, errstr=(
            f"partkit: the bootloader {source[0]} (FLASH_EXTRA_IMAGES) failed its check"))
    with open(str(target[0]), "w", encoding="utf-8") as stamp:
        stamp.write(f"{source[0]} checked\n")
    return 0


def _program_node():
    """The program the table must be ready for: BuildProgram's ELF, else the platform's."""
    if "PIOMAINPROG" in env:
        return env["PIOMAINPROG"]
    for path in ("$BUILD_DIR/${PROGNAME}${PROGSUFFIX}", "$BUILD_DIR/${PROGNAME}.bin"):
        node = env.File(path)
        if node.has_builder():
            return node
    return None


def _compile_nodes(program, table_bin) -> list:
    """The objects and libraries that go into ``program`` (explicit sources, no scanning)."""
    found, todo, seen = [], [], {id(table_bin)}
    for node in SCons.Util.flatten([program]):
        todo.extend(node.sources)
    for lib in SCons.Util.flatten(env.get("LIBS", [])):
        if hasattr(lib, "has_builder"):
            todo.append(lib)
    while todo:
        node = todo.pop()
        if id(node) in seen or not node.has_builder():
            continue
        seen.add(id(node))
        found.append(node)
        todo.extend(node.sources)
    return found


def _summary(table, origin: str) -> str:
    error = _state["table_error"]
    if not table.has_builder() and not os.path.isfile(table.abspath):
        app = "; app slot unknown: the table file does not exist"
    elif error is not None:
        app = "; app slot unknown: the table is invalid (see the error below)"
    elif env.get("PARTKIT_APP_SLOT"):
        app = (f"; app slot '{env['PARTKIT_APP_SLOT']}' "
               f"{env['PARTKIT_APP_MAXIMUM_SIZE']} bytes")
    else:
        app = "; no app slot in the table"
    return (f"partkit: table {table.get_path(env.Dir('$PROJECT_DIR'))} ({origin} at "
            f"{env.subst('$PARTKIT_OFFSET')}, flash "
            f"{env.subst('$PARTKIT_FLASH_SIZE') or 'unchecked'}, chip "
            f"{env.subst('$PARTKIT_CHIP') or '?'}){app}")


def _wire() -> None:
    """Table builder (unless the platform has one), size checks, targets."""
    _state["wired"] = True
    table_bin = env.File("$BUILD_DIR/partitions.bin")
    mode = _option("generate", "auto").lower()
    platform_owned = table_bin.has_builder()
    if platform_owned and mode == "yes":
        sys.stderr.write(f"partkit: error: the platform already generates {table_bin}; "
                         "set custom_partkit_generate = auto\n")
        env.Exit(2)
    program = _program_node()
    if platform_owned or mode == "no":
        # platform-espressif32: its framework made partitions.bin; check its source.
        csv = env.subst("$PARTITIONS_TABLE_CSV", raw=1) or (
            str(table_bin.sources[0]) if table_bin.sources else "")
        table = env.File(csv) if csv else table_bin
        if platform_owned and table is not table_bin:
            env.AddPreAction(table_bin, env.VerboseAction(
                _validate_table, "partkit: validating $PARTKIT_TABLE_PATH"))
    else:
        csv = _board("build.partitions", "partitions.csv")
        table = env.File(os.path.join(env.subst("$PROJECT_DIR"), csv))
        env.PartitionTable(table_bin, table)
        if program is not None:
            env.Depends(program, table_bin)
    # Relative to the project (PlatformIO's working directory) in messages, when inside it.
    inside = os.path.relpath(table.abspath, env.subst("$PROJECT_DIR"))
    env.Replace(PARTKIT_TABLE_PATH=table.abspath if inside.startswith(os.pardir) else inside)
    if program is not None and table_bin.has_builder():
        # Order only (no rebuild when the table changes): a bad table stops the build
        # before anything is compiled.
        env.Requires(_compile_nodes(program, table_bin), table_bin)
    _set_maximum_size()

    checks = env.CheckAppSize("$BUILD_DIR/${PROGNAME}.bin", table)
    bootloader = env.File("$BUILD_DIR/bootloader.bin")
    if bootloader.has_builder() or bootloader.exists():
        checks += env.CheckBootloaderSize(bootloader, table)
    else:
        extra = _extra_image_bootloader()
        if extra is not None:
            offset, image = extra
            checks += env.Command(
                "$BUILD_DIR/bootloader.extra-image.partkit-check", [image, table],
                env.VerboseAction(_check_extra_bootloader,
                                  "partkit: checking bootloader image $SOURCE"),
                PARTKIT_EXTRA_BOOTLOADER_OFFSET=offset)
    if table_bin.has_builder():  # a bad table is reported once, by its own step
        env.Requires(checks, table_bin)
    for alias in ("buildprog", "upload"):
        env.Alias(alias, checks)
    env.Default(checks)

    if not getattr(env, "IsIntegrationDump", lambda: False)():
        origin = "from the platform" if platform_owned or mode == "no" else "generated"
        print(_summary(table, origin))

    env.AddCustomTarget("partition-table", table_bin,
                        env.VerboseAction(_show_table, "partkit: partition table $SOURCE"),
                        title="Partition table",
                        description="Show the partition table and how to flash it")
    env.AddCustomTarget("partition-table-flash", table_bin,
                        env.VerboseAction(_flash_table, "partkit: writing $SOURCE to the device"),
                        title="Partition table flash",
                        description="Write only the partition table with esptool (upload port)")
    env.AddCustomTarget("partition-map", table_bin,
                        env.VerboseAction(_draw_map, "partkit: drawing the partition map"),
                        title="Partition map", description="Draw the flash layout as SVG")
    _wire_fs_image_check()


def _check_fs_image(target, source, env) -> int:
    """After ``pio run -t buildfs``: the whole image against the partition uploadfs writes
    it to (the platform's choice, see partkit.data.upload), named in the log."""
    from partkit.cli.common import emit, table_options
    from partkit.common.errors import PartkitError
    from partkit.data.upload import check_fs_image
    from partkit.table.codec import load_table_file

    try:
        options = table_options(offset=env.subst("$PARTKIT_OFFSET") or None,
                                extra_subtypes=env.get("PARTKIT_EXTRA_SUBTYPES") or ())
        table = load_table_file(env.subst("$PARTKIT_TABLE_PATH"), options).table
        result, where = check_fs_image(
            table, str(target[0]), name=_board("build.filesystem_partition") or None,
            filesystem=_board("build.filesystem") or env.subst("$ESP32_FS_IMAGE_NAME"))
    except PartkitError as exc:
        emit(exc.diagnostics)
        return exc.exit_code
    print(f"partkit: {where}\npartkit: {result.summary()}")
    emit(f.diagnostic for f in result.findings)
    return 1 if any(f.is_error for f in result.findings) else 0


def _wire_fs_image_check() -> None:
    """pio run -t buildfs makes $BUILD_DIR/${ESP32_FS_IMAGE_NAME}.bin (platform-espressif32);
    a platform that names it later gets each usual name hooked (only the built one runs)."""
    name = env.subst("$ESP32_FS_IMAGE_NAME")
    for stem in [name] if name else ["spiffs", "littlefs", "fatfs"]:
        env.AddPostAction(os.path.join("$BUILD_DIR", f"{stem}.bin"), env.VerboseAction(
            _check_fs_image, "partkit: checking $TARGET against its uploadfs partition"))


def _wire_late(*_args) -> None:
    """Run by PlatformIO after the platform's and the post: scripts (delayed actions)."""
    if _state["wired"]:
        return
    sys.stderr.write(
        "partkit: warning: the platform never called env.BuildProgram(); partkit wired "
        "its table and size checks after the build scripts instead\n")
    _wire()


env.Tool("partkit", toolpath=[_tool_dir()])
_configure()
_resolve_builtin_partitions()
# After the platform's own "Retrieving maximum program size" pre-action, so ours wins:
# registered now it is applied with PlatformIO's delayed actions (pre:), or appended (post:).
env.AddPreAction("checkprogsize", env.VerboseAction(
    _set_maximum_size, "partkit: maximum program size from $PARTKIT_TABLE_PATH"))

if "PIOMAINPROG" in env:
    _wire()
else:
    _build_program = env.BuildProgram

    def _build_program_then_wire(_env):
        program = _build_program()
        _wire()
        return program

    env.AddMethod(_build_program_then_wire, "BuildProgram")
    if "_PIO_DELAYED_ACTIONS" in env:
        # PlatformIO calls each (function, nodes, action) after all build scripts ran.
        env.Append(_PIO_DELAYED_ACTIONS=[(_wire_late, [], None)])
    else:
        sys.stderr.write("partkit: warning: this PlatformIO has no delayed actions; if the "
                         "platform never calls env.BuildProgram(), nothing is checked\n")
