"""``partkit show``: a readable summary of a CSV or binary table (or JSON, or ESP-IDF CSV)."""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli import idf_build
from partkit.cli.common import add_table_arguments, emit, options_from_args
from partkit.cli.parser import EXIT_PLAIN, command_parser
from partkit.common.fileio import write_text
from partkit.flash.bootpredict import predict_image_boot
from partkit.flash.tablearea import load_table_file, read_table_source, table_flash_size
from partkit.table.builtin import all_builtins
from partkit.table.render import to_csv, to_json, to_summary
from partkit.table.source import FlashSize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("partkit show", (
        "Summarise a partition table: offsets, ends, sizes, flags, gaps and free space,\n"
        "with a flash map drawn to scale. The table is validated like 'partkit gen' does."),
        EXIT_PLAIN)
    idf_build.add_table_or_build(p, "partition table: CSV, or the binary 'partkit gen' writes")
    p.add_argument("--list-builtin", action="store_true",
                   help="list the built-in tables (use one as TABLE builtin:NAME) and exit")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    out.add_argument("--csv", action="store_true", help="the ESP-IDF CSV rendering")
    p.add_argument("--no-map", action="store_true", help="omit the ASCII flash map")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the summary, JSON or CSV to FILE instead of stdout")
    add_table_arguments(p, has_output=True)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the table checks (alignment, overlaps, names)")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    return p


def run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list_builtin:
        return _list_builtin(args.json)
    idf_build.require_table_or_build(parser, args)
    if args.idf_build_dir is not None:
        build, loaded = idf_build.load(args, verify=not args.no_verify)
        options = build.options.replace(strict=args.strict)
        flash = FlashSize.given(options.flash_size, build.flash_size_origin or "the build")
    else:
        options = options_from_args(args, verify=not args.no_verify, strict=args.strict)
        # an image's bootloader header decides the size drawn (as in check, map, diff)
        flash = table_flash_size(args.table, options)
        # --flash-size is validated as gen does; a size it did not set (an image's own,
        # overruling it or not) is drawn, overflow and all, as map draws it
        loaded = load_table_file(args.table, options.replace(
            flash_size=flash.size if flash.origin == "--flash-size" else None))
        options = options.replace(flash_size=flash.size)
    emit(loaded.warnings)
    emit(flash.warnings)
    if args.json:
        doc = to_json(loaded.table, options)
        doc["flash_size_origin"] = flash.origin
        text = json.dumps(doc, indent=2) + "\n"
    elif args.csv:
        text = to_csv(loaded.table, options.subtypes)
    else:
        text = to_summary(loaded.table, options, flash.origin)
        text += _image_boot(args, loaded.table, options)
        if not args.no_map:
            ascii_map = _ascii_map(loaded.table, options)
            if ascii_map:
                text += "\n" + ascii_map
    if args.output is None or args.output == "-":
        sys.stdout.write(text)
    else:
        write_text(args.output, text)
    return 0


def _image_boot(args: argparse.Namespace, table: PartitionTable,
                options: TableOptions) -> str:
    """For a flash image or dump: which app it boots (a line), else nothing."""

    if args.idf_build_dir is not None or not read_table_source(
            args.table, options.table_offset).image:
        return ""

    return f"boot: {predict_image_boot(args.table, table).outcome()}\n"


def _ascii_map(table: PartitionTable, options: TableOptions) -> str:
    try:
        from partkit.check.flashmap import ascii_map
    except ImportError:
        return ""
    result: str = ascii_map(table, options)
    return result if result.endswith("\n") else result + "\n"


def _list_builtin(as_json: bool) -> int:
    tables = all_builtins()
    if as_json:
        doc = [{"name": b.name, "family": b.family, "origin": b.origin,
                "description": b.description} for b in tables]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    width = max(len(b.name) for b in tables)
    family = None
    for b in tables:
        if b.family != family:
            family = b.family
            sys.stdout.write(("" if b is tables[0] else "\n") + f"{family}:\n")
        sys.stdout.write(f"  {b.name:<{width}}  {b.description}\n")
    sys.stdout.write("\nread one as TABLE builtin:NAME, e.g. partkit show builtin:two_ota\n")
    return 0
