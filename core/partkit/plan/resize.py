"""Edit a laid-out table while keeping offsets stable (``partkit resize``).

Only what is asked for changes, and every ``set`` and ``fill`` of a call is one request:
the new sizes are laid out together (a partition moves only when the one in front of it now
reaches into it, and only as far as needed), then ``fill`` grows a partition up to the next
one or the flash end, and a new flash size keeps every offset. Nothing is placed past the
flash end. Partitions whose contents the firmware finds by offset and cannot rebuild
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


def _is_fixed(p: Partition) -> bool:
    return p.type in (BOOTLOADER, PARTITION_TABLE)


def _describe(edit: Edit) -> str:
    words = [f"--set {name}=0x{size:x}" for name, size in edit.sizes]
    words += [f"--fill {name}" for name in edit.fill]
    return " ".join(words)


def resize(table: PartitionTable, edit: Edit, flash_size: int | None) -> PartitionTable:
    """The edited table (same file order). ``flash_size`` is the current one, if known.

    Every ``--set`` and ``--fill`` is one request: the new sizes are laid out together
    (each partition stays where it is unless the one in front of it now reaches into it),
    then each fill grows into what is left. Nothing is placed past the flash end.
    """
    if edit.flash_size is not None:
        flash_size = edit.flash_size
    parts = list(table.partitions)
    sizes: dict[int, int] = {}
    for name, size in edit.sizes:
        index = _find(parts, name, "--set")
        _check_size(parts[index], size)
        sizes[index] = size
    parts = _lay_out(parts, sizes, edit)
    for name in edit.fill:
        parts = _fill(parts, _find(parts, name, "--fill"), flash_size, edit.allow_move)
    if flash_size is not None:
        _check_fits(parts, flash_size, edit)
    return table.replace(partitions=tuple(parts))


def _check_size(p: Partition, size: int) -> None:
    if size <= 0 or size % SECTOR:
        up = max(align_up(size, SECTOR), SECTOR)
        raise PartkitError(error(
            f"--set {p.name}: size 0x{size:x} is not a positive multiple of 4K", p.loc,
            f"use 0x{up:x} ({format_size(up)})"))


def _lay_out(parts: list[Partition], sizes: dict[int, int], edit: Edit) -> list[Partition]:
    """Apply all new sizes at once, in offset order: a partition moves only when the one
    in front of it (after the edit) now ends beyond its offset, and then only as far as
    needed. Shrinking never pulls anything forward."""
    out = [p.replace(size=sizes[i]) if i in sizes else p for i, p in enumerate(parts)]
    end = 0
    front: Partition | None = None
    for i in sorted(range(len(out)), key=lambda i: (out[i].offset, i)):
        q = out[i]
        if q.offset >= end or front is None:
            end, front = max(end, q.end), q
            continue
        moved = align_up(end, alignment(q.type))
        why = _protected(q)
        if why is not None and (not edit.allow_move or _is_fixed(q)):
            raise PartkitError(error(
                f"{_describe(edit)} would move '{q.name}' ({why}) from 0x{q.offset:x} to "
                f"0x{moved:x}: '{front.name}' now ends at 0x{end:x}", q.loc,
                "bootloader rows never move" if _is_fixed(q) else
                "its contents are found by offset; pass --allow-move if they can be "
                "rebuilt, or give the room by shrinking another partition in the same "
                "request"))
        out[i] = q = q.replace(offset=moved)
        end, front = q.end, q
    return out


def _fill(parts: list[Partition], index: int, flash_size: int | None,
          allow_move: bool) -> list[Partition]:
    p = parts[index]
    # Bootloader rows (an OTA or recovery bootloader region) bound the growth too.
    after = sorted((i for i, q in enumerate(parts) if i != index and q.offset >= p.end),
                   key=lambda i: (parts[i].offset, i))
    if after:
        limit = parts[after[0]].offset
    elif flash_size is not None:
        limit = flash_size
    else:
        raise PartkitError(error(
            f"--fill {p.name}: '{p.name}' is the last partition and the flash size is unknown",
            p.loc, "give --flash-size (e.g. 4MB)"))
    size = (limit - p.offset) // SECTOR * SECTOR
    out = list(parts)
    if size > p.size:
        out[index] = p.replace(size=size)
        return out
    blocker = parts[after[0]] if after else None
    what = (f"'{blocker.name}' at 0x{blocker.offset:x} directly follows it" if blocker
            else f"it already ends at the flash end (0x{limit:x})")
    if blocker is None:
        raise PartkitError(error(f"--fill {p.name}: '{p.name}' cannot grow: {what}", p.loc))
    if _is_fixed(blocker):
        raise PartkitError(error(f"--fill {p.name}: '{p.name}' cannot grow: {what}", p.loc,
                                 "bootloader rows never move"))
    # The run of partitions right behind it, up to the first free space, could move down
    # against what follows that space (the next partition or the flash end).
    run = [after[0]]
    for i in after[1:]:
        q, prev = parts[i], parts[run[-1]]
        if _is_fixed(q) or q.offset > align_up(prev.end, alignment(q.type)):
            break
        run.append(i)
    rest = after[len(run):]
    top = parts[rest[0]].offset if rest else flash_size
    if top is None:
        raise PartkitError(error(
            f"--fill {p.name}: '{p.name}' cannot grow: {what}", p.loc,
            "give --flash-size to let --allow-move put the partitions behind it at the "
            "flash end"))
    packed: dict[int, int] = {}
    for i in reversed(run):
        q = parts[i]
        top = (top - q.size) // alignment(q.type) * alignment(q.type)
        packed[i] = top
    grown = (top - p.offset) // SECTOR * SECTOR
    if grown <= p.size:
        raise PartkitError(error(
            f"--fill {p.name}: '{p.name}' cannot grow: {what}, and there is no free space "
            "behind the partitions that follow it", p.loc))
    if not allow_move:
        where = f"up against '{parts[rest[0]].name}'" if rest else "the flash end"
        listing = ", ".join(f"'{parts[i].name}' to 0x{packed[i]:x}" for i in run)
        raise PartkitError(error(
            f"--fill {p.name}: '{p.name}' cannot grow: {what}", p.loc,
            f"with --allow-move, {listing} ({where}) and '{p.name}' grows to "
            f"{format_size(grown)} (0x{grown:x}); what the moved partitions hold must be "
            "flashed again"))
    for i in run:
        out[i] = parts[i].replace(offset=packed[i])
    out[index] = p.replace(size=grown)
    return out


def _check_fits(parts: list[Partition], flash_size: int, edit: Edit) -> None:
    movable = [p for p in parts if not _is_fixed(p)]
    end = max((p.end for p in movable), default=0)
    if end <= flash_size:
        return
    last = max(movable, key=lambda p: p.end)
    request = _describe(edit)
    raise PartkitError(error(
        f"the table does not fit the {format_size(flash_size)} flash"
        + (f" after {request}" if request else "")
        + f": '{last.name}' would end at 0x{end:x}, {format_size(end - flash_size)} "
        f"({end - flash_size} bytes) past the end", last.loc,
        "make partitions smaller in the same request, or give a bigger --flash-size"))
