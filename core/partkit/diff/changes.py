"""What changed between two tables, partition by partition.

App partitions are paired by place first: what a device runs is the bytes at an offset,
whatever the row there is called now (a factory app that becomes ``ota_0`` in place is one
partition, type-changed). The rest are paired by name (a kept name); of what is left, an old
and a new partition with the same type, subtype and offset are one partition renamed.
Whatever is left was removed (old only) or added (new only).
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.table.names import APP

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable

__all__ = ["ADDED", "CHANGE_KINDS", "REMOVED", "Change", "compute_changes"]

ADDED = "added"
REMOVED = "removed"
MOVED = "moved"
RESIZED = "resized"
RENAMED = "renamed"
TYPE_CHANGED = "type-changed"
FLAGS_CHANGED = "flags-changed"
# The order a change lists its kinds in (and the docs describe them in).
CHANGE_KINDS = (ADDED, REMOVED, MOVED, RESIZED, RENAMED, TYPE_CHANGED, FLAGS_CHANGED)


class Change(Record):
    """One partition's fate: ``old`` None when added, ``new`` None when removed.

    ``kinds`` is empty for a partition that is unchanged.
    """

    __slots__ = ("kinds", "new", "old")

    old: Partition | None
    new: Partition | None
    kinds: tuple[str, ...]

    def __init__(self, old: Partition | None, new: Partition | None,
                 kinds: tuple[str, ...]) -> None:
        self._init(old=old, new=new, kinds=kinds)

    @property
    def name(self) -> str:
        part = self.new if self.new is not None else self.old
        assert part is not None
        return part.name

    @property
    def changed(self) -> bool:
        return bool(self.kinds)

    def has(self, kind: str) -> bool:
        return kind in self.kinds


def _kinds(old: Partition, new: Partition) -> tuple[str, ...]:
    found = {
        MOVED: old.offset != new.offset,
        RESIZED: old.size != new.size,
        RENAMED: old.name != new.name,
        TYPE_CHANGED: (old.type, old.subtype) != (new.type, new.subtype),
        FLAGS_CHANGED: old.flags != new.flags,
    }
    return tuple(k for k in CHANGE_KINDS if found.get(k))


def compute_changes(old: PartitionTable, new: PartitionTable) -> tuple[Change, ...]:
    """Every partition of both tables once, in the new table's order, removed ones last."""
    pairs: dict[int, Partition] = {}  # id(new) -> old
    placed: set[int] = set()  # id(old) paired by place
    for p in new:
        if p.type != APP:
            continue
        for q in old:
            if q.type == APP and q.offset == p.offset and id(q) not in placed:
                pairs[id(p)] = q
                placed.add(id(q))
                break
    new_by_name: dict[str, Partition] = {}
    for p in reversed(new.partitions):  # first of a name wins
        if id(p) not in pairs:
            new_by_name[p.name] = p
    left_old: list[Partition] = []
    for p in old:
        if id(p) in placed:
            continue
        match = new_by_name.get(p.name)
        if match is not None and id(match) not in pairs:
            pairs[id(match)] = p
        else:
            left_old.append(p)
    for p in new:
        if id(p) in pairs:
            continue
        for q in left_old:
            if (q.type, q.subtype, q.offset) == (p.type, p.subtype, p.offset):
                pairs[id(p)] = q
                left_old.remove(q)
                break
    out: list[Change] = []
    for p in new:
        before = pairs.get(id(p))
        out.append(Change(None, p, (ADDED,)) if before is None
                   else Change(before, p, _kinds(before, p)))
    out.extend(Change(q, None, (REMOVED,)) for q in left_old)
    return tuple(out)
