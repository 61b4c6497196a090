"""One side of a diff: the table (read by :func:`partkit.table.source.open_table`) plus the
facts around it that the rules need: the table offset, whether the binary carries an MD5
row, and the flash size with where it came from (``--flash-size``, an image's bootloader
header, a device's flash id: one rule, :func:`partkit.table.source.flash_size_of`).

A side is a CSV, a binary table, ``builtin:NAME``, a flash image or dump, or a connected
chip (``port:/dev/ttyUSB0`` or an esptool URL such as ``socket://host:port``).
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.device.ops import ALL_READERS
from partkit.table.source import decode, has_md5_row, read_raw

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["TableSide", "has_md5_row", "load_side"]


class TableSide(Record):
    """One side of a diff: the table and the facts the rules compare."""

    __slots__ = ("flash_size", "flash_size_origin", "kind", "md5", "source", "table",
                 "table_offset", "warnings")

    table: PartitionTable
    source: str
    kind: str
    table_offset: int
    md5: bool  # the binary has (or the CSV will be encoded with) an MD5 row
    flash_size: int | None
    flash_size_origin: str | None  # where flash_size came from (None: unknown)
    warnings: tuple[Diagnostic, ...]

    def __init__(self, table: PartitionTable, source: str, kind: str, table_offset: int,
                 md5: bool, flash_size: int | None = None,
                 warnings: tuple[Diagnostic, ...] = (),
                 flash_size_origin: str | None = None) -> None:
        self._init(table=table, source=source, kind=kind, table_offset=table_offset, md5=md5,
                   flash_size=flash_size, warnings=warnings,
                   flash_size_origin=flash_size_origin if flash_size is not None else None)


def load_side(spec: str, options: TableOptions) -> TableSide:
    """Read and decode one side (gen's layout rules are the caller's: ``options.verify``).

    Binary tables are read with or without their MD5 row as found; ``options.md5`` only
    says whether a CSV will be encoded with one. ``options.flash_size`` is not a decoding
    error here: the rules judge the flash size.
    """
    raw = read_raw(spec, options, ALL_READERS)
    is_text = raw.kind in ("csv", "builtin")
    found = decode(raw, options.replace(md5=options.md5 if is_text else True, flash_size=None))
    md5 = options.md5 if is_text else has_md5_row(raw.data)
    return TableSide(found.table, raw.label, found.kind, options.table_offset, md5,
                     raw.flash_size, found.warnings, raw.flash_size_origin)
