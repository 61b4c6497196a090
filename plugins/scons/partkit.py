"""SCons tool: Add Builders and construction variables for ESP32 partition tables.

    env = Environment(tools=["default", "partkit"], toolpath=[<partkit --scons-dir>])
    table = env.PartitionTable("build/partitions.bin", "partitions.csv", PARTKIT_FLASH_SIZE="4MB")
    env.CheckAppSize("build/app.bin", table)
    env.CheckBootloaderSize("build/bootloader.bin", table, PARTKIT_CHIP="esp32c3")

Everything is done by the partkit core, in-process: the table through ``partkit.table.codec``,
the size checks through ``partkit check`` (``partkit.cli.main``). Construction variables
are in each action's varlist, so changing one rebuilds; with content signatures an
unchanged CSV and unchanged options rebuild nothing. See docs/scons.md.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import threading

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Util

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

__all__ = ["exists", "generate"]

# <checkout>/plugins/scons/partkit.py -> <checkout>/core (not used by an installed wheel).
_CHECKOUT_CORE = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "core")
)

# Construction variables and their defaults ("" or False = not given).
TABLE_VARS = {
    "PARTKIT_OFFSET": "0x8000",  # partition table offset
    "PARTKIT_CHIP": "",  # e.g. esp32c3: bootloader offset, chip-specific rules
    "PARTKIT_FLASH_SIZE": "",  # e.g. 4MB: fail if the table does not fit
    "PARTKIT_SECURE": "",  # "", "v1" or "v2": secure boot app size alignment
    "PARTKIT_NO_MD5": False,  # leave out the MD5 row
    "PARTKIT_EXTRA_SUBTYPES": [],  # ["data,my_sub,0x40", ...]
    "PARTKIT_STRICT": False,  # warnings become errors
}
CHECK_VARS = {
    "PARTKIT_APP_TYPE": "app",  # partition type the app must fit (check --type)
    "PARTKIT_APP_SUBTYPE": "",  # restrict to one subtype (check --subtype)
    "PARTKIT_BOOTLOADER_OFFSET": "",  # default: from PARTKIT_CHIP
    "PARTKIT_WARN_FREE": "",  # e.g. 10% or 65536: warn below this much free space
    "PARTKIT_FAIL_FREE": "",  # fail below this much free space
}
_MESSAGES = {
    "PARTKIT_TABLECOMSTR": "partkit: generating $TARGET from $SOURCE",
    "PARTKIT_APPCHECKCOMSTR": "partkit: checking app image ${SOURCES[0]}",
    "PARTKIT_BLCHECKCOMSTR": "partkit: checking bootloader image ${SOURCES[0]}",
}

# partkit.cli writes to sys.stdout/sys.stderr; actions may run in parallel threads (-j),
# so capturing its output is serialised.
_CLI_LOCK = threading.Lock()


def core() -> ModuleType:
    """Import and return the ``partkit`` package (the core, not this tool module).

    SCons registers a tool loaded from a toolpath in ``sys.modules`` under the tool's name,
    which here is also the package's name, so that entry is dropped first. From a checkout
    the package is found in ``<checkout>/core`` when it is not installed.
    """
    current = sys.modules.get("partkit")
    if current is not None and not hasattr(current, "__path__"):
        del sys.modules["partkit"]
    try:
        return importlib.import_module("partkit")
    except ImportError:
        if not os.path.isfile(os.path.join(_CHECKOUT_CORE, "partkit", "__init__.py")):
            raise
        sys.path.insert(0, _CHECKOUT_CORE)
        return importlib.import_module("partkit")


def _text(env: Any, name: str) -> str:
    value = env.get(name)
    if value is None or value is False:
        return ""
    return env.subst(str(value)) if isinstance(value, str) else str(value)


def _flag(env: Any, name: str) -> bool:
    value = env.get(name, False)
    if isinstance(value, str):
        return env.subst(value).strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _list(env: Any, name: str) -> list[str]:
    return [env.subst(str(v)) for v in SCons.Util.flatten(env.get(name) or [])]


def table_options(env: Any) -> Any:
    """The env's PARTKIT_* values as a ``partkit.table.options.TableOptions`` (raises PartkitError)."""
    core()
    from partkit.cli.common import size_option
    from partkit.cli.common import table_options as make_options

    flash = _text(env, "PARTKIT_FLASH_SIZE")
    return make_options(
        offset=_text(env, "PARTKIT_OFFSET") or None,
        chip=_text(env, "PARTKIT_CHIP") or None,
        flash_size=size_option("PARTKIT_FLASH_SIZE", flash) if flash else None,
        secure=_text(env, "PARTKIT_SECURE") or None,
        md5=not _flag(env, "PARTKIT_NO_MD5"),
        strict=_flag(env, "PARTKIT_STRICT"),
        extra_subtypes=_list(env, "PARTKIT_EXTRA_SUBTYPES"),
    )


def load_table(env: Any, path: str) -> Any:
    """Load and verify a CSV or binary table with the env's options -> ``codec.Loaded``."""
    core()
    from partkit.table.codec import load_table_file

    return load_table_file(path, table_options(env))


def _build_error(target: Any, message: str, status: int) -> SCons.Errors.BuildError:
    return SCons.Errors.BuildError(node=target, errstr=message, exitstatus=status)


def _table_action(target: Any, source: Any, env: Any) -> int:
    core()
    from partkit.cli.common import emit
    from partkit.table.codec import encode
    from partkit.common.errors import PartkitError
    from partkit.common.fileio import write_atomic

    out = str(target[0])
    try:
        loaded = load_table(env, str(source[0]))
        emit(loaded.warnings)
        write_atomic(out, encode(loaded.table, table_options(env)))
    except PartkitError as exc:
        raise _build_error(target[0], str(exc), exc.exit_code) from None
    return 0


def check_argv(env: Any, kind: str, image: str, table: str) -> list[str]:
    """``partkit check`` arguments for an app or bootloader image (kind "app"/"bootloader")."""
    argv = ["check", table, f"--{kind}", image, "--offset", _text(env, "PARTKIT_OFFSET")]
    # --chip and --bootloader-offset are alternatives; an explicit offset wins.
    if _text(env, "PARTKIT_BOOTLOADER_OFFSET"):
        where = ("--bootloader-offset", "PARTKIT_BOOTLOADER_OFFSET")
    else:
        where = ("--chip", "PARTKIT_CHIP")
    options = [
        where,
        ("--flash-size", "PARTKIT_FLASH_SIZE"),
        ("--warn-free", "PARTKIT_WARN_FREE"),
        ("--fail-free", "PARTKIT_FAIL_FREE"),
    ]
    if kind == "app":
        options += [("--type", "PARTKIT_APP_TYPE"), ("--subtype", "PARTKIT_APP_SUBTYPE")]
    for flag, name in options:
        value = _text(env, name)
        if value:
            argv += [flag, value]
    if _flag(env, "PARTKIT_STRICT"):
        argv.append("--strict")
    extra = _list(env, "PARTKIT_EXTRA_SUBTYPES")
    if extra:
        argv += ["--extra-partition-subtypes", *extra, "--"]
    return argv


def run_check(env: Any, kind: str, image: str, table: str) -> tuple[int, str]:
    """Run ``partkit check`` in-process; returns (exit code, everything it printed)."""
    core()
    from partkit.cli import main

    captured = io.StringIO()
    with _CLI_LOCK, contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        code = _exit_code(main, check_argv(env, kind, image, table))
    return code, captured.getvalue().rstrip("\n")


def _exit_code(main: Any, argv: list[str]) -> int:
    try:
        return int(main(argv))
    except SystemExit as exc:  # argparse usage errors
        return exc.code if isinstance(exc.code, int) else 2


def check_action(kind: str, table: str | None = None) -> SCons.Action.Action:
    """An action checking ``source[0]`` (builder) or ``target[0]`` (post-action) against a table.

    ``table`` None means ``source[1]`` (the CheckAppSize/CheckBootloaderSize builders).
    On success the report is printed (and written to the stamp target of the builders);
    on failure the build stops with partkit's message.
    """

    def action(target: Any, source: Any, env: Any) -> int:
        image = str(source[0]) if table is None else str(target[0])
        table_path = str(source[1]) if table is None else env.subst(table)
        code, report = run_check(env, kind, image, table_path)
        if code != 0:
            raise _build_error(target[0], report or f"partkit check exited with {code}", code)
        if report:
            print(report)
        if table is None:
            with open(str(target[0]), "w", encoding="utf-8") as stamp:
                stamp.write(report + "\n")
        return 0

    message = "$PARTKIT_APPCHECKCOMSTR" if kind == "app" else "$PARTKIT_BLCHECKCOMSTR"
    if table is not None:
        message = message.replace("${SOURCES[0]}", "$TARGET")
    return SCons.Action.Action(
        action, message, varlist=[*TABLE_VARS, *CHECK_VARS]
    )


def run_cli(env: Any, argv: list[str]) -> int:
    """Run a ``partkit`` command in-process, printing as it goes; returns its exit code."""
    core()
    from partkit.cli import main

    with _CLI_LOCK:
        return _exit_code(main, [env.subst(a) for a in argv])


def app_slot(env: Any, table: str, name: str | None = None) -> tuple[Any, str] | None:
    """The app partition an image must fit: ``name`` if given, else the smallest app slot.

    Returns (partition, subtype text for ``check --subtype``: "" when not named), or None
    when the table has no app partition. Raises PartkitError for a bad table or name.
    """
    core()
    from partkit.common.errors import PartkitError, SourceLocation, error
    from partkit.table.names import APP, SUBTYPE_APP_TEE

    loaded = load_table(env, table)
    apps = [p for p in loaded.table if p.type == APP and p.subtype not in SUBTYPE_APP_TEE]
    if name:
        chosen = loaded.table.find_by_name(name)
        if chosen is None or chosen.type != APP:
            known = ", ".join(p.name for p in apps) or "none"
            problem = "no partition" if chosen is None else "no app partition"
            raise PartkitError(error(f"{problem} named '{name}'", SourceLocation(table),
                                     f"app partitions in this table: {known}"))
        return chosen, table_options(env).subtypes.render(chosen.type, chosen.subtype)
    if not apps:
        return None
    return min(apps, key=lambda p: p.size), ""


def _one_to_one(target: Any, source: Any, env: Any) -> tuple[Any, Any]:
    if len(target) != 1 or len(source) != 1:
        msg = (f"PartitionTable takes one target and one source, got {len(target)} target(s) "
               f"and {len(source)} source(s)")
        raise SCons.Errors.UserError(msg)
    return target, source


def _add_checker(kind: str, builder: Any) -> Any:
    def method(env: Any, image: Any, table: Any, **overrides: Any) -> Any:
        images = env.arg2nodes(image, env.fs.File)
        tables = env.arg2nodes(table, env.fs.File)
        if len(images) != 1 or len(tables) != 1:
            msg = f"Check{kind}Size takes one image and one partition table"
            raise SCons.Errors.UserError(msg)
        stamp = images[0].abspath + ".partkit-check"
        return builder(env, stamp, [images[0], tables[0]], **overrides)

    return method


def generate(env: Any) -> None:
    """Add the PartitionTable builder, the size-check methods and their defaults."""
    core()  # also restores sys.modules["partkit"] to the package (see core())
    for name, default in {**TABLE_VARS, **CHECK_VARS, **_MESSAGES}.items():
        if name not in env:
            env[name] = default
    if "PartitionTable" not in env["BUILDERS"]:
        env["BUILDERS"]["PartitionTable"] = SCons.Builder.Builder(
            action=SCons.Action.Action(
                _table_action, "$PARTKIT_TABLECOMSTR", varlist=list(TABLE_VARS)
            ),
            suffix=".bin",
            src_suffix=".csv",
            emitter=_one_to_one,
        )
    app_builder = SCons.Builder.Builder(action=check_action("app"))
    bl_builder = SCons.Builder.Builder(action=check_action("bootloader"))
    env.AddMethod(_add_checker("App", app_builder), "CheckAppSize")
    env.AddMethod(run_cli, "PartkitRun")
    env.AddMethod(app_slot, "PartkitAppSlot")
    env.AddMethod(_add_checker("Bootloader", bl_builder), "CheckBootloaderSize")


def exists(env: Any) -> bool:
    """True when the partkit core package can be imported."""
    try:
        core()
    except ImportError:
        return False
    return True
