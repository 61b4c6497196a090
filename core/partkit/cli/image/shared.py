"""The pieces of ``partkit image`` that its sub-command modules and ``partkit device`` share.

Option groups (the table source, the write options), loading the table, selecting
partitions, the readonly guard, and the otadata answers both commands give (the otadata
partition, the OTA slots, the slot ``--slot`` names, the states ``--state`` takes). A
module below every ``partkit image`` sub-command and :mod:`partkit.cli.device`, so none
imports another's private helpers.
"""

from __future__ import annotations

import argparse

from partkit.cli.common import (
    add_extra_subtypes,
    check_input_path,
    emit,
    table_options,
    usage_error,
)
from partkit.common.chips import chip_names
from partkit.common.errors import PartkitError, SourceLocation, closest, error
from partkit.flash import imagefile
from partkit.flash.partinfo import select as select_partitions
from partkit.flash.tablearea import read_image_table
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_DATA_OTA,
    is_ota_app,
    type_name,
)
from partkit.table.render import flags_text
from partkit.table.source import decode, open_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["STATES", "add_slot_options", "add_table_source", "add_write_options", "app_slot",
           "chip_list", "columns", "guard", "image_options", "load", "ota_apps",
           "otadata_partition", "partition_list", "read_otadata", "reads_image", "select"]

# What an update writes: 'new' (bootloaders with rollback turn it into pending_verify on the
# first start), 'undefined' (no rollback), 'valid'. pending_verify is the bootloader's own.
STATES = {"undefined": 0xFFFFFFFF, "new": 0x0, "valid": 0x2}


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


def reads_image(handler: Callable[[argparse.Namespace], int]
                ) -> Callable[[argparse.Namespace], int]:
    """``handler`` after one clear error for an IMAGE that is no readable file (a
    directory, a missing file), the rule for every sub-command that reads IMAGE."""

    def checked(args: argparse.Namespace) -> int:
        check_input_path(args.image)
        return handler(args)

    return checked


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


def partition_list(table: PartitionTable, options: TableOptions) -> str:
    """The table as ``image info`` and ``device info`` list it without a selector."""
    rows = [("Name", "Type", "SubType", "Offset", "Size", "Flags")]
    rows += [(p.name, type_name(p.type), options.subtypes.render(p.type, p.subtype),
              f"0x{p.offset:x}", f"0x{p.size:x}", flags_text(p)) for p in table]
    return columns(rows)


def add_slot_options(p: argparse.ArgumentParser) -> None:
    """``--slot`` and ``--state`` of ``image set-boot`` and ``device set-boot``."""
    p.add_argument("--slot", required=True, metavar="SLOT",
                   help="app partition to boot: a name, factory, ota_N, or the OTA index N")
    p.add_argument("--state", default="undefined", choices=tuple(STATES),
                   help="ota_state of the new record: undefined (default: no rollback "
                        "check), new (as ESP-IDF's esp_ota_set_boot_partition writes it with "
                        "rollback: the bootloader makes it pending_verify on the first "
                        "start), valid")


def guard(args: argparse.Namespace, part: Partition, verb: str) -> None:
    if part.readonly and not args.force:
        raise PartkitError(error(
            f"partition '{part.name}' is read-only; refusing to {verb} it",
            SourceLocation(args.image), "pass --force to change it anyway"))


# --- otadata: shared with partkit device ----------------------------------------------------


def otadata_partition(table: PartitionTable, where: str) -> Partition:
    """The table's otadata partition; ``where`` names the image or port for the error."""
    found = table.find(DATA, SUBTYPE_DATA_OTA)
    if not found:
        raise PartkitError(error("the table has no otadata (data, ota) partition",
                                 SourceLocation(table.path or where),
                                 "without otadata the bootloader boots the factory app, else "
                                 "ota_0"))
    return found[0]


def read_otadata(image: str, part: Partition) -> bytes:
    """The bytes of otadata ``part`` in the image file ``image``."""
    size = imagefile.image_size(image)
    if part.end > size:
        raise PartkitError(error(
            f"otadata '{part.name}' (0x{part.offset:x}..0x{part.end:x}) lies beyond the end of "
            f"the image ({size} bytes)", SourceLocation(image),
            "the image is truncated (merge-bin without --fill-flash-size?)"))
    return imagefile.read_region(image, part.offset, part.size)


def ota_apps(table: PartitionTable) -> list[Partition]:
    """The OTA app slots, ota_0 first: the order otadata's sequence numbers count in."""
    return sorted((p for p in table if is_ota_app(p.type, p.subtype)), key=lambda p: p.subtype)


def app_slot(text: str, table: PartitionTable) -> tuple[Partition, int | None]:
    """The app partition ``--slot text`` names and its OTA index (None: factory)."""
    apps = [p for p in table if p.type == APP]
    ota = ota_apps(table)
    found = [p for p in apps if p.name == text]
    if not found and text == "factory":
        found = [p for p in apps if p.subtype == SUBTYPE_APP_FACTORY]
    if not found and text.startswith("ota_") and text[4:].isdigit():
        found = [p for p in ota if p.subtype == 0x10 + int(text[4:])]
    if not found and text.isdigit():
        found = [p for p in ota if p.subtype == 0x10 + int(text)]
    if not found:
        guess = closest(text, [p.name for p in apps])
        raise usage_error(f"--slot: no app slot '{text}'",
                          (f"did you mean '{guess}'? " if guess else "") + "app slots: "
                          + (", ".join(p.name for p in apps) or "(none)"))
    part = found[0]
    if part.subtype == SUBTYPE_APP_FACTORY:
        return part, None
    if not is_ota_app(part.type, part.subtype):
        raise usage_error(f"--slot: '{part.name}' is neither the factory app nor an OTA slot",
                          "otadata selects only ota_N slots (blank otadata: factory)")
    return part, part.subtype - 0x10
