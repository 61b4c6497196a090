"""Where a table comes from: a CSV, a binary table, a flash image or dump, or a device.

A *side* of a diff is the table plus the facts around it that the rules need: the table
offset, whether the binary carries an MD5 row, and the flash size when the source knows it
(a flash image is as large as the flash it was read from).

Sources are found by the text the user typed: ``scheme:rest`` for a registered scheme
(:func:`register_scheme`), a connected chip (``port:/dev/ttyUSB0`` or an esptool URL such
as ``socket://host:port``: its table sector, over one esptool connection), else a
file whose bytes say what it is.
"""

from __future__ import annotations

import os

from partkit.common.record import Record
from partkit.table import binary
from partkit.table.csvparse import PARTITION_TABLE_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.common.errors import Diagnostic
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "TableSide",
    "has_md5_row",
    "load_side",
    "read_source",
    "register_scheme",
]

KINDS = ("csv", "binary", "image", "device")


class RawSource(Record):
    """What a source yields before parsing: table bytes and what the source knows."""

    __slots__ = ("data", "flash_size", "kind", "label")

    data: bytes
    kind: str  # one of KINDS
    label: str  # shown in diagnostics (``dump.bin@0x8000``)
    flash_size: int | None  # the flash behind the source, when it knows

    def __init__(self, data: bytes, kind: str, label: str, flash_size: int | None) -> None:
        self._init(data=data, kind=kind, label=label, flash_size=flash_size)


class TableSide(Record):
    """One side of a diff: the table and the facts the rules compare."""

    __slots__ = ("flash_size", "kind", "md5", "source", "table", "table_offset", "warnings")

    table: PartitionTable
    source: str
    kind: str
    table_offset: int
    md5: bool  # the binary has (or the CSV will be encoded with) an MD5 row
    flash_size: int | None
    warnings: tuple[Diagnostic, ...]

    def __init__(self, table: PartitionTable, source: str, kind: str, table_offset: int,
                 md5: bool, flash_size: int | None = None,
                 warnings: tuple[Diagnostic, ...] = ()) -> None:
        self._init(table=table, source=source, kind=kind, table_offset=table_offset, md5=md5,
                   flash_size=flash_size, warnings=warnings)


# scheme -> reader(rest_of_spec, table_offset) -> RawSource
_SCHEMES: dict[str, Callable[[str, int], RawSource]] = {}


def register_scheme(scheme: str, reader: Callable[[str, int], RawSource]) -> None:
    """Make ``scheme:...`` sources readable (e.g. a device port reading the table sector)."""
    _SCHEMES[scheme] = reader


def has_md5_row(data: bytes) -> bool:
    """True when a binary table has an MD5 row before its end marker."""
    for start in range(0, len(data) - binary.ENTRY_SIZE + 1, binary.ENTRY_SIZE):
        row = data[start:start + binary.ENTRY_SIZE]
        if row == binary.END_MARKER:
            return False
        if row[:16] == binary.MD5_MARKER:
            return True
    return False


def _looks_like_image(head: bytes, size: int) -> bool:
    """A flash image: larger than a table sector and not text (ESP image, erased, NULs)."""
    if size <= PARTITION_TABLE_SIZE:  # 0xC00 bytes, or the whole sector when signed
        return False
    return head[:1] == b"\xe9" or head[:32] == b"\xff" * 32 or b"\x00" in head


def _device_source(port: str, table_offset: int) -> RawSource:
    """The table sector of a connected chip (``port:/dev/ttyUSB0``, ``socket://host:N``),
    read over one esptool connection (the ``partkit[device]`` extra)."""
    from partkit.device.session import Session
    from partkit.device.target import DeviceTarget

    with Session(port) as session:
        data = DeviceTarget(session).read_table_area(table_offset)
        return RawSource(data, "device", f"{port}@0x{table_offset:x}", session.flash_size)


# esptool's port URLs name a device too; ``port:`` says so for a plain serial port.
_DEVICE_URLS = ("socket://", "rfc2217://")


def read_source(spec: str, table_offset: int) -> RawSource:
    """The table bytes behind ``spec``; raises PartkitError for unreadable sources."""
    if spec.startswith(_DEVICE_URLS):
        return _device_source(spec, table_offset)
    if spec == "-":
        from partkit.table.codec import read_table_source

        data = read_table_source(spec, table_offset).data
        return RawSource(data, "binary" if binary.looks_binary(data) else "csv", "<stdin>",
                         None)
    scheme, sep, rest = spec.partition(":")
    if sep and scheme == "port":
        return _device_source(rest, table_offset)
    if sep and scheme in _SCHEMES and not os.path.exists(spec):
        return _SCHEMES[scheme](rest, table_offset)
    from partkit.common.fileio import read_input

    try:
        size = os.path.getsize(spec)
        with open(spec, "rb") as f:
            head = f.read(PARTITION_TABLE_SIZE)
    except OSError:
        read_input(spec)  # raises the standard diagnostic (no such file, a directory, ...)
        raise
    if not _looks_like_image(head, size):
        data = read_input(spec)
        return RawSource(data, "binary" if binary.looks_binary(data) else "csv", spec, None)
    from partkit.flash.tablearea import read_table_area  # through its journal and lock

    data = read_table_area(spec, table_offset, "--offset N (or --old-offset/--new-offset)")
    label = f"{spec}@0x{table_offset:x}"
    return RawSource(data, "image", label, size)


def load_side(spec: str, options: TableOptions) -> TableSide:
    """Read and decode one side (gen's layout rules are the caller's: ``options.verify``).

    Binary tables are read with or without their MD5 row as found; ``options.md5`` only
    says whether a CSV will be encoded with one.
    """
    from partkit.table.codec import load_table

    raw = read_source(spec, options.table_offset)
    is_csv = raw.kind == "csv"
    md5 = options.md5 if is_csv else has_md5_row(raw.data)
    loaded = load_table(raw.data, raw.label,
                        options.replace(md5=options.md5 if is_csv else True, flash_size=None))
    return TableSide(loaded.table, raw.label, raw.kind, options.table_offset, md5,
                     raw.flash_size, loaded.warnings)
