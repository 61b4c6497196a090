"""The migration plan: what the updater must do, in order, so that a device that loses
power after any step (or half way through one) still boots the app it runs.

Before the table is written the device boots OLD; after, NEW. So:

1. ``copy``: a data partition that moved without changing size or type keeps its contents
   when its bytes are copied to the new offset while OLD's copy is still intact and still
   the one the bootloader and app use; a destination overlapping its own source is copied
   from the far end (high to low when moving up);
2. ``erase`` (before the table): the pages NVS grows into, so they are free pages the moment
   NEW describes them; a whole added or moved NVS partition too (it is read at boot);
3. ``write-otadata`` (before the table): a record that selects the running slot under OLD
   and NEW alike (:mod:`partkit.diff.otaswitch`);
4. ``write-table``: NEW's binary table; the app must restart before it uses a partition
   again (its partition list and NVS handle describe OLD): marked ``reboot``;
5. ``erase``: regions whose old bytes mean nothing in NEW (added partitions, moved or
   resized ones, app slots the next OTA fills). Nothing here is read before the next OTA or
   format, so these may run before or after the restart.

No step touches the running app's bytes; a step that would is left out and the rule that
makes the change unsafe says why.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.diff.changes import ADDED, MOVED, RESIZED, TYPE_CHANGED
from partkit.diff.otaswitch import OtaWrite, switch
from partkit.flash.bootpredict import ota_count, ota_index
from partkit.table.binary import MAX_TABLE_BYTES
from partkit.table.names import APP, DATA, SUBTYPE_DATA_NVS, SUBTYPE_DATA_OTA

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.diff.changes import Change
    from partkit.diff.context import DiffContext
    from partkit.diff.otaswitch import OtaWrite
    from partkit.table.model import Partition

__all__ = ["ACTIONS", "Step", "make_plan"]

ACTIONS = ("copy", "erase", "write-otadata", "write-table")


class Step(Record):
    """One step: ``action`` on ``size`` bytes at ``offset`` (``source`` for a copy).

    ``reboot``: the app restarts after this step before it uses a partition again.
    ``descending``: a copy that must run from its high end down (it overlaps its source).
    ``otadata``: what a ``write-otadata`` step writes.
    """

    __slots__ = ("action", "descending", "note", "offset", "otadata", "partition", "reboot",
                 "size", "source")

    action: str
    partition: str | None
    offset: int
    size: int
    source: int | None
    note: str
    reboot: bool
    descending: bool
    otadata: OtaWrite | None

    def __init__(self, action: str, partition: str | None, offset: int, size: int,
                 note: str, source: int | None = None, reboot: bool = False,
                 descending: bool = False, otadata: OtaWrite | None = None) -> None:
        self._init(action=action, partition=partition, offset=offset, size=size, note=note,
                   source=source, reboot=reboot, descending=descending, otadata=otadata)

    @property
    def end(self) -> int:
        return self.offset + self.size


def _data_step(change: Change, old: Partition, new: Partition, erased: bool) -> Step | None:
    if not (change.has(MOVED) or change.has(RESIZED) or change.has(TYPE_CHANGED)):
        return None
    same_kind = not change.has(TYPE_CHANGED)
    if same_kind and not change.has(RESIZED) and not erased:
        up = new.offset > old.offset
        overlaps = old.offset < new.end and new.offset < old.end
        note = f"carry the contents of '{old.name}' over from 0x{old.offset:x}"
        if overlaps:
            note += ("; the destination overlaps the source: copy from the "
                     + ("high end down" if up else "low end up"))
        return Step("copy", new.name, new.offset, new.size, note, source=old.offset,
                    descending=overlaps and up)
    if (same_kind and new.subtype == SUBTYPE_DATA_NVS and new.offset == old.offset
            and new.size > old.size and not erased):
        return Step("erase", new.name, old.end, new.size - old.size,
                    "the pages NVS grows into must be blank (free pages) before NEW "
                    "describes them; the existing pages stay")
    return Step("erase", new.name, new.offset, new.size,
                "its old contents do not fit the new layout: erase, then reformat or "
                "re-provision")


def _live(ctx: DiffContext, writes: bool) -> list[tuple[int, int]]:
    """What no step may touch: the running slots and the table sector; for a step that
    writes data before the table changes, OLD's NVS too (the running app reads it; an
    erased page there is a free page, a written one a corrupt page)."""
    out = [(p.offset, p.end) for p in ctx.running]
    out.append((ctx.old.table_offset, ctx.old.table_offset + MAX_TABLE_BYTES))
    if writes:
        out += [(p.offset, p.end) for p in ctx.old.table
                if p.type == DATA and p.subtype == SUBTYPE_DATA_NVS]
    return out


def _is_nvs(ctx: DiffContext, step: Step) -> bool:
    part = ctx.new.table.find_by_name(step.partition or "")
    return part is not None and part.type == DATA and part.subtype == SUBTYPE_DATA_NVS


def _touches(step: Step, live: list[tuple[int, int]]) -> bool:
    return any(step.offset < end and start < step.end for start, end in live)


def make_plan(ctx: DiffContext) -> tuple[Step, ...]:
    """The steps, in order; none when NEW encodes to the same table as OLD."""
    if (not any(c.changed for c in ctx.changes) and ctx.old.md5 == ctx.new.md5
            and ctx.old.table_offset == ctx.new.table_offset):
        return ()
    copies: list[Step] = []
    before: list[Step] = []
    erases: list[Step] = []
    running = {p.offset for p in ctx.running}
    for change in ctx.changes:
        old, new = change.old, change.new
        if new is None or (new.type == DATA and new.subtype == SUBTYPE_DATA_OTA):
            continue  # removed: nothing to do; otadata: the switch below
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
            if step is None:
                continue
            if step.action == "copy":
                copies.append(step)
            elif step.offset != new.offset:  # NVS pages grown into
                before.append(step)
            else:
                erases.append(step)
    sw = switch(ctx)
    if sw.write is not None and sw.otadata is not None:
        part = sw.otadata
        before.append(Step("write-otadata", part.name, part.offset, part.size, sw.note,
                           otadata=sw.write))
    after = _repair_otadata(ctx, sw.problems)
    table = Step("write-table", None, ctx.new.table_offset, MAX_TABLE_BYTES,
                 "write NEW's binary table (erase its 4 KiB sector first); the app's "
                 "partition list and NVS still describe OLD", reboot=True)
    erasing, writing = _live(ctx, False), _live(ctx, True)
    steps = [s for s in _order_copies(copies)  # (a copy may overwrite its own source)
             if not _touches(s, [r for r in writing if r != (s.source, (s.source or 0) + s.size)])]
    steps += [s for s in before if not _touches(s, writing if s.otadata is not None
                                                and not s.otadata.blank else erasing)]
    # NVS is read at boot (nvs_flash_init), right after the restart the table step asks
    # for: its erase goes first unless it would erase pages of OLD's NVS in use
    early = [s for s in erases if _is_nvs(ctx, s) and not _touches(s, writing)]
    steps += early
    steps.append(table)
    steps += [s for s in erases if s not in early and not _touches(s, erasing)]
    steps += after
    return tuple(steps)


def _repair_otadata(ctx: DiffContext, problems: tuple[object, ...]) -> list[Step]:
    """When no otadata bridges the switch (an unsafe change), select the running slot under
    NEW right after the table: the window stays, but the end state boots the right app."""
    found = ctx.new.table.find(DATA, SUBTYPE_DATA_OTA)
    if not problems or not found or len(ctx.running) != 1:
        return []
    now = ctx.new_at(ctx.running[0].offset)
    k = None if now is None else ota_index(now)
    count = ota_count(ctx.new.table)
    if now is None or k is None or k >= count:
        return []
    part = found[0]
    return [Step("write-otadata", part.name, part.offset, part.size,
                 f"select ota_{k} ('{now.name}' at 0x{now.offset:x}) under NEW; until this "
                 "step completes the devices boot another slot (see ota-reindex)",
                 otadata=OtaWrite(False, 0, count, ((0, k),)))]


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
