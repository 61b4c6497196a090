"""Model -> text: the ESP-IDF CSV rendering, a readable summary and a JSON document."""

from __future__ import annotations

from partkit.common.numbers import format_size
from partkit.table.csvparse import PARTITION_TABLE_SIZE
from partkit.table.names import type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.names import SubtypeRegistry
    from partkit.table.options import TableOptions

__all__ = ["csv_size", "flags_text", "to_csv", "to_json", "to_summary"]

CSV_HEADER = "# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size, Flags\n"


def csv_size(size: int) -> str:
    """A partition size as gen_esp32part writes it in a CSV (``1M``, ``24K``, ``0x123``)."""
    return format_size(size, "csv")


def flags_text(p: Partition) -> str:
    return ":".join(f for f, on in (("encrypted", p.encrypted), ("readonly", p.readonly)) if on)


def csv_row(p: Partition, subtypes: SubtypeRegistry) -> str:
    return (f"{p.name},{type_name(p.type)},{subtypes.render(p.type, p.subtype)},"
            f"0x{p.offset:x},{csv_size(p.size)},{flags_text(p)}")


def to_csv(table: PartitionTable, subtypes: SubtypeRegistry) -> str:
    """The rendering gen_esp32part writes for binary input (no spaces, final newline)."""
    return CSV_HEADER + "".join(csv_row(p, subtypes) + "\n" for p in table)


def _regions(table: PartitionTable, options: TableOptions) -> list[tuple[str, int, int]]:
    """Fixed regions before the partitions: bootloader and table (name, offset, end)."""
    out: list[tuple[str, int, int]] = []
    bl = options.primary_bootloader_offset
    if bl is not None:
        out.append(("(bootloader)", bl, options.table_offset))
    elif options.table_offset > 0:
        # Chip unknown: the bootloader starts at 0x0, 0x1000 or 0x2000, but it is there.
        out.append(("(bootloader room)", 0, options.table_offset))
    out.append(("(partition table)", options.table_offset,
                options.table_offset + PARTITION_TABLE_SIZE))
    return out


def layout_rows(
    table: PartitionTable, options: TableOptions
) -> list[tuple[str, int, int, Partition | None]]:
    """Partitions, gaps and free space in flash order: (kind, offset, end, partition)."""
    rows: list[tuple[str, int, int, Partition | None]] = []
    cursor = options.table_offset + PARTITION_TABLE_SIZE
    for p in table.sorted_by_offset():
        if p.offset > cursor:
            rows.append(("gap", cursor, p.offset, None))
        rows.append(("partition", p.offset, p.end, p))
        cursor = max(cursor, p.end)
    if options.flash_size is not None and options.flash_size > cursor:
        rows.append(("free", cursor, options.flash_size, None))
    return rows


def to_summary(table: PartitionTable, options: TableOptions,
               flash_origin: str | None = None) -> str:
    """A readable table: name, type, subtype, offset, end, size, flags, gaps, free space.

    ``flash_origin`` says where ``options.flash_size`` came from (the flash line names it).
    """
    header = ("Name", "Type", "SubType", "Offset", "End", "Size", "Flags")
    lines: list[tuple[str, ...]] = []
    for name, start, end in _regions(table, options):
        lines.append((name, "", "", f"0x{start:x}", f"0x{end:x}", format_size(end - start), ""))
    for kind, start, end, p in layout_rows(table, options):
        if p is not None:
            lines.append((p.name, type_name(p.type), options.subtypes.render(p.type, p.subtype),
                          f"0x{p.offset:x}", f"0x{p.end:x}", format_size(p.size), flags_text(p)))
        else:
            label = "(gap)" if kind == "gap" else "(free to flash end)"
            lines.append((label, "", "", f"0x{start:x}", f"0x{end:x}", format_size(end - start),
                          ""))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {3, 4, 5}

    def fmt(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in lines]
    used = table.highest_end()
    if options.flash_size is not None:
        free = options.flash_size - used
        origin = f" (from {flash_origin})" if flash_origin is not None else ""
        room = (f"{format_size(free)} ({free} bytes) free at the end" if free >= 0 else
                f"{format_size(-free)} ({-free} bytes) past the end of the flash")
        out.append(f"flash {format_size(options.flash_size)}{origin}: partitions end at "
                   f"0x{used:x}, {room}")
    else:
        out.append(f"partitions end at 0x{used:x} ({format_size(used)} of flash)")
    return "\n".join(out) + "\n"


def partition_json(p: Partition, options: TableOptions) -> dict[str, object]:
    return {
        "name": p.name,
        "type": p.type,
        "type_name": type_name(p.type),
        "subtype": p.subtype,
        "subtype_name": options.subtypes.name(p.type, p.subtype),
        "offset": p.offset,
        "end": p.end,
        "size": p.size,
        "encrypted": p.encrypted,
        "readonly": p.readonly,
        "line": p.loc.line if p.loc is not None else None,
    }


def to_json(table: PartitionTable, options: TableOptions) -> dict[str, object]:
    """A stable, documented document (docs/show.md) of the table and its layout."""
    gaps = [{"offset": start, "size": end - start}
            for kind, start, end, _ in layout_rows(table, options) if kind == "gap"]
    used = table.highest_end()
    return {
        "schema": "partkit.table/1",
        "source": table.path,
        "table_offset": options.table_offset,
        "bootloader_offset": options.primary_bootloader_offset,
        "flash_size": options.flash_size,
        "partitions": [partition_json(p, options) for p in table],
        "gaps": gaps,
        "end": used,
        "free_at_end": None if options.flash_size is None else options.flash_size - used,
    }
