"""One immutability idiom for every record: slots, set once in ``__init__``, never after.

``dataclasses`` would do the same but costs start-up time on every ``partkit`` run, and the
records are few and small; this base gives them one ``__setattr__`` and one ``replace``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    _R = TypeVar("_R", bound="Record")

__all__ = ["Record"]

_set = object.__setattr__  # bound once: records are built by the thousand on big tables


class Record:
    """Base of partkit's immutable records.

    Subclasses declare ``__slots__`` and assign their fields once through :meth:`_init`.
    :meth:`replace` works when ``__init__`` takes every slot as a keyword argument.
    """

    __slots__ = ()

    def _init(self, **fields: object) -> None:
        for name, value in fields.items():
            _set(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def replace(self: _R, **changes: object) -> _R:
        """A copy with some fields changed."""
        slots: tuple[str, ...] = type(self).__slots__
        fields: dict[str, object] = {name: getattr(self, name) for name in slots}
        fields.update(changes)
        return type(self)(**fields)
