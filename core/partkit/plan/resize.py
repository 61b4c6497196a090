"""Edit a laid-out table while keeping offsets stable (``partkit resize``).

Only what is asked for changes: ``set`` gives a partition a new size (growing into free
space after it, and pushing the partitions behind it further only as far as needed),
``fill`` grows a partition up to the next one or the flash end, and a new flash size keeps
every offset. Partitions whose contents the firmware finds by offset and cannot rebuild
from an image (nvs, otadata, phy, coredump) are never moved unless ``allow_move``.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, closest, error
from partkit.common.numbers import align_up, format_size
from partkit.common.record import Record
from partkit.table.layout import alignment
from partkit.table.names import (
    BOOTLOADER,
    DATA,
    PARTITION_TABLE,
    SUBTYPE_DATA_COREDUMP,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
    SUBTYPE_DATA_PHY,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable

__all__ = ["PROTECTED_SUBTYPES", "Edit", "resize"]

PROTECTED_SUBTYPES = {SUBTYPE_DATA_NVS: "nvs", SUBTYPE_DATA_OTA: "otadata",
                      SUBTYPE_DATA_PHY: "phy", SUBTYPE_DATA_COREDUMP: "coredump"}
SECTOR = 0x1000


class Edit(Record):
    """What to change: (name, size) pairs, names to fill, a new flash size."""

    __slots__ = ("allow_move", "fill", "flash_size", "sizes")

    sizes: tuple[tuple[str, int], ...]
    fill: tuple[str, ...]
    flash_size: int | None
    allow_move: bool

    def __init__(self, sizes: tuple[tuple[str, int], ...] = (), fill: tuple[str, ...] = (),
                 flash_size: int | None = None, allow_move: bool = False) -> None:
        self._init(sizes=tuple(sizes), fill=tuple(fill), flash_size=flash_size,
                   allow_move=allow_move)


def _protected(p: Partition) -> str | None:
    if p.type in (BOOTLOADER, PARTITION_TABLE):
        return "bootloader/partition-table"
    if p.type == DATA:
        return PROTECTED_SUBTYPES.get(p.subtype)
    return None


def _find(parts: list[Partition], name: str, option: str) -> int:
    for i, p in enumerate(parts):
        if p.name == name:
            return i

    guess = closest(name, [p.name for p in parts])
    raise PartkitError(error(f"{option}: no partition named '{name}'", None,
                             (f"did you mean '{guess}'? " if guess else "")
                             + "partitions: " + ", ".join(p.name for p in parts)))


def resize(table: PartitionTable, edit: Edit, flash_size: int | None) -> PartitionTable:
    """The edited table (same file order). ``flash_size`` is the current one, if known."""
    if edit.flash_size is not None:
        flash_size = edit.flash_size
    parts = list(table.partitions)
    for name, size in edit.sizes:
        parts = _set_size(parts, _find(parts, name, "--set"), size, edit.allow_move)
    for name in edit.fill:
        parts = _fill(parts, _find(parts, name, "--fill"), flash_size)
    if flash_size is not None:
        end = max((p.end for p in parts if p.type not in (BOOTLOADER, PARTITION_TABLE)),
                  default=0)
        if end > flash_size:
            last = max(parts, key=lambda p: p.end)
            raise PartkitError(error(
                f"the table does not fit the {format_size(flash_size)} flash: '{last.name}' "
                f"ends at 0x{end:x}, {format_size(end - flash_size)} ({end - flash_size} "
                "bytes) past the end", last.loc,
                "make partitions smaller, or give a bigger --flash-size"))
    return table.replace(partitions=tuple(parts))


def _set_size(parts: list[Partition], index: int, size: int, allow_move: bool) -> list[Partition]:
    p = parts[index]
    if size <= 0 or size % SECTOR:
        up = max(align_up(size, SECTOR), SECTOR)
        raise PartkitError(error(
            f"--set {p.name}: size 0x{size:x} is not a positive multiple of 4K", p.loc,
            f"use 0x{up:x} ({format_size(up)})"))
    out = list(parts)
    out[index] = p.replace(size=size)
    # Push the partitions behind it down only where they now overlap; keep file order.
    order = sorted(range(len(out)), key=lambda i: (out[i].offset, i))
    end = out[index].end
    for i in order[order.index(index) + 1:]:
        q = out[i]
        if q.type in (BOOTLOADER, PARTITION_TABLE) and q.offset < p.offset:
            continue
        if q.offset >= end:
            break
        moved = align_up(end, alignment(q.type))
        why = _protected(q)
        if why is not None and (not allow_move or q.type in (BOOTLOADER, PARTITION_TABLE)):
            raise PartkitError(error(
                f"--set {p.name}={format_size(size)} would move '{q.name}' ({why}) from "
                f"0x{q.offset:x} to 0x{moved:x}", q.loc,
                "its contents are found by offset; pass --allow-move if they can be "
                "rebuilt, or give the room by another partition" if q.type not in (
                    BOOTLOADER, PARTITION_TABLE) else "bootloader rows never move"))
        out[i] = q.replace(offset=moved)
        end = moved + q.size
    return out


def _fill(parts: list[Partition], index: int, flash_size: int | None) -> list[Partition]:
    p = parts[index]
    later = [q.offset for q in parts if q.offset >= p.end and q is not p]
    if later:
        limit = min(later)
    elif flash_size is not None:
        limit = flash_size
    else:
        raise PartkitError(error(
            f"--fill {p.name}: '{p.name}' is the last partition and the flash size is unknown",
            p.loc, "give --flash-size (e.g. 4MB)"))
    size = (limit - p.offset) // SECTOR * SECTOR
    if size < p.size:
        raise PartkitError(error(
            f"--fill {p.name}: no free space after '{p.name}' (next at 0x{limit:x})", p.loc))
    out = list(parts)
    out[index] = p.replace(size=size)
    return out
