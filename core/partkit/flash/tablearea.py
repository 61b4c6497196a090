"""The partition table area of a flash image file: the bytes a table is decoded from.

One reader for every command that takes its table out of an image (``image info/read/...``,
``diff`` with an image side), so they refuse a short image or a missing table alike.
"""

from __future__ import annotations

import os
import sys

from partkit.common.chips import BOOTLOADER_OFFSET, CHIP_IDS
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.fileio import read_stream
from partkit.common.record import Record
from partkit.flash import imagefile
from partkit.flash.appimage import (
    IMAGE_MAGIC,
    ImageBytes,
    header_flash_size,
    read_image,
    size_code_note,
)
from partkit.table import binary
from partkit.table.binary import MAGIC, MAX_TABLE_BYTES, MD5_MARKER
from partkit.table.codec import Loaded, load_table
from partkit.table.names import APP, DATA, SUBTYPE_DATA_OTA
from partkit.table.source import (
    HEADER_ORIGIN,
    Field,
    FlashSize,
    RawTable,
    Readers,
    judge_flash_size,
    read_table_input,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.table.options import TableOptions

__all__ = [
    "IMAGE_READERS",
    "TableInput",
    "bootloader_header_at",
    "load_table_file",
    "looks_like_flash_image",
    "read_field",
    "read_header_flash_size",
    "read_image_table",
    "read_table_area",
    "read_table_source",
    "table_flash_size",
]

# Where ``diff`` and ``image`` commands point when the table is not at the offset given.
_GIVE = "--offset N (or --table FILE)"


def read_table_area(image: str, offset: int, give: str) -> bytes:
    """The ``MAX_TABLE_BYTES`` at ``offset`` of ``image``, read through its journal and lock.

    Raises PartkitError when the image ends before the area does or the area starts with
    neither a table entry nor the MD5 row (gen writes an empty table as the MD5 row alone).
    ``give`` names the options that point elsewhere (``--offset N or --table FILE``).
    """
    size = imagefile.image_size(image)
    end = offset + MAX_TABLE_BYTES
    if size < end:
        raise PartkitError(error(
            f"truncated image: {size} bytes (0x{size:x}), too short to hold the partition table "
            f"at 0x{offset:x} (needs 0x{end:x})", SourceLocation(image),
            f"is this a complete flash image? give {give} if the table is elsewhere"))
    data = imagefile.read_region(image, offset, MAX_TABLE_BYTES)
    if data[:2] != MAGIC and data[:16] != MD5_MARKER:
        raise PartkitError(error(
            f"no partition table at 0x{offset:x} (found bytes {data[:4].hex(' ')}, expected "
            "aa 50)", SourceLocation(image),
            f"give {give}; 'partkit image inspect' searches the image"))
    return data


def bootloader_header_at(read: Callable[[int, int], bytes], size: int | None,
                         table_offset: int, bootloader_offset: int | None = None,
                         ) -> tuple[int, bytes] | None:
    """Where the bootloader image whose header a device reads starts, and its first 16
    bytes as read there (None: no such image; one read per offset tried, for devices).

    ``bootloader_offset`` (the chip's, when known) is the only place the ROM loads it from;
    without it, the first offset below the table any chip's ROM loads it from that starts
    with the image magic and whose chip id (bytes 12-13) is not a chip whose ROM loads it
    elsewhere (an esp32c3 bootloader at 0x1000 is never run)."""
    offsets = (sorted(set(BOOTLOADER_OFFSET.values())) if bootloader_offset is None
               else [bootloader_offset])
    for offset in offsets:
        if offset + 4 > table_offset or (size is not None and offset + 4 > size):
            continue
        head = read(offset, 16)
        if head[0] != IMAGE_MAGIC:
            continue
        chip = CHIP_IDS.get(int.from_bytes(head[12:14], "little")) if len(head) >= 14 else None
        if bootloader_offset is None and chip is not None and BOOTLOADER_OFFSET[chip] != offset:
            continue
        return offset, head
    return None


def read_header_flash_size(read: Callable[[int, int], bytes], size: int | None,
                           table_offset: int, label: str, bootloader_offset: int | None = None,
                           ) -> tuple[int | None, str | None]:
    """The flash size in the bootloader's image header (:func:`bootloader_header_at`) and
    where it was read (None, None without one). A size code the bootloader does not know
    (0x8-0xF) is the 2MB it then takes, and the place says so."""
    found = bootloader_header_at(read, size, table_offset, bootloader_offset)
    if found is None:
        return None, None
    offset, head = found
    where = f"{HEADER_ORIGIN}{label}@0x{offset:x}, byte 3"
    return header_flash_size(head[:4]), where + size_code_note(head[:4])


def read_field(read: Callable[[int, int], bytes], size: int | None, table: bytes,
               table_offset: int, label: str, bootloader_offset: int | None = None) -> Field:
    """The bootloader header's flash size and the otadata bytes, through ``read(offset,
    length)`` on a flash of ``size`` bytes (None: unknown); missing pieces stay None.

    The bootloader is found at ``bootloader_offset`` (the chip's), or without it at the
    first offset any chip's ROM loads it from, below the table, that starts with the image
    magic (:func:`read_header_flash_size`).
    """
    header, where = read_header_flash_size(read, size, table_offset, label, bootloader_offset)
    otadata = None
    try:
        parsed, _ = binary.decode(table, label)
    except PartkitError:  # an undecodable table is reported when the table is decoded
        return Field(header, where)
    found = parsed.find(DATA, SUBTYPE_DATA_OTA)
    if found and found[0].size >= 0x1020 and (size is None or found[0].end <= size):
        otadata = read(found[0].offset, min(found[0].size, 0x2000))
    # past the end of an unpadded image the devices keep what they hold: not known blank
    images = frozenset(p.offset for p in parsed if p.type == APP and (
        (size is not None and p.offset >= size) or read(p.offset, 1) == b"\xe9"))
    return Field(header, where, otadata, images)


def read_image_table(image: str, options: TableOptions, give: str = _GIVE) -> RawTable:
    """The table area of a flash image or dump, its length, and what its bootloader header
    (at ``options.primary_bootloader_offset``, which ``--chip`` sets, when known) and
    otadata say (:func:`read_field`)."""
    offset = options.table_offset
    data = read_table_area(image, offset, give)
    size = imagefile.image_size(image)
    field = read_field(lambda at, n: imagefile.read_region(image, at, n), size, data,
                       offset, image, options.primary_bootloader_offset)
    return RawTable(data, "image", f"{image}@0x{offset:x}", size, field)


IMAGE_READERS = Readers(image=read_image_table)


# --- a table argument that may be a flash image (partkit show, check, map, ...) -----------


class TableInput(Record):
    """What a table argument read to: the table bytes, the label for diagnostics
    (``dump.bin@0x8000`` for an image), and whether it came out of a flash image."""

    __slots__ = ("data", "image", "label")

    data: bytes
    label: str
    image: bool

    def __init__(self, data: bytes, label: str, image: bool = False) -> None:
        self._init(data=data, label=label, image=image)


def looks_like_flash_image(head: bytes, size: int) -> bool:
    """A flash image or dump rather than a table: larger than a table, starting with an
    ESP image, erased flash or binary bytes, but not with a table entry (a signed table
    sector is 0x1000 bytes)."""
    if (size <= binary.MAX_TABLE_BYTES or head[:2] in (binary.MAGIC, b"\xff\xfe", b"\xfe\xff")
            or head[:16] == binary.MD5_MARKER):
        return False  # a table, or a UTF-16 CSV (its NULs are text)
    return head[:1] == b"\xe9" or head[:32] == b"\xff" * 32 or b"\x00" in head


def _single_esp_image(path: str, size: int) -> bool:
    """The file is one ESP app or bootloader image (not a merged flash image, which goes
    on past its bootloader)."""
    with open(path, "rb") as f:
        def read(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        if read(0, 1) != b"\xe9":
            return False
        try:
            info = read_image(ImageBytes(read, size), path)
        except PartkitError:
            return False
    return info.is_image and size - info.measured_size < 0x10000  # at most padding


def _table_starts_at(path: str, offset: int) -> bool:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(2) == MAGIC


def read_table_source(path: str, table_offset: int) -> TableInput:
    """A table argument: a CSV or binary table, ``builtin:NAME``, ``-`` (stdin), or a flash
    image/dump, whose table is read at ``table_offset``."""

    if path == "-":


        return TableInput(read_stream(sys.stdin.buffer, "<stdin>"), "<stdin>")
    if path.startswith("builtin:") or not os.path.isfile(path):
        return TableInput(read_table_input(path), path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(binary.MAX_TABLE_BYTES)
    if not looks_like_flash_image(head, size):
        return TableInput(read_table_input(path), path)
    try:
        data = read_table_area(path, table_offset, "--offset N if the table is elsewhere")
    except PartkitError:
        if not _single_esp_image(path, size) or _table_starts_at(path, table_offset):
            raise  # a dump cut inside its table is truncated, not one app or bootloader
        # No table where a flash image has it: an app or bootloader .bin given as the table.
        raise PartkitError(error(
            "this is an ESP app or bootloader image (first byte 0xE9), not a partition table",
            SourceLocation(path), "give the partition table: the CSV, or the binary 'partkit "
            f"gen' writes; for a flash image whose table is not at 0x{table_offset:x}, "
            "--offset N")) from None
    return TableInput(data, f"{path}@0x{table_offset:x}", image=True)


def load_table_file(path: str, options: TableOptions) -> Loaded:
    """Load a table argument: a CSV or binary table, ``builtin:NAME``, ``-`` (stdin) or a
    flash image/dump (see :func:`read_table_source`)."""
    source = read_table_source(path, options.table_offset)
    return load_table(source.data, source.label, options)


def table_flash_size(path: str, options: TableOptions) -> FlashSize:
    """The flash size a table argument is judged against and where it came from, by
    ``table.source``'s one rule (:func:`~partkit.table.source.judge_flash_size`): for a
    flash image or dump its bootloader header's size (with a warning when that overrules
    ``--flash-size``), else ``--flash-size``, else a full dump's length; for a table file
    ``--flash-size``. So show, check and map judge an image as diff and device do."""

    if path == "-" or path.startswith("builtin:") or not os.path.isfile(path):
        return FlashSize.given(options.flash_size)
    if not read_table_source(path, options.table_offset).image:
        return FlashSize.given(options.flash_size)
    return judge_flash_size(read_image_table(path, options), options)
