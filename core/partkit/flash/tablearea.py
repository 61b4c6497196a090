"""The partition table area of a flash image file: the bytes a table is decoded from.

One reader for every command that takes its table out of an image (``image info/read/...``,
``diff`` with an image side), so they refuse a short image or a missing table alike.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.flash import imagefile
from partkit.table.binary import MAGIC, MAX_TABLE_BYTES, MD5_MARKER

__all__ = ["read_table_area"]


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
