"""PlatformIO extra script: partition table and real app/bootloader size checks by partkit.

    [env:myboard]
    extra_scripts = pre:path/to/pio_extra_script.py
    board_build.partitions = partitions.csv

A thin layer over the SCons tool (plugins/scons/partkit.py); options and behaviour are
documented in docs/platformio.md. The platform (and, on platform-espressif32, the
framework) define the program, ``$PROGNAME`` and their own ``partitions.bin`` only inside
``env.BuildProgram()``, so a pre: script wires the build right after it; as a post:
script it wires at once.
"""

# ruff: noqa: F821  (Import and the SCons globals come from the SConscript context)
from __future__ import annotations

import inspect
import os
import sys

Import("env")

# SConscript files have no __file__; the code object knows where it was read from.
_HERE = os.path.dirname(os.path.abspath(inspect.currentframe().f_code.co_filename))
PREFIX = "custom_partkit_"


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


def _set_maximum_size(*_args, **_kw) -> None:
    """upload.maximum_size := size of the app slot partkit checks against."""
    from partkit.common.errors import PartkitError

    try:
        found = env.PartkitAppSlot(env["PARTKIT_TABLE_PATH"],
                                   env.subst("$PARTKIT_APP_PARTITION") or None)
    except (PartkitError, OSError, KeyError):
        return  # the table builder/check reports the error, with file:line
    if found is not None:
        slot, subtype = found
        env.BoardConfig().update("upload.maximum_size", slot.size)
        env.Replace(PARTKIT_APP_SLOT=slot.name, PARTKIT_APP_MAXIMUM_SIZE=slot.size,
                    PARTKIT_APP_SUBTYPE=subtype)


def _show_table(target, source, env) -> int:
    table = str(source[0])
    chip = env.subst("$PARTKIT_CHIP")
    code = env.PartkitRun(["show", table, "--offset", "$PARTKIT_OFFSET"]
                          + (["--chip", chip] if chip else []))
    if code == 0:
        python = os.path.basename(sys.executable)
        chip_arg = f" --chip {chip}" if chip else ""
        print(f"\nTo flash the partition table, run:\n {python} -m esptool{chip_arg} "
              f"write-flash {env.subst('$PARTKIT_OFFSET')} {os.path.relpath(table)}")
    return code


def _draw_map(target, source, env) -> int:
    argv = ["map", str(source[0]), "--offset", "$PARTKIT_OFFSET", "-o", "$PARTKIT_MAP"]
    for flag, name in (("--chip", "PARTKIT_CHIP"), ("--flash-size", "PARTKIT_FLASH_SIZE")):
        if env.subst(f"${name}"):
            argv += [flag, f"${name}"]
    app = env.File("$BUILD_DIR/${PROGNAME}.bin")
    if app.exists():  # drawn into its slot when it has been built
        argv += ["--app", app.abspath]
    code = env.PartkitRun(argv)
    if code == 0:
        print(f"partkit: wrote {env.subst('$PARTKIT_MAP')}")
    return code


def _wire() -> None:
    """Table builder (unless the platform has one), size checks, targets."""
    table_bin = env.File("$BUILD_DIR/partitions.bin")
    mode = _option("generate", "auto").lower()
    platform_owned = table_bin.has_builder()
    if platform_owned and mode == "yes":
        sys.stderr.write(f"partkit: error: the platform already generates {table_bin}; "
                         "set custom_partkit_generate = auto\n")
        env.Exit(2)
    if platform_owned or mode == "no":
        # platform-espressif32: its framework made partitions.bin; check its source.
        csv = env.subst("$PARTITIONS_TABLE_CSV") or (
            str(table_bin.sources[0]) if table_bin.sources else "")
        table = env.File(csv) if csv else table_bin
    else:
        csv = _board("build.partitions", "partitions.csv")
        with_dir = os.path.join(env.subst("$PROJECT_DIR"), csv)
        table = env.File(with_dir)
        env.Depends(env["PIOMAINPROG"], env.PartitionTable(table_bin, table))
    env.Replace(PARTKIT_TABLE_PATH=table.abspath)
    _set_maximum_size()

    checks = env.CheckAppSize("$BUILD_DIR/${PROGNAME}.bin", table)
    bootloader = env.File("$BUILD_DIR/bootloader.bin")
    if bootloader.has_builder() or bootloader.exists():
        checks += env.CheckBootloaderSize(bootloader, table)
    for alias in ("buildprog", "upload"):
        env.Alias(alias, checks)
    env.Default(checks)

    if not getattr(env, "IsIntegrationDump", lambda: False)():
        origin = "from the platform" if platform_owned or mode == "no" else "generated"
        slot = env.get("PARTKIT_APP_SLOT")
        app = f"; app slot '{slot}' {env['PARTKIT_APP_MAXIMUM_SIZE']} bytes" if slot else ""
        print(f"partkit: table {table.get_path(env.Dir('$PROJECT_DIR'))} ({origin} at "
              f"{env.subst('$PARTKIT_OFFSET')}, flash "
              f"{env.subst('$PARTKIT_FLASH_SIZE') or 'unchecked'}, chip "
              f"{env.subst('$PARTKIT_CHIP') or '?'}){app}")

    env.AddCustomTarget("partition-table", table_bin,
                        env.VerboseAction(_show_table, "partkit: partition table $SOURCE"),
                        title="Partition table",
                        description="Show the partition table and how to flash it")
    env.AddCustomTarget("partition-map", table_bin,
                        env.VerboseAction(_draw_map, "partkit: drawing the partition map"),
                        title="Partition map", description="Draw the flash layout as SVG")


env.Tool("partkit", toolpath=[_tool_dir()])
_configure()
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
