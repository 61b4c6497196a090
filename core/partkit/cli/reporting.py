"""How a command's failure reaches the user: the one place errors and Ctrl-C are reported.

:func:`partkit.cli.main` catches every :class:`~partkit.common.errors.PartkitError` and
every ``KeyboardInterrupt`` of every command and reports them here. A command that reports
differently says so as a value before it works (:func:`set_reporting`): ``parttool -q``
prints nothing, ``at --json`` and ``arduino size`` answer in JSON, and a device command makes
no claim about its outputs when Ctrl-C came outside a flash write (the write itself raises
``KeyboardInterrupt(state)`` naming what may have changed).

Imports nothing heavy: ``partkit gen`` loads it on its start-up path.
"""

from __future__ import annotations

from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.common.errors import Diagnostic, PartkitError

__all__ = ["OUTPUTS_WHOLE", "Reporting", "interrupted_line", "report", "set_reporting"]

# what an interrupted command's files are in, unless the operation said otherwise: every
# output is written to a temporary name and renamed (partkit.common.fileio)
OUTPUTS_WHOLE = "outputs are only replaced whole: each is complete or as it was"


class Reporting(Record):
    """How the running command's errors and interruptions are reported (one per command).

    ``quiet``: exit code only (parttool's ``-q``). ``as_json``: the diagnostics rendered
    as the command's JSON answer on stdout, then ``json_exit`` (None: the error's own code)
    as the exit code; the diagnostics still go to stderr unless ``json_exit`` is 0 (a tool
    that reads only the JSON of an exit 0). ``interrupted``: the state line for a Ctrl-C
    that carries none (None: no claim).
    """

    __slots__ = ("as_json", "interrupted", "json_exit", "quiet")
    quiet: bool
    as_json: Callable[[tuple[Diagnostic, ...]], str] | None
    json_exit: int | None
    interrupted: str | None

    def __init__(self, *, quiet: bool = False,
                 as_json: Callable[[tuple[Diagnostic, ...]], str] | None = None,
                 json_exit: int | None = None,
                 interrupted: str | None = OUTPUTS_WHOLE) -> None:
        self._init(quiet=quiet, as_json=as_json, json_exit=json_exit, interrupted=interrupted)


_current = [Reporting()]


def set_reporting(reporting: Reporting) -> None:
    """Declare how the running command reports (call before the work that may fail)."""
    _current[0] = reporting


def reset() -> None:
    _current[0] = Reporting()


def report(exc: PartkitError, write_out: Callable[[str], object],
           emit: Callable[[tuple[Diagnostic, ...]], None]) -> int:
    """Report ``exc`` as the running command declared; return its exit code."""
    how = _current[0]
    if how.quiet:
        return exc.exit_code
    if how.as_json is not None:
        write_out(how.as_json(exc.diagnostics) + "\n")
        if how.json_exit == 0:
            return 0
    emit(exc.diagnostics)
    return exc.exit_code if how.json_exit is None else how.json_exit


def interrupted_line(exc: KeyboardInterrupt) -> str | None:
    """The line a Ctrl-C prints: the state the interrupted operation named, else the
    command's default; None for a quiet command."""
    how = _current[0]
    if how.quiet:
        return None
    state = str(exc.args[0]) if exc.args else how.interrupted
    return "partkit: interrupted" + (f"; {state}" if state else "")
