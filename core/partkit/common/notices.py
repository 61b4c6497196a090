"""Reports from deep inside an operation that are neither results nor errors.

Example: an undo journal of an interrupted write was applied, or found stale and removed.
Core code calls :func:`notify`; the CLI installs a handler that prints to stderr (every
command, so a recovery is never silent); a library user may install their own.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.common.errors import Diagnostic

__all__ = ["notify", "set_handler"]

_handlers: list[Callable[[Diagnostic], None]] = []


def set_handler(handler: Callable[[Diagnostic], None] | None) -> None:
    """Where notices go from now on (None: nowhere)."""
    _handlers[:] = [handler] if handler is not None else []


def notify(diagnostic: Diagnostic) -> None:
    for handler in _handlers:
        handler(diagnostic)
