"""Pieces every command shares: option values -> TableOptions, diagnostics -> stderr."""

from __future__ import annotations

import os
import sys

from partkit.common.errors import Diagnostic, github_annotation
from partkit.table.options import int_option, size_option, table_options, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence
    from typing import NoReturn

    from partkit.check.findings import Budget
    from partkit.table.options import TableOptions

__all__ = [
    "BOARD_OVERRIDES",
    "EXIT_CHECK",
    "EXIT_PLAIN",
    "EXTRA_SUBTYPES_HINT",
    "add_budget_options",
    "add_extra_subtypes",
    "add_selector",
    "add_table_arguments",
    "budgets_from_args",
    "check_input_path",
    "check_output_option",
    "chip_help",
    "command_parser",
    "emit",
    "hidden",
    "int_option",
    "options_from_args",
    "refuse_table_options",
    "shown",
    "size_option",
    "swallowed",
    "table_options",
    "usage_error",
    "verdict_only",
]


# Exit-status epilogs for --help: every command lists what its codes mean.
EXIT_PLAIN = """\
exit status:
  0  success (warnings may have been printed)
  2  bad input or usage: an unreadable file, an invalid table or option
"""
EXIT_CHECK = """\
exit status:
  0  success: every check passed (warnings may have been printed)
  1  a check failed (e.g. something does not fit)
  2  bad input or usage: an unreadable file, an invalid table or option
"""

EXTRA_SUBTYPES_HINT = (
    "--extra-partition-subtypes takes every word after it up to the next option, so it took "
    "your input file too; end the list with --, e.g. --extra-partition-subtypes "
    "data,my_sub,0x40 -- partitions.csv")


def command_parser(prog: str, description: str, epilog: str = EXIT_CHECK,
                   ) -> argparse.ArgumentParser:
    """An ArgumentParser in the layout every partkit command shares: description and
    epilog kept as written, exit codes in the epilog, usage errors with partkit's hints."""
    import argparse

    class CommandParser(argparse.ArgumentParser):
        argv: tuple[str, ...] = ()
        intermixed = False
        required: tuple[argparse.Action, ...] = ()  # while parse_known_intermixed_args runs
        namespace = argparse.Namespace()

        def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                             namespace: argparse.Namespace | None = None,
                             ) -> tuple[argparse.Namespace, list[str]]:
            if not self.intermixed:  # its second pass sees the positionals only
                self.argv = tuple(sys.argv[1:] if args is None else args)
            return super().parse_known_args(args, namespace)

        def parse_known_intermixed_args(  # type: ignore[override]
                self, args: Sequence[str] | None = None,
                namespace: argparse.Namespace | None = None,
        ) -> tuple[argparse.Namespace, list[str]]:
            self.argv = tuple(sys.argv[1:] if args is None else args)
            # argparse checks the required options in its first pass, the positionals in
            # its second: one message names them all, as parse_args does
            self.intermixed = True
            self.namespace = argparse.Namespace() if namespace is None else namespace
            self.required = tuple(a for a in self._actions if a.option_strings and a.required)
            for action in self.required:
                action.required = False
            try:
                result = super().parse_known_intermixed_args(args, self.namespace)
                if self._unseen():
                    self.error(_REQUIRED)
                return result
            finally:
                for action in self.required:
                    action.required = True
                self.required = ()
                self.intermixed = False

        def _unseen(self) -> list[argparse.Action]:
            """The required options the first pass did not see (their default is left)."""
            return [a for a in self.required
                    if getattr(self.namespace, a.dest, a.default) is a.default]

        def error(self, message: str) -> NoReturn:
            message = shown(message)  # the words after '--' as given, not their stand-ins
            if message.startswith(_REQUIRED) and self.required:
                names = [n for n in message[len(_REQUIRED):].split(", ") if n]
                names += ["/".join(a.option_strings) for a in self._unseen()]  # argparse's way
                message = _REQUIRED + ", ".join(names)
            hint = EXTRA_SUBTYPES_HINT if swallowed(self.argv) else self._hint(message)
            self.print_usage(sys.stderr)
            self.exit(2, f"{self.prog}: error: {message}\n  hint: {hint}\n")

        def _hint(self, message: str) -> str:
            """A nearby option for a mistyped one; else where the options are listed."""
            from partkit.common.errors import closest

            known = [o for action in self._actions for o in action.option_strings]
            if message.startswith("unrecognized arguments:"):
                for word in message.split(":", 1)[1].split():
                    guess = closest(word.split("=", 1)[0], known) if word.startswith(
                        "-") else None
                    if guess:
                        return f"did you mean {guess}? '{self.prog} --help' lists every option"
            return f"'{self.prog} --help' lists every option and argument"

    return CommandParser(prog=prog, description=description, epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)


_REQUIRED = "the following arguments are required: "  # argparse's text


def hidden(index: int, word: str) -> str:
    """The stand-in for ``word``, the ``index``-th after ``--``, that argparse parses as a
    positional (:func:`partkit.cli.dispatch.parse_args`): it cannot look like an option,
    and :func:`shown` turns it back into the word in a message."""
    return f"\0{index}\0{word}"


def shown(text: str) -> str:
    """``text`` with every :func:`hidden` stand-in replaced by its word."""
    parts = text.split("\0")  # text, index, word + text, index, word + text, ...
    return parts[0] + "".join(parts[2::2])


def swallowed(argv: Sequence[str]) -> list[str]:
    """Words that ``--extra-partition-subtypes`` took although they are no type,name,value
    (usually the input file, when the list was not ended with ``--``)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg != "--extra-partition-subtypes":
            continue
        for word in argv[i + 1:]:
            if word.startswith(("-", "\0")):  # an option, or a word after '--': list ended
                break
            if word.count(",") != 2:
                out.append(word)
    return out


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
