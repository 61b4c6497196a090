"""What a partition holds, told from its bytes: app image, otadata, NVS, file systems, erased.

Detection reads headers only (a few KiB per partition) plus one streaming pass, from the
end, to tell "erased" from "data"; an app image is walked segment by segment (streamed,
never held whole) so its checksum and SHA-256 are verified like ``esptool image-info``
does. The image is opened and locked once for all of it (:class:`imagefile.ImageReader`).

Signatures (format facts):
* ESP image: byte 0 = 0xE9 (walked and checked by :mod:`partkit.flash.appimage`).
* NVS: every 4 KiB page starts with a 32-byte header: state u32 (0xFFFFFFFE active,
  0xFFFFFFFC full, 0xFFFFFFF8 freeing, 0xFFFFFFF0 corrupt, 0xFFFFFFFF empty), sequence u32,
  version u8 (0xFE = format 2, 0xFF = format 1), 19 reserved bytes, and a CRC32 of bytes
  4..27 (ROM ``crc32_le(0xFFFFFFFF, ...)``).
* LittleFS: the superblock name "littlefs" at byte 8 of block 0 or block 1.
* FAT: a boot sector (0x55 0xAA at bytes 510..511 and "FAT" at byte 54 or 82) at the
  partition start, or one sector in (wear-levelling layout).
* SPIFFS (with SPIFFS_USE_MAGIC, as ESP-IDF builds it): the last object-id slot of block
  0's lookup page holds ``0x20140529 ^ page_size [^ block_count]`` truncated to 16 bits.
"""

from __future__ import annotations

import struct
import zlib

from partkit.common.errors import PartkitError
from partkit.common.record import Record
from partkit.flash import imagefile, otadata
from partkit.flash.appimage import ImageBytes, read_image
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_DATA_FAT,
    SUBTYPE_DATA_LITTLEFS,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
    SUBTYPE_DATA_SPIFFS,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable

__all__ = ["EXPECTED_CONTENTS", "Finding", "describe"]

SECTOR = 0x1000
NVS_STATES = {
    0xFFFFFFFE: "active",
    0xFFFFFFFC: "full",
    0xFFFFFFF8: "freeing",
    0xFFFFFFF0: "corrupt",
    0xFFFFFFFF: "empty",
}
_NVS_HEADER = struct.Struct("<II B 19x I")
SPIFFS_MAGIC = 0x20140529
MAX_APP_READ = 16 << 20

# What each data subtype may hold, as describe() names it (erased flash always may; other
# subtypes are not judged). The one table for image pre-flight and ``check --data``.
# A spiffs (0x82) partition may hold LittleFS: esp_littlefs looks its partition up by label
# with any data subtype, and Arduino-ESP32's LittleFS mounts the one labelled "spiffs".
# It may not hold FAT: ESP-IDF's FAT mounts (esp_vfs_fat_spiflash_mount_rw_wl/_ro) and
# Arduino's FFat only find data partitions of subtype fat (0x81), so FAT written to a
# spiffs partition (PlatformIO's fatfs uploadfs can do that) never mounts.
EXPECTED_CONTENTS: dict[int, tuple[str, ...]] = {
    SUBTYPE_DATA_NVS: ("nvs",),
    SUBTYPE_DATA_FAT: ("fat",),
    SUBTYPE_DATA_SPIFFS: ("spiffs", "littlefs"),
    SUBTYPE_DATA_LITTLEFS: ("littlefs",),
}


class Finding(Record):
    """The verdict for one partition: a kind keyword, a one-line summary, and details."""

    __slots__ = ("details", "kind", "summary")

    kind: str
    summary: str
    details: dict[str, object]

    def __init__(self, kind: str, summary: str, details: dict[str, object] | None = None) -> None:
        self._init(kind=kind, summary=summary, details=details or {})

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "summary": self.summary, **self.details}

    def __repr__(self) -> str:
        return f"Finding({self.kind!r}, {self.summary!r})"


def _crc(data: bytes) -> int:
    return zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


def _used_bytes(image: imagefile.ImageReader, part: Partition) -> int:
    """Offset just past the last non-0xFF byte of the partition (0 when fully erased)."""
    return image.last_not(part.offset, part.size)


def describe(image: str | imagefile.ImageReader, part: Partition,
             table: PartitionTable) -> Finding:
    """Sniff one partition of an image (a path, or an open reader for many partitions).

    The partition must lie inside the image.
    """
    if isinstance(image, str):
        with imagefile.open_image(image) as reader:
            return describe(reader, part, table)
    head = image.read(part.offset, min(part.size, 2 * SECTOR))
    if part.type == DATA and part.subtype == SUBTYPE_DATA_OTA and len(head) >= SECTOR + 32:
        return _otadata(head, table)
    for sniff in (_app, _nvs, _littlefs, _fat, _spiffs):
        found = sniff(image, part, head)
        if found is not None:
            return found
    used = _used_bytes(image, part)
    if used == 0:
        return Finding("erased", "erased (all 0xFF)")
    what = "app slot without an ESP image" if part.type == APP else "data"
    return Finding("data", f"{what}: unrecognised contents, {used} bytes up to the last "
                   "non-0xFF byte", {"used_bytes": used})


def _otadata(head: bytes, table: PartitionTable) -> Finding:
    entries = otadata.decode(head)
    count = sum(1 for p in table if p.type == APP and 0x10 <= p.subtype < 0x20)
    active = otadata.active_entry(entries)
    slot = otadata.active_slot(entries, count)
    detail = [
        {"sector": e.index, "ota_seq": e.seq, "state": e.state_name, "crc": e.crc,
         "crc_ok": e.crc_ok, "valid": e.valid}
        for e in entries
    ]
    if all(e.erased for e in entries):
        boot = table.boot_default()
        summary = "otadata: both sectors erased; boots " + (
            f"the default app '{boot.name}'" if boot is not None else "nothing (no app)")
    elif active is None or slot is None:
        summary = "otadata: no valid entry (bad CRC or rolled back); boots the default app"
    else:
        summary = (f"otadata: ota_{slot} active (sector {active.index}, ota_seq {active.seq}, "
                   f"state {active.state_name})")
    bad = [e for e in entries if not e.erased and not e.crc_ok]
    if bad:
        summary += "; " + ", ".join(f"sector {e.index} has a bad CRC" for e in bad)
    return Finding("otadata", summary, {"entries": detail, "active_slot": slot})


def _app(image: imagefile.ImageReader, part: Partition, head: bytes) -> Finding | None:
    if not head or head[0] != 0xE9:
        return None

    def read(offset: int, length: int) -> bytes:
        return image.read(part.offset + offset, length)

    slot = ImageBytes(read, min(part.size, MAX_APP_READ, image.size - part.offset))
    try:
        info = read_image(slot, f"{image.path}@0x{part.offset:x}")
    except PartkitError as exc:
        message = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        return Finding("app", f"broken ESP image: {message}", {"valid": False})
    details: dict[str, object] = {
        "valid": True,
        "chip": info.chip,
        "image_size": info.measured_size,
    }
    parts = [f"ESP {info.kind} image, {info.measured_size} bytes"]
    if info.chip:
        parts.append(f"chip {info.chip}")
    desc = info.description
    if desc is not None:
        details.update(desc.as_dict())
        parts.append(f"'{desc.project_name}' {desc.version} (IDF {desc.idf_version}, "
                     f"built {desc.date} {desc.time})".replace(" ,", ","))
    return Finding("app", ", ".join(parts), details)


def _nvs(image: imagefile.ImageReader, part: Partition, head: bytes) -> Finding | None:
    if len(head) < 32 or part.size < SECTOR:
        return None
    state, _seq, _version, crc = _NVS_HEADER.unpack_from(head)
    if state not in NVS_STATES or state == 0xFFFFFFFF or crc != _crc(head[4:28]):
        return None
    counts: dict[str, int] = {}
    versions: set[int] = set()
    for index in range(part.size // SECTOR):
        raw = image.read(part.offset + index * SECTOR, 32)
        st, _s, ver, c = _NVS_HEADER.unpack_from(raw)
        name = NVS_STATES.get(st, "unknown")
        if st not in (0xFFFFFFFF,) and c != _crc(raw[4:28]):
            name = "bad-crc"
        counts[name] = counts.get(name, 0) + 1
        if st != 0xFFFFFFFF:
            versions.add(ver)
    fmt = "2" if versions == {0xFE} else "1" if versions == {0xFF} else "mixed"
    listing = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return Finding("nvs", f"NVS (format {fmt}): {part.size // SECTOR} pages: {listing}",
                   {"pages": counts, "format": fmt})


def _littlefs(image: imagefile.ImageReader, part: Partition, head: bytes) -> Finding | None:
    for block in (0, 1):
        at = block * SECTOR + 8
        if head[at:at + 8] == b"littlefs":
            return Finding("littlefs", f"LittleFS (superblock in block {block})",
                           {"superblock_block": block})
    return None


def _fat(image: imagefile.ImageReader, part: Partition, head: bytes) -> Finding | None:
    for start, layout in ((0, "raw"), (SECTOR, "wear-levelled")):
        sector = head[start:start + 512]
        if len(sector) == 512 and sector[510:512] == b"\x55\xaa" and (
            sector[54:57] == b"FAT" or sector[82:85] == b"FAT"
        ):
            label = (sector[82:90] if sector[82:85] == b"FAT" else sector[54:62])
            fs = label.decode("ascii", "replace").strip()
            return Finding("fat", f"FAT file system ({fs}, {layout} layout at +0x{start:x})",
                           {"fat_type": fs, "boot_sector": start})
    return None


def _spiffs(image: imagefile.ImageReader, part: Partition, head: bytes) -> Finding | None:
    for block_size in (SECTOR, 2 * SECTOR):
        if part.size % block_size:
            continue
        block_count = part.size // block_size
        for page_size in (256, 512, 128, 1024):
            pages_per_block = block_size // page_size
            lookup_pages = max(1, pages_per_block * 2 // page_size)
            at = lookup_pages * page_size - 2
            if at + 2 > len(head):
                continue
            (value,) = struct.unpack_from("<H", head, at)
            for magic in ((SPIFFS_MAGIC ^ page_size ^ block_count) & 0xFFFF,
                          (SPIFFS_MAGIC ^ page_size) & 0xFFFF):
                if value == magic:
                    return Finding("spiffs", f"SPIFFS (page {page_size}, block {block_size})",
                                   {"page_size": page_size, "block_size": block_size})
    return None
