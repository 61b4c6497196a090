"""Pieces every command shares: option values -> TableOptions, diagnostics -> stderr."""

from __future__ import annotations

import os
import sys

from partkit.common.errors import Diagnostic, github_annotation
from partkit.table.options import int_option, size_option, table_options, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from partkit.check.findings import Budget
    from partkit.table.options import TableOptions

__all__ = [
    "BOARD_OVERRIDES",
    "add_budget_options",
    "add_extra_subtypes",
    "add_selector",
    "add_table_arguments",
    "budgets_from_args",
    "check_input_path",
    "check_output_option",
    "chip_help",
    "emit",
    "int_option",
    "options_from_args",
    "refuse_table_options",
    "size_option",
    "table_options",
    "usage_error",
    "verdict_only",
]


_NUMBER = "0123456789abcdefABCDEFxX"


def check_output_option(value: str | None) -> None:
    """``-o 0x9000``: a number given as the output is gen's offset habit; refuse it
    rather than write a file named 0x9000."""
    if value and value[0].isdigit() and all(c in _NUMBER for c in value):
        raise usage_error(f"-o {value}: -o is the output file in partkit commands (only "
                          "'partkit gen' keeps -o for the offset)",
                          f"the table offset is --offset {value}")


def chip_help(what: str) -> str:
    """A --chip help text that lists the valid chips (argparse commands only: not gen)."""
    from partkit.common.chips import chip_names

    return f"{what} (one of: {', '.join(chip_names())})"


def check_input_path(path: str) -> None:
    """One clear error for an input path that is not a readable file (exit 2): the rule
    every input follows (:func:`partkit.common.fileio.check_input`)."""
    from partkit.common.fileio import check_input

    check_input(path)


def emit(diagnostics: Iterable[Diagnostic]) -> None:
    """Print diagnostics to stderr; as GitHub annotations too when running in Actions."""
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    for d in diagnostics:
        sys.stderr.write(d.format() + "\n")
        if github:
            sys.stderr.write(github_annotation(d) + "\n")


def add_selector(p: argparse.ArgumentParser) -> None:
    """parttool's partition selector, shared by ``partkit image`` and ``partkit device``."""
    g = p.add_argument_group("partition selector (one of)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--name", "--partition-name", "-n", help="partition name")
    x.add_argument("--type", "--partition-type", "-t", help="type keyword or number")
    x.add_argument("--boot-default", "--partition-boot-default", "-d", action="store_true",
                   help="the app the bootloader starts with blank otadata")
    g.add_argument("--subtype", "--partition-subtype", "-s", help="subtype (with --type)")


def add_info_options(p: argparse.ArgumentParser) -> None:
    """parttool's ``get_partition_info`` output options, for ``image info`` and ``device info``."""
    p.add_argument("--info", nargs="+", metavar="F",
                   help="fields: name type subtype offset size encrypted readonly "
                   "(default offset size, as parttool get_partition_info)")
    p.add_argument("--part-list", "--part_list", action="store_true",
                   help="every type/subtype match, not only the first")


def add_table_arguments(parser: argparse.ArgumentParser, *, has_output: bool = False) -> None:
    """The options that say how to read a table, shared by show, check and map.

    ``-o`` is the output in every command but gen; a command without an output
    (``has_output`` False) still takes ``-o`` so that ``-o 0x9000`` gets a clear error
    instead of a file named ``0x9000``.
    """
    from partkit.common.chips import chip_names

    where = parser.add_mutually_exclusive_group()
    where.add_argument("--chip", metavar="CHIP",
                       help="target chip; sets the bootloader offset (one of: "
                       f"{', '.join(chip_names())})")
    where.add_argument("--primary-bootloader-offset", "--bootloader-offset", metavar="N",
                       dest="bootloader_offset",
                       help="bootloader flash offset, instead of --chip")
    parser.add_argument("--offset", metavar="N",
                        help="flash offset of the partition table (default 0x8000)")
    if not has_output:
        import argparse

        parser.add_argument("-o", dest="short_o", metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--recovery-bootloader-offset", metavar="N",
                        help="recovery bootloader offset, for tables with a "
                        "'bootloader, recovery' row")
    parser.add_argument("--flash-size", metavar="SIZE",
                        help="flash size (4MB, 4M, 0x400000)")
    parser.add_argument("--disable-md5sum", action="store_true",
                        help="the binary table has no MD5 row")
    add_extra_subtypes(parser, "the table")


def add_extra_subtypes(group: argparse._ActionsContainer, follows: str | None = None,
                       nargs: str = "*") -> None:
    """``--extra-partition-subtypes``, one definition for every command (gen_esp32part's
    option; parttool's drop-in takes one or more, ``nargs="+"``). ``follows`` names the
    positional that may come after the list (it then needs ``--``)."""
    help_text = "subtype names of your own, as type,name,value (value in hex)"
    if follows is not None:
        help_text += f"; end the list with -- when {follows} follows"
    group.add_argument("--extra-partition-subtypes", nargs=nargs, default=[], metavar="E",
                       help=help_text)


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """``--warn-free``/``--fail-free``, the CI budgets of ``check`` and ``arduino check|size``
    (an ESP-IDF build's come from its Kconfig too: :mod:`partkit.cli.idf_build`)."""
    parser.add_argument("--warn-free", metavar="PCT%|BYTES",
                        help="warn when the app slot has less free space than this")
    parser.add_argument("--fail-free", metavar="PCT%|BYTES",
                        help="fail when the app slot has less free space than this")


def budgets_from_args(args: argparse.Namespace) -> tuple[Budget | None, Budget | None]:
    """The budgets of :func:`add_budget_options` (warn, fail); a warning budget below the
    failing one is refused (exit 2)."""
    from partkit.check.findings import Budget

    warn = None if args.warn_free is None else Budget.parse(args.warn_free, "--warn-free")
    fail = None if args.fail_free is None else Budget.parse(args.fail_free, "--fail-free")
    Budget.check_order(warn, fail)
    return warn, fail


# What a build folder says itself: the table options, and check's file options. Given with
# --idf-build-dir or --arduino-build-dir (but for the board overrides an Arduino build
# takes) they would be ignored, so they are refused.
_TABLE_ONLY = ("app", "type", "subtype", "bootloader", "data", "table_source", "offset",
               "chip", "bootloader_offset", "recovery_bootloader_offset", "flash_size",
               "disable_md5sum", "extra_partition_subtypes")
BOARD_OVERRIDES = ("chip", "flash_size", "bootloader_offset")  # Arduino's board menu


def refuse_table_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                         build: str, keep: tuple[str, ...] = ()) -> None:
    """A usage error for an option given with a build folder (``build``) that the
    folder answers itself, except those in ``keep``."""
    for action in parser._actions:
        if (action.dest in _TABLE_ONLY and action.dest not in keep and action.option_strings
                and getattr(args, action.dest, action.default) != action.default):
            option = max(action.option_strings, key=len)
            hint = ("the build folder names the images, the table and their offsets; "
                    "check single files with 'partkit check TABLE ...'")
            if action.dest in BOARD_OVERRIDES:
                hint = "the build's own settings (sdkconfig, flasher_args.json) are what it flashes"
            raise usage_error(f"{option} has no effect with {build}", hint)


def options_from_args(args: argparse.Namespace, *, verify: bool,
                      strict: bool = False) -> TableOptions:
    """TableOptions from the options added by :func:`add_table_arguments`."""
    check_output_option(getattr(args, "output", None))
    if getattr(args, "short_o", None) is not None:
        raise usage_error(f"-o {args.short_o}: -o is the output file in partkit commands and "
                          "this one writes none", "the table offset is --offset "
                          f"{args.short_o} (only 'partkit gen' keeps -o for --offset)")
    return table_options(
        offset=args.offset, chip=args.chip,
        primary_bootloader_offset=args.bootloader_offset,
        recovery_bootloader_offset=args.recovery_bootloader_offset,
        flash_size=None if args.flash_size is None else size_option("--flash-size",
                                                                    args.flash_size),
        md5=not args.disable_md5sum, verify=verify, strict=strict,
        extra_subtypes=args.extra_partition_subtypes)


def verdict_only(report: str) -> str:
    """A check's text report cut to its verdict (``check OK: ...``/``check FAILED: ...``)
    and its ``not checked:`` lines: ``check -q``."""
    keep = ("check OK", "check FAILED", "not checked:")
    return "".join(line for line in report.splitlines(keepends=True) if line.startswith(keep))
