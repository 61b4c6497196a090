"""ESP-IDF's ``check_sizes.py`` command line, answered by partkit.

Source: ESP-IDF ``components/partition_table/check_sizes.py``.

ESP-IDF's build runs ``<tool> --offset N partition --type T [--subtype S] TABLE BINARY``
after linking the app and ``<tool> --offset N bootloader OFFSET BINARY`` after the
bootloader; the ESP-IDF component points ``PARTITION_TABLE_CHECK_SIZES_TOOL_PATH`` here
when CONFIG_PARTKIT_REPLACE_CHECK_SIZES is set. Numbers, messages, streams and exit codes
are those of ESP-IDF v5.5-v6.1's argparse check_sizes.py (so build logs and log parsers
keep working), with one deliberate difference: TEE app slots are not candidates for
``--type app`` (as in ESP-IDF master), since the TEE image has its own check.
"""

from __future__ import annotations

import argparse
import os
import sys

from partkit.check.checks import (
    bootloader_summary,
    bootloader_too_large,
    check_app,
    resolve_selector,
)
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.flash.appimage import ImageInfo
from partkit.flash.tablearea import load_table_file
from partkit.table.options import TableOptions, int_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

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
    return p


def _fail(message: str, allow: bool) -> int:
    if allow:
        print(f"Warning: {message}")
        return 0
    sys.stdout.flush()
    sys.stderr.write(f"Error: {message}\n")
    return 1


def _check_partition(args: argparse.Namespace, table_offset: int) -> int:
    """``partkit check``'s app check (same selection, numbers and texts) on the file size."""
    table = load_table_file(args.partition_table,
                            TableOptions(table_offset=table_offset, verify=False)).table
    ptype, subtype, label = resolve_selector(args.type, args.subtype, TableOptions().subtypes)
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
    return _fail(too_small.diagnostic.message, args.allow_failures or not too_small.is_error)


def _check_bootloader(args: argparse.Namespace, table_offset: int) -> int:
    """The texts of ``partkit check``'s bootloader check, with check_sizes.py's rules: no
    sanity check of the offsets, and the size line even after an allowed failure."""
    offset = int_option("BOOTLOADER_OFFSET", args.bootloader_offset)
    size = _file_size(args.bootloader_binary)
    room = table_offset - offset
    if room <= 0:  # check_sizes.py divides by zero here; no bootloader fits at all
        from partkit.common.errors import PartkitError, error

        raise PartkitError(error(
            f"the bootloader offset 0x{offset:x} is not below the partition table offset "
            f"0x{table_offset:x}", hint="the bootloader must come before the table: check "
            "BOOTLOADER_OFFSET_IN_FLASH and PARTITION_TABLE_OFFSET"))
    if size > room:
        code = _fail(bootloader_too_large(size, table_offset, room), args.allow_failures)
        if code:
            return code
    print(bootloader_summary(size, room))
    return 0


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror}", SourceLocation(path))) from None


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
