"""SCons tool: Add Builders and construction variables for ESP32 partition tables.

    env = Environment(tools=["default", "partkit"], toolpath=[<partkit --scons-dir>])
    table = env.PartitionTable("build/partitions.bin", "partitions.csv", PARTKIT_FLASH_SIZE="4MB")
    env.CheckAppSize("build/app.bin", table)
    env.CheckBootloaderSize("build/bootloader.bin", table, PARTKIT_CHIP="esp32c3")

Everything is done by the partkit core, in-process, through its public build-system API
``partkit.buildsys`` (the table, the headers, the size checks ``partkit check`` runs),
called directly: nothing redirects the process's stdout/stderr, so parallel (``-j``) actions
never see each other's output. Construction variables are in each action's varlist, so
changing one rebuilds; with content signatures an unchanged CSV and unchanged options
rebuild nothing. See docs/scons.md.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Node.Python
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
    "PARTKIT_BUILTIN": "",  # a built-in table by name instead of a CSV source ("two_ota")
    "PARTKIT_HEADER": "",  # also write PARTITION_<NAME>_OFFSET/... #defines to this file
    "PARTKIT_SUBTYPES_HEADER": "",  # also write ESP_PARTITION_SUBTYPE_* enum lines here
}
FLASH_VARS = {
    "PARTKIT_ESPTOOL": [sys.executable, "-m", "esptool"],  # the esptool command
    "PARTKIT_PORT": "",  # serial port; default: $ESPPORT from the environment
    "PARTKIT_BAUD": "",  # default: $ESPBAUD from the environment, else 460800
}
CHECK_VARS = {
    "PARTKIT_APP_TYPE": "app",  # partition type the app must fit (check --type)
    "PARTKIT_APP_SUBTYPE": "",  # restrict to one subtype (check --subtype)
    "PARTKIT_BOOTLOADER_OFFSET": "",  # default: from PARTKIT_CHIP
    "PARTKIT_WARN_FREE": "",  # e.g. 10% or 64K: warn below this much free space
    "PARTKIT_FAIL_FREE": "",  # fail below this much free space
    # The CSV a binary table was generated from, for file:line messages. Default: the
    # source of a PartitionTable target; "" for a table file made some other way.
    "PARTKIT_TABLE_SOURCE": "",
}
_MESSAGES = {
    "PARTKIT_TABLECOMSTR": "partkit: generating $TARGET from $SOURCE",
    "PARTKIT_APPCHECKCOMSTR": "partkit: checking app image ${SOURCES[0]}",
    "PARTKIT_BLCHECKCOMSTR": "partkit: checking bootloader image ${SOURCES[0]}",
    "PARTKIT_FLASHCOMSTR": "partkit: writing ${SOURCES[0]} to the device",
    "PARTKIT_DATACOMSTR": "partkit: data image $TARGET for partition $PARTKIT_DATA_PARTITION",
}

# PartkitRun runs a CLI command that prints as it goes; parallel (-j) actions would
# interleave their lines, so those runs take turns. The checks print nothing themselves.
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


def table_options(env: Any, *, bootloader_offset: bool = False) -> Any:
    """The env's PARTKIT_* values as a ``partkit.table.options.TableOptions`` (raises PartkitError).

    ``bootloader_offset`` also applies PARTKIT_BOOTLOADER_OFFSET (the checks' option; it
    wins over the chip's default, and the chip still checks the images' chip id).
    """
    core()
    from partkit.buildsys import size_option
    from partkit.buildsys import table_options as make_options

    flash = _text(env, "PARTKIT_FLASH_SIZE")
    return make_options(
        offset=_text(env, "PARTKIT_OFFSET") or None,
        chip=_text(env, "PARTKIT_CHIP") or None,
        primary_bootloader_offset=(_text(env, "PARTKIT_BOOTLOADER_OFFSET") or None
                                   if bootloader_offset else None),
        flash_size=size_option("PARTKIT_FLASH_SIZE", flash) if flash else None,
        secure=_text(env, "PARTKIT_SECURE") or None,
        md5=not _flag(env, "PARTKIT_NO_MD5"),
        strict=_flag(env, "PARTKIT_STRICT"),
        extra_subtypes=_list(env, "PARTKIT_EXTRA_SUBTYPES"),
    )


def load_table(env: Any, path: str) -> Any:
    """Load and verify a CSV or binary table with the env's options -> ``codec.Loaded``."""
    core()
    from partkit.buildsys import load_table_file

    return load_table_file(path, table_options(env))


def _build_error(target: Any, message: str, status: int) -> SCons.Errors.BuildError:
    return SCons.Errors.BuildError(node=target, errstr=message, exitstatus=status)


def _source_path(node: Any) -> str:
    """A file's path as the user knows it: with ``VariantDir(duplicate=1)`` the build reads
    a copy of a source file, but messages should point at the file the user edits. (A
    built file is its own source: its srcnode() would name a file that does not exist.)"""
    if isinstance(node, SCons.Node.Python.Value):  # PARTKIT_BUILTIN: "builtin:NAME"
        return str(node.read())
    return str(node if node.has_builder() else node.srcnode())


def _table_action(target: Any, source: Any, env: Any) -> int:
    core()
    from partkit.buildsys import PartkitError, diagnostic_text, encode_table, write_atomic

    out = str(target[0])
    try:
        loaded = load_table(env, _source_path(source[0]))
        sys.stderr.write(diagnostic_text(loaded.warnings))
        write_atomic(out, encode_table(loaded.table, table_options(env)))
        _write_headers(target[1:], env, loaded.table, _source_path(source[0]))
    except PartkitError as exc:
        raise _build_error(target[0], str(exc), exc.exit_code) from None
    return 0


def _write_headers(targets: Any, env: Any, table: Any, source: str) -> None:
    """PARTKIT_HEADER / PARTKIT_SUBTYPES_HEADER, rewritten only when their text changes."""
    from partkit.buildsys import layout_header, subtypes_header, write_if_changed

    options = table_options(env)
    texts = {}
    if _text(env, "PARTKIT_HEADER"):
        texts[env.File(_text(env, "PARTKIT_HEADER")).abspath] = layout_header(
            table, source, options.table_offset)
    if _text(env, "PARTKIT_SUBTYPES_HEADER"):
        texts[env.File(_text(env, "PARTKIT_SUBTYPES_HEADER")).abspath] = subtypes_header(
            _list(env, "PARTKIT_EXTRA_SUBTYPES"), options.subtypes)
    for node in targets:
        write_if_changed(node.abspath, texts[node.abspath].encode("utf-8"))


def check_argv(env: Any, kind: str, image: str, table: str,
               table_source: str | None = None) -> list[str]:
    """``partkit check`` arguments equivalent to a CheckAppSize/CheckBootloaderSize run.

    For logs and for running the same check by hand; the builders call the core directly.
    Paths are passed as ``--app=PATH`` and after ``--``, so a path starting with ``-`` is
    never read as an option (``partkit.buildsys.commands.check_argv``).
    """
    core()
    from partkit.buildsys import check_argv as argv

    return argv(kind, image, table, offset=_text(env, "PARTKIT_OFFSET"),
                table_source=table_source, chip=_text(env, "PARTKIT_CHIP"),
                bootloader_offset=_text(env, "PARTKIT_BOOTLOADER_OFFSET"),
                flash_size=_text(env, "PARTKIT_FLASH_SIZE"),
                warn_free=_text(env, "PARTKIT_WARN_FREE"),
                fail_free=_text(env, "PARTKIT_FAIL_FREE"),
                app_type=_text(env, "PARTKIT_APP_TYPE"),
                app_subtype=_text(env, "PARTKIT_APP_SUBTYPE"),
                strict=_flag(env, "PARTKIT_STRICT"),
                extra_subtypes=_list(env, "PARTKIT_EXTRA_SUBTYPES"))


def run_check(env: Any, kind: str, image: str, table: str,
              table_source: str | None = None) -> tuple[int, str, str]:
    """Check ``image`` against ``table`` in-process.

    Returns (exit code, report, diagnostics): what ``partkit check`` prints to stdout and
    to stderr (with GitHub annotations under Actions). Calls the core; prints nothing.
    """
    core()
    from partkit.buildsys import (
        Budget,
        PartkitError,
        check_files,
        check_report_text,
        diagnostic_text,
    )

    def budget(name: str, option: str) -> Any:
        value = _text(env, name)
        return Budget.parse(value, option) if value else None

    try:
        options = table_options(env, bootloader_offset=True)
        report = check_files(
            table, options, table_source=table_source or None,
            app=image if kind == "app" else None,
            bootloader=image if kind == "bootloader" else None,
            app_type=_text(env, "PARTKIT_APP_TYPE") or "app",
            app_subtype=_text(env, "PARTKIT_APP_SUBTYPE") or None,
            warn_free=budget("PARTKIT_WARN_FREE", "PARTKIT_WARN_FREE"),
            fail_free=budget("PARTKIT_FAIL_FREE", "PARTKIT_FAIL_FREE"))
    except PartkitError as exc:
        code, text, diagnostics = exc.exit_code, "", list(exc.diagnostics)
    else:
        code, text = report.exit_code, check_report_text(report).rstrip("\n")
        diagnostics = [f.diagnostic for f in report.findings]
    return code, text, diagnostic_text(diagnostics).rstrip("\n")


def _say(text: str) -> None:
    # One write per report: under -j, actions run in threads and print()'s separate
    # newline write lets another job's output land between a report and its end.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def check_action(kind: str, table: str | None = None) -> SCons.Action.Action:
    """An action checking ``source[0]`` (builder) or ``target[0]`` (post-action) against a table.

    ``table`` None means ``source[1]`` (the CheckAppSize/CheckBootloaderSize builders).
    On success the report is printed (and written to the stamp target of the builders);
    on failure the build stops with partkit's message.
    """

    def action(target: Any, source: Any, env: Any) -> int:
        image = str(source[0]) if table is None else str(target[0])
        if table is None:
            table_path, csv = _source_path(source[1]), table_source(env, source[1])
        else:
            table_path, csv = env.subst(table), _text(env, "PARTKIT_TABLE_SOURCE") or None
        code, report, diagnostics = run_check(env, kind, image, table_path, csv)
        if code != 0:
            # The report first, then the error: scons prints it as
            # "scons: *** [stamp] partitions.csv:4:1: error: ...", clickable in IDEs.
            if report:
                _say(report)
            raise _build_error(target[0], diagnostics or f"partkit check exited with {code}",
                               code)
        output = "\n".join(x for x in (report, diagnostics) if x)
        _say(report)
        if diagnostics:
            sys.stderr.write(diagnostics + "\n")
        if table is None:
            with open(str(target[0]), "w", encoding="utf-8") as stamp:
                stamp.write(output + "\n")
        return 0

    message = "$PARTKIT_APPCHECKCOMSTR" if kind == "app" else "$PARTKIT_BLCHECKCOMSTR"
    if table is not None:
        message = message.replace("${SOURCES[0]}", "$TARGET")
    return SCons.Action.Action(
        action, message, varlist=[*TABLE_VARS, *CHECK_VARS]
    )


def table_source(env: Any, table: Any) -> str | None:
    """The CSV to point messages at for a table node: PARTKIT_TABLE_SOURCE, else the
    source of the PartitionTable builder that makes it, else None (a CSV is its own)."""
    explicit = _text(env, "PARTKIT_TABLE_SOURCE")
    if explicit:
        return explicit
    builder = getattr(table, "builder", None)
    if getattr(builder, "partkit_table", False) and table.sources:
        return _source_path(table.sources[0])
    return None


def _exit_code(main: Any, argv: list[str]) -> int:
    try:
        return int(main(argv))
    except SystemExit as exc:  # argparse usage errors
        return exc.code if isinstance(exc.code, int) else 2


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
    from partkit.buildsys import APP, SUBTYPE_APP_TEE, PartkitError, SourceLocation, error

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


def _table_emitter(target: Any, source: Any, env: Any) -> tuple[Any, Any]:
    """One table from one CSV (or PARTKIT_BUILTIN / "builtin:NAME"), plus its headers."""
    builtin = _text(env, "PARTKIT_BUILTIN")
    if not builtin and len(source) == 1 and str(source[0]).startswith("builtin:") \
            and not source[0].exists():
        builtin = str(source[0])[len("builtin:"):]
        builtin = builtin[:-4] if builtin.endswith(".csv") else builtin  # src_suffix added
        source = []
    if builtin and len(source) == 1 and len(target) == 1 and (
            source[0] is target[0] or not source[0].exists()) \
            and os.path.splitext(source[0].abspath)[0] == os.path.splitext(target[0].abspath)[0]:
        source = []  # no source given: SCons made one up from the target's name
    if builtin:
        if source:
            raise SCons.Errors.UserError(
                f"PartitionTable: PARTKIT_BUILTIN={builtin} is the table; give no source CSV")
        core()
        from partkit.buildsys import PartkitError, lookup_builtin

        try:
            lookup_builtin(builtin)
        except PartkitError as exc:
            raise SCons.Errors.UserError(str(exc)) from None
        source = [env.Value(f"builtin:{builtin}")]
    target, source = _one_to_one(target, source, env)
    headers = [env.File(_text(env, name)) for name in ("PARTKIT_HEADER", "PARTKIT_SUBTYPES_HEADER")
               if _text(env, name)]
    return target + headers, source


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
        if len(tables) > 1 and all(t.get_executor() is tables[0].get_executor()
                                   for t in tables if t.has_builder()):
            tables = tables[:1]  # a PartitionTable's nodes: the binary, then its headers
        if len(images) != 1 or len(tables) != 1:
            msg = f"Check{kind}Size takes one image and one partition table"
            raise SCons.Errors.UserError(msg)
        # One stamp per (image, table): the same image may be checked against two tables.
        stem = os.path.splitext(tables[0].name)[0]
        stamp = env.fs.File(f"{images[0].abspath}.{stem}.partkit-check")
        if stamp.has_builder() and list(stamp.sources[1:2]) != [tables[0]]:
            raise SCons.Errors.UserError(
                f"Check{kind}Size: {images[0]} is already checked against another table "
                f"named {tables[0].name} ({stamp.sources[1]}); give the tables different "
                "file names")
        return builder(env, stamp, [images[0], tables[0]], **overrides)

    return method


DATA_VARS = ("PARTKIT_DATA_PARTITION", "PARTKIT_DATA_FORMAT", "PARTKIT_DATA_FROM")


def _data_image_action(target: Any, source: Any, env: Any) -> int:
    core()
    from partkit.buildsys import PartkitError, build_partition_image, write_atomic

    try:
        table = load_table(env, _source_path(source[0])).table
        part, fmt, image = build_partition_image(
            table, _text(env, "PARTKIT_DATA_PARTITION"), _text(env, "PARTKIT_DATA_FROM"),
            _text(env, "PARTKIT_DATA_FORMAT") or None)
        write_atomic(str(target[0]), image)
    except PartkitError as exc:
        raise _build_error(target[0], str(exc), exc.exit_code) from None
    print(f"partkit: {fmt} image {target[0]} for '{part.name}' at {part.offset:#x} "
          f"({len(image)} bytes)")
    return 0


def data_image(env: Any, target: Any, table: Any, source: Any, partition: str,
               format: str | None = None, **overrides: Any) -> Any:
    """``env.DataImage(target, table, dir_or_csv, partition, format=None)``: the image of a
    data partition (partkit data build) at exactly its size. Rebuilt when a file under the
    directory (or the NVS CSV), the table or an option changes; the file list is read each
    run, so added files count too. Returns the image node."""
    tables = env.arg2nodes(table, env.fs.File)
    if len(tables) < 1:
        raise SCons.Errors.UserError("DataImage takes a partition table")
    origin = env.Entry(source).srcnode().abspath
    # found paths are names, not SCons strings: no "$" substitution (env.fs, "$$")
    if os.path.isdir(origin):
        inputs = [env.fs.File(os.path.join(root, name))
                  for root, dirs, files in sorted(os.walk(origin, followlinks=True))
                  for name in sorted(files)]
    elif os.path.isfile(origin):
        inputs = [env.fs.File(origin)]
    else:
        raise SCons.Errors.UserError(f"DataImage: {origin} does not exist")
    builder = SCons.Builder.Builder(action=SCons.Action.Action(
        _data_image_action, "$PARTKIT_DATACOMSTR", varlist=[*TABLE_VARS, *DATA_VARS]))
    return builder(env, target, [tables[0], *inputs], PARTKIT_DATA_PARTITION=partition,
                   PARTKIT_DATA_FORMAT=format or "",
                   PARTKIT_DATA_FROM=origin.replace("$", "$$"), **overrides)


def generate(env: Any) -> None:
    """Add the PartitionTable builder, the size-check methods and their defaults."""
    core()  # also restores sys.modules["partkit"] to the package (see core())
    for name, default in {**TABLE_VARS, **CHECK_VARS, **FLASH_VARS, **_MESSAGES}.items():
        if name not in env:
            env[name] = default
    if "PartitionTable" not in env["BUILDERS"]:
        table_builder = SCons.Builder.Builder(
            action=SCons.Action.Action(
                _table_action, "$PARTKIT_TABLECOMSTR", varlist=list(TABLE_VARS)
            ),
            suffix=".bin",
            src_suffix=".csv",
            emitter=_table_emitter,
        )
        table_builder.partkit_table = True  # its targets' CSV is the checks' table source
        env["BUILDERS"]["PartitionTable"] = table_builder
    app_builder = SCons.Builder.Builder(action=check_action("app"))
    bl_builder = SCons.Builder.Builder(action=check_action("bootloader"))
    env.AddMethod(_add_checker("App", app_builder), "CheckAppSize")
    env.AddMethod(run_cli, "PartkitRun")
    env.AddMethod(check_argv, "PartkitCheckArgv")
    env.AddMethod(app_slot, "PartkitAppSlot")
    env.AddMethod(_add_checker("Bootloader", bl_builder), "CheckBootloaderSize")
    env.AddMethod(table_flash, "PartitionTableFlash")
    env.AddMethod(data_image, "DataImage")


def flash_argv(env: Any, table: str) -> list[str]:
    """The esptool command that writes only the table (as ``idf.py partition-table-flash``)."""
    core()
    from partkit.buildsys import write_table_argv

    return write_table_argv(
        _list(env, "PARTKIT_ESPTOOL"), table, offset=_text(env, "PARTKIT_OFFSET") or "0x8000",
        chip=_text(env, "PARTKIT_CHIP"),
        port=_text(env, "PARTKIT_PORT") or os.environ.get("ESPPORT", ""),
        baud=_text(env, "PARTKIT_BAUD") or os.environ.get("ESPBAUD", ""), short_options=True)


def _flash_action(target: Any, source: Any, env: Any) -> int:
    import subprocess

    argv = flash_argv(env, str(source[0]))
    print(" ".join(argv))
    return subprocess.call(argv)


def table_flash(env: Any, table: Any, alias: str = "partition-table-flash",
                **overrides: Any) -> Any:
    """An alias (default ``partition-table-flash``) that builds the table and writes only it
    to the device with esptool; PARTKIT_PORT/PARTKIT_BAUD, else $ESPPORT/$ESPBAUD."""
    tables = env.arg2nodes(table, env.fs.File)
    if not tables:  # PartitionTable's nodes: the binary first, then any headers
        raise SCons.Errors.UserError("PartitionTableFlash takes a partition table")
    flash_env = env.Override(overrides) if overrides else env
    action = SCons.Action.Action(_flash_action, "$PARTKIT_FLASHCOMSTR",
                                 varlist=[*TABLE_VARS, *FLASH_VARS])
    node = flash_env.Alias(alias, tables[:1], action)
    env.AlwaysBuild(node)
    return node


def exists(env: Any) -> bool:
    """True when the partkit core package can be imported."""
    try:
        core()
    except ImportError:
        return False
    return True
