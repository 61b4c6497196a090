"""The checks and steps shared by ``partkit device``, ``partkit parttool`` and the Python API.

Every check runs before the target is asked to change anything: the table is read and
parsed, the partition selected, its read-only flag and the input size checked. Only then
does :class:`~partkit.device.target.Target` touch flash (or the image file).
"""

from __future__ import annotations

from partkit.common.chips import BOOTLOADER_OFFSET
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error, warning
from partkit.common.fileio import check_input, read_limited
from partkit.device.session import Session
from partkit.device.target import DeviceTarget, is_blank
from partkit.flash.tablearea import load_table_file, read_field, read_image_table
from partkit.table.source import RawTable, Readers, decode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.device.target import Target
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "ALL_READERS",
    "bootloader_offset",
    "check_fits",
    "check_input_file",
    "check_writable",
    "load_table",
    "read_device_table",
    "read_input_file",
]

def bootloader_offset(session: Session, options: TableOptions) -> int | None:
    """Where the connected chip's bootloader (and the header whose flash size it checks
    partitions against) is: ``--chip``/``--bootloader-offset``, else the chip's own."""
    if options.primary_bootloader_offset is not None:
        return options.primary_bootloader_offset
    return BOOTLOADER_OFFSET.get(session.chip_name)


def read_device_table(port: str, options: TableOptions) -> RawTable:
    """The table sector of a connected chip (``/dev/ttyUSB0``, ``socket://host:N``), its
    bootloader header and otadata, read over one esptool connection (the
    ``partkit[device]`` extra), with the flash size the chip's flash id gives."""
    offset = options.table_offset
    with Session(port) as session:
        target = DeviceTarget(session)
        data = target.read_table_area(offset)
        field = read_field(target.read, session.flash_size, data, offset, port,
                           bootloader_offset(session, options))
        return RawTable(data, "device", f"{port}@0x{offset:x}", session.flash_size, field)


# open_table's readers for commands that take any source: files, images, devices.
ALL_READERS = Readers(image=read_image_table, device=read_device_table)


def load_table(target: Target | None, options: TableOptions, table_file: str | None = None,
               ) -> tuple[PartitionTable, tuple[Diagnostic, ...]]:
    """The table from ``table_file`` (CSV or binary), else read off the target at
    ``options.table_offset``. Parsed (MD5 checked) but not re-verified, like parttool."""
    if table_file is not None:
        loaded = load_table_file(table_file, options)
        return loaded.table, loaded.warnings
    if target is None:
        raise PartkitError(error("no partition table: give a table file, a port or an image"))
    offset = options.table_offset
    data = target.read_table_area(offset, blank_ok=True)
    where = f"{target.label}@0x{offset:x}"
    found = decode(RawTable(data, "device", where), options)
    if is_blank(data):  # parttool's reading too; say so, it is rarely what was meant
        note = warning(f"the table area at 0x{offset:x} is blank (all 0xFF): an empty "
                       "partition table", SourceLocation(where),
                       "is the firmware flashed? is the table elsewhere (--offset)?")
        return found.table, (*found.warnings, note)
    return found.table, found.warnings


def check_writable(part: Partition, force: bool, where: str, verb: str = "write",
                   hint: str = "pass --force to change it anyway") -> None:
    """A partition flagged readonly changes only when forced (exit 2 otherwise)."""
    if part.readonly and not force:
        raise PartkitError(error(
            f"partition '{part.name}' is read-only; refusing to {verb} it",
            SourceLocation(where), hint))


def check_fits(part: Partition, size: int | None, source: str, where: str) -> None:
    """The whole input must fit the partition; a failed check changes nothing (exit 1).

    ``size`` is what :func:`partkit.common.fileio.read_limited` measured: a regular
    file's size, or the bytes a stream (pipe, ``/dev/zero``) gave; None when the stream
    gave more than the partition holds (only that much is known of it).
    """
    if size is not None and size <= part.size:
        return
    if size is not None:
        amount = (f"{size} bytes (0x{size:x}) do not fit partition '{part.name}' of "
                  f"{part.size} bytes (0x{part.size:x}): {size - part.size} bytes too many")
    else:
        amount = (f"more than {part.size} bytes (0x{part.size:x}) came from it: they do "
                  f"not fit partition '{part.name}' of {part.size} bytes")
    raise CheckFailed(error(
        amount, SourceLocation(source),
        f"use a smaller file or enlarge the partition; {where} was not changed"))


def check_input_file(path: str) -> None:
    """Before connecting: the input exists and is readable (nothing is read from it)."""

    check_input(path)


def read_input_file(part: Partition, path: str, where: str) -> bytes:
    """The bytes to write into ``part``: read once (a pipe cannot be read twice), at most
    the partition's size + 1, and refused (exit 1) when they do not fit."""

    data, size = read_limited(path, part.size)
    check_fits(part, size, path, where)
    return data
