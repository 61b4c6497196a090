"""``partkit buildsys``: the answers the CMake module asks for, as commands.

    partkit buildsys partition-info TOKEN...     parttool's get_partition_info line
    partkit buildsys bootloader-offset CHIP      the chip's ROM bootloader offset (hex)
    partkit buildsys package-dir                 where the partkit package is installed
    partkit buildsys erased-file FILE SIZE       SIZE bytes of 0xFF (an erased otadata image)

``partition-info`` takes ``key=value`` tokens (:func:`partkit.flash.partinfo.query_tokens`):
``table`` (required), ``offset``, ``bootloader_offset``, ``chip``,
``recovery_bootloader_offset``, ``extra`` (repeatable), ``name``, ``type``, ``subtype``,
``boot_default``, ``part_list``, ``info`` (repeatable). A selector that matches nothing
prints an empty line, as parttool does. Build scripts call these instead of importing
partkit's modules, so the module layout can change without breaking them.
"""

from __future__ import annotations

import argparse
import os
import sys

import partkit
from partkit.cli.common import EXIT_PLAIN, command_parser, size_option, usage_error
from partkit.common.chips import bootloader_offset, chip_names
from partkit.common.fileio import write_atomic
from partkit.flash.partinfo import query_tokens

__all__ = ["run"]

COMMANDS = {
    "partition-info": "print a partition's info: key=value TOKENs (table=FILE, name=N, ...)",
    "bootloader-offset": "print the chip's bootloader flash offset",
    "package-dir": "print the directory of the partkit package",
    "erased-file": "write FILE: SIZE bytes of 0xFF (an erased otadata image)",
}


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "partkit buildsys", "The answers the CMake module asks for, as commands:\n"
        "build scripts call these instead of importing partkit's modules.", EXIT_PLAIN)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("partition-info", help=COMMANDS["partition-info"])
    p.add_argument("tokens", nargs="+", metavar="TOKEN", help="key=value (see the module doc)")
    p = sub.add_parser("bootloader-offset", help=COMMANDS["bootloader-offset"])
    p.add_argument("chip", metavar="CHIP", help=f"one of: {', '.join(chip_names())}")
    sub.add_parser("package-dir", help=COMMANDS["package-dir"])
    p = sub.add_parser("erased-file", help=COMMANDS["erased-file"])
    p.add_argument("file", metavar="FILE", help="file to write")
    p.add_argument("size", metavar="SIZE", help="its size (0x2000, 8K)")
    return parser


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "partition-info":
        sys.stdout.write(query_tokens(args.tokens) + "\n")
    elif args.command == "bootloader-offset":
        try:
            sys.stdout.write(f"{bootloader_offset(args.chip):#x}\n")
        except KeyError:
            raise usage_error(f"unknown chip '{args.chip}'",
                              f"one of: {', '.join(chip_names())}") from None
    elif args.command == "package-dir":
        sys.stdout.write(os.path.dirname(os.path.abspath(partkit.__file__)) + "\n")
    else:
        write_atomic(args.file, b"\xff" * size_option("SIZE", args.size))
    return 0
