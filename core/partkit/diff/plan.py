"""The migration plan: what the updater must do, in order, for the new table to be safe.

1. ``copy``: a data partition that moved without changing size or type keeps its contents
   when its bytes are copied from the old offset to the new one (before step 2: the old
   copy is still intact and still described by the table the running app uses);
2. ``write-table``: the new table at the table offset;
3. ``erase``: regions that now belong to a partition whose old bytes mean nothing there
   (added partitions, moved or resized ones, app slots the next OTA fills);
4. ``write-otadata``: select the running slot under its new subtype, or blank otadata
   when the running slot is the factory app, so the next boot starts the same app.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.diff.changes import ADDED, MOVED, RESIZED, TYPE_CHANGED
from partkit.table.binary import MAX_TABLE_BYTES
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
    is_ota_app,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.diff.changes import Change
    from partkit.diff.rules import DiffContext
    from partkit.table.model import Partition

__all__ = ["ACTIONS", "Step", "make_plan"]

ACTIONS = ("copy", "write-table", "erase", "write-otadata")


class Step(Record):
    """One step: ``action`` on ``size`` bytes at ``offset`` (``source`` for a copy)."""

    __slots__ = ("action", "note", "offset", "partition", "size", "source")

    action: str
    partition: str | None
    offset: int
    size: int
    source: int | None
    note: str

    def __init__(self, action: str, partition: str | None, offset: int, size: int,
                 note: str, source: int | None = None) -> None:
        self._init(action=action, partition=partition, offset=offset, size=size, note=note,
                   source=source)


def _data_step(change: Change, old: Partition, new: Partition, erased: bool) -> Step | None:
    if not (change.has(MOVED) or change.has(RESIZED) or change.has(TYPE_CHANGED)):
        return None
    same_kind = not change.has(TYPE_CHANGED)
    if same_kind and not change.has(RESIZED) and not erased:
        return Step("copy", new.name, new.offset, new.size,
                    f"carry the contents of '{old.name}' over from 0x{old.offset:x}",
                    source=old.offset)
    if (same_kind and new.subtype == SUBTYPE_DATA_NVS and new.offset == old.offset
            and new.size > old.size):
        return Step("erase", new.name, old.end, new.size - old.size,
                    "the added NVS pages must be blank; the existing pages stay")
    return Step("erase", new.name, new.offset, new.size,
                "its old contents do not fit the new layout: erase, then reformat or "
                "re-provision")


def _otadata_step(ctx: DiffContext) -> Step | None:
    found = ctx.new.table.find(DATA, SUBTYPE_DATA_OTA)
    if not found:
        return None
    part = found[0]
    targets = [p for p in (ctx.new_at(r.offset) for r in ctx.running) if p is not None]
    if len(ctx.running) == 1 and len(targets) == 1:
        target = targets[0]
        if target.subtype == SUBTYPE_APP_FACTORY:
            note = (f"erase both sectors: blank otadata boots the factory app '{target.name}'")
        elif is_ota_app(target.type, target.subtype):
            slot = target.subtype - SUBTYPE_APP_OTA_MIN
            note = (f"select ota_{slot} ('{target.name}' at 0x{target.offset:x}), the running "
                    "slot, so the next boot starts the same app")
        else:
            note = f"the running slot '{target.name}' cannot be selected by otadata"
        return Step("write-otadata", part.name, part.offset, part.size, note)
    names = ", ".join(f"'{p.name}'" for p in targets) or "none kept"
    return Step("write-otadata", part.name, part.offset, part.size,
                "select the slot each device runs from under its new subtype (candidates: "
                f"{names}; name it with --running for an exact step)")


def make_plan(ctx: DiffContext) -> tuple[Step, ...]:
    """The steps, in order; none when NEW encodes to the same table as OLD."""
    if (not any(c.changed for c in ctx.changes) and ctx.old.md5 == ctx.new.md5
            and ctx.old.table_offset == ctx.new.table_offset):
        return ()
    copies: list[Step] = []
    erases: list[Step] = []
    running = {p.offset for p in ctx.running}
    for change in ctx.changes:
        old, new = change.old, change.new
        if new is None or (new.type == DATA and new.subtype == SUBTYPE_DATA_OTA):
            continue  # removed: nothing to do; otadata: rewritten below
        if change.has(ADDED) or old is None:
            erases.append(Step("erase", new.name, new.offset, new.size,
                               "new partition: stale bytes of the old layout must go"
                               if new.type != APP else
                               "new app slot: blank until the next OTA writes it"))
        elif new.type == APP:
            if old.offset in running:
                continue  # the running app stays where it is
            if change.has(MOVED) or change.has(RESIZED) or change.has(TYPE_CHANGED):
                erases.append(Step("erase", new.name, new.offset, new.size,
                                   "app slot changed: blank until the next OTA writes it"))
        else:
            step = _data_step(change, old, new, ctx.erased(change))
            if step is not None:
                (copies if step.action == "copy" else erases).append(step)
    table = Step("write-table", None, ctx.new.table_offset, MAX_TABLE_BYTES,
                 "write NEW's binary table (erase its 4 KiB sector first)")
    otadata = _otadata_step(ctx)
    return (*_order_copies(copies), table, *erases, *(() if otadata is None else (otadata,)))


def _overlap(a_start: int, a_size: int, b_start: int, b_size: int) -> bool:
    return a_start < b_start + b_size and b_start < a_start + a_size


def _order_copies(copies: list[Step]) -> list[Step]:
    """Copies whose destination overwrites another copy's source go after that copy;
    copies that overwrite each other's sources (a swap) are marked to go through a buffer."""
    left, out = list(copies), []
    while left:
        for step in left:
            if not any(o is not step and o.source is not None
                       and _overlap(step.offset, step.size, o.source, o.size) for o in left):
                break
        else:
            step = left[0].replace(note=left[0].note + "; its destination overlaps the source "
                                   "of another copy: read both into a buffer first")
            left[0] = step
        left.remove(step)
        out.append(step)
    return out
