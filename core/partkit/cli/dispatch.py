"""The one way a command with sub-commands (``partkit image info``, ``partkit device read``,
``partkit at gen``...) finds and runs them.

A command declares its sub-commands as a tuple of :class:`Subcommand` values (name, summary,
the options it adds, the handler) and hands ``argv`` to :meth:`Subcommands.run`. Each
sub-command has its own parser, parsed intermixed, so options and files come in any order;
with ``leading`` (the options taking a value that may come before the word) the
sub-command word may follow options (``partkit device --port X read ...``). Errors and
Ctrl-C are not handled here: :mod:`partkit.cli.reporting` does that once for all commands.

The top level (``partkit gen``, ``partkit image``, ...) is a table of modules in
:mod:`partkit.cli` instead, imported on use: ``gen`` must start without argparse.
``partkit parttool`` keeps argparse's sub-parsers because it copies parttool.py's command
line, whose global options must precede the operation.
"""

from __future__ import annotations

import sys

from partkit.cli.parser import EXIT_CHECK, command_parser, hidden
from partkit.common.errors import closest
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

__all__ = ["LazySubcommand", "Subcommand", "Subcommands", "parse_args"]


class Subcommand(Record):
    """One sub-command: its word, one-line summary, options and handler."""

    __slots__ = ("add_options", "description", "exit_codes", "handler", "name", "summary")
    name: str
    summary: str
    add_options: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    exit_codes: str
    description: str | None  # --help's text (default: the summary)

    def __init__(self, name: str, summary: str,
                 add_options: Callable[[argparse.ArgumentParser], None],
                 handler: Callable[[argparse.Namespace], int], exit_codes: str = EXIT_CHECK,
                 description: str | None = None) -> None:
        self._init(name=name, summary=summary, add_options=add_options,
                         handler=handler, exit_codes=exit_codes, description=description)


class LazySubcommand(Record):
    """A sub-command whose module is imported only when it runs (as :mod:`partkit.cli`
    imports a command's module): its word, its summary for the usage text, and
    ``"module:NAME"``, the :class:`Subcommand` value it is. So ``partkit device read``
    does not load what ``partkit device apply`` needs (``diff``)."""

    __slots__ = ("name", "summary", "target")
    name: str
    summary: str
    target: str

    def __init__(self, name: str, summary: str, target: str) -> None:
        self._init(name=name, summary=summary, target=target)

    def load(self) -> Subcommand:
        module, _, attr = self.target.partition(":")
        __import__(module)  # not importlib: it pulls in warnings (start-up time)
        command = getattr(sys.modules[module], attr)
        # the table's word and summary are the value's own (tests load every entry)
        assert isinstance(command, Subcommand) and (command.name, command.summary) == (
            self.name, self.summary), self.target
        return command


class Subcommands:
    """The sub-commands of one partkit command, with its usage text."""

    def __init__(self, prog: str, description: str,
                 commands: Sequence[Subcommand | LazySubcommand], *,
                 usage: str | None = None, epilog: str = "",
                 leading: frozenset[str] | None = None) -> None:
        self.prog = prog
        self.description = description
        self.commands = {c.name: c for c in commands}
        self.usage_line = usage or f"usage: {prog} COMMAND [options]"
        self.epilog = epilog
        self.leading = leading  # valued options allowed before the word; None: word first

    def command(self, name: str) -> Subcommand:
        """The sub-command ``name`` (its module imported now when it is lazy)."""
        entry = self.commands[name]
        return entry.load() if isinstance(entry, LazySubcommand) else entry

    def parser(self, name: str) -> argparse.ArgumentParser:
        command = self.command(name)
        p = command_parser(f"{self.prog} {name}", command.description or command.summary,
                           command.exit_codes)
        command.add_options(p)
        return p

    def usage(self) -> str:
        width = max(len(n) for n in self.commands) + 1
        lines = [self.usage_line, "", self.description, "", "commands:"]
        lines += [f"  {n:<{width}} {c.summary}" for n, c in self.commands.items()]
        lines += ["", f"run '{self.prog} COMMAND --help' for its options and exit codes."]
        if self.epilog:
            lines += ["", self.epilog.rstrip("\n")]
        return "\n".join(lines) + "\n"

    def run(self, argv: Sequence[str]) -> int:
        """Parse ``argv`` for the sub-command it names and run its handler."""
        argv = list(argv)
        if not argv or argv[0] in ("-h", "--help"):
            (sys.stdout if argv else sys.stderr).write(self.usage())
            return 0 if argv else 2
        name, rest = self._split(argv)
        if name is None and self._asks_help(argv):  # after leading options, no word
            sys.stdout.write(self.usage())
            return 0
        if name is None:
            sys.stderr.write(f"{self.prog}: error: {self._no_command(argv)}\n{self.usage()}")
            return 2
        args = parse_args(self.parser(name), rest)
        args.command = name
        return self.command(name).handler(args)

    def _no_command(self, argv: list[str]) -> str:
        """What is wrong when no sub-command word was found, with a did-you-mean."""
        words = self._words(argv)
        if self.leading is None:  # the word comes first or not at all
            words = words[:1] if words and words[0] == argv[0] else []
        for word in words:  # options may come first: any word that is no value may be it
            guess = closest(word, self.commands)
            if guess:
                return f"unknown command '{word}' (did you mean '{guess}'?)"
        if words and words[0] == argv[0]:
            return f"unknown command '{words[0]}'"
        return "no command given"

    def _asks_help(self, argv: list[str]) -> bool:
        """Whether ``-h``/``--help`` is among the options before where the word would be."""
        i = 0
        while i < len(argv) and argv[i] != "--":
            if argv[i] in ("-h", "--help"):
                return True
            i += 2 if self.leading is not None and argv[i] in self.leading else 1
        return False

    def _words(self, argv: list[str]) -> list[str]:
        """The words of ``argv`` that are neither options nor a leading option's value."""
        out: list[str] = []
        i = 0
        while i < len(argv):
            word = argv[i]
            if word == "--":
                break
            if not word.startswith("-"):
                out.append(word)
            i += 2 if self.leading is not None and word in self.leading else 1
        return out

    def _split(self, argv: list[str]) -> tuple[str | None, list[str]]:
        """The sub-command word and the other arguments."""
        if self.leading is None:
            return (argv[0], argv[1:]) if argv[0] in self.commands else (None, argv)
        i = 0
        while i < len(argv):
            word = argv[i]
            if word in self.commands:
                return word, argv[:i] + argv[i + 1:]
            if word == "--":
                break
            i += 2 if word in self.leading else 1
        return None, argv


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_intermixed_args, except that everything after ``--`` is positional.

    argparse's intermixed parsing drops positionals after ``--`` (``image info -- -a.bin``
    fails): they are swapped for stand-ins that cannot look like options (``hidden``; an
    error message shows the words as given), then back.
    It also keeps its formatted usage as a %-template, so a ``%`` in a metavar
    (``--warn-free PCT%|BYTES``) crashed ``--help`` and every usage error: the usage is
    fixed here first, its ``%`` escaped.
    """
    if parser.usage is None:
        parser.usage = parser.format_usage()[len("usage: "):].rstrip("\n").replace("%", "%%")
    if "--" not in argv:
        return parser.parse_intermixed_args(argv)
    cut = argv.index("--")
    after = argv[cut + 1:]
    marks = {hidden(i, value): value for i, value in enumerate(after)}
    # '--' stays: it also ends an option's list (--extra-partition-subtypes A -- FILE)
    args = parser.parse_intermixed_args([*argv[:cut], "--", *marks])
    for key, value in vars(args).items():
        if isinstance(value, str) and value in marks:
            setattr(args, key, marks[value])
        elif isinstance(value, list):
            setattr(args, key, [marks.get(v, v) if isinstance(v, str) else v for v in value])
    return args
