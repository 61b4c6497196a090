"""``partkit resize``: change partition sizes or the flash size, keeping offsets stable."""

from __future__ import annotations

import argparse
import sys

from partkit.cli.common import (
    add_table_arguments,
    emit,
    options_from_args,
    size_option,
    usage_error,
)
from partkit.cli.parser import command_parser
from partkit.common.errors import warning
from partkit.common.fileio import edit_in_place, read_input, write_atomic
from partkit.diff import DiffOptions, diff_tables, side_of, to_text
from partkit.flash.tablearea import read_table_source
from partkit.plan.csvedit import rewrite
from partkit.plan.resize import Edit, resize
from partkit.table.codec import load_table
from partkit.table.csvparse import decode_text
from partkit.table.render import to_csv

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["run"]

EPILOG = """\
All --set and --fill options are one request, applied after --flash-size: the new sizes
are laid out together, then each --fill grows into the space after it. Offsets stay where
they are except where a partition in front now reaches into one; nvs, otadata, phy and
coredump partitions are never moved unless --allow-move, and nothing is placed past the
flash end. A --fill that cannot grow is refused, naming what blocks it. The change is
printed on stdout; the CSV keeps its comments and column layout.

examples:
  partkit resize partitions.csv --flash-size 8MB --fill storage
  partkit resize partitions.csv --set factory=2M --dry-run

exit status:
  0  written (or, with --dry-run, printed)
  2  bad input or usage, or an edit that is refused (the message says why: a partition
     that would have to move, past the flash end, a --fill that cannot grow)
"""


def _parser() -> argparse.ArgumentParser:
    p = command_parser(
        "partkit resize", epilog=EPILOG,
        description="Resize partitions of a table, keeping existing offsets stable, and "
                    "print what changed.")
    p.add_argument("table", help="CSV (edited in place unless -o); a binary table, builtin:NAME or "
                   "- (stdin) need -o or -n")
    p.add_argument("--set", action="append", default=[], metavar="NAME=SIZE",
                   help="give partition NAME a new size (4K multiple; 64K, 1.5M, 0x10000)")
    p.add_argument("--fill", action="append", default=[], metavar="NAME",
                   help="grow NAME into the free space after it (to the next partition or "
                        "the flash end)")
    p.add_argument("--allow-move", action="store_true",
                   help="allow moving nvs/otadata/phy/coredump partitions (their contents "
                        "must then be flashed again)")
    p.add_argument("-o", "--output", metavar="CSV", help="write here instead of TABLE")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="print the change, write nothing")
    add_table_arguments(p, has_output=True)
    # --flash-size from add_table_arguments is the flash the table is resized for.
    return p


def _sizes(values: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for value in values:
        name, eq, size = value.partition("=")
        if not eq or not name.strip() or not size.strip():
            raise usage_error(f"--set '{value}' is not NAME=SIZE", "e.g. --set storage=256K")
        out.append((name.strip(), size_option(f"--set {name.strip()}", size)))
    return tuple(out)


def print_change(old: PartitionTable, new: PartitionTable, options: TableOptions,
                 path: str) -> None:
    """The change as ``partkit diff`` reports it (OTA-safety verdict and plan), on stdout."""

    report = diff_tables(
        side_of(old.replace(path=path), options.table_offset, options.md5),
        side_of(new.replace(path=f"{path} (resized)"), options.table_offset, options.md5),
        DiffOptions(flash_size=options.flash_size, table=options))
    sys.stdout.write(to_text(report))


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    if not (args.set or args.fill or args.flash_size):
        raise usage_error("nothing to do", "give --set NAME=SIZE, --fill NAME or "
                          "--flash-size SIZE")
    options = options_from_args(args, verify=True)
    if args.table == "-" or args.table.startswith("builtin:"):  # read, not rewritten
        if not args.output and not args.dry_run:
            raise usage_error(f"{args.table} cannot be edited in place",
                              "give -o for the CSV to write (or -n to only print the "
                              "change)")

        data = read_table_source(args.table, options.table_offset).data
    else:
        data = read_input(args.table)
    loaded = load_table(data, args.table, options.replace(flash_size=None))
    emit(loaded.warnings)
    if loaded.is_binary and not args.output and not args.dry_run:
        raise usage_error(f"{args.table} is a binary table; give -o for the CSV to write")
    edit = Edit(sizes=_sizes(args.set), fill=tuple(args.fill),
                flash_size=options.flash_size, allow_move=args.allow_move)
    new = resize(loaded.table, edit, options.flash_size)
    if options.flash_size is None and (args.set or args.fill):
        emit([warning("the flash size is unknown: not checked that the result fits the "
                      "flash", None, "give --flash-size (e.g. 4MB)")])
    if loaded.is_binary:
        text = to_csv(new, options.subtypes)
    else:
        text = rewrite(decode_text(data, args.table), loaded.table, new, args.table,
                       options.replace(flash_size=None))
    # The written text must load, verify and fit, as gen will see it.
    load_table(text.encode(), args.output or args.table, options)
    print_change(loaded.table, new, options, args.table)
    if not args.dry_run:
        target = args.output or args.table
        if not args.output:  # the documented in-place edit of TABLE
            edit_in_place(target)
        write_atomic(target, text.encode("utf-8"))
        sys.stderr.write(f"partkit: wrote {target}\n")
    return 0
