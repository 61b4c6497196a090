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

from partkit.cli.dispatch import LazySubcommand, Subcommands

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "run"]


# Each sub-command's module is imported when it runs (create loads the assembly and ESP-IDF
# build readers, apply partkit diff); the summaries are the Subcommand values' own.
SUBCOMMANDS = Subcommands(
    "partkit image",
    "Read, write and erase partitions of flash image files, assemble images, and inspect raw "
    "flash dumps.",
    (LazySubcommand("info", "list partitions, or fields of the selected one",
                    "partkit.cli.image.parts:INFO"),
     LazySubcommand("read", "copy a partition's bytes to a file", "partkit.cli.image.parts:READ"),
     LazySubcommand("write", "write a file into a partition (rest becomes 0xFF)",
                    "partkit.cli.image.parts:WRITE"),
     LazySubcommand("erase", "set a partition to 0xFF", "partkit.cli.image.parts:ERASE"),
     LazySubcommand("inspect", "find the table in a raw dump and tell what each partition "
                    "holds", "partkit.cli.image.inspect:INSPECT"),
     LazySubcommand("create", "assemble a full flash image (+ flash_args)",
                    "partkit.cli.image.create:CREATE"),
     LazySubcommand("check", "pre-flight check of a whole flash image before it is flashed",
                    "partkit.cli.image.check:CHECK"),
     LazySubcommand("set-boot", "write otadata selecting an app slot (crash-safe)",
                    "partkit.cli.image.setboot:SET_BOOT"),
     LazySubcommand("otadata", "decode both otadata sectors and tell which app boots",
                    "partkit.cli.image.otadata:OTADATA"),
     LazySubcommand("apply", "change the table to NEW by running partkit diff's migration "
                    "plan", "partkit.cli.apply:IMAGE_APPLY")))


def run(argv: Sequence[str]) -> int:
    return SUBCOMMANDS.run(argv)
