"""``partkit new``: write a valid partition table CSV from what you want on the flash."""

from __future__ import annotations

import argparse
import shlex
import sys

from partkit import __version__
from partkit.cli.common import chip_help, emit, size_option, table_options, usage_error
from partkit.cli.parser import command_parser
from partkit.common.fileio import write_atomic
from partkit.plan.new import Request, Want, plan, render_csv
from partkit.table.codec import load_table
from partkit.table.names import BUILTIN_SUBTYPES, DATA, lookup
from partkit.table.options import FLASH_SIZES
from partkit.table.render import to_summary

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.plan.new import Want

__all__ = ["run"]

FS_SUBTYPES = {"fat": 0x81, "spiffs": 0x82, "littlefs": 0x83}

EPILOG = """\
sizes: 24K, 1M, 1.5MB, 0x6000. 'max' (apps) and 'rest' (one data partition) take what is
left; a request may use only one of them.

examples:
  partkit new --flash-size 8MB --ota 2 --fs littlefs=rest --app-size 2M -o partitions.csv
  partkit new --flash-size 4MB --factory --coredump 64K --data cfg:nvs=16K

exit status:
  0  table written
  2  bad input or usage, or a request that does not fit (the message names
     how much is missing)
"""


def _parser() -> argparse.ArgumentParser:
    p = command_parser(
        "partkit new", epilog=EPILOG,
        description="Write a partition table CSV that gen_esp32part accepts, laid out from "
                    "what you ask for: nvs, otadata when OTA, equal 64K-aligned app slots, "
                    "then your data partitions. The table summary goes to stderr.")
    p.add_argument("--flash-size", required=True, metavar="SIZE",
                   help="flash size (4MB, 8MB, 0x800000); required")
    p.add_argument("--chip", metavar="CHIP",
                   help=chip_help("chip name (checks the bootloader sits below the table)"))
    p.add_argument("--offset", metavar="N", help="partition table offset (default 0x8000)")
    apps = p.add_mutually_exclusive_group()
    apps.add_argument("--ota", type=int, metavar="N", default=0,
                      help="N equal OTA app slots ota_0..ota_N-1 (adds otadata)")
    apps.add_argument("--factory", action="store_true",
                      help="one factory app slot (the default)")
    p.add_argument("--app-size", metavar="SIZE|max",
                   help="size of each app slot, rounded up to 64K; 'max' (the default unless "
                        "a data partition takes the rest) = the largest equal slots that fit")
    p.add_argument("--nvs", metavar="SIZE",
                   help="size of the 'nvs' partition (0 = none; default: what is left below "
                        "0x10000 once otadata and phy_init have their place, at most 24K, as "
                        "in ESP-IDF's and Arduino's tables: 24K next to phy_init, 16K next "
                        "to otadata and phy_init, 20K next to otadata)")
    p.add_argument("--phy", action="store_true", help="add a 4K 'phy_init' partition")
    p.add_argument("--otadata", action="store_true",
                   help="add 'otadata' even without --ota (it is added with --ota)")
    p.add_argument("--coredump", metavar="SIZE", help="add a 'coredump' partition of SIZE")
    p.add_argument("--data", action="append", default=[], metavar="NAME:SUBTYPE=SIZE|rest",
                   help="a data partition, e.g. cfg:nvs=16K or blob:0x40=rest (repeatable)")
    p.add_argument("--fs", action="append", default=[],
                   metavar="littlefs|spiffs|fat[:NAME]=SIZE|rest",
                   help="a file-system partition, named after its format unless NAME is "
                        "given, e.g. littlefs=rest or fat:storage=1M (repeatable)")
    p.add_argument("-o", "--output", metavar="CSV",
                   help="write the CSV here (default: stdout)")
    return p


def _size_or(word: str, text: str, option: str) -> int | None:
    return None if text.strip().lower() == word else size_option(option, text)


def _data_want(text: str) -> Want:
    spec, eq, size = text.partition("=")
    name, colon, subtype_text = spec.partition(":")
    if not (eq and colon and name and subtype_text and size):
        raise usage_error(f"--data '{text}' is not NAME:SUBTYPE=SIZE",
                          "e.g. --data cfg:nvs=16K or --data blob:0x40=rest")
    try:
        subtype = lookup(subtype_text.strip(), BUILTIN_SUBTYPES.keywords(DATA))
    except ValueError:
        known = ", ".join(BUILTIN_SUBTYPES.keywords(DATA))
        raise usage_error(f"--data '{text}': unknown data subtype '{subtype_text}'",
                          f"use a number (0x40..0xfe for your own) or one of: {known}") from None
    if not 0 <= subtype <= 0xFF:
        raise usage_error(f"--data '{text}': subtype {subtype} is out of 0..0xff")
    return Want(name.strip(), subtype, _size_or("rest", size, "--data"))


def _fs_want(text: str) -> Want:
    spec, eq, size = text.partition("=")
    fmt, _, name = spec.partition(":")
    fmt = fmt.strip().lower()
    if not eq or not fmt or not size:
        raise usage_error(f"--fs '{text}' is not FORMAT[:NAME]=SIZE",
                          "FORMAT is littlefs, spiffs or fat, e.g. --fs littlefs=rest")
    if fmt not in FS_SUBTYPES:
        raise usage_error(f"--fs '{text}': unknown file system '{fmt}'",
                          "FORMAT is littlefs, spiffs or fat (--data NAME:SUBTYPE=SIZE for "
                          "any other data partition)")
    return Want(name.strip() or fmt, FS_SUBTYPES[fmt], _size_or("rest", size, "--fs"))


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)


    flash_size = size_option("--flash-size", args.flash_size)
    if f"{flash_size >> 20}MB" not in FLASH_SIZES or flash_size & 0xFFFFF:
        raise usage_error(f"--flash-size {args.flash_size}: gen_esp32part and the "
                          "bootloader header know only " + ", ".join(FLASH_SIZES),
                          "give the flash chip's size, e.g. --flash-size 4MB")
    options = table_options(offset=args.offset, chip=args.chip, flash_size=flash_size)
    if options.table_offset % 0x1000:  # its own sector; the rows after it too
        up = (options.table_offset | 0xFFF) + 1
        raise usage_error(f"--offset {args.offset}: the partition table starts on a 4K "
                          "boundary (it fills one flash sector)",
                          f"use --offset 0x{up:x} or 0x{up - 0x1000:x}")
    wants = tuple(_data_want(t) for t in args.data) + tuple(_fs_want(t) for t in args.fs)
    if args.app_size is None:
        app_size = size_option("--app-size", "1M") if any(
            w.size is None for w in wants) else None
        if app_size is not None:
            raise usage_error("--app-size is needed when a data partition takes the rest",
                              "give the app slot size, e.g. --app-size 1536K")
    else:
        app_size = _size_or("max", args.app_size, "--app-size")
    request = Request(
        flash_size=flash_size, table_offset=options.table_offset, ota=args.ota,
        app_size=app_size, otadata=args.otadata,
        nvs=None if args.nvs is None else size_option("--nvs", args.nvs),
        phy=args.phy, coredump=0 if args.coredump is None else size_option(
            "--coredump", args.coredump), data=wants)
    table = plan(request)
    command = shlex.join(["partkit", "new", *argv])
    header = (f"Generated by partkit {__version__}:\n  {command}\n"
              "Edit sizes with `partkit resize`; offsets are explicit so they stay put.")
    text = render_csv(table, options.subtypes, header)
    # Proof by the codec itself: the written CSV loads, verifies and fits the flash.
    path = args.output or "<stdout>"
    loaded = load_table(text.encode(), path, options)
    if args.output:
        write_atomic(args.output, text.encode())
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    emit(loaded.warnings)
    sys.stderr.write(to_summary(loaded.table, options))
    if args.output:
        sys.stderr.write(f"partkit: wrote {args.output}\n")
    return 0
