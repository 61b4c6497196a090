"""The on-flash table format: 32-byte entries, an MD5 row, 0xFF padding to 0xC00.

Layout (ESP-IDF ``esp_partition_info_t``, little-endian ``<2sBBLL16sL``): magic ``AA 50``,
type u8, subtype u8, offset u32, size u32, name 16 bytes (NUL-padded, not terminated when
full), flags u32 (bit 0 encrypted, bit 1 readonly). The MD5 row is ``EB EB`` + 14 x ``FF``
+ the MD5 of all entry rows before it. A row of 32 x ``FF`` ends the table.
"""

from __future__ import annotations

import struct

from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error, warning
from partkit.table.model import FLAG_ENCRYPTED, FLAG_READONLY, Partition, PartitionTable

try:  # the builtin module avoids importing OpenSSL through hashlib on the hot path
    from _md5 import md5  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - interpreters built without _md5
    from hashlib import md5

__all__ = [
    "ENTRY",
    "ENTRY_SIZE",
    "MAGIC",
    "MAX_TABLE_BYTES",
    "MD5_MARKER",
    "decode",
    "encode",
    "looks_binary",
    "max_entries",
    "too_long",
]

ENTRY = struct.Struct("<2sBBLL16sL")
ENTRY_SIZE = 32
MAGIC = b"\xaa\x50"
MD5_MARKER = b"\xeb\xeb" + b"\xff" * 14
END_MARKER = b"\xff" * ENTRY_SIZE
MAX_TABLE_BYTES = 0xC00  # the bootloader reads 3 KiB; the rest of the sector is for a signature
NAME_BYTES = 16
_KNOWN_FLAGS = FLAG_ENCRYPTED | FLAG_READONLY


def looks_binary(data: bytes) -> bool:
    """Binary input starts with an entry (``AA 50``), an MD5 row or the end marker.

    gen_esp32part only recognises ``AA 50``; an empty binary table (MD5 row or blank) is
    text to it and crashes. partkit reads those as the empty table (docs/compat.md).
    """
    return data[:2] == MAGIC or data[:16] == MD5_MARKER or data[:ENTRY_SIZE] == END_MARKER


def encode_entry(p: Partition) -> bytes:
    name = p.name.encode("utf-8", "surrogatepass")[:NAME_BYTES]
    return ENTRY.pack(MAGIC, p.type, p.subtype, p.offset, p.size, name, p.flags)


def max_entries(md5sum: bool) -> int:
    """How many entries fit before the end marker within 0xC00 bytes (94 with the MD5 row)."""
    return (MAX_TABLE_BYTES - 1) // ENTRY_SIZE - (1 if md5sum else 0)


def too_long(table: PartitionTable, md5sum: bool) -> Diagnostic:
    """The error for a table with more than :func:`max_entries` entries."""
    size = len(table) * ENTRY_SIZE + (ENTRY_SIZE if md5sum else 0)
    return error(
        f"binary partition table would be {size} bytes, longer than the maximum "
        f"{MAX_TABLE_BYTES - ENTRY_SIZE} ({len(table)} entries; at most "
        f"{max_entries(md5sum)} fit{' with the MD5 row' if md5sum else ''})",
        SourceLocation(table.path) if table.path else None,
        "merge or remove partitions" + ("" if not md5sum else
                                        ", or drop the MD5 row (--disable-md5sum)"))


def encode(table: PartitionTable, md5sum: bool = True) -> bytes:
    """Encode a validated table; raises PartkitError when it exceeds 0xC00 bytes."""
    try:
        body = b"".join(encode_entry(p) for p in table)
    except struct.error:
        raise PartkitError(error("a value does not fit its binary field (type/subtype 0..255, "
                                 "offset/size 0..0xffffffff)", None)) from None
    if md5sum:
        body += MD5_MARKER + md5(body).digest()
    if len(body) >= MAX_TABLE_BYTES:
        raise PartkitError(too_long(table, md5sum))
    return body + b"\xff" * (MAX_TABLE_BYTES - len(body))


def decode(data: bytes, path: str, md5sum: bool = True) -> tuple[PartitionTable, list[Diagnostic]]:
    """Decode a binary table; returns warnings too.

    The input may be longer than 0xC00 bytes (a signed 0x1000 sector is fine), but the
    table must end within the first 0xC00: that is all the bootloader reads, so a row
    after that does not exist on the device. gen_esp32part reads on; partkit refuses, or
    a check would pass partitions the device never sees (docs/compat.md).
    """
    partitions: list[Partition] = []
    warnings: list[Diagnostic] = []
    digest = md5()
    for index, start in enumerate(range(0, len(data), ENTRY_SIZE), start=1):
        chunk = data[start:start + ENTRY_SIZE]
        loc = SourceLocation(path, entry=index, byte=start)
        if start >= MAX_TABLE_BYTES and chunk != END_MARKER:
            raise PartkitError(error(
                f"the table does not end within the first 0x{MAX_TABLE_BYTES:x} bytes, all "
                f"the bootloader reads: row {index} at byte 0x{start:x} and any after it do "
                "not exist on the device", loc,
                "keep entries, MD5 row and the end marker (32 x 0xFF) within 0xC00 bytes; "
                "at most 94 entries fit with the MD5 row"))
        if len(chunk) != ENTRY_SIZE:
            raise PartkitError(error(
                f"table ends with a partial entry of {len(chunk)} bytes "
                f"(length {len(data)} is not a multiple of 32)", loc,
                "the file is truncated or not a partition table"))
        if chunk == END_MARKER:
            return PartitionTable(partitions, path), warnings
        if md5sum and chunk[:2] == MD5_MARKER[:2]:
            expected = digest.digest()
            if chunk[16:] != expected:
                raise PartkitError(error(
                    f"MD5 checksum mismatch: the table says {chunk[16:].hex()}, the entries "
                    f"before it hash to {expected.hex()}", loc,
                    "the table is corrupted, or was edited without updating the MD5 row"))
            continue
        digest.update(chunk)
        partitions.append(_decode_entry(chunk, loc, md5sum, warnings))
    raise PartkitError(error(
        f"table has no end marker (a row of 32 x 0xFF) in its {len(data)} bytes",
        SourceLocation(path, entry=len(data) // ENTRY_SIZE, byte=len(data)),
        "the file is truncated; a table binary is 0xC00 bytes padded with 0xFF"))


def _decode_entry(chunk: bytes, loc: SourceLocation, md5sum: bool,
                  warnings: list[Diagnostic]) -> Partition:
    magic, ptype, subtype, offset, size, raw_name, flags = ENTRY.unpack(chunk)
    if magic != MAGIC:
        hint = ("this is the MD5 row: do not pass --disable-md5sum for this table"
                if magic == MD5_MARKER[:2] and not md5sum else
                "the data is corrupted or not a partition table")
        raise PartkitError(error(f"invalid magic bytes {magic.hex(' ')} (expected aa 50)", loc,
                                 hint))
    raw_name = raw_name.split(b"\x00", 1)[0]
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or len(raw_name) != NAME_BYTES:
            raise PartkitError(error(
                f"partition name {raw_name!r} is not valid UTF-8", loc,
                "the table is corrupted")) from None
        # A long name cut at 16 bytes inside a multi-byte character: keep the whole part.
        name = raw_name[:exc.start].decode("utf-8")
        warnings.append(warning(
            f"partition name {raw_name!r} was cut inside a UTF-8 character; read as '{name}'",
            loc))
    if flags & ~_KNOWN_FLAGS:
        warnings.append(warning(
            f"partition '{name}' has unknown flag bits 0x{flags & ~_KNOWN_FLAGS:08x} "
            "(newer table format?); they are dropped", loc))
    return Partition(name, ptype, subtype, offset, size, bool(flags & FLAG_ENCRYPTED),
                     bool(flags & FLAG_READONLY), loc)
