"""``partkit show``: a readable summary of a CSV or binary table (or JSON, or ESP-IDF CSV)."""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli.common import add_table_arguments, emit, options_from_args, report_error
from partkit.common.errors import PartkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partkit show", description=(
        "Summarise a partition table: offsets, ends, sizes, flags, gaps and free space."))
    p.add_argument("table", nargs="?", help="CSV or binary partition table")
    p.add_argument("--list-builtin", action="store_true",
                   help="list the built-in tables (use one as TABLE builtin:NAME) and exit")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    out.add_argument("--csv", action="store_true", help="the ESP-IDF CSV rendering")
    p.add_argument("--no-map", action="store_true", help="omit the ASCII flash map")
    add_table_arguments(p)
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.list_builtin:
        return _list_builtin(args.json)
    if args.table is None:
        _parser().error("the following arguments are required: TABLE")
    try:
        from partkit.table.codec import load_table_file

        options = options_from_args(args, verify=not args.no_verify, strict=args.strict)
        loaded = load_table_file(args.table, options)
    except PartkitError as exc:
        return report_error(exc)
    emit(loaded.warnings)
    if args.json:
        from partkit.table.render import to_json

        sys.stdout.write(json.dumps(to_json(loaded.table, options), indent=2) + "\n")
    elif args.csv:
        from partkit.table.render import to_csv

        sys.stdout.write(to_csv(loaded.table, options.subtypes))
    else:
        from partkit.table.render import to_summary

        sys.stdout.write(to_summary(loaded.table, options))
        if not args.no_map:
            ascii_map = _ascii_map(loaded.table, options)
            if ascii_map:
                sys.stdout.write("\n" + ascii_map)
    return 0


def _ascii_map(table: PartitionTable, options: TableOptions) -> str:
    try:
        from partkit.check.flashmap import ascii_map
    except ImportError:
        return ""
    result: str = ascii_map(table, options)
    return result if result.endswith("\n") else result + "\n"


def _list_builtin(as_json: bool) -> int:
    from partkit.table.builtin import all_builtins

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
