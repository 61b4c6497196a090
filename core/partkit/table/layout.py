"""Rows -> partitions: fill empty offsets, turn negative sizes into end addresses.

Runs in file order like gen_esp32part: explicit offsets must not go backwards, an empty
offset continues after the previous partition (apps aligned to 64 KiB, everything else to
4 KiB), and ``-2M`` as a size means "ends at 2 MiB".
"""

from __future__ import annotations

from partkit.common.errors import Diagnostic, PartkitError, error
from partkit.common.numbers import align_up
from partkit.table.csvparse import PARTITION_TABLE_SIZE, CsvRow
from partkit.table.model import Partition, PartitionTable
from partkit.table.names import APP, BOOTLOADER, PARTITION_TABLE, SUBTYPE_PRIMARY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.options import TableOptions

__all__ = ["APP_ALIGNMENT", "DATA_ALIGNMENT", "alignment", "resolve"]

APP_ALIGNMENT = 0x10000  # app partitions are mapped through the 64 KiB MMU pages
DATA_ALIGNMENT = 0x1000  # every other type: one flash sector


def alignment(ptype: int) -> int:
    return APP_ALIGNMENT if ptype == APP else DATA_ALIGNMENT


def is_primary_region(ptype: int, subtype: int) -> bool:
    """The primary bootloader and primary table rows sit outside the partition area."""
    return ptype in (BOOTLOADER, PARTITION_TABLE) and subtype == SUBTYPE_PRIMARY


def resolve(rows: list[CsvRow], path: str, options: TableOptions) -> PartitionTable:
    """Lay out rows into partitions; raises PartkitError listing every overlap."""
    errors: list[Diagnostic] = []
    partitions: list[Partition] = []
    table_end = options.table_offset + PARTITION_TABLE_SIZE
    last_end = table_end
    last: Partition | None = None
    for row in rows:
        offset, size = row.offset, row.size
        if is_primary_region(row.type, row.subtype):
            assert offset is not None
            partitions.append(_partition(row, offset, size))
            continue
        if offset is not None and offset < last_end:
            first = partitions[0] if partitions else None
            is_first = first is None or (first.name, first.type, first.subtype, first.offset,
                                         first.size) == (row.name, row.type, row.subtype,
                                                         offset, size)
            if is_first:
                errors.append(error(
                    f"partition '{row.name}' at 0x{offset:x} overlaps the partition table "
                    f"(0x{options.table_offset:x}-0x{table_end - 1:x})", row.loc,
                    f"use a free offset 0x{last_end:x} or higher, or leave the offset empty"))
            else:
                prev = f"'{last.name}' ends at 0x{last_end:x}" if last else f"0x{last_end:x}"
                notes = ((last.loc, f"'{last.name}' is defined here"),) if last else ()
                if last is not None and offset > last.offset:
                    # Usually the partition before grew too big; shrinking it keeps the layout.
                    fix = (f"shrink '{last.name}' to 0x{offset - last.offset:x} so it ends at "
                           f"0x{offset:x}, or start '{row.name}' at 0x{last_end:x} or later "
                           "(or leave its offset empty)")
                else:
                    fix = ("offsets must increase down the file: give it an offset of "
                           f"0x{last_end:x} or more, or leave its offset empty")
                errors.append(error(
                    f"partition '{row.name}' at 0x{offset:x} overlaps the previous partition: "
                    f"{prev}", row.loc, fix, notes))
        if offset is None:
            offset = align_up(last_end, alignment(row.type))
        if size < 0:
            end = -size
            size = end - offset
            if size < 0:
                errors.append(error(
                    f"partition '{row.name}' ends at 0x{end:x} (negative size) but starts at "
                    f"0x{offset:x}", row.loc,
                    "a negative size is an end address; it must lie after the offset"))
        part = _partition(row, offset, size)
        partitions.append(part)
        last = part
        last_end = offset + size
    if errors:
        raise PartkitError(errors)
    return PartitionTable(partitions, path)


def _partition(row: CsvRow, offset: int, size: int) -> Partition:
    return Partition(row.name, row.type, row.subtype, offset, size, row.encrypted,
                     row.readonly, row.loc)
