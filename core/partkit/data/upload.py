"""Which partition ``pio run -t uploadfs`` writes the ``buildfs`` image to, and does it fit?

platform-espressif32 takes the *last* data partition whose subtype is spiffs, fat or
littlefs. Where the image goes inside it depends on the platform and its version
(:class:`UploadfsRules`, made by ``partkit.buildsys.platformio.uploadfs_rules``):

* platform-espressif32 (up to 6.x) and pioarduino before 55.03.36: for
  ``board_build.filesystem = fatfs`` the image is written 4 KiB past the partition start
  and counted 4 KiB smaller;
* pioarduino from 55.03.36: a fatfs image is the whole partition (ESP-IDF's
  wear-levelled layout), written at its start;
* pioarduino from 55.03.39 honours ``board_build.filesystem_partition`` (a
  spiffs/fat/littlefs data partition of that name, else the last one); older versions
  and platform-espressif32 ignore the option.

partkit checks the whole image file against that region.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.common.record import Record
from partkit.data.check import check_data
from partkit.table.names import DATA

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.data.check import DataCheck
    from partkit.table.model import Partition, PartitionTable

__all__ = ["FATFS_SKIP", "FS_SUBTYPES", "UploadfsRules", "check_fs_image", "uploadfs_partition"]

FS_SUBTYPES = (0x82, 0x81, 0x83)  # spiffs, fat, littlefs
FATFS_SKIP = 0x1000


class UploadfsRules(Record):
    """How one platform version places a ``buildfs`` image (see the module text)."""

    __slots__ = ("by_name", "fat_skip", "filesystem", "partition", "platform")

    platform: str  # who decides, for messages ("pioarduino 55.3.311")
    filesystem: str  # board_build.filesystem (spiffs, littlefs, fatfs)
    partition: str  # board_build.filesystem_partition as written ("" when unset)
    by_name: bool  # whether this platform honours that option
    fat_skip: int  # bytes a fatfs image starts past the partition start

    def __init__(self, platform: str = "platform-espressif32", filesystem: str = "",
                 partition: str = "", by_name: bool = False,
                 fat_skip: int = FATFS_SKIP) -> None:
        self._init(platform=platform, filesystem=filesystem, partition=partition,
                   by_name=by_name, fat_skip=fat_skip)


def uploadfs_partition(table: PartitionTable, name: str | None = None) -> Partition:
    """The partition uploadfs writes to: the spiffs/fat/littlefs data partition ``name``
    if there is one (as pioarduino picks it), else the last one; raises PartkitError
    when there is none."""
    found = [p for p in table if p.type == DATA and p.subtype in FS_SUBTYPES]
    if not found:
        raise PartkitError(error(
            f"{table.path or 'the table'} has no spiffs, fat or littlefs data partition, so "
            "uploadfs has nowhere to write the file-system image", None,
            "add one, e.g. 'spiffs, data, spiffs, , 1M' (PlatformIO uses the last one)"))
    named = [p for p in found if name and p.name == name]
    return (named or found)[-1]


def _why(part: Partition, rules: UploadfsRules) -> str:
    last = "the last spiffs/fat/littlefs data partition"
    if not rules.partition:
        return last
    if not rules.by_name:
        return (f"{last}; {rules.platform} ignores board_build.filesystem_partition = "
                f"{rules.partition}")
    if part.name == rules.partition:
        return f"board_build.filesystem_partition = {rules.partition}"
    return (f"{last}: board_build.filesystem_partition = {rules.partition} is no "
            f"spiffs/fat/littlefs data partition of the table, so {rules.platform} falls back")


def check_fs_image(table: PartitionTable, image: str,
                   rules: UploadfsRules | None = None) -> tuple[DataCheck, str]:
    """Check ``image`` against the uploadfs target; returns the check and a sentence
    saying where the image goes and why that partition."""

    rules = rules or UploadfsRules()
    part = uploadfs_partition(table, rules.partition if rules.by_name else None)
    why = _why(part, rules)
    skip = rules.fat_skip if rules.filesystem.lower() == "fatfs" else 0
    if skip:
        # The platform writes past the first sector (FS_START += 4096, FS_SIZE -= 4096).
        if part.size <= skip:
            raise PartkitError(error(f"partition '{part.name}' is too small for fatfs",
                                     part.loc))
        table = table.replace(partitions=tuple(
            q.replace(offset=q.offset + skip, size=q.size - skip) if q is part else q
            for q in table))
        why += f", fatfs 4 KiB in ({rules.platform})"
    elif rules.filesystem.lower() == "fatfs":
        why += f", fatfs: the whole wear-levelled partition ({rules.platform})"
    result = check_data(table, part.name, image)
    where = (f"uploadfs writes {image} to '{part.name}' at {result.partition.offset:#x} "
             f"({result.partition.size:#x} bytes; {why})")
    return result, where
