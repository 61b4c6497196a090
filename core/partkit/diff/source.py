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

from partkit.common.errors import PartkitError
from partkit.common.record import Record
from partkit.table import binary
from partkit.table.csvparse import PARTITION_TABLE_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "TableSide",
    "has_md5_row",
    "load_side",
    "read_source",
    "register_scheme",
]

KINDS = ("csv", "binary", "image", "device")


class Field(Record):
    """What the flash around the table says (an image or a device only).

    ``header_flash_size``: byte 3 of the bootloader image header, the size the bootloader
    checks partitions against (``header_where`` names the place). ``otadata``: the bytes of
    the table's otadata partition, whose active record says which slot boots.
    ``app_images``: the offsets of the app slots that start with an image's magic byte, or
    lie past the end of the source (unknown, so not taken for blank): the bootloader skips
    a slot without an image and boots the next one it tries.
    """

    __slots__ = ("app_images", "header_flash_size", "header_where", "otadata")

    header_flash_size: int | None
    header_where: str | None
    otadata: bytes | None
    app_images: frozenset[int] | None

    def __init__(self, header_flash_size: int | None = None, header_where: str | None = None,
                 otadata: bytes | None = None, app_images: frozenset[int] | None = None,
                 ) -> None:
        self._init(header_flash_size=header_flash_size, header_where=header_where,
                   otadata=otadata, app_images=app_images)


class RawSource(Record):
    """What a source yields before parsing: table bytes and what the source knows."""

    __slots__ = ("data", "field", "flash_size", "kind", "label")

    data: bytes
    kind: str  # one of KINDS
    label: str  # shown in diagnostics (``dump.bin@0x8000``)
    flash_size: int | None  # the flash behind the source, when it knows
    field: Field

    def __init__(self, data: bytes, kind: str, label: str, flash_size: int | None,
                 field: Field | None = None) -> None:
        self._init(data=data, kind=kind, label=label, flash_size=flash_size,
                   field=field if field is not None else Field())


class TableSide(Record):
    """One side of a diff: the table and the facts the rules compare."""

    __slots__ = ("field", "flash_size", "kind", "md5", "source", "table", "table_offset",
                 "warnings")

    table: PartitionTable
    source: str
    kind: str
    table_offset: int
    md5: bool  # the binary has (or the CSV will be encoded with) an MD5 row
    flash_size: int | None
    warnings: tuple[Diagnostic, ...]
    field: Field

    def __init__(self, table: PartitionTable, source: str, kind: str, table_offset: int,
                 md5: bool, flash_size: int | None = None,
                 warnings: tuple[Diagnostic, ...] = (), field: Field | None = None) -> None:
        self._init(table=table, source=source, kind=kind, table_offset=table_offset, md5=md5,
                   flash_size=flash_size, warnings=warnings,
                   field=field if field is not None else Field())

    @property
    def active_seq(self) -> int | None:
        """The sequence number of OLD's active otadata record (None: none valid, unknown)."""
        if self.field.otadata is None:
            return None
        from partkit.flash.otadata import active_entry, decode

        entry = active_entry(decode(self.field.otadata))
        return None if entry is None else entry.seq

    @property
    def awaiting_verify(self) -> bool:
        """The active otadata record is ``new`` or ``pending_verify``: written by an app built
        with rollback, whose bootloader rolls back unless the app confirms itself."""
        if self.field.otadata is None:
            return False
        from partkit.flash.otadata import (
            STATE_NEW,
            STATE_PENDING_VERIFY,
            active_entry,
            decode,
        )

        entry = active_entry(decode(self.field.otadata))
        return entry is not None and entry.state in (STATE_NEW, STATE_PENDING_VERIFY)

    def rollback(self) -> Partition | None:
        """When the active record awaits verification, the slot the bootloader boots once it
        has marked that record aborted: the other record's, or the default without one."""
        if not self.awaiting_verify or self.field.otadata is None:
            return None
        from partkit.flash.bootpredict import boot_order
        from partkit.flash.otadata import active_entry, decode

        entries = decode(self.field.otadata)
        active = active_entry(entries)
        assert active is not None
        other = entries[1 - active.index]
        order = boot_order(self.table, other.seq if other.bootable else None, True)
        images = self.field.app_images
        found = [p for p in order if images is None or p.offset in images]
        return found[0] if found else None

    def booted(self) -> Partition | None:
        """The app slot the bootloader boots, from the otadata read with the table: the
        first slot in its order that holds an image (None when the side carries no otadata
        bytes, or no slot starts with an image: then it cannot be told)."""
        from partkit.flash.bootpredict import boot_choice, boot_order
        from partkit.table.names import DATA, SUBTYPE_DATA_OTA

        has = bool(self.table.find(DATA, SUBTYPE_DATA_OTA))
        if has and self.field.otadata is None:
            return None
        if not has and self.kind not in ("image", "device"):
            return None
        images = self.field.app_images
        if images is None:
            return boot_choice(self.table, self.active_seq, has)
        found = [p for p in boot_order(self.table, self.active_seq, has) if p.offset in images]
        return found[0] if found else None


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


def read_field(read: Callable[[int, int], bytes], size: int | None, table: bytes,
               table_offset: int, label: str) -> Field:
    """The bootloader header's flash size and the otadata bytes, through ``read(offset,
    length)`` on a flash of ``size`` bytes (None: unknown); missing pieces stay None."""
    from partkit.common.chips import BOOTLOADER_OFFSET
    from partkit.flash.preflight import header_flash_size
    from partkit.table.names import APP, DATA, SUBTYPE_DATA_OTA

    header = where = None
    for offset in sorted(set(BOOTLOADER_OFFSET.values())):
        if offset + 4 > table_offset or (size is not None and offset + 4 > size):
            continue
        head = read(offset, 4)
        if head[:1] == b"\xe9":
            header = header_flash_size(head)
            where = f"the bootloader header at {label}@0x{offset:x}, byte 3"
            break
    otadata = None
    try:
        parsed, _ = binary.decode(table, label)
    except PartkitError:  # an undecodable table is reported by load_side
        return Field(header, where)
    found = parsed.find(DATA, SUBTYPE_DATA_OTA)
    if found and found[0].size >= 0x1020 and (size is None or found[0].end <= size):
        otadata = read(found[0].offset, min(found[0].size, 0x2000))
    # past the end of an unpadded image the devices keep what they hold: not known blank
    images = frozenset(p.offset for p in parsed if p.type == APP and (
        (size is not None and p.offset >= size) or read(p.offset, 1) == b"\xe9"))
    return Field(header, where, otadata, images)


def _device_source(port: str, table_offset: int) -> RawSource:
    """The table sector of a connected chip (``port:/dev/ttyUSB0``, ``socket://host:N``),
    its bootloader header and otadata, read over one esptool connection (the
    ``partkit[device]`` extra)."""
    from partkit.device.session import Session
    from partkit.device.target import DeviceTarget

    with Session(port) as session:
        target = DeviceTarget(session)
        data = target.read_table_area(table_offset)
        field = read_field(target.read, session.flash_size, data, table_offset, port)
        return RawSource(data, "device", f"{port}@0x{table_offset:x}", session.flash_size,
                         field)


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
    from partkit.flash import imagefile
    from partkit.flash.tablearea import read_table_area  # through its journal and lock

    data = read_table_area(spec, table_offset, "--offset N (or --old-offset/--new-offset)")
    label = f"{spec}@0x{table_offset:x}"
    field = read_field(lambda o, n: imagefile.read_region(spec, o, n), size, data,
                       table_offset, spec)
    return RawSource(data, "image", label, size, field)


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
                     raw.flash_size, loaded.warnings, raw.field)
