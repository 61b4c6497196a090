"""Keeping the running app selected while the table switches from OLD to NEW.

Writing the table and writing otadata are two flash writes; a power cut can fall between
them. The bootloader reads the otadata it finds with the slot count and subtypes of
whichever table is in place (:mod:`partkit.flash.bootpredict`), so the otadata must select the
running app under *both* tables before the table is written:

- OTA slot to OTA slot: a record with ``(seq - 1) % N_old == k_old`` and
  ``(seq - 1) % N_new == k_new`` (one congruence modulo lcm(N_old, N_new); none exists
  when ``k_old`` and ``k_new`` differ modulo gcd(N_old, N_new)), written into the sector not
  holding the active record, so a cut during that write leaves the old record in charge;
- into a new otadata region (OLD had none, a factory app runs): blank or a record selecting
  the new slot, written while OLD's bootloader does not look there;
- OTA slot to factory: NEW must see no valid record; blanking is safe first only when
  OLD's blank default is the running slot.

:func:`switch` returns the one step that does it (or None) and the reasons it cannot be
done; the ``ota-reindex`` rule reports the reasons and the plan runs the step, so the two
never disagree.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.diff.field import bridging_seq
from partkit.flash.bootpredict import boot_choice, ota_count, ota_index, slot_at
from partkit.flash.otadata import slot_of_seq
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.diff.context import DiffContext
    from partkit.table.model import Partition, PartitionTable

__all__ = ["OtaWrite", "Switch", "switch"]


class OtaWrite(Record):
    """What the pre-table otadata step writes.

    ``blank``: erase both sectors. Else ``remap`` maps OLD's selected slot index to NEW's,
    and the record written is the smallest sequence number above the active one that
    selects ``k_old`` among ``count_old`` and ``k_new`` among ``count_new`` slots
    (``count_old`` 0: OLD's bootloader ignores this otadata; select ``remap[0][1]``).
    """

    __slots__ = ("blank", "count_new", "count_old", "remap")

    blank: bool
    count_old: int
    count_new: int
    remap: tuple[tuple[int, int], ...]

    def __init__(self, blank: bool, count_old: int = 0, count_new: int = 0,
                 remap: tuple[tuple[int, int], ...] = ()) -> None:
        self._init(blank=blank, count_old=count_old, count_new=count_new, remap=remap)

    def seq_after(self, active: int | None) -> int | None:
        """The record to write given the active record's sequence number (None: no valid
        record: slot 0 boots, or OLD's otadata is ignored)."""
        if self.blank:
            return None
        if self.count_old == 0:
            return bridging_seq(active or 0, ((self.remap[0][1], self.count_new),))
        k_old = 0 if active is None else slot_of_seq(active, self.count_old)
        k_new = dict(self.remap).get(k_old)
        if k_new is None:
            return None
        return bridging_seq(active or 0, ((k_old, self.count_old), (k_new, self.count_new)))


class Switch(Record):
    """The otadata step before the table is written (None: nothing to do), the partition
    it writes, and why the switch cannot be made safe (empty: it can)."""

    __slots__ = ("note", "otadata", "problems", "write")

    write: OtaWrite | None
    otadata: Partition | None
    note: str
    problems: tuple[tuple[str, tuple[str, ...]], ...]  # (message, partitions)

    def __init__(self, write: OtaWrite | None, otadata: Partition | None, note: str,
                 problems: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self._init(write=write, otadata=otadata, note=note, problems=problems)


def _otadata(table: PartitionTable) -> Partition | None:
    found = table.find(DATA, SUBTYPE_DATA_OTA)
    return found[0] if found else None


def _has_factory(table: PartitionTable) -> bool:
    return any(p.type == APP and p.subtype == SUBTYPE_APP_FACTORY for p in table)


def _label(p: Partition) -> str:
    k = ota_index(p)
    return f"'{p.name}' (ota_{k})" if k is not None else f"'{p.name}'"


def switch(ctx: DiffContext) -> Switch:
    old_t, new_t = ctx.old.table, ctx.new.table
    o_old, o_new = _otadata(old_t), _otadata(new_t)
    if o_new is None:
        return Switch(None, None, "", ())  # boot-default judges a NEW without otadata
    n_old, n_new = ota_count(old_t), ota_count(new_t)
    # OLD's bootloader reads this region only when it is OLD's otadata and OLD has OTA slots
    shared = o_old is not None and o_old.offset == o_new.offset and n_old > 0
    problems: list[tuple[str, tuple[str, ...]]] = []
    remap: dict[int, int] = {}
    fresh: set[int | None] = set()  # NEW slot index to select (None: blank)
    for run in ctx.running:
        now = ctx.new_at(run.offset)
        if now is None:
            continue  # running-slot-moved
        k_old, k_new = ota_index(run), ota_index(now)
        if k_new is not None and slot_at(new_t, k_new) is not now:
            problems.append((f"the running app at 0x{run.offset:x} becomes {_label(now)} in "
                             f"NEW, which otadata cannot select ({n_new} OTA slots: the "
                             f"bootloader only reaches ota_0..ota_{n_new - 1})",
                             (now.name,)))
            continue
        factories = [p for p in new_t if p.type == APP and p.subtype == SUBTYPE_APP_FACTORY]
        if k_new is None and now.subtype == SUBTYPE_APP_FACTORY and factories[-1] is not now:
            problems.append((f"the running app at 0x{run.offset:x} becomes the factory app "
                             f"'{now.name}', but NEW has another factory row after it, "
                             f"'{factories[-1].name}': the bootloader's factory app is the "
                             "last one", (now.name, factories[-1].name)))
            continue
        if k_new is None and now.subtype != SUBTYPE_APP_FACTORY:
            problems.append((f"the running app at 0x{run.offset:x} becomes '{now.name}', "
                             "neither factory nor an OTA slot: the bootloader does not boot it "
                             "by default or through otadata", (now.name,)))
            continue
        if shared and k_old is not None:
            if k_new is None:  # OTA slot -> factory: NEW must see no valid record
                if n_new == 0:
                    continue
                if _has_factory(old_t) or k_old != 0:
                    problems.append((
                        f"the running app {_label(run)} becomes the factory app '{now.name}'; "
                        "NEW boots it only with blank otadata, and blank otadata under OLD "
                        f"boots {'its factory app' if _has_factory(old_t) else 'ota_0'}: a "
                        "power cut between the two writes boots another app",
                        (run.name, now.name)))
                    continue
                fresh.add(None)
                continue
            if (k_old, n_old) == (k_new, n_new):
                remap[k_old] = k_new
                continue
            if bridging_seq(0, ((k_old, n_old), (k_new, n_new))) is None:
                problems.append((
                    f"the running app {_label(run)} is {_label(now)} in NEW: no otadata "
                    f"record selects slot {k_old} of {n_old} and slot {k_new} of {n_new} at "
                    "once, so between writing the table and otadata the bootloader starts "
                    "another slot", (run.name, now.name)))
                continue
            remap[k_old] = k_new
        elif shared:  # a factory app runs while OLD has OTA slots
            if k_new is None and n_new and now.subtype == SUBTYPE_APP_FACTORY:
                continue  # stays factory: blank otadata stays blank
            problems.append((
                f"the running factory app '{run.name}' becomes {_label(now)}; a record "
                f"selecting it would select an OTA slot of OLD ({n_old} slots) until the "
                "table is written", (run.name, now.name)))
        else:  # OLD's bootloader ignores the region: prepare it freely
            fresh.add(k_new)
    if problems:
        return Switch(None, o_new, "", tuple(problems))
    if fresh and remap:
        fresh.add(-1)  # mixed: cannot serve both with one record
    if len(fresh) > 1:
        return Switch(None, o_new, "", ((
            "the possible running slots need different otadata before the table changes; "
            "name the slot the devices run with --running (or read OLD from a device or an "
            "image, whose otadata says it)", tuple(p.name for p in ctx.running)),))
    if fresh:
        (k,) = fresh
        target = [ctx.new_at(r.offset) for r in ctx.running]
        if k is not None and boot_choice(new_t, None, True) in target:
            k = None  # blank otadata boots it under NEW: erasing is enough
        if k is not None:
            clash = [p.name for p in old_t if p.type == DATA and p.subtype == SUBTYPE_DATA_NVS
                     and p.offset < o_new.end and o_new.offset < p.end]
            if clash:
                return Switch(None, o_new, "", ((
                    f"NEW's otadata at 0x{o_new.offset:x} lies in OLD's NVS partition "
                    f"'{clash[0]}', which the running app reads until the table changes; a "
                    f"record selecting ota_{k} there is a corrupt NVS page, and without it "
                    "NEW's bootloader boots another slot", (o_new.name, clash[0])),))
        if k is None:
            return Switch(OtaWrite(True), o_new, "blank otadata before the table changes: "
                          "NEW's bootloader then boots the running app by default", ())
        return Switch(OtaWrite(False, 0, n_new, ((0, k),)), o_new,
                      f"select ota_{k} before NEW's bootloader reads this otadata: the "
                      "running app keeps booting across the table switch", ())
    if not remap or (all(a == b for a, b in remap.items()) and n_old == n_new):
        return Switch(None, o_new, "", ())  # (a factory app running with blank otadata)
    if ctx.seq is not None:
        write = OtaWrite(False, n_old, n_new, tuple(sorted(remap.items())))
        if slot_of_seq(ctx.seq, n_new) == remap.get(slot_of_seq(ctx.seq, n_old)):
            return Switch(None, o_new, "", ())  # OLD's record already selects it under NEW
        if write.seq_after(ctx.seq) is None:
            return Switch(None, o_new, "", ((
                f"no sequence number above OLD's active record (0x{ctx.seq:x}) selects the "
                "running slot under both tables before 0xFFFFFFFF (an erased record); reset "
                "otadata to a low sequence number selecting the running slot first",
                tuple(p.name for p in ctx.running)),))
    if ctx.old.awaiting_verify:
        return Switch(None, o_new, "", ((
            "OLD's active otadata record awaits verification (new or pending_verify: "
            "rollback); a re-sequenced record would confirm the unverified app and overwrite "
            "the record a rollback boots; confirm the app (or let it roll back) first",
            tuple(p.name for p in ctx.running)),))
    pairs = ", ".join(f"ota_{a} of {n_old} -> ota_{b} of {n_new}" for a, b in sorted(
        remap.items()))
    return Switch(OtaWrite(False, n_old, n_new, tuple(sorted(remap.items()))), o_new,
                  "re-sequence otadata before the table changes: a record above the active "
                  f"one that selects the running slot under both tables ({pairs}), into the "
                  "sector not holding the active record", ())
