"""``partkit image``: parttool's operations on flash image files, plus assembly and inspection.

    partkit image info    IMAGE [selector] [--info F ...] [--part-list] [--json]
    partkit image read    IMAGE selector -o OUT
    partkit image write   IMAGE selector INPUT [--force] [-o COPY] [--sync]
    partkit image erase   IMAGE selector [--force] [-o COPY] [--sync]
    partkit image inspect DUMP [--json]
    partkit image create  IMAGE --table CSV --flash-size S [--chip C] [--bootloader BL]
                          [--app NAME=FILE ...] [--data NAME=FILE ...] [--ota-slot N]
    partkit image check    IMAGE [--chip C] [--flash-size S] [--json]
    partkit image set-boot IMAGE --slot SLOT [-o COPY] [--sync]
    partkit image otadata  IMAGE [--json]
    partkit image apply    IMAGE NEW [-o OUT] [--flash-size S] [--force]   (cli/apply.py)

This module is the table of sub-commands; each lives in its own module of this package
(info/read/write/erase in :mod:`.parts`), their shared options and answers in
:mod:`.shared`. Errors and Ctrl-C are reported by :func:`partkit.cli.main`.
"""

from __future__ import annotations

from partkit.cli import apply
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.cli.image.check import CHECK
from partkit.cli.image.create import CREATE
from partkit.cli.image.inspect import INSPECT
from partkit.cli.image.otadata import OTADATA
from partkit.cli.image.parts import ERASE, INFO, READ, WRITE
from partkit.cli.image.setboot import SET_BOOT
from partkit.cli.image.shared import reads_image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "run"]

APPLY = Subcommand("apply", apply.HELP, apply.add_image_options, reads_image(apply.run_image),
                   apply.EXIT_APPLY + "\n" + apply.EPILOG)

SUBCOMMANDS = Subcommands(
    "partkit image",
    "Read, write and erase partitions of flash image files, assemble images, and inspect raw "
    "flash dumps.",
    (INFO, READ, WRITE, ERASE, INSPECT, CREATE, CHECK, SET_BOOT, OTADATA, APPLY))


def run(argv: Sequence[str]) -> int:
    return SUBCOMMANDS.run(argv)
