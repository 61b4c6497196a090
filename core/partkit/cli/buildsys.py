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
from partkit.cli.common import size_option, usage_error
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.cli.parser import EXIT_PLAIN
from partkit.common.chips import bootloader_offset, chip_names
from partkit.common.fileio import write_atomic
from partkit.flash.partinfo import query_tokens

__all__ = ["run"]

def _partition_info(args: argparse.Namespace) -> int:
    sys.stdout.write(query_tokens(args.tokens) + "\n")
    return 0


def _bootloader_offset(args: argparse.Namespace) -> int:
    try:
        offset = bootloader_offset(args.chip)
    except KeyError:
        raise usage_error(f"unknown chip '{args.chip}'",
                          f"one of: {', '.join(chip_names())}") from None
    sys.stdout.write(f"{offset:#x}\n")
    return 0


def _package_dir(args: argparse.Namespace) -> int:
    sys.stdout.write(os.path.dirname(os.path.abspath(partkit.__file__)) + "\n")
    return 0


def _erased_file(args: argparse.Namespace) -> int:
    write_atomic(args.file, b"\xff" * size_option("SIZE", args.size))
    return 0


def _no_options(p: argparse.ArgumentParser) -> None:
    pass


def _tokens(p: argparse.ArgumentParser) -> None:
    p.add_argument("tokens", nargs="+", metavar="TOKEN", help="key=value (see the module doc)")


def _chip(p: argparse.ArgumentParser) -> None:
    p.add_argument("chip", metavar="CHIP", help=f"one of: {', '.join(chip_names())}")


def _file_and_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="file to write")
    p.add_argument("size", metavar="SIZE", help="its size (0x2000, 8K)")


COMMANDS = (
    Subcommand("partition-info", "print a partition's info: key=value TOKENs (table=FILE, "
               "name=N, ...)", _tokens, _partition_info, EXIT_PLAIN),
    Subcommand("bootloader-offset", "print the chip's bootloader flash offset", _chip,
               _bootloader_offset, EXIT_PLAIN),
    Subcommand("package-dir", "print the directory of the partkit package", _no_options,
               _package_dir, EXIT_PLAIN),
    Subcommand("erased-file", "write FILE: SIZE bytes of 0xFF (an erased otadata image)",
               _file_and_size, _erased_file, EXIT_PLAIN),
)


def run(argv: list[str]) -> int:
    return Subcommands(
        "partkit buildsys", "The answers the CMake module asks for, as commands:\n"
        "build scripts call these instead of importing partkit's modules.", COMMANDS,
        epilog=EXIT_PLAIN).run(argv)
