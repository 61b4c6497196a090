"""What a diff rule or the planner may look at: :class:`DiffContext`.

A module of its own so the rules (:mod:`partkit.diff.rules`), the planner and the otadata
switch (:mod:`partkit.diff.otaswitch`) share it without importing each other.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.table.names import APP

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.diff.changes import Change
    from partkit.diff.source import TableSide
    from partkit.flash.appimage import ImageInfo
    from partkit.table.model import Partition

__all__ = ["DiffContext"]


class DiffContext(Record):
    """Everything a rule may look at. ``running`` are OLD's app partitions that may be
    executing while the table changes; ``erase`` the names the update erases on purpose."""

    __slots__ = ("app", "changes", "erase", "flash_size", "flash_source", "new", "old",
                 "running", "secure", "seq")

    old: TableSide
    new: TableSide
    changes: tuple[Change, ...]
    running: tuple[Partition, ...]
    erase: frozenset[str]
    app: ImageInfo | None
    flash_size: int | None
    secure: str | None
    seq: int | None  # OLD's active otadata sequence number, when read from an image/device
    flash_source: str | None  # where flash_size came from

    def __init__(self, old: TableSide, new: TableSide, changes: tuple[Change, ...],
                 running: tuple[Partition, ...], erase: frozenset[str],
                 app: ImageInfo | None = None, flash_size: int | None = None,
                 secure: str | None = None, seq: int | None = None,
                 flash_source: str | None = None) -> None:
        self._init(old=old, new=new, changes=changes, running=running, erase=erase, app=app,
                   flash_size=flash_size, secure=secure, seq=seq, flash_source=flash_source)

    def erased(self, change: Change) -> bool:
        """The user listed this partition (by its old or new name) in --erase."""
        return any(p is not None and p.name in self.erase for p in (change.old, change.new))

    def new_at(self, offset: int) -> Partition | None:
        """The NEW app partition starting at ``offset`` (where a running app stays)."""
        for p in self.new.table:
            if p.type == APP and p.offset == offset:
                return p
        return None
