"""``partkit diff OLD NEW``: changes, OTA-safety verdict and migration plan.

Exit codes: 0 the update is safe under the rules, 1 a rule is broken, 2 bad input
(including a NEW table that gen would reject, with its diagnostics).
"""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli.common import (
    add_extra_subtypes,
    chip_help,
    emit,
    size_option,
    table_options,
    usage_error,
)
from partkit.diff import DiffOptions, diff_tables, load_side, to_json, to_text
from partkit.flash.appimage import read_image_file
from partkit.table.options import int_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.options import TableOptions

__all__ = ["run"]

EPILOG = """\
OLD and NEW may each be a CSV, a binary table, a flash image/dump (the table is read at
--offset) or a connected chip: port:/dev/ttyUSB0 or socket://host:port (partkit[device]).
Rules, plan format and JSON schema: docs/diff.md.

exit status:
  0  the update is safe under every rule
  1  a rule is broken (each is listed with the partitions involved and why it matters)
  2  bad input: unreadable file, invalid NEW table (gen's diagnostics), unknown name
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partkit diff", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare the table on the devices (OLD) with a new one (NEW): what "
        "changes, whether devices in the field survive the change, and the migration plan.")
    p.add_argument("old", metavar="OLD", help="table on the devices: CSV, binary, flash image, "
                   "or a connected chip (port:/dev/ttyUSB0, socket://host:port; needs "
                   "partkit[device])")
    p.add_argument("new", metavar="NEW", help="table after the update: CSV, binary or flash image")
    p.add_argument("--running", action="append", metavar="SLOT",
                   help="app slot the devices run from (name, factory/ota_N or its offset; "
                   "repeatable); default: read from OLD's otadata when OLD is an image or a "
                   "chip, else every app slot counts as possibly running")
    p.add_argument("--app", metavar="APP.bin",
                   help="the app image the devices run after the update (must fit its slot)")
    p.add_argument("--erase", action="extend", nargs="+", default=[], metavar="NAME",
                   help="partitions the update erases or migrates on purpose (put OLD and NEW "
                   "before this option)")
    p.add_argument("--flash-size", metavar="S",
                   help="flash size of the devices (4MB, 0x400000) when OLD has no bootloader "
                   "header saying it; default: a chip's flash, or a full dump's length")
    p.add_argument("--chip", metavar="CHIP",
                   help=chip_help("chip name; sets the bootloader offset for NEW's checks"))
    p.add_argument("--secure", choices=("v1", "v2"),
                   help="Secure Boot version: app slots must be aligned for it")
    p.add_argument("--offset", metavar="N", help="table offset of both sides (default 0x8000)")
    p.add_argument("--old-offset", metavar="N", help="table offset of OLD (default --offset)")
    p.add_argument("--new-offset", metavar="N", help="table offset of NEW (default --offset)")
    p.add_argument("--disable-md5sum", action="store_true",
                   help="CSV sides are encoded without the MD5 row (binary sides: as found)")
    add_extra_subtypes(p, "OLD or NEW")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    base = table_options(offset=args.offset, chip=args.chip, md5=not args.disable_md5sum,
                         verify=False, extra_subtypes=args.extra_partition_subtypes)
    flash_size = None if args.flash_size is None else size_option("--flash-size",
                                                                  args.flash_size)
    if args.old == args.new == "-":  # the second read would see an empty stdin
        raise usage_error("OLD and NEW are both '-': standard input holds one table",
                          "give one of them as a file")
    old = load_side(args.old, _side_options(base, args.old_offset, "--old-offset"))
    new = load_side(args.new, _side_options(base, args.new_offset, "--new-offset"))
    app = None
    if args.app is not None:
        app = read_image_file(args.app)
        if args.chip and app.chip and app.chip != base.chip:
            raise usage_error(f"--app: {args.app} is an image for {app.chip}, not "
                              f"{base.chip}", "build the app for the devices' chip")
        emit(app.warnings)
    report = diff_tables(old, new, DiffOptions(
        running=None if args.running is None else tuple(args.running),
        erase=tuple(args.erase), app=app, flash_size=flash_size, secure=args.secure,
        table=base))
    emit(report.warnings)
    if args.json:
        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(to_text(report))
    return report.exit_code


def _side_options(base: TableOptions, offset: str | None, option: str) -> TableOptions:
    return base if offset is None else base.replace(table_offset=int_option(option, offset))
