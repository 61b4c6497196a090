"""Which app the 2nd-stage bootloader starts, and where it falls back to.

The bootloader picks a start index from otadata (an OTA slot, or the factory app when no
record is valid), then tries partitions in a fixed order until one holds a loadable app:
from the start index down to ota_0 and the factory app, then up from the start index to
the last OTA slot, then the test app. Nothing loadable: it resets, again and again.
OTA slots are indexed by subtype (ota_N is index N) and only indexes below the number of
OTA partitions (``app_count``) are tried; when rows repeat a subtype (or the factory or
test app) the last one counts, as the bootloader overwrites earlier ones while it reads the
table. ESP-IDF v6.0.2 bootloader_utility.c: load_partition_table, index_to_partition,
get_selected_boot_partition, load_boot_image. This is partkit's one model of that choice:
``image check``, ``show`` and ``diff`` all ask it.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.flash import imagefile, otadata
from partkit.flash.contents import describe
from partkit.flash.otadata import STATE_PENDING_VERIFY, OtaEntry, active_entry, slot_of_seq
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_APP_TEST,
    SUBTYPE_DATA_OTA,
    is_ota_app,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.table.model import Partition, PartitionTable

__all__ = ["BootPrediction", "boot_choice", "boot_order", "ota_count", "ota_index", "predict_boot",
           "rollback_note", "slot_at", "start_index"]

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


def ota_index(p: Partition) -> int | None:
    """The bootloader's slot index of an OTA app partition (its subtype), else None."""
    return p.subtype - SUBTYPE_APP_OTA_MIN if is_ota_app(p.type, p.subtype) else None


def ota_count(table: PartitionTable) -> int:
    """``app_count``: how many OTA app rows the bootloader counts (repeated subtypes too)."""
    return sum(1 for p in table if is_ota_app(p.type, p.subtype))


def _last(table: PartitionTable, subtype: int) -> Partition | None:
    found = [p for p in table if p.type == APP and p.subtype == subtype]
    return found[-1] if found else None


def slot_at(table: PartitionTable, index: int) -> Partition | None:
    """``index_to_partition``: the factory app for FACTORY_INDEX, else the last OTA row with
    this subtype, only for an index below ``app_count``."""
    if index == FACTORY_INDEX:
        return _last(table, SUBTYPE_APP_FACTORY)
    if not 0 <= index < ota_count(table):
        return None
    return _last(table, SUBTYPE_APP_OTA_MIN + index)


def start_index(table: PartitionTable, seq: int | None, has_otadata: bool) -> int:
    """The index the bootloader tries first: the slot the active record's ``seq`` selects
    (None: no valid record), else the factory app, else ota_0 (without a factory app the
    bootloader's FACTORY_INDEX names nothing and index 0 is the first it tries)."""
    count = ota_count(table)
    if has_otadata and seq is not None and count:
        return slot_of_seq(seq, count)
    return FACTORY_INDEX if slot_at(table, FACTORY_INDEX) is not None or not count else 0


def boot_choice(table: PartitionTable, seq: int | None, has_otadata: bool) -> Partition | None:
    """The app partition the bootloader tries first (None: the selected index names no
    partition). Image validity and fallback are not judged."""
    return slot_at(table, start_index(table, seq, has_otadata))


def boot_order(table: PartitionTable, seq: int | None, has_otadata: bool) -> list[Partition]:
    """The app partitions in the order the bootloader tries them until one holds a loadable
    image (``load_boot_image``): the start index, the lower ones down to factory, the
    higher OTA slots below ``app_count``, then the test app."""
    start = start_index(table, seq, has_otadata)
    order = [*range(start, FACTORY_INDEX - 1, -1), *range(start + 1, ota_count(table))]
    found = [p for p in (slot_at(table, i) for i in order) if p is not None]
    test = _last(table, SUBTYPE_APP_TEST)
    return found + ([test] if test is not None and test not in found else [])


def predict_boot(table: PartitionTable, entries: tuple[OtaEntry, OtaEntry] | None,
                 loadable: Callable[[Partition], bool], *,
                 rollback: bool = False) -> BootPrediction:
    """Predict the boot. ``entries``: both otadata records (None: no otadata partition);
    ``loadable``: whether a partition holds an app the bootloader accepts; ``rollback``:
    the bootloader was built with app rollback (pending_verify records are aborted)."""
    entry = None if entries is None else active_entry(entries, rollback)
    seq = None if entry is None else entry.seq
    start = start_index(table, seq, entries is not None)
    first = "factory" if start == FACTORY_INDEX else f"ota_{start}"
    if entries is None:
        selection = f"no otadata partition: {first} first"
        if start == FACTORY_INDEX:
            selection = "no otadata partition: the factory app first"
    else:
        aborted = [e for e in entries if rollback and e.valid
                   and e.state == STATE_PENDING_VERIFY]
        note = "".join(f" (sector {e.index}'s pending_verify record is marked aborted)"
                       for e in aborted)
        if entry is not None and ota_count(table):
            selection = (f"otadata sector {entry.index} (ota_seq {entry.seq}) selects "
                         f"ota_{start}{note}")
        else:
            selection = f"no valid otadata record{note}: {first} first"
    tried: list[Partition] = []
    for p in boot_order(table, seq, entries is not None):
        if loadable(p):
            return BootPrediction(slot_at(table, start), p, selection, entry, tuple(tried))
        tried.append(p)
    return BootPrediction(slot_at(table, start), None, selection, entry, tuple(tried))


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
