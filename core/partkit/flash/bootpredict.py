"""Which app the 2nd-stage bootloader starts, and where it falls back to.

The bootloader picks a start index from otadata (an OTA slot, or the factory app when no
record is valid), then tries partitions in a fixed order until one holds a loadable app:
from the start index down to ota_0 and the factory app, then up from the start index to
the last OTA slot, then the test app. Nothing loadable: it resets, again and again.
OTA slots are indexed by subtype (ota_N is index N) and only indexes below the number of
OTA partitions are tried.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.flash.otadata import STATE_PENDING_VERIFY, OtaEntry, active_entry, slot_of_seq
from partkit.table.names import (
    APP,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_APP_TEST,
    is_ota_app,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.table.model import Partition, PartitionTable

__all__ = ["BootPrediction", "predict_boot", "rollback_note"]

FACTORY_INDEX = -1


class BootPrediction(Record):
    """``start``: the partition the bootloader tries first (None: the index names no
    partition); ``boots``: the first one in its order holding a loadable app (None: none
    does); ``selection``: why it starts there; ``entry``: the otadata record it followed."""

    __slots__ = ("boots", "entry", "selection", "start", "tried")

    start: Partition | None
    boots: Partition | None
    selection: str
    entry: OtaEntry | None
    tried: tuple[Partition, ...]  # tried before ``boots`` and found without a loadable app

    def __init__(self, start: Partition | None, boots: Partition | None, selection: str,
                 entry: OtaEntry | None, tried: tuple[Partition, ...]) -> None:
        self._init(start=start, boots=boots, selection=selection, entry=entry, tried=tried)

    @property
    def falls_back(self) -> bool:
        return self.boots is not None and self.boots is not self.start

    def outcome(self) -> str:
        """One sentence: what starts, and through which fallback."""
        if self.boots is None:
            names = ", ".join(f"'{p.name}'" for p in self.tried) or "no app partition"
            return (f"{self.selection}; no partition holds a loadable app (tried {names}): "
                    "the bootloader resets and tries again, forever")
        if not self.falls_back:
            return f"{self.selection}: '{self.boots.name}' boots"
        first = f"'{self.start.name}' holds no loadable app" if self.start is not None else (
            "that slot is not in the table")
        return (f"{self.selection}, but {first}: the bootloader falls back to "
                f"'{self.boots.name}'")


def predict_boot(table: PartitionTable, entries: tuple[OtaEntry, OtaEntry] | None,
                 loadable: Callable[[Partition], bool], *,
                 rollback: bool = False) -> BootPrediction:
    """Predict the boot. ``entries``: both otadata records (None: no otadata partition);
    ``loadable``: whether a partition holds an app the bootloader accepts; ``rollback``:
    the bootloader was built with app rollback (pending_verify records are aborted)."""
    # The bootloader walks the table in order and overwrites its slot for each row, so of
    # two rows with one subtype (gen accepts them) the last one counts; every OTA row
    # counts towards the number of slots.
    ota: dict[int, Partition] = {}
    for p in table:
        if is_ota_app(p.type, p.subtype):
            ota[p.subtype - SUBTYPE_APP_OTA_MIN] = p
    count = sum(1 for p in table if is_ota_app(p.type, p.subtype))
    factory = next(reversed(table.find(APP, SUBTYPE_APP_FACTORY)), None)
    test = next(reversed(table.find(APP, SUBTYPE_APP_TEST)), None)
    entry = None
    if entries is None:
        start, selection = FACTORY_INDEX, "no otadata partition: the factory app first"
    else:
        entry = active_entry(entries, rollback)
        aborted = [e for e in entries if rollback and e.valid
                   and e.state == STATE_PENDING_VERIFY]
        note = "".join(f" (sector {e.index}'s pending_verify record is marked aborted)"
                       for e in aborted)
        if entry is not None and count:
            start = slot_of_seq(entry.seq, count)
            selection = (f"otadata sector {entry.index} (ota_seq {entry.seq}) selects "
                         f"ota_{start}{note}")
        elif factory is not None or count == 0:
            start, selection = FACTORY_INDEX, f"no valid otadata record{note}: factory first"
        else:
            start, selection = 0, f"no valid otadata record{note}: ota_0 first"

    def at(index: int) -> Partition | None:
        return factory if index == FACTORY_INDEX else ota.get(index)

    order = [*range(start, FACTORY_INDEX - 1, -1), *range(start + 1, count)]
    candidates = [p for p in (at(i) for i in order) if p is not None]
    if test is not None:
        candidates.append(test)
    tried: list[Partition] = []
    for p in candidates:
        if loadable(p):
            return BootPrediction(at(start), p, selection, entry, tuple(tried))
        tried.append(p)
    return BootPrediction(at(start), None, selection, entry, tuple(tried))


def rollback_note(entries: tuple[OtaEntry, OtaEntry], table: PartitionTable) -> str | None:
    """When the active record is pending_verify: where a bootloader with rollback starts
    instead (app contents not judged), else None."""
    active = active_entry(entries)
    if active is None or active.state != STATE_PENDING_VERIFY:
        return None
    rolled = predict_boot(table, entries, lambda p: True, rollback=True)
    where = f"'{rolled.boots.name}'" if rolled.boots is not None else "no app"
    return f"{rolled.selection}: the bootloader starts {where}"


def predict_image_boot(image: str, table: PartitionTable) -> BootPrediction:
    """The boot of a flash image or dump: otadata and the app slots as the image holds
    them (slots starting past the end of the image count as holding nothing)."""
    from partkit.flash import imagefile, otadata
    from partkit.flash.contents import describe
    from partkit.table.names import DATA, SUBTYPE_DATA_OTA

    size = imagefile.image_size(image)
    found = table.find(DATA, SUBTYPE_DATA_OTA)
    entries = None
    if found:
        part = found[0]
        region = imagefile.read_region(image, part.offset, max(0, min(
            otadata.OTADATA_SIZE, size - part.offset)))
        entries = otadata.decode(region.ljust(otadata.OTADATA_SIZE, b"\xff"))

    def loadable(p: Partition) -> bool:
        if p.offset >= size:
            return False
        # merge-bin writes no padding: the image may end inside the slot
        contents = describe(image, p.replace(size=min(p.size, size - p.offset)), table)
        return contents.kind == "app" and bool(contents.details.get("valid"))

    return predict_boot(table, entries, loadable)
