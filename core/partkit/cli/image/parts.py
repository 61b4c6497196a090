"""``partkit image info | read | write | erase``: parttool's partition operations on a flash
image file (the work is :mod:`partkit.flash.imagefile`'s: locked, journalled, verified).

Selectors follow parttool: ``--name/-n``, ``--type/-t`` with ``--subtype/-s``, or
``--boot-default/-d``. The table is read from the image at ``--offset`` (default 0x8000),
or from ``--table FILE`` (CSV or binary).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from partkit.cli.common import add_info_options, add_selector, emit, usage_error
from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import (
    add_table_source,
    add_write_options,
    guard,
    load,
    partition_list,
    reads_image,
    select,
)
from partkit.cli.parser import EXIT_PLAIN
from partkit.common.errors import CheckFailed, SourceLocation, error
from partkit.data.check import contents_warning
from partkit.flash import imagefile
from partkit.flash.partinfo import format_info
from partkit.table.render import partition_json, to_json

__all__ = ["ERASE", "INFO", "READ", "WRITE"]


def _info_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="flash image file (e.g. a flash dump)")
    add_selector(p)
    add_info_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_table_source(p)


def _read_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="flash image file to read from")
    add_selector(p)
    p.add_argument("output_pos", nargs="?", metavar="OUTPUT",
                   help="file to write the partition's bytes to (or -o OUTPUT)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="file to write the partition's bytes to (or OUTPUT)")
    add_table_source(p)


def _write_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    p.add_argument("input", nargs="?", metavar="INPUT", help="file with the data to write")
    p.add_argument("--input", dest="input_opt", metavar="FILE", help=argparse.SUPPRESS)
    add_selector(p)
    add_write_options(p)
    add_table_source(p)


def _erase_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    add_selector(p)
    add_write_options(p)
    add_table_source(p)


def _info(args: argparse.Namespace) -> int:
    table, options = load(args)
    if args.name is None and args.type is None and not args.boot_default:
        chosen = list(table)
        if not args.info:
            if args.json:
                sys.stdout.write(json.dumps(to_json(table, options), indent=2) + "\n")
                return 0
            sys.stdout.write(partition_list(table, options))
            return 0
    else:
        chosen = select(args, table, options, single=False)
    fields = args.info or ["offset", "size"]
    if args.json:
        sys.stdout.write(json.dumps([partition_json(p, options) for p in chosen], indent=2)
                         + "\n")
        return 0
    sys.stdout.write(format_info(chosen, fields) + "\n")
    return 0


def _read(args: argparse.Namespace) -> int:
    if args.output is not None and args.output_pos is not None:
        raise usage_error("give the output once: OUTPUT or -o OUTPUT")
    args.output = args.output or args.output_pos
    if args.output is None:
        raise usage_error("no output file", "partkit image read IMAGE -n NAME OUTPUT "
                          "(or -o OUTPUT)")
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    imagefile.read_partition(args.image, part, args.output)
    sys.stderr.write(f"Read partition '{part.name}' (0x{part.size:x} bytes at 0x{part.offset:x}) "
                     f"to '{args.output}'\n")
    return 0


def _write(args: argparse.Namespace) -> int:
    source = args.input or args.input_opt
    if source is None:
        raise usage_error("no input file", "usage: partkit image write IMAGE -n NAME FILE")
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    guard(args, part, "write")
    size = os.path.getsize(source) if os.path.isfile(source) else None
    if size is not None and size > part.size:
        raise CheckFailed(error(
            f"{size} bytes (0x{size:x}) do not fit partition '{part.name}' of {part.size} bytes "
            f"(0x{part.size:x}): {size - part.size} bytes too many", SourceLocation(source),
            "use a smaller file or enlarge the partition; the image was not changed"))
    mismatch = contents_warning(source, part, table)
    if mismatch is not None:
        emit([mismatch])
    imagefile.write_partition(args.image, part, source, output=args.output, sync=args.sync)
    target = args.output or args.image
    sys.stderr.write(f"Wrote '{source}' ({size} bytes) to partition '{part.name}' at "
                     f"0x{part.offset:x} of '{target}'; verified"
                     + (f", 0x{part.size - (size or 0):x} bytes after it set to 0xFF"
                        if size is not None and size < part.size else "") + "\n")
    return 0


def _erase(args: argparse.Namespace) -> int:
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    guard(args, part, "erase")
    imagefile.erase_partition(args.image, part, output=args.output, sync=args.sync)
    sys.stderr.write(f"Erased partition '{part.name}' at 0x{part.offset:x} of "
                     f"'{args.output or args.image}'\n")
    return 0


INFO = Subcommand("info", "list partitions, or fields of the selected one", _info_options,
                  reads_image(_info), EXIT_PLAIN)
READ = Subcommand("read", "copy a partition's bytes to a file", _read_options,
                  reads_image(_read), EXIT_PLAIN)
WRITE = Subcommand("write", "write a file into a partition (rest becomes 0xFF)", _write_options,
                   reads_image(_write))
ERASE = Subcommand("erase", "set a partition to 0xFF", _erase_options, reads_image(_erase),
                   EXIT_PLAIN)
