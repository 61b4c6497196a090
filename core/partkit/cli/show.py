"""``partkit show``: a readable summary of a CSV or binary table (or JSON, or ESP-IDF CSV)."""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli.common import emit, report_error, size_option, table_options
from partkit.errors import PartkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.model import PartitionTable
    from partkit.options import TableOptions

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partkit show", description=(
        "Summarise a partition table: offsets, ends, sizes, flags, gaps and free space."))
    p.add_argument("table", help="CSV or binary partition table")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    out.add_argument("--csv", action="store_true", help="the ESP-IDF CSV rendering")
    p.add_argument("--no-map", action="store_true", help="omit the ASCII flash map")
    p.add_argument("--chip", help="chip (sets the bootloader offset)")
    p.add_argument("-o", "--offset", help="partition table offset (default 0x8000)")
    p.add_argument("--primary-bootloader-offset")
    p.add_argument("--recovery-bootloader-offset")
    p.add_argument("--flash-size", help="flash size (4MB, 0x400000): shows free space")
    p.add_argument("--disable-md5sum", action="store_true")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--extra-partition-subtypes", nargs="*", default=[], metavar="E")
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        from partkit.codec import load_table_file

        options = table_options(
            offset=args.offset, chip=args.chip,
            primary_bootloader_offset=args.primary_bootloader_offset,
            recovery_bootloader_offset=args.recovery_bootloader_offset,
            flash_size=None if args.flash_size is None else size_option("--flash-size",
                                                                        args.flash_size),
            md5=not args.disable_md5sum, verify=not args.no_verify, strict=args.strict,
            extra_subtypes=args.extra_partition_subtypes)
        loaded = load_table_file(args.table, options)
    except PartkitError as exc:
        return report_error(exc)
    emit(loaded.warnings)
    if args.json:
        from partkit.render import to_json

        sys.stdout.write(json.dumps(to_json(loaded.table, options), indent=2) + "\n")
    elif args.csv:
        from partkit.render import to_csv

        sys.stdout.write(to_csv(loaded.table, options.subtypes))
    else:
        from partkit.render import to_summary

        sys.stdout.write(to_summary(loaded.table, options))
        if not args.no_map:
            ascii_map = _ascii_map(loaded.table, options)
            if ascii_map:
                sys.stdout.write("\n" + ascii_map)
    return 0


def _ascii_map(table: PartitionTable, options: TableOptions) -> str:
    try:
        from partkit.flashmap import ascii_map
    except ImportError:
        return ""
    result: str = ascii_map(table, options)
    return result if result.endswith("\n") else result + "\n"
