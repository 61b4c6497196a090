"""FAT images in ESP-IDF's wear-levelled layout, the one FFat, ``esp_vfs_fat_spiflash_
mount_rw_wl`` and pioarduino's ``fatfs`` mount.

The partition, in 4 KiB sectors: one erased spare sector, the FAT volume, two copies of
the wear-levelling state, one config sector. Each state copy is one sector, or as many as
its 64-byte header plus 16 bytes per partition sector need. The state starts at position
0 with no moves, so logical sector N is physical sector N + 1 and the FAT volume is
stored as it is. Values (version 2, update rate 16, write size 16, temp buffer 32) and
the CRC-32 (zlib's, seeded with 0xFFFFFFFF) are those of ESP-IDF's wear_levelling
component and its image generator. The FAT volume itself is :mod:`partkit.data.fat`'s.
"""

from __future__ import annotations

import struct
import zlib

from partkit.common.errors import PartkitError, error
from partkit.data import fat

__all__ = ["SECTOR_SIZE", "build", "fat_sectors", "state_sectors", "wrap"]

SECTOR_SIZE = 4096
STATE_HEADER_SIZE = 64  # 8 words, 28 reserved bytes, CRC
STATE_RECORD_SIZE = 16  # per partition sector (the config's write size)
CONFIG_WORDS_SIZE = 32  # 8 words, then CRC and 12 bytes of alignment
VERSION = 2
UPDATE_RATE = 16
WRITE_SIZE = 16
TEMP_BUFFER_SIZE = 32
CRC_SEED = 0xFFFFFFFF
MIN_FAT_SECTORS = 8


def state_sectors(size: int) -> int:
    """Sectors one copy of the wear-levelling state takes in a partition of ``size``."""
    needed = STATE_HEADER_SIZE + STATE_RECORD_SIZE * (size // SECTOR_SIZE)
    return -(-needed // SECTOR_SIZE)


def fat_sectors(size: int) -> int:
    """Sectors left for the FAT volume: all but the spare, the two states and the config."""
    return size // SECTOR_SIZE - 2 - 2 * state_sectors(size)


def _crc(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data, CRC_SEED))


def wrap(volume: bytes, size: int) -> bytes:
    """``volume`` (exactly :func:`fat_sectors` sectors) in the layout, ``size`` bytes."""
    count = fat_sectors(size)
    if len(volume) != count * SECTOR_SIZE:
        raise ValueError(f"a FAT volume of {count} sectors is wrapped, not {len(volume)} bytes")
    device_id = zlib.crc32(volume)  # any value works; derived, so builds are reproducible
    header = struct.pack("<8I", 0, count + 1, 0, 0, UPDATE_RATE, SECTOR_SIZE, VERSION,
                         device_id) + bytes(28)
    state = (header + _crc(header)).ljust(state_sectors(size) * SECTOR_SIZE, b"\xff")
    words = struct.pack("<8I", 0, size, SECTOR_SIZE, SECTOR_SIZE, UPDATE_RATE, WRITE_SIZE,
                        VERSION, TEMP_BUFFER_SIZE)
    config = (words + _crc(words) + bytes(12)).ljust(SECTOR_SIZE, b"\xff")
    return b"\xff" * SECTOR_SIZE + volume + state + state + config


def build(source: str, size: int) -> bytes:
    """The wear-levelled FAT image of the files under ``source`` for a partition of
    ``size`` bytes."""

    if size % SECTOR_SIZE or fat_sectors(size) < MIN_FAT_SECTORS:
        raise PartkitError(error(
            f"a wear-levelled FAT partition needs {MIN_FAT_SECTORS} sectors of 4 KiB for "
            f"files plus 4 for wear levelling, not 0x{size:x} bytes"))
    return wrap(fat.build(source, fat_sectors(size) * SECTOR_SIZE), size)
