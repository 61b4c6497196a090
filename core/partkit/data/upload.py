"""Which partition ``pio run -t uploadfs`` writes the ``buildfs`` image to, and does it fit?

platform-espressif32 takes the *last* data partition whose subtype is spiffs, fat or
littlefs (pioarduino: the one named by ``board_build.filesystem_partition`` when set).
For ``board_build.filesystem = fatfs`` it writes 4 KiB past the partition start and
counts the size 4 KiB smaller. partkit checks the whole image file against that region.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.data.check import check_data
from partkit.table.names import DATA

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.data.check import DataCheck
    from partkit.table.model import Partition, PartitionTable

__all__ = ["FS_SUBTYPES", "check_fs_image", "uploadfs_partition"]

FS_SUBTYPES = (0x82, 0x81, 0x83)  # spiffs, fat, littlefs
FATFS_SKIP = 0x1000


def uploadfs_partition(table: PartitionTable, name: str | None = None) -> Partition:
    """The partition uploadfs writes to; raises PartkitError when there is none."""
    if name:
        from partkit.data import find_partition

        return find_partition(table, name)
    found = [p for p in table if p.type == DATA and p.subtype in FS_SUBTYPES]
    if not found:
        raise PartkitError(error(
            f"{table.path or 'the table'} has no spiffs, fat or littlefs data partition, so "
            "uploadfs has nowhere to write the file-system image", None,
            "add one, e.g. 'spiffs, data, spiffs, , 1M' (PlatformIO uses the last one)"))
    return found[-1]


def check_fs_image(table: PartitionTable, image: str, *, name: str | None = None,
                   filesystem: str = "") -> tuple[DataCheck, str]:
    """Check ``image`` against the uploadfs target; returns the check and a sentence
    saying where the image goes and why that partition."""
    part = uploadfs_partition(table, name)
    result = check_data(table, part.name, image)
    why = (f"board_build.filesystem_partition = {name}" if name else
           "the last spiffs/fat/littlefs data partition")
    if filesystem.lower() == "fatfs":
        # The platform skips the first sector (FS_START += 4096, FS_SIZE -= 4096).
        if part.size <= FATFS_SKIP:
            raise PartkitError(error(f"partition '{part.name}' is too small for fatfs",
                                     part.loc))
        result = check_data(table.replace(partitions=tuple(
            q.replace(offset=q.offset + FATFS_SKIP, size=q.size - FATFS_SKIP)
            if q is part else q for q in table)), part.name, image)
        why += ", 4 KiB in (fatfs)"
    where = (f"uploadfs writes {image} to '{part.name}' at {result.partition.offset:#x} "
             f"({result.partition.size:#x} bytes; {why})")
    return result, where

