"""A device in the field, simulated: flash, ESP-IDF v6.0.2's 2nd-stage bootloader and the
app's first partition lookups, written from the C sources (not from partkit's rules, which
it judges):

- flash_partitions.c ``esp_partition_table_verify``: rows with magic 0x50AA, each ending
  within the chip size from the bootloader's own header; one MD5 row (0xEBEB), checked;
  the end marker (not as the first row); anything else fails;
- bootloader_utility.c: OTA slots indexed by subtype, ``app_count`` counts them,
  ``index_to_partition`` only below app_count; ``get_selected_boot_partition`` (no
  otadata partition: factory; both records invalid or app_count 0: factory, else slot 0;
  else the valid record with the higher seq, slot ``(seq - 1) % app_count``, factory when
  none is valid); ``load_boot_image`` tries the index, down to factory, up to app_count-1,
  then test;
- bootloader_common_loader.c: a record is invalid when seq is 0xFFFFFFFF or its state is
  invalid/aborted, valid when also its CRC matches;
- partition.c: an app built with CONFIG_PARTITION_TABLE_MD5 refuses a table without the MD5
  row; nvs_flash_init() opens data/nvs by the label ``nvs``, and NVS pages must be NVS pages
  at their own place or erased (free) pages.

Flash is sparse, one token per 4 KiB sector (absent: erased): the table sector and otadata
sectors hold their real bytes, app images a real ESP image header in their first sector and
a per-sector tag after it, NVS pages a tag naming their page. A plan is replayed with a power
cut after every sector operation of every step and in the middle of each one (a torn sector);
every state is booted.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

SECTOR = 0x1000
ERASED_SEQ = 0xFFFFFFFF
STATE_VALID, STATE_INVALID, STATE_ABORTED, STATE_UNDEFINED = 2, 3, 4, 0xFFFFFFFF
TORN = b"\x5a\xa5TORN"  # a sector whose erase or write was cut: neither old nor new
FLASH_CODE = {1 << 20: 0, 2 << 20: 1, 4 << 20: 2, 8 << 20: 3, 16 << 20: 4, 32 << 20: 5,
              64 << 20: 6, 128 << 20: 7}


def otadata_record(seq: int, state: int = STATE_UNDEFINED) -> bytes:
    crc = zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF
    return struct.pack("<I20sII", seq, b"\xff" * 20, state, crc)


def image_header(image_id: int, flash_size: int) -> bytes:
    """A real ESP image header (esp32c3: chip id 5) with the image's id after it."""
    common = struct.pack("<BBBBI", 0xE9, 1, 2, (FLASH_CODE.get(flash_size, 2) << 4), 0x42000000)
    extended = struct.pack("<BBBBHBHH4xB", 0xEE, 0, 0, 0, 5, 0, 0, 0xFFFF, 0)
    return common + extended + f"IMG{image_id}".encode()


@dataclass
class Device:
    """Flash contents plus the facts fixed in the device's firmware."""

    sectors: dict[int, bytes]
    table_offset: int
    header_flash_size: int
    app_md5: bool  # the app was built with CONFIG_PARTITION_TABLE_MD5
    old_bootloader: bool  # before v3.1: the MD5 row is a bad magic
    running_image: int
    image_sectors: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (first, n)
    uses_nvs: bool = True

    def copy(self) -> Device:
        return Device(dict(self.sectors), self.table_offset, self.header_flash_size,
                      self.app_md5, self.old_bootloader, self.running_image,
                      self.image_sectors, self.uses_nvs)

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray(b"\xff" * length)
        for s in range(offset // SECTOR, (offset + length + SECTOR - 1) // SECTOR):
            token = self.sectors.get(s)
            if token is None:
                continue
            base = s * SECTOR
            lo, hi = max(offset, base), min(offset + length, base + len(token))
            if lo < hi:
                out[lo - offset:hi - offset] = token[lo - base:hi - base]
        return bytes(out)

    def put(self, offset: int, data: bytes) -> None:
        """Program whole sectors' worth of data (one token per sector)."""
        for i in range(0, len(data), SECTOR):
            chunk = data[i:i + SECTOR].rstrip(b"\xff")
            s = (offset + i) // SECTOR
            if chunk:
                self.sectors[s] = chunk
            else:
                self.sectors.pop(s, None)

    def add_image(self, image_id: int, offset: int, length: int) -> None:
        first, n = offset // SECTOR, max(1, -(-length // SECTOR))
        self.image_sectors[image_id] = (first, n)
        self.sectors[first] = image_header(image_id, self.header_flash_size)
        for i in range(1, n):
            self.sectors[first + i] = f"IMG{image_id}:{i}".encode()


# --- the bootloader -------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int


def read_table(dev: Device) -> tuple[list[Row] | None, bool, str]:
    """(rows, has_md5, why) as esp_partition_table_verify sees the sector; rows None: fails."""
    data = dev.read(dev.table_offset, 0xC00)
    rows: list[Row] = []
    md5 = False
    for i in range(0, 0xC00, 32):
        chunk = data[i:i + 32]
        magic = chunk[:2]
        if magic == b"\xaa\x50":
            _, t, st, off, size, name, flags = struct.unpack("<2sBBII16sI", chunk)
            if off > dev.header_flash_size or off + size > dev.header_flash_size:
                return None, md5, f"partition at 0x{off:x} exceeds the header's flash size"
            rows.append(Row(name.rstrip(b"\0").decode("latin-1"), t, st, off, size, flags))
        elif magic == b"\xeb\xeb":
            if dev.old_bootloader:
                return None, md5, "MD5 row: bad magic for a bootloader before v3.1"
            if md5 or hashlib.md5(data[:i]).digest() != chunk[16:]:
                return None, md5, "MD5 row mismatch"
            md5 = True
        elif i and chunk[:2] == b"\xff\xff" and chunk[2:4] == b"\xff\xff":
            return rows, md5, ""
        else:
            return None, md5, "invalid magic (no table)"
    return None, md5, "no end marker"


def _otadata(dev: Device, part: Row) -> list[tuple[int, int, int]]:
    out = []
    for k in (0, 1):
        seq, _, state, crc = struct.unpack("<I20sII", dev.read(part.offset + k * SECTOR, 32))
        out.append((seq, state, crc))
    return out


def _crc_ok(rec: tuple[int, int, int]) -> bool:
    return rec[2] == zlib.crc32(struct.pack("<I", rec[0]), 0xFFFFFFFF) & 0xFFFFFFFF


def _invalid(rec: tuple[int, int, int]) -> bool:
    return rec[0] == ERASED_SEQ or rec[1] in (STATE_INVALID, STATE_ABORTED)


def image_at(dev: Device, part: Row) -> int | None:
    """The id of a whole, intact image starting at the partition that fits it."""
    head = dev.sectors.get(part.offset // SECTOR, b"")
    if not head.startswith(b"\xe9") or b"IMG" not in head:
        return None
    image_id = int(head[head.index(b"IMG") + 3:].decode())
    first, n = dev.image_sectors.get(image_id, (-1, 0))
    if first != part.offset // SECTOR or n * SECTOR > part.size:
        return None
    for i in range(1, n):
        if dev.sectors.get(first + i) != f"IMG{image_id}:{i}".encode():
            return None
    return image_id


def boot(dev: Device) -> tuple[int | None, list[Row] | None, str]:
    """(image id booted, table rows, why nothing boots)."""
    rows, _md5, why = read_table(dev)
    if rows is None:
        return None, None, why
    factory = test = None
    ota: dict[int, Row] = {}
    count = 0
    ota_info = None
    for r in rows:
        if r.type == 0 and r.subtype == 0:
            factory = r
        elif r.type == 0 and r.subtype == 0x20:
            test = r
        elif r.type == 0 and r.subtype & 0xF0 == 0x10:
            ota[r.subtype & 0x0F] = r
            count += 1
        elif r.type == 1 and r.subtype == 0:
            ota_info = r

    def at(index: int) -> Row | None:
        if index == -1:
            return factory
        return ota.get(index) if 0 <= index < count else None

    if ota_info is None:
        index = -1
    else:
        recs = _otadata(dev, ota_info)
        if (_invalid(recs[0]) and _invalid(recs[1])) or count == 0:
            index = -1 if factory is not None else 0
        else:
            valid = [r for r in recs if not _invalid(r) and _crc_ok(r)]
            # uint32_t arithmetic: seq 0 wraps to 0xFFFFFFFF before the modulo
            index = ((max(r[0] for r in valid) - 1) & 0xFFFFFFFF) % count if valid else -1
    order = [*range(index, -2, -1), *range(index + 1, count)]
    for i in order:
        part = at(i)
        if part is not None:
            found = image_at(dev, part)
            if found is not None:
                return found, rows, ""
    if test is not None:
        found = image_at(dev, test)
        if found is not None:
            return found, rows, ""
    return None, rows, "no bootable app partition"


def app_starts(dev: Device, rows: list[Row], md5: bool, nvs_pages: dict[int, int]) -> str:
    """Why the running app fails its first lookups ("" when it gets going)."""
    if dev.app_md5 and not md5:
        return "the app refuses a table without the MD5 row"
    if not dev.uses_nvs:
        return ""
    found = [r for r in rows if r.type == 1 and r.subtype == 2 and r.name == "nvs"]
    if not found:
        return "nvs_flash_init: no data/nvs partition labelled 'nvs'"
    nvs = found[0]
    if nvs.flags & 2:
        return "nvs_flash_init: 'nvs' is readonly"
    for s in range(nvs.offset // SECTOR, (nvs.offset + nvs.size) // SECTOR):
        token = dev.sectors.get(s)
        if token is not None and token != f"NVS{s}".encode():
            return f"NVS page at 0x{s * SECTOR:x} is neither an NVS page of its own nor free"
    return ""


def judge(dev: Device) -> str:
    """"" when the device boots its running app and that app gets past its NVS init."""
    image, rows, why = boot(dev)
    if image is None or rows is None:
        return why
    if image != dev.running_image:
        return f"boots image {image}, not the running app"
    _, md5, _ = read_table(dev)
    return app_starts(dev, rows, md5, {})


# --- replaying a plan ---------------------------------------------------------------------


@dataclass
class Outcome:
    failures: list[str]  # states outside the table write that brick
    window: int  # bricking states inside the write-table step (no plan avoids them)
    states: int
    touched_running: bool


def _sector_ops(step: object, dev: Device, new_table: bytes) -> list[tuple[int, bytes | None]]:
    """The step as a sequence of (sector, token or None for erased), in execution order."""
    action = step.action  # type: ignore[attr-defined]
    offset, size = step.offset, step.size  # type: ignore[attr-defined]
    first, n = offset // SECTOR, -(-size // SECTOR)
    if action == "erase":
        return [(first + i, None) for i in range(n)]
    if action == "copy":
        src = step.source // SECTOR  # type: ignore[attr-defined]
        idx = range(n - 1, -1, -1) if step.descending else range(n)  # type: ignore[attr-defined]
        return [(first + i, ("COPY", src + i)) for i in idx]  # type: ignore[misc]
    if action == "write-table":
        return [(first, None), (first, new_table.rstrip(b"\xff"))]
    if action == "write-otadata":
        write = step.otadata  # type: ignore[attr-defined]
        if write.count_old == 0 and not write.blank:  # a region OLD's bootloader ignores
            return [(first + 1, None), (first, None),
                    (first, otadata_record(write.seq_after(None)))]
        recs = [struct.unpack("<I20sII", dev.read(offset + k * SECTOR, 32)) for k in (0, 1)]
        valid = [(r[0], k) for k, r in enumerate(recs)
                 if r[0] != ERASED_SEQ and _crc_ok((r[0], r[2], r[3]))
                 and r[2] not in (STATE_INVALID, STATE_ABORTED)]
        # equal sequence numbers: sector 0 wins (bootloader_common_select_otadata)
        active = max(valid, key=lambda v: (v[0], -v[1])) if valid else None
        if write.blank:  # as apply does: the active record's sector last
            last = active[1] if active is not None else 0
            return [(first + 1 - last, None), (first + last, None)]
        seq = write.seq_after(None if active is None else active[0])
        if seq is None:
            raise AssertionError(f"plan step cannot compute a record: {step}")
        target = first + (1 - active[1] if active is not None else 0)
        return [(target, None), (target, otadata_record(seq))]
    raise AssertionError(action)


def watched(dev: Device, tables: tuple[object, ...]) -> set[int]:
    """The sectors a boot can depend on: the table sector, every image, and the otadata,
    NVS and app-header sectors of each table that can be in place (OLD, NEW, or a prefix
    of NEW's rows when its write is cut). A state that differs from the one before only
    elsewhere boots the same way, so it need not be booted again."""
    out = {dev.table_offset // SECTOR}
    for first, n in dev.image_sectors.values():
        out.update(range(first, first + n))
    for t in tables:
        for p in t:  # type: ignore[attr-defined]
            if p.type == 1 and p.subtype in (0, 2):  # otadata, nvs
                out.update(range(p.offset // SECTOR, -(-p.end // SECTOR)))
            elif p.type == 0:
                out.add(p.offset // SECTOR)
    return out


def replay(dev: Device, plan: tuple[object, ...], new_table: bytes,
           running_range: tuple[int, int], watch: set[int] | None = None) -> Outcome:
    """Run ``plan`` on a copy of ``dev``; boot after every sector operation and with every
    operation torn half way (only where ``watch`` says the boot can change, when given)."""
    dev = dev.copy()
    failures: list[str] = []
    window = states = 0
    touched = False
    lo, hi = running_range[0] // SECTOR, -(-running_range[1] // SECTOR)
    why = judge(dev)
    if why:
        raise AssertionError(f"the simulated device does not boot before the plan: {why}")
    for number, step in enumerate(plan, start=1):
        ops = _sector_ops(step, dev, new_table)
        in_table = step.action == "write-table"  # type: ignore[attr-defined]
        for at, (sector, token) in enumerate(ops):
            if lo <= sector < hi:
                touched = True
            skip = watch is not None and sector not in watch
            for torn in (True, False):
                before = dev.sectors.get(sector)
                if skip:
                    if not torn:
                        _apply(dev, sector, token)
                    continue
                if torn:
                    dev.sectors[sector] = TORN + str(sector).encode()
                else:
                    _apply(dev, sector, token)
                states += 1
                why = judge(dev)
                if why:
                    if in_table and (torn or at < len(ops) - 1):  # inside the table write
                        window += 1
                    else:
                        failures.append(f"step {number} ({step.action}) sector 0x"  # type: ignore[attr-defined]
                                        f"{sector * SECTOR:x}{' torn' if torn else ''}: {why}")
                if torn:
                    if before is None:
                        dev.sectors.pop(sector, None)
                    else:
                        dev.sectors[sector] = before
    return Outcome(failures, window, states, touched)


def _apply(dev: Device, sector: int, token: object) -> None:
    if token is None:
        dev.sectors.pop(sector, None)
    elif isinstance(token, tuple):
        got = dev.sectors.get(token[1])
        if got is None:
            dev.sectors.pop(sector, None)
        else:
            dev.sectors[sector] = _moved(got, token[1], sector)
    else:
        assert isinstance(token, bytes)
        dev.sectors[sector] = token


def _moved(token: bytes, src: int, dst: int) -> bytes:
    """A copied sector: NVS pages carry no address, so a page copied elsewhere is a valid
    page there (its tag follows it); anything else is copied as is."""
    if token == f"NVS{src}".encode():
        return f"NVS{dst}".encode()
    return token
