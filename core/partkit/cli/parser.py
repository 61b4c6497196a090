"""The ArgumentParser every partkit command with options uses (``command_parser``): its
``--help`` layout with the exit codes, usage errors with partkit's hints, and the stand-ins
that carry the words after ``--`` through argparse's intermixed parsing.

Not on ``partkit gen``'s start-up path: gen parses its gen_esp32part command line itself.
"""

from __future__ import annotations

import argparse
import sys

from partkit.common.errors import closest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

__all__ = ["EXIT_CHECK", "EXIT_PLAIN", "EXTRA_SUBTYPES_HINT", "command_parser", "hidden",
           "shown", "swallowed"]


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
