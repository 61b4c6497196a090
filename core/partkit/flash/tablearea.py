"""The partition table area of a flash image file: the bytes a table is decoded from.

One reader for every command that takes its table out of an image (``image info/read/...``,
``diff`` with an image side), so they refuse a short image or a missing table alike.
"""

from __future__ import annotations

from partkit.common.chips import BOOTLOADER_OFFSET, find_chip
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.flash import imagefile
from partkit.flash.appimage import IMAGE_MAGIC, header_flash_size
from partkit.table.binary import MAGIC, MAX_TABLE_BYTES, MD5_MARKER
from partkit.table.source import RawTable, Readers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.options import TableOptions

__all__ = ["IMAGE_READERS", "bootloader_flash_size", "read_image_table", "read_table_area"]

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


def bootloader_flash_size(image: str, options: TableOptions) -> tuple[int | None, str | None]:
    """The flash size an image's bootloader header declares, and where that header is.

    The bootloader sits at the chip's ROM offset (``options.chip``), else at the first
    offset any chip uses, below the table, that starts with the image magic. (None, None)
    when no bootloader header is found or its size code is unknown.
    """
    chip = find_chip(options.chip)
    offsets = ([chip.bootloader_offset] if chip is not None
               else sorted(set(BOOTLOADER_OFFSET.values())))
    size = imagefile.image_size(image)
    for offset in offsets:
        if offset + 4 > min(size, options.table_offset):
            continue
        head = imagefile.read_region(image, offset, 4)
        if head[0] != IMAGE_MAGIC:
            continue
        found = header_flash_size(head)
        if found is None:
            return None, None
        return found, f"the bootloader header at 0x{offset:x} of {image}"
    return None, None


def read_image_table(image: str, options: TableOptions, give: str = _GIVE) -> RawTable:
    """The table area of a flash image or dump, with the flash size its bootloader declares."""
    offset = options.table_offset
    data = read_table_area(image, offset, give)
    flash_size, origin = bootloader_flash_size(image, options)
    return RawTable(data, "image", f"{image}@0x{offset:x}", flash_size, origin)


IMAGE_READERS = Readers(image=read_image_table)
