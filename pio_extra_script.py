"""PlatformIO extra script: partition table and real app/bootloader size checks by partkit.

    [env:myboard]
    extra_scripts = pre:path/to/pio_extra_script.py
    board_build.partitions = partitions.csv

A thin layer: it reads the environment and the board, registers actions and targets, and
leaves the rest to the SCons tool (plugins/scons/partkit.py) and to
``partkit.buildsys.platformio`` (what it decides: esptool, flash commands, built-in tables,
the bootloader image, the summary line). Options and behaviour are documented in
docs/platformio.md. The platform (and, on platform-espressif32, the
framework) define the program, ``$PROGNAME``, ``$PARTITIONS_TABLE_CSV``, their own
``partitions.bin`` and ``FLASH_EXTRA_IMAGES`` only inside ``env.BuildProgram()``, so a pre:
script wires the build right after it; as a post: script it wires at once. A platform
that never calls ``BuildProgram()`` is wired when PlatformIO has read all build scripts.
"""

# ruff: noqa: F821  (Import and the SCons globals come from the SConscript context)
from __future__ import annotations

import inspect
import os
import shlex
import subprocess
import sys

import SCons.Errors
import SCons.Node.Alias
import SCons.Util
from SCons.Script import COMMAND_LINE_TARGETS

Import("env")

# SConscript files have no __file__; the code object knows where it was read from.
_HERE = os.path.dirname(os.path.abspath(inspect.currentframe().f_code.co_filename))
PREFIX = "custom_partkit_"
_state = {"wired": False, "table_error": None}


def _tool_dir() -> str:
    checkout = os.path.join(_HERE, "plugins", "scons")
    if os.path.isfile(os.path.join(checkout, "partkit.py")):
        return checkout
    from partkit.buildsys import resource_dir  # installed with pip

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
    offset_option = (PREFIX + "offset") if _option("offset") else (
        "board_upload.partition_table_offset" if _board("upload.partition_table_offset")
        else "")
    _state["offset_option"] = offset_option
    env.Replace(
        PARTKIT_OFFSET=_option("offset") or _board("upload.partition_table_offset", "0x8000"),
        PARTKIT_OFFSET_SET=_option("offset") or _board("upload.partition_table_offset"),
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


def _package_dir(package: str) -> str | None:
    try:
        return env.PioPlatform().get_package_dir(package)
    except Exception:  # no platform object, or no such package on it
        return None


def _resolve_builtin_partitions() -> None:
    """``board_build.partitions = two_ota``: a partkit built-in table when neither the
    project nor the platform has a file of that name. Its CSV is written to the build
    directory and the board option points there, so whichever generator runs (partkit's
    or the framework's gen_esp32part) reads the same table."""
    name = _board("build.partitions")
    if not pio.builtin_candidate(name, env.subst("$PROJECT_DIR")) or pio.framework_has_table(
            name, {p: _package_dir(p) for p in pio.FRAMEWORK_PACKAGES}, _board("build.variant")):
        return
    try:
        written = pio.write_builtin_table(name, env.subst("$BUILD_DIR"))
    except pio.SetupError as exc:
        _setup_failed(exc)
        return
    if written is not None:
        path, table_name = written
        env.BoardConfig().update("build.partitions", path)
        env.Replace(PARTKIT_BUILTIN_NAME=table_name)


def _set_maximum_size(*_args, **_kw) -> None:
    """upload.maximum_size := size of the app slot partkit checks against."""
    from partkit.buildsys import PartkitError

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
    from partkit.buildsys import PartkitError

    try:
        env.PartkitAppSlot(env["PARTKIT_TABLE_PATH"])
    except PartkitError as exc:
        raise SCons.Errors.BuildError(node=target[0], errstr=str(exc),
                                      exitstatus=exc.exit_code) from None
    return 0


def _esptool(env) -> tuple[list[str], str]:
    """How this platform runs esptool (argv prefix) and how that esptool spells write-flash."""
    python = env.subst("$PYTHONEXE", raw=1) or sys.executable
    prefix = pio.esptool_prefix(python, [env.subst(f"${name}", raw=1)
                                         for name in ("UPLOADER", "OBJCOPY")],
                                _package_dir("tool-esptoolpy"))
    flags = [str(f) for f in SCons.Util.flatten(env.get("UPLOADERFLAGS", []))]
    return prefix, pio.write_flash_spelling(prefix, flags)


def _run(env, argv: list[str]) -> int:
    """``partkit`` with plain values (PartkitRun substitutes: ``$`` escaped first)."""
    return env.PartkitRun([_literal(a) for a in argv])


def _table_values(env) -> dict[str, str]:
    return {"offset": env.subst("$PARTKIT_OFFSET"), "chip": env.subst("$PARTKIT_CHIP"),
            "flash_size": env.subst("$PARTKIT_FLASH_SIZE")}


def _show_table(target, source, env) -> int:
    table = str(source[0])
    code = _run(env, commands.show_argv(table, **_table_values(env)))
    if code == 0:
        prefix, write_flash = _esptool(env)
        print(pio.flash_hint(prefix, write_flash, os.path.relpath(table),
                             offset=env.subst("$PARTKIT_OFFSET"),
                             chip=env.subst("$PARTKIT_CHIP")))
    return code


def _flash_table(target, source, env) -> int:
    if not env.subst("$UPLOAD_PORT") and hasattr(env, "AutodetectUploadPort"):
        env.AutodetectUploadPort()
    prefix, write_flash = _esptool(env)
    argv = commands.write_table_argv(
        prefix, str(source[0]), offset=env.subst("$PARTKIT_OFFSET"),
        chip=env.subst("$PARTKIT_CHIP"), port=env.subst("$UPLOAD_PORT"),
        baud=env.subst("$UPLOAD_SPEED") or _board("upload.speed"), write_flash=write_flash)
    print(shlex.join(argv))
    return subprocess.call(argv)


def _draw_map(target, source, env) -> int:
    output = env.subst("$PARTKIT_MAP", raw=1)  # raw: a path keeps its spaces
    app = env.File("$BUILD_DIR/${PROGNAME}.bin")
    code = _run(env, commands.map_argv(
        str(source[0]), output, **_table_values(env),
        app=app.abspath if app.exists() else None))  # drawn into its slot once built
    if code == 0:
        print(f"partkit: wrote {output}")
    return code


def _extra_images() -> list[tuple[str, str]]:
    """FLASH_EXTRA_IMAGES as (offset text, absolute path): what upload writes besides the app."""
    images = []
    for entry in env.get("FLASH_EXTRA_IMAGES", []):
        try:
            path = env.subst(str(entry[1]), raw=1)
            images.append((env.subst(str(entry[0])), env.File(path).abspath))
        except (IndexError, TypeError):
            continue
    return images


def _reconcile_offset(table_bin) -> None:
    """PARTKIT_OFFSET := where the platform flashes the table (FLASH_EXTRA_IMAGES); a
    different offset set in the project stops the build."""
    try:
        offset = pio.reconcile_offset(
            env.subst("$PARTKIT_OFFSET_SET"), _state["offset_option"],
            pio.flashed_table_offset(_extra_images(), table_bin.abspath),
            table_bin.get_path(env.Dir("$PROJECT_DIR")))
    except pio.SetupError as exc:
        _setup_failed(exc)
        return
    env.Replace(PARTKIT_OFFSET=offset)


def _extra_image_bootloader():
    """The FLASH_EXTRA_IMAGES entry at the bootloader offset: (offset text, file node)."""
    wanted = pio.bootloader_offset(env.subst("$PARTKIT_BOOTLOADER_OFFSET"),
                                   env.subst("$PARTKIT_CHIP"))
    if wanted is None:
        return None
    found = pio.bootloader_image(_extra_images(), wanted)
    return None if found is None else (found[0], env.File(found[1]))


def _check_extra_bootloader(target, source, env) -> int:
    """`partkit check --bootloader` of a file the platform flashes but does not build."""
    values = _table_values(env)
    # --chip (which also checks the image's chip) unless the platform flashes it elsewhere.
    elsewhere = not values["chip"] or env.subst("$PARTKIT_BOOTLOADER_OFFSET")
    code = _run(env, commands.check_argv(
        "bootloader", str(source[0]), str(source[1]), **values,
        bootloader_offset=env.subst("$PARTKIT_EXTRA_BOOTLOADER_OFFSET") if elsewhere else "",
        strict=pio.is_yes(env.subst("$PARTKIT_STRICT")),
        extra_subtypes=[env.subst(str(s)) for s in env.get("PARTKIT_EXTRA_SUBTYPES") or []]))
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
    return pio.table_summary(
        table.get_path(env.Dir("$PROJECT_DIR")), origin, **_table_values(env),
        missing=not table.has_builder() and not os.path.isfile(table.abspath),
        invalid=_state["table_error"] is not None,
        slot=str(env.get("PARTKIT_APP_SLOT") or ""),
        slot_size=env.get("PARTKIT_APP_MAXIMUM_SIZE", 0))


def _wire(late: bool = False) -> None:
    """Table builder (unless the platform has one), size checks, targets.

    ``late``: run by PlatformIO's delayed actions, after every build script."""
    _state["wired"] = True
    table_bin = env.File("$BUILD_DIR/partitions.bin")
    platform_owned = table_bin.has_builder()
    try:
        from_platform = pio.table_from_platform(_option("generate", "auto"), platform_owned,
                                                str(table_bin))
    except pio.SetupError as exc:
        _setup_failed(exc)
    program = _program_node()
    _reconcile_offset(table_bin)
    if from_platform:
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
    env.Replace(PARTKIT_TABLE_PATH=pio.display_path(table.abspath, env.subst("$PROJECT_DIR")))
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
    _state["app_checks"] = checks

    if not getattr(env, "IsIntegrationDump", lambda: False)():
        origin = "from the platform" if from_platform else "generated"
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
    if late or "_PIO_DELAYED_ACTIONS" not in env:
        _hook_platform_targets()
    else:  # the platform registers its targets after BuildProgram(): hook them at the end
        env.Append(_PIO_DELAYED_ACTIONS=[(_hook_platform_targets_delayed, [], None)])


def _check_fs_image(target, source, env) -> int:
    """Before ``buildfs`` ends and before ``uploadfs`` flashes: the whole image against
    the partition uploadfs writes it to (this platform's rule, see partkit.data.upload),
    named in the log."""
    outcome = pio.check_fs_image_file(
        env.subst("$PARTKIT_TABLE_PATH"), str(source[0]),
        offset=env.subst("$PARTKIT_OFFSET") or None,
        extra_subtypes=env.get("PARTKIT_EXTRA_SUBTYPES") or (),
        rules=_uploadfs_rules())
    return _report_check(target, outcome,
                         f"partkit: {source[0]} does not fit the partition uploadfs writes it to")


def _check_upload_slot(target, source, env) -> int:
    """Before upload: the file it flashes ($SOURCE) against the one app partition at
    $ESP32_APP_OFFSET (read now: pioarduino sets it only before checkprogsize)."""
    outcome = pio.check_upload_slot(
        env.subst("$PARTKIT_TABLE_PATH"), str(source[0]), env.subst("$ESP32_APP_OFFSET"),
        offset=env.subst("$PARTKIT_OFFSET") or None,
        extra_subtypes=env.get("PARTKIT_EXTRA_SUBTYPES") or ())
    return _report_check(target, outcome,
                         f"partkit: {source[0]} does not fit the app partition upload writes it to")


def _setup_failed(exc: Exception) -> None:
    """Bad project set-up found while the script runs: one line, exit code 2."""
    sys.stderr.write(f"partkit: error: {exc}\n")
    env.Exit(2)


def _report_check(target, outcome, failure: str) -> int:
    """The tail of a pre-flash check: its report line, its diagnostics, and a BuildError
    with ``failure`` when it did not pass (SCons then stops before the flash)."""
    from partkit.buildsys import diagnostic_text

    code, report, diagnostics = outcome
    if report:
        sys.stdout.write(report + "\n")  # one write: parallel jobs cannot split the line
        sys.stdout.flush()
    sys.stderr.write(diagnostic_text(diagnostics))
    if code != 0:
        raise SCons.Errors.BuildError(node=target[0], exitstatus=code, errstr=failure)
    return 0


def _alias(name: str):
    """The alias node ``name`` if a script defined it (never creates one)."""
    return SCons.Node.Alias.default_ans.lookup(name)


def _hook_platform_targets_delayed(_nodes, _action) -> None:
    _hook_platform_targets()


def _hook_platform_targets() -> None:
    """partkit's checks become dependencies of the platform's own targets.

    Never their sources: a platform's upload action flashes ``$SOURCE`` (its first
    source), so an added source would be what gets flashed. Dependencies are built
    first and leave ``$SOURCE`` alone. Targets without an image (erase, size, monitor,
    download_fs, metrics) are not touched.
    """
    registered = list(env.get("__PIO_TARGETS", {}))
    app_checks = _state.get("app_checks") or []
    image_name = env.subst("$ESP32_FS_IMAGE_NAME")
    fs_image = env.File(os.path.join("$BUILD_DIR", f"{image_name}.bin")) if image_name else None
    hooked, slot_checks = False, {}
    for name in pio.app_targets(registered):
        alias = _alias(name)
        if alias is None:
            continue
        flashed = alias.sources[0] if alias.sources else None
        if flashed is not None and fs_image is not None and flashed.abspath == fs_image.abspath:
            continue  # buildfs/uploadfs on the command line: this target has the FS image
        env.Depends(alias, app_checks)
        hooked = hooked or name == "buildprog"
        if name != "buildprog" and flashed is not None and "ESP32_APP_OFFSET" in env:
            if id(flashed) not in slot_checks:
                slot_checks[id(flashed)] = env.AlwaysBuild(env.Alias(
                    "partkit-upload-slot-check", flashed, env.VerboseAction(
                        _check_upload_slot, "partkit: checking the app slot upload writes")))
                # After the app check: one error when the app fits no slot at all.
                env.Depends(slot_checks[id(flashed)], app_checks)
            env.Depends(alias, slot_checks[id(flashed)])
    if not hooked:  # a platform without a buildprog alias: the checks are default targets
        env.Default(app_checks)
    fs_targets = [a for a in map(_alias, pio.FS_TARGETS) if a is not None]
    if image_name and fs_targets:
        # Its own node, built every time: a post-action on the image would be lost when
        # the platform's DataToBin builder (re)defines the image node.
        image = os.path.join("$BUILD_DIR", f"{image_name}.bin")
        check = env.Alias("partkit-fs-check", image, env.VerboseAction(
            _check_fs_image, "partkit: checking $SOURCE against its uploadfs partition"))
        env.AlwaysBuild(check)
        for alias in fs_targets:
            env.Depends(alias, check)


def _uploadfs_rules():
    """Where this platform's uploadfs writes the image (its name and version decide)."""
    platform = env.PioPlatform()
    return pio.uploadfs_rules(
        getattr(platform, "name", ""), str(getattr(platform, "version", "")),
        filesystem=_board("build.filesystem") or env.subst("$ESP32_FS_IMAGE_NAME"),
        partition=_board("build.filesystem_partition"))


def _wire_nobuild() -> None:
    """``pio run -t nobuild -t upload``: the platform runs no framework script (so no
    table of its own) and flashes what the last build left; partkit checks those files
    against that build's partitions.bin, and generates nothing."""
    _state["wired"] = True
    table_bin = env.File("$BUILD_DIR/partitions.bin")
    if not table_bin.exists():
        print("partkit: nobuild: no partitions.bin from an earlier build; nothing checked")
        return
    env.Replace(PARTKIT_TABLE_PATH=pio.display_path(table_bin.abspath,
                                                    env.subst("$PROJECT_DIR")))
    checks = []
    for image, check in (("$BUILD_DIR/${PROGNAME}.bin", env.CheckAppSize),
                         ("$BUILD_DIR/bootloader.bin", env.CheckBootloaderSize)):
        if env.File(image).exists():
            checks += check(image, table_bin)
    _state["app_checks"] = checks
    print(f"partkit: nobuild: checking the files of the last build against "
          f"{env.subst('$PARTKIT_TABLE_PATH')}")
    _hook_platform_targets()


def _wire_late(*_args) -> None:
    """Run by PlatformIO after the platform's and the post: scripts (delayed actions)."""
    if _state["wired"]:
        return
    if "nobuild" in COMMAND_LINE_TARGETS:
        _wire_nobuild()
        return
    sys.stderr.write(
        "partkit: warning: the platform never called env.BuildProgram(); partkit wired "
        "its table and size checks after the build scripts instead\n")
    _wire(late=True)


env.Tool("partkit", toolpath=[_tool_dir()])
# The tool makes the partkit package importable (a checkout's core/ on sys.path).
from partkit.buildsys import commands  # noqa: E402
from partkit.buildsys import platformio as pio  # noqa: E402

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
