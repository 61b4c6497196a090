"""One side of a diff: the table (read by :func:`partkit.table.source.read_raw`) plus the
facts around it that the rules need: the table offset, whether the binary carries an MD5
row, the flash size the source knows (an image's length, a device's flash chip) and what
the flash around the table says (:class:`~partkit.table.source.Field`: the bootloader
header's flash size, the otadata bytes).

A side is a CSV, a binary table, ``builtin:NAME``, a flash image or dump, or a connected
chip (``port:/dev/ttyUSB0`` or an esptool URL such as ``socket://host:port``).
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.common.record import Record
from partkit.device.ops import ALL_READERS
from partkit.flash.bootpredict import boot_choice, boot_order
from partkit.flash.otadata import STATE_NEW, STATE_PENDING_VERIFY, active_entry, decode
from partkit.flash.tablearea import read_field
from partkit.table import binary
from partkit.table.names import DATA, SUBTYPE_DATA_OTA
from partkit.table.source import Field, has_md5_row, read_raw
from partkit.table.source import decode as decode_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["Field", "TableSide", "has_md5_row", "load_side", "read_field"]


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

        entry = active_entry(decode(self.field.otadata))
        return None if entry is None else entry.seq

    @property
    def awaiting_verify(self) -> bool:
        """The active otadata record is ``new`` or ``pending_verify``: written by an app built
        with rollback, whose bootloader rolls back unless the app confirms itself."""
        if self.field.otadata is None:
            return False

        entry = active_entry(decode(self.field.otadata))
        return entry is not None and entry.state in (STATE_NEW, STATE_PENDING_VERIFY)

    def rollback(self) -> Partition | None:
        """When the active record awaits verification, the slot the bootloader boots once it
        has marked that record aborted: the other record's, or the default without one."""
        if not self.awaiting_verify or self.field.otadata is None:
            return None

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


def load_side(spec: str, options: TableOptions) -> TableSide:
    """Read and decode one side (gen's layout rules are the caller's: ``options.verify``).

    Binary tables are read with or without their MD5 row as found; ``options.md5`` only
    says whether a CSV will be encoded with one. The flash size is judged by the rules
    (``partkit.diff``), not while decoding.
    """
    raw = read_raw(spec, options, ALL_READERS)
    is_text = raw.kind in ("csv", "builtin")
    found = decode_table(raw, options.replace(md5=options.md5 if is_text else True,
                                              flash_size=None))
    md5 = options.md5 if is_text else has_md5_row(raw.data)
    if is_text:
        _check_flashable(found.table, md5)
    return TableSide(found.table, raw.label, raw.kind, options.table_offset, md5,
                     raw.flash_size, found.warnings, raw.field)


def _check_flashable(table: PartitionTable, md5: bool) -> None:
    """A CSV side must be a table a device can hold: gen_esp32part refuses to build one
    with a repeated name or more entries than 0xC00 bytes take, so no device runs it and
    a verdict about it would be made up (exit 2)."""

    problems = []
    if len(table) > binary.max_entries(md5):
        problems.append(binary.too_long(table, md5))
    seen: dict[str, Partition] = {}
    for part in table:
        first = seen.setdefault(part.name, part)
        if first is not part:
            problems.append(error(
                f"partition name '{part.name}' is used twice: no device can run this table "
                "(gen_esp32part refuses to build it)", part.loc,
                "give every partition its own name"))
    if problems:
        raise PartkitError(problems)
