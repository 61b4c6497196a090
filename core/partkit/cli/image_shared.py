"""The pieces of ``partkit image`` that its command modules and ``partkit device`` share.

Option groups (the table source, the write options), the command set with one parser per
command, argument parsing, loading the table and selecting partitions. A module below
:mod:`partkit.cli.image` and :mod:`partkit.cli.image_check`, so neither imports the other's
private helpers.
"""

from __future__ import annotations

import argparse

from partkit.cli.common import (
    EXIT_CHECK,
    add_extra_subtypes,
    command_parser,
    emit,
    table_options,
    usage_error,
)
from partkit.cli.dispatch import parse_args
from partkit.common.chips import chip_names
from partkit.common.errors import PartkitError, SourceLocation, closest, error
from partkit.flash.partinfo import select as select_partitions
from partkit.flash.tablearea import read_image_table
from partkit.table.source import decode, open_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["DESCRIPTION", "Commands", "add_table_source", "add_write_options", "chip_list",
           "columns", "guard", "image_options", "load", "parse_args", "select"]


def add_table_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("partition table")
    g.add_argument("--table", "--partition-table-file", "-f", metavar="FILE",
                   help="read the table from this CSV or binary instead of the image")
    g.add_argument("--offset", "--partition-table-offset", metavar="N",
                   help="table offset in the image (default 0x8000)")
    g.add_argument("--chip", metavar="CHIP",
                   help="only to read a --table CSV with 'bootloader' rows: the chip sets "
                   f"their offset ({chip_list()})")
    add_extra_subtypes(g, "IMAGE")


def chip_list() -> str:
    return ", ".join(chip_names())


def add_write_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", "--ignore-readonly", action="store_true",
                   help="allow changing a partition flagged readonly")
    p.add_argument("-o", "--output", metavar="COPY",
                   help="write the result to COPY and leave IMAGE untouched")
    p.add_argument("--sync", action="store_true",
                   help="flush to the device at each step (survives power loss, ~2x slower)")


DESCRIPTION = ("Read, write and erase partitions of flash image files, assemble images, and "
               "inspect raw flash dumps.")


class Commands:
    """One independent parser per command, so options and files may come in any order."""

    def __init__(self) -> None:
        self.parsers: dict[str, argparse.ArgumentParser] = {}
        self.helps: dict[str, str] = {}

    def add_parser(self, name: str, help: str, exit_codes: str = EXIT_CHECK,
                   ) -> argparse.ArgumentParser:
        p = command_parser(f"partkit image {name}", help, exit_codes)
        self.parsers[name] = p
        self.helps[name] = help
        return p

    def usage(self) -> str:
        lines = ["usage: partkit image COMMAND [options]", "", DESCRIPTION, "", "commands:"]
        lines += [f"  {n:<8} {h}" for n, h in self.helps.items()]
        return "\n".join(lines) + "\n"


def image_options(args: argparse.Namespace) -> TableOptions:
    return table_options(offset=args.offset, chip=args.chip, verify=False,
                         extra_subtypes=args.extra_partition_subtypes)


def load(args: argparse.Namespace) -> tuple[PartitionTable, TableOptions]:
    options = image_options(args)
    if args.table:
        found = open_table(args.table, options)
    else:
        found = decode(read_image_table(args.image, options, "--offset N or --table FILE"),
                       options)
    emit(found.warnings)
    return found.table, options


def select(args: argparse.Namespace, table: PartitionTable, options: TableOptions, *,
            single: bool) -> list[Partition]:
    if args.name is None and args.type is None and not args.boot_default:
        raise usage_error("no partition selected",
                          "use --name NAME, --type T --subtype S, or --boot-default")
    if args.subtype is not None and args.type is None:
        raise usage_error("--subtype needs --type")
    if single and args.type is not None and args.subtype is None:
        raise usage_error("--subtype is required with --type",
                          "e.g. --type data --subtype nvs (as parttool requires)")
    part_list = bool(getattr(args, "part_list", False)) or (args.type is not None
                                                              and args.subtype is None)
    found = list(select_partitions(table, name=args.name, type=args.type, subtype=args.subtype,
                        boot_default=args.boot_default, part_list=part_list,
                        subtypes=options.subtypes))
    if not found:
        if args.name is not None:
            guess = closest(args.name, [p.name for p in table])
            what = f"no partition named '{args.name}'"
            hint = (f"did you mean '{guess}'? " if guess else "") + "partitions: " + (
                ", ".join(p.name for p in table) or "(none)")
        elif args.boot_default:
            what, hint = "no boot-default app (no factory or ota_N app partition)", None
        else:
            what = f"no partition of type '{args.type}'" + (
                f" subtype '{args.subtype}'" if args.subtype is not None else "")
            hint = "partitions: " + (", ".join(p.name for p in table) or "(none)")
        raise PartkitError(error(what, SourceLocation(table.path or args.image), hint))
    return found[:1] if single else found


def columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n"
                   for r in rows)


def guard(args: argparse.Namespace, part: Partition, verb: str) -> None:
    if part.readonly and not args.force:
        raise PartkitError(error(
            f"partition '{part.name}' is read-only; refusing to {verb} it",
            SourceLocation(args.image), "pass --force to change it anyway"))
