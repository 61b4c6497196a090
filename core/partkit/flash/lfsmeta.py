"""The LittleFS superblock, read from raw bytes: what geometry an image was built for.

esp_littlefs mounts a partition with 4096-byte blocks and the partition's block count; a
superblock that says otherwise fails the mount (LFS_ERR_INVAL) and mount-with-format then
wipes the partition. Reading the superblock needs no package: a metadata block is a
revision count and a log of tags (big-endian, each XORed with the one before), closed by
CRC tags; the superblock entry is a name tag "littlefs" and an inline struct of six
little-endian words (version, block size, block count, name/file/attr limits).
"""

from __future__ import annotations

import struct
import zlib

from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEVICE_BLOCK_SIZE", "DEVICE_NAME_MAX", "Superblock", "geometry_problem",
           "name_max_problem", "read_superblock"]

DEVICE_BLOCK_SIZE = 4096  # esp_littlefs: one flash sector per block
DEVICE_NAME_MAX = 64  # esp_littlefs: CONFIG_LITTLEFS_OBJ_NAME_LEN, its default
_TYPE_SUPERBLOCK = 0x0FF  # the name tag of the superblock entry
_TYPE_INLINESTRUCT = 0x201
_TYPE_CCRC = 0x500  # commit CRC (type2 of the tag)
_STRUCT = struct.Struct("<6I")


class Superblock(Record):
    """What the newest committed superblock entry says."""

    __slots__ = ("block", "block_count", "block_size", "name_max", "revision", "version")

    block: int  # 0 or 1: the metadata block it was read from
    revision: int
    version: tuple[int, int]
    block_size: int
    block_count: int
    name_max: int

    def __init__(self, block: int, revision: int, version: tuple[int, int], block_size: int,
                 block_count: int, name_max: int) -> None:
        self._init(block=block, revision=revision, version=version, block_size=block_size,
                   block_count=block_count, name_max=name_max)

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def _crc(crc: int, data: bytes) -> int:
    """littlefs's CRC-32: the reflected 0x04c11db7 polynomial, no final inversion."""
    return zlib.crc32(data, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _dsize(tag: int) -> int:
    size = tag & 0x3FF
    return 4 + (0 if size == 0x3FF else size)


def _parse_block(data: bytes, block: int) -> Superblock | None:
    """The last committed superblock entry of one metadata block, if any."""
    if len(data) < 8:
        return None
    revision = struct.unpack_from("<I", data, 0)[0]
    crc = _crc(0xFFFFFFFF, data[:4])
    off, ptag = 0, 0xFFFFFFFF
    named = False
    pending: tuple[int, ...] | None = None
    found: tuple[int, ...] | None = None
    while True:
        off += _dsize(ptag)
        if off + 4 > len(data):
            break
        raw = data[off:off + 4]
        crc = _crc(crc, raw)
        tag = struct.unpack(">I", raw)[0] ^ ptag
        if tag & 0x80000000 or off + _dsize(tag) > len(data):
            break
        ptag = tag
        kind, ident = (tag >> 20) & 0x7FF, (tag >> 10) & 0x3FF
        if kind & 0x780 == _TYPE_CCRC:
            if off + 8 > len(data) or struct.unpack_from("<I", data, off + 4)[0] != crc:
                break  # a torn or foreign commit: what came before stands
            ptag ^= ((kind & 1) << 31)
            crc = 0xFFFFFFFF
            if pending is not None and named:
                found = pending
            pending = None
            continue
        body = data[off + 4:off + _dsize(tag)]
        crc = _crc(crc, body)
        if kind == _TYPE_SUPERBLOCK and ident == 0 and body == b"littlefs":
            named = True
        elif kind == _TYPE_INLINESTRUCT and ident == 0 and len(body) >= _STRUCT.size:
            pending = _STRUCT.unpack_from(body)
    if found is None:
        return None
    version, block_size, block_count, name_max = found[:4]
    return Superblock(block, revision, (version >> 16, version & 0xFFFF), block_size,
                      block_count, name_max)


def read_superblock(read: Callable[[int, int], bytes], size: int) -> Superblock | None:
    """The superblock of the LittleFS image that ``read(offset, length)`` reads (``size``
    bytes long), from whichever of blocks 0 and 1 holds the newer revision; None when
    neither holds a committed superblock."""
    first = _parse_block(read(0, min(size, DEVICE_BLOCK_SIZE)), 0)
    candidates = [first] if first is not None else []
    block_size = first.block_size if first is not None else DEVICE_BLOCK_SIZE
    if 0 < block_size <= size // 2:
        second = _parse_block(read(block_size, block_size), 1)
        if second is not None:
            candidates.append(second)
    if not candidates:
        return None
    best = candidates[0]
    for sb in candidates[1:]:
        if (sb.revision - best.revision) & 0x80000000 == 0 and sb.revision != best.revision:
            best = sb  # sequence comparison, as littlefs compares revision counts
    return best


def geometry_problem(sb: Superblock, partition_size: int) -> str | None:
    """Why esp_littlefs would not mount this superblock in a partition of that size."""
    blocks = partition_size // DEVICE_BLOCK_SIZE
    if sb.block_size != DEVICE_BLOCK_SIZE:
        return (f"the LittleFS superblock says {sb.block_size}-byte blocks; esp_littlefs "
                f"mounts with {DEVICE_BLOCK_SIZE}-byte blocks, fails (LFS_ERR_INVAL) and, "
                "with format-on-mount-failure, wipes the partition")
    if sb.block_count != blocks:
        return (f"the LittleFS superblock says {sb.block_count} blocks "
                f"({sb.block_count * sb.block_size} bytes), the partition has {blocks} "
                f"({partition_size} bytes): esp_littlefs mounts with the partition's block "
                "count, fails (LFS_ERR_INVAL) and, with format-on-mount-failure, wipes it")
    return None


def name_max_problem(sb: Superblock) -> str | None:
    """Why esp_littlefs with its default file-name limit would not mount this superblock
    (littlefs refuses a superblock whose name_max exceeds the mount's; 0 means none
    recorded). The limit is a build setting, so this is a warning, not a verdict."""
    if sb.name_max <= DEVICE_NAME_MAX:
        return None
    return (f"the LittleFS superblock says name_max {sb.name_max} (littlefs-python's and "
            f"littlefs's default is 255); esp_littlefs mounts with "
            f"CONFIG_LITTLEFS_OBJ_NAME_LEN, {DEVICE_NAME_MAX} unless the firmware raised it, "
            "and littlefs then fails the mount (LFS_ERR_INVAL) and format-on-mount-failure "
            "wipes the partition")
