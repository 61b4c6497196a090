"""ESP-IDF's ``check_sizes.py`` command line, answered by partkit.

Source: ESP-IDF ``components/partition_table/check_sizes.py``.

ESP-IDF's build runs ``<tool> --offset N partition --type T [--subtype S] TABLE BINARY``
after linking the app and ``<tool> --offset N bootloader OFFSET BINARY`` after the
bootloader; the ESP-IDF component points ``PARTITION_TABLE_CHECK_SIZES_TOOL_PATH`` here
when CONFIG_PARTKIT_REPLACE_CHECK_SIZES is set. Numbers, messages, streams and exit codes
are those of ESP-IDF v5.5-v6.1's argparse check_sizes.py (so build logs and log parsers
keep working), with one deliberate difference: TEE app slots are not candidates for
``--type app`` (as in ESP-IDF master), since the TEE image has its own check.

When a binary does not fit, partkit's own diagnostic comes first (``partitions.csv:4:1:
error: ...`` with the slot, the overflow and a hint), then ESP-IDF's ``Error:`` line for
tools that grep build logs. The CSV is found from the build directory the table binary
lies in; ``--partkit-csv`` and ``--partkit-sdkconfig`` (never passed by ESP-IDF) name the
CSV and the sdkconfig for a check that runs outside it (the bootloader subproject);
``--partkit-quiet`` keeps a fitting bootloader silent there, since ESP-IDF's own check
prints its size line right after.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

from partkit.check.checks import (
    bootloader_summary,
    bootloader_too_large,
    check_app,
    resolve_selector,
)
from partkit.check.files import load_table_for_check
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.numbers import align_up
from partkit.flash.appimage import ImageInfo
from partkit.flash.tablearea import load_table_file
from partkit.idf.builddir import read_build_dir, sdkconfig_line
from partkit.table.options import TableOptions, int_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from partkit.common.errors import Diagnostic
    from partkit.idf.builddir import IdfBuild
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check_sizes.py (partkit)",
        description="ESP-IDF's size checks, as check_sizes.py runs them: does the app "
                    "binary fit its partitions, does the bootloader end before the table.",
        epilog="exit codes: 0 fits (or --allow-failures), 1 does not fit, 2 bad input")
    p.add_argument("--target", choices=("esp32", "esp32s2"), help="accepted and ignored")
    p.add_argument("--allow-failures", "--allow_failures", action="store_true",
                   help="warn instead of failing when a binary does not fit")
    p.add_argument("--offset", "-o", default="0x8000",
                   help="partition table offset (default 0x8000)")
    sub = p.add_subparsers(dest="command", required=True)
    part = sub.add_parser("partition", help="check a binary against partitions of a type")
    part.add_argument("--type", required=True, help="partition type (name or number)")
    part.add_argument("--subtype", help="partition subtype (name or number)")
    part.add_argument("partition_table", help="CSV or binary partition table")
    part.add_argument("binary", help="the binary that will be flashed to the partition")
    bl = sub.add_parser("bootloader", help="check that the bootloader ends before the table")
    bl.add_argument("bootloader_offset", help="bootloader flash offset")
    bl.add_argument("bootloader_binary", help="the bootloader binary")
    for sub_parser in (part, bl):
        sub_parser.add_argument("--partkit-csv", help=argparse.SUPPRESS)
        sub_parser.add_argument("--partkit-sdkconfig", help=argparse.SUPPRESS)
    # The bootloader hook's check precedes ESP-IDF's, which prints the size line itself.
    bl.add_argument("--partkit-quiet", action="store_true", help=argparse.SUPPRESS)
    return p


def _build_of(table: str) -> IdfBuild | None:
    """The ESP-IDF build a ``<build>/partition_table/partition-table.bin`` belongs to."""

    build_dir = os.path.dirname(os.path.dirname(os.path.abspath(table)))
    if not os.path.isfile(os.path.join(build_dir, "project_description.json")):
        return None
    try:
        return read_build_dir(build_dir)
    except PartkitError:
        return None  # ESP-IDF's own text is still printed; only the CSV line is missing


def _say_first(diagnostic: Diagnostic) -> None:
    """partkit's diagnostic, before ESP-IDF's lines (both on stderr, as ESP-IDF's failure)."""
    sys.stdout.flush()
    sys.stderr.write(f"{diagnostic.format()}\n")


def _fail(message: str, allow: bool) -> int:
    if allow:
        print(f"Warning: {message}")
        return 0
    sys.stdout.flush()
    sys.stderr.write(f"Error: {message}\n")
    return 1


def _check_partition(args: argparse.Namespace, table_offset: int) -> int:
    """``partkit check``'s app check (same selection, numbers and texts) on the file size."""

    build = _build_of(args.partition_table)
    options = TableOptions(table_offset=table_offset, verify=False)
    if build is not None:
        options = options.replace(subtypes=build.options.subtypes)
    source = args.partkit_csv or (build.table_source if build is not None else None)
    table = _table_with_lines(args.partition_table, options, source)
    ptype, subtype, label = resolve_selector(args.type, args.subtype, options.subtypes)
    # check_sizes.py looks at the binary only when some partition matches.
    unreadable: PartkitError | None = None
    try:
        size = _file_size(args.binary)
    except PartkitError as exc:
        size, unreadable = 0, exc
    result = check_app(table, ImageInfo(args.binary, size), ptype=ptype, subtype=subtype,
                       label=label)
    if result.status == "no-match":
        print(f"WARNING: {result.findings[0].diagnostic.message}")
        return 0
    if unreadable is not None:
        raise unreadable
    if result.summary is not None:  # fits; the findings are warnings (nearly full)
        print(result.summary)
        for finding in result.findings:
            print(f"Warning: {finding.diagnostic.message}")
        return 0
    too_small = result.findings[0]
    allowed = args.allow_failures or not too_small.is_error
    if not allowed:
        _say_first(too_small.diagnostic)
    return _fail(too_small.diagnostic.message, allowed)


def _table_with_lines(path: str, options: TableOptions, source: str | None) -> PartitionTable:
    """The table as check_sizes.py reads it, its partitions pointing at the CSV's lines."""

    if source is not None and os.path.exists(source):
        return load_table_for_check(path, options, source).table

    return load_table_file(path, options).table


def _check_bootloader(args: argparse.Namespace, table_offset: int) -> int:
    """The texts of ``partkit check``'s bootloader check, with check_sizes.py's rules: no
    sanity check of the offsets, and the size line even after an allowed failure."""
    offset = int_option("BOOTLOADER_OFFSET", args.bootloader_offset)
    size = _file_size(args.bootloader_binary)
    room = table_offset - offset
    if room <= 0:  # check_sizes.py divides by zero here; no bootloader fits at all

        raise PartkitError(error(
            f"the bootloader offset 0x{offset:x} is not below the partition table offset "
            f"0x{table_offset:x}", hint="the bootloader must come before the table: check "
            "BOOTLOADER_OFFSET_IN_FLASH and PARTITION_TABLE_OFFSET"))
    if size > room:
        if not args.allow_failures:
            _say_first(_bootloader_diagnostic(args, size, offset, table_offset, room))
        code = _fail(bootloader_too_large(size, table_offset, room), args.allow_failures)
        if code:
            return code
    if not args.partkit_quiet:
        print(bootloader_summary(size, room))
    return 0


def _bootloader_diagnostic(args: argparse.Namespace, size: int, offset: int,
                           table_offset: int, room: int) -> Diagnostic:
    """partkit's bootloader error, at the setting that decides the room: the sdkconfig line of
    CONFIG_PARTITION_TABLE_OFFSET, or the CSV's first partition when it starts too early."""

    need = align_up(offset + size, 0x1000)
    where: SourceLocation | None = SourceLocation(args.bootloader_binary)
    if args.partkit_sdkconfig:
        where = sdkconfig_line(args.partkit_sdkconfig, "CONFIG_PARTITION_TABLE_OFFSET") or where
    hint = (f"set CONFIG_PARTITION_TABLE_OFFSET to {need:#x} or more (menuconfig > Partition "
            "Table > Offset of partition table) and the CSV's first partition to "
            f"{need + 0x1000:#x} or later, or make the bootloader smaller (log level, "
            "optimization for size)")
    return error(f"bootloader {os.path.basename(args.bootloader_binary)} ({size:#x} bytes at "
                 f"{offset:#x}) overflows the partition table at {table_offset:#x} by "
                 f"{size - room:#x} bytes: it has room for {room:#x}", where, hint,
                 code="bootloader-too-large")


def _file_size(path: str) -> int:


    try:
        info = os.stat(path)
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror}", SourceLocation(path))) from None
    if not stat.S_ISREG(info.st_mode):  # a directory's size is no binary's size
        raise PartkitError(error("not a file", SourceLocation(path),
                                 hint="pass the binary the build made (a .bin file)"))
    return info.st_size


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from partkit.table.options import int_option

        table_offset = int_option("--offset", args.offset)
        if args.command == "partition":
            return _check_partition(args, table_offset)
        return _check_bootloader(args, table_offset)
    except PartkitError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
