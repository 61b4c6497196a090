"""ESP firmware image reader: how many bytes of flash an app or bootloader really occupies.

Walks the image as the ROM and the 2nd-stage bootloader do: a 24-byte header (8 common
bytes + 16 extended), then ``segment_count`` segments of (load address, length, data),
zero padding so the XOR checksum byte ends on a 16-byte boundary, then an optional
32-byte SHA-256 of everything before it. A Secure Boot V2 signature sector (4 KiB, at the
next 4 KiB boundary) counts too, since the bootloader reads it from the same partition.

Layout facts: ESP-IDF ``esp_app_format.h`` / esptool image format documentation.
A file that does not start with the image magic is measured by its size (check_sizes.py
behaviour) and flagged with a warning. The size checks compare the whole file with a slot
(``flashed_size``): the image length explains a failure, it never excuses one.
"""

from __future__ import annotations

import hashlib
import os
import struct

from partkit.common.chips import CHIP_IDS, DEFAULT_FLASH_WINDOWS, find_chip
from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error, warning
from partkit.common.fileio import check_input
from partkit.common.numbers import align_up
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "APP_DESC_MAGIC",
    "FLASH_SIZE_CODES",
    "IMAGE_MAGIC",
    "UNKNOWN_CODE_FLASH_SIZE",
    "AppDescription",
    "ImageBytes",
    "ImageInfo",
    "Segment",
    "header_flash_size",
    "read_image",
    "read_image_file",
    "size_code_note",
]

IMAGE_MAGIC = 0xE9
HEADER = struct.Struct("<BBBBI BBBB H B H H 4x B")  # 24 bytes, esp_image_header_t
SEGMENT_HEADER = struct.Struct("<II")  # load_addr, data_len
MAX_SEGMENTS = 16
CHECKSUM_SEED = 0xEF
SHA256_LEN = 32
APP_DESC_MAGIC = 0xABCD5432
APP_DESC_LEN = 256
BOOTLOADER_DESC_MAGIC = 0x50
BOOTLOADER_DESC_LEN = 80
SIG_SECTOR = 0x1000
SIG_BLOCK_MAGIC = 0xE7
SIG_BLOCK_VERSIONS = {0x02: "RSA", 0x03: "ECDSA"}
# Flash size nibble of the image header (byte 3, bits 4..7), ESP32 and later chips
# (esp_image_header_t.spi_size, ESP-IDF esp_app_format.h: 1MB << code).
FLASH_SIZE_CODES: dict[int, int] = {code: (1 << code) << 20 for code in range(8)}

# A code the 2nd-stage bootloader does not know (0x8-0xF) is taken as 2MB (ESP-IDF
# bootloader_support/bootloader_flash/src/bootloader_flash_config_<chip>.c,
# update_flash_config: the default case).
UNKNOWN_CODE_FLASH_SIZE = 2 << 20


def header_flash_size(header: bytes) -> int | None:
    """The flash size the 2nd-stage bootloader takes from an image header (None: shorter
    than 4 bytes); an unknown code is its 2MB (:func:`size_code_note` says so)."""
    if len(header) < 4:
        return None
    return FLASH_SIZE_CODES.get(header[3] >> 4, UNKNOWN_CODE_FLASH_SIZE)


def size_code_note(header: bytes) -> str:
    """'' for a known size code; else the words that say the 2MB is the bootloader's."""
    code = header[3] >> 4 if len(header) >= 4 else 0
    return "" if code in FLASH_SIZE_CODES else f" (unknown size code 0x{code:x}, taken as 2MB)"


def _is_flash_address(addr: int, chip: str | None) -> bool:
    row = find_chip(chip)
    windows = row.flash_windows if row is not None else DEFAULT_FLASH_WINDOWS
    return any(lo <= addr < hi for lo, hi in windows)


class Segment(Record):
    """One image segment: where it loads, how long it is, where its data sits in the file."""

    __slots__ = ("address", "file_offset", "flash_mapped", "length")

    address: int
    length: int
    file_offset: int
    flash_mapped: bool  # in the chip's cache window (IROM/DROM), not internal RAM

    def __init__(self, address: int, length: int, file_offset: int,
                 flash_mapped: bool = False) -> None:
        self._init(address=address, length=length, file_offset=file_offset,
                   flash_mapped=flash_mapped)

    def __repr__(self) -> str:
        return f"Segment(0x{self.address:08x}, len=0x{self.length:x}, at=0x{self.file_offset:x})"


class AppDescription(Record):
    """What the app (esp_app_desc_t) or bootloader (esp_bootloader_desc_t) says about itself."""

    __slots__ = ("date", "idf_version", "kind", "project_name", "secure_version", "time",
                 "version")

    kind: str  # "app" or "bootloader"
    project_name: str
    version: str
    idf_version: str
    date: str
    time: str
    secure_version: int

    def __init__(self, kind: str, project_name: str, version: str, idf_version: str,
                 date: str, time: str, secure_version: int) -> None:
        self._init(kind=kind, project_name=project_name, version=version,
                   idf_version=idf_version, date=date, time=time,
                   secure_version=secure_version)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


class ImageInfo(Record):
    """The result of reading one file: measured size plus what the image header revealed.

    ``measured_size`` is the image length (plus a Secure Boot V2 signature sector when one
    follows) for an ESP image, else the file size. ``flashed_size`` is what the size checks
    compare with a slot: the whole file, because esptool writes every byte of it, padding
    included (``trailing_bytes`` says how much of it follows the image).
    """

    __slots__ = ("chip", "chip_id", "description", "entry", "file_size", "hash_appended",
                 "image_length", "is_image", "path", "segments", "signature_length",
                 "signature_scheme", "trailing_bytes", "warnings")

    path: str
    file_size: int
    is_image: bool
    chip_id: int | None
    chip: str | None
    entry: int | None
    segments: tuple[Segment, ...]
    hash_appended: bool
    image_length: int | None
    signature_length: int
    signature_scheme: str | None
    trailing_bytes: int
    description: AppDescription | None
    warnings: tuple[Diagnostic, ...]

    def __init__(
        self,
        path: str,
        file_size: int,
        *,
        is_image: bool = False,
        chip_id: int | None = None,
        chip: str | None = None,
        entry: int | None = None,
        segments: tuple[Segment, ...] = (),
        hash_appended: bool = False,
        image_length: int | None = None,
        signature_length: int = 0,
        signature_scheme: str | None = None,
        trailing_bytes: int = 0,
        description: AppDescription | None = None,
        warnings: tuple[Diagnostic, ...] = (),
    ) -> None:
        self._init(path=path, file_size=file_size, is_image=is_image, chip_id=chip_id,
                   chip=chip, entry=entry, segments=segments, hash_appended=hash_appended,
                   image_length=image_length, signature_length=signature_length,
                   signature_scheme=signature_scheme, trailing_bytes=trailing_bytes,
                   description=description, warnings=warnings)

    @property
    def measured_size(self) -> int:
        if self.image_length is None:
            return self.file_size
        return self.signed_length

    @property
    def flashed_size(self) -> int:
        """Bytes written to flash: the file, trailing padding and all."""
        return self.file_size

    @property
    def signed_length(self) -> int:
        """Image length, or up to the end of the signature sector when signed."""
        assert self.image_length is not None
        return _signed_end(self.image_length, self.signature_length)

    @property
    def measured_by(self) -> str:
        return "image" if self.is_image else "file"

    @property
    def kind(self) -> str:
        """"app", "bootloader" or "unknown" (not an image, or no telltale)."""
        if not self.is_image:
            return "unknown"
        if self.description is not None:
            return self.description.kind
        return "app" if any(s.flash_mapped for s in self.segments) else "bootloader"

    def __repr__(self) -> str:
        return (f"ImageInfo({self.path!r}, file_size={self.file_size}, "
                f"measured={self.measured_size}, by={self.measured_by})")


def _signed_end(image_length: int, signature_length: int) -> int:
    """Where the image ends, its signature sector (at the next 4 KiB boundary) included."""
    if signature_length:
        return align_up(image_length, SIG_SECTOR) + signature_length
    return image_length


def _xor_bytes(body: bytes) -> int:
    """XOR of all bytes, by folding one big integer in halves (linear, no per-byte loop)."""
    value = int.from_bytes(body, "little")
    width = len(body) * 8
    while width > 8:
        half = (width // 2 + 7) // 8 * 8  # keep byte lanes aligned
        value = (value >> half) ^ (value & ((1 << half) - 1))
        width = half
    return value


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _describe(data: bytes | ImageBytes, first: Segment) -> AppDescription | None:
    """Parse the app or bootloader description at the start of the first segment."""
    start = first.file_offset
    blob = data[start:start + min(first.length, APP_DESC_LEN)]
    if len(blob) >= APP_DESC_LEN and struct.unpack_from("<I", blob)[0] == APP_DESC_MAGIC:
        return AppDescription(
            "app",
            project_name=_cstr(blob[48:80]),
            version=_cstr(blob[16:48]),
            idf_version=_cstr(blob[112:144]),
            date=_cstr(blob[96:112]),
            time=_cstr(blob[80:96]),
            secure_version=struct.unpack_from("<I", blob, 4)[0],
        )
    if (len(blob) >= BOOTLOADER_DESC_LEN and blob[0] == BOOTLOADER_DESC_MAGIC
            and not first.flash_mapped):
        date_time = _cstr(blob[40:64])
        date, _, time = date_time.rpartition(" ")
        return AppDescription(
            "bootloader",
            project_name="bootloader",
            version=str(struct.unpack_from("<I", blob, 4)[0]),
            idf_version=_cstr(blob[8:40]),
            date=date.strip(),
            time=time,
            secure_version=blob[3],
        )
    return None


_STEP = 1 << 20  # checksum, hash and padding are computed 1 MiB at a time: bounded memory


class ImageBytes:
    """A file (or a range of one) read on demand: ``len``, ``[i]`` and ``[a:b]`` like bytes.

    Lets :func:`read_image` walk a multi-GB file, or an app slot inside a flash image,
    reading only the headers and streaming the segments.
    """

    __slots__ = ("_read", "_size")

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        self._read = read  # (offset, length) -> bytes
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: int | slice) -> Any:  # int for an index, bytes for a slice
        if isinstance(key, slice):
            start, stop, _ = key.indices(self._size)
            return self._read(start, stop - start) if stop > start else b""
        if not 0 <= key < self._size:
            raise IndexError(key)
        return self._read(key, 1)[0]


def _xor_range(data: bytes | ImageBytes, pos: int, length: int) -> int:
    value = 0
    for at in range(pos, pos + length, _STEP):
        value ^= _xor_bytes(data[at:min(pos + length, at + _STEP)])
    return value


def _is_filler(data: bytes | ImageBytes, start: int) -> bool:
    """Everything from ``start`` on is 0xFF padding, or all zeros."""
    ff = zero = True
    for at in range(start, len(data), _STEP):
        chunk = data[at:at + _STEP]
        ff = ff and not chunk.strip(b"\xff")
        zero = zero and not chunk.strip(b"\0")
        if not (ff or zero):
            return False
    return True


def read_image(data: bytes | ImageBytes, path: str) -> ImageInfo:
    """Measure one app/bootloader file. Raises PartkitError for empty or broken images."""
    loc = SourceLocation(path)
    if not data:
        raise PartkitError(error("empty file, expected an ESP app or bootloader image", loc,
                                 hint="the build step that makes this file probably failed"))
    if data[:4] == b"\x7fELF":
        return ImageInfo(path, len(data), warnings=(warning(
            f"an ELF file, not an ESP image; measured by its file size ({len(data)} bytes), "
            "which says little about the flash it needs", loc,
            hint="run 'esptool elf2image' and check the .bin it writes"),))
    if data[0] != IMAGE_MAGIC:
        return ImageInfo(path, len(data), warnings=(warning(
            f"not an ESP image (first byte 0x{data[0]:02x}, expected 0x{IMAGE_MAGIC:02x}); "
            f"measured by its file size ({len(data)} bytes)", loc,
            hint="pass the .bin made by esptool elf2image, not the ELF or a raw dump"),))

    def broken(message: str, byte: int | None = None, hint: str | None = None) -> PartkitError:
        where = f" (byte 0x{byte:x})" if byte is not None else ""
        return PartkitError(error(f"truncated or corrupt ESP image{where}: {message}", loc,
                                  hint=hint or "rebuild it; the file may have been cut short"))

    if len(data) < HEADER.size:
        raise broken(f"the file is {len(data)} bytes, shorter than the {HEADER.size}-byte "
                     "image header")
    (_, seg_count, _mode, _speed_size, entry, _wp, _d0, _d1, _d2, chip_id, _min_rev,
     _min_full, _max_full, hash_appended) = HEADER.unpack(data[:HEADER.size])
    if not 1 <= seg_count <= MAX_SEGMENTS:
        raise broken(f"header declares {seg_count} segments (valid: 1..{MAX_SEGMENTS})", 1)
    if hash_appended not in (0, 1):
        raise broken(f"hash-appended flag is {hash_appended} (valid: 0 or 1)", 23)

    pos = HEADER.size
    checksum = CHECKSUM_SEED
    segments: list[Segment] = []
    for index in range(seg_count):
        if pos + SEGMENT_HEADER.size > len(data):
            raise broken(f"segment {index} header at 0x{pos:x} runs past the end of the file "
                         f"(0x{len(data):x} bytes)", pos)
        addr, length = SEGMENT_HEADER.unpack(data[pos:pos + SEGMENT_HEADER.size])
        pos += SEGMENT_HEADER.size
        if pos + length > len(data):
            raise broken(f"segment {index} (load address 0x{addr:08x}) declares 0x{length:x} "
                         f"bytes but only 0x{len(data) - pos:x} remain", pos - 4)
        segments.append(Segment(addr, length, pos,
                                _is_flash_address(addr, CHIP_IDS.get(chip_id))))
        checksum ^= _xor_range(data, pos, length)
        pos += length

    checksum_at = align_up(pos + 1, 16) - 1
    length = checksum_at + 1
    if length > len(data):
        raise broken(f"the checksum byte at 0x{checksum_at:x} is past the end of the file", pos)
    if data[checksum_at] != checksum:
        raise broken(f"checksum byte is 0x{data[checksum_at]:02x}, segments give "
                     f"0x{checksum:02x}", checksum_at,
                     hint="the image was modified after esptool wrote it, or is not an image")
    if hash_appended:
        if length + SHA256_LEN > len(data):
            raise broken("the appended SHA-256 is cut short", length)

        digest = hashlib.sha256()
        for at in range(0, length, _STEP):
            digest.update(data[at:min(length, at + _STEP)])
        if digest.digest() != data[length:length + SHA256_LEN]:
            raise broken("the appended SHA-256 does not match the image", length,
                         hint="the image was modified after esptool wrote it")
        length += SHA256_LEN

    chip = CHIP_IDS.get(chip_id)
    sig_at = align_up(length, SIG_SECTOR)
    signature_length, signature_scheme = 0, None
    if (sig_at + SIG_SECTOR <= len(data) and data[sig_at] == SIG_BLOCK_MAGIC
            and data[sig_at + 1] in SIG_BLOCK_VERSIONS):
        signature_length = SIG_SECTOR
        signature_scheme = SIG_BLOCK_VERSIONS[data[sig_at + 1]]

    end = _signed_end(length, signature_length)
    trailing = len(data) - end
    warnings: list[Diagnostic] = []
    if chip is None:
        warnings.append(warning(f"unknown chip id {chip_id} in the image header", loc))
    if trailing:
        filler = _is_filler(data, end)
        if not filler:
            warnings.append(warning(
                f"{trailing} bytes after the end of the image (0x{end:x}) are not "
                "padding; they are flashed (and size-checked) with it", loc,
                hint="a file concatenated onto the image? only the image itself is loaded"))
    return ImageInfo(
        path, len(data), is_image=True, chip_id=chip_id, chip=chip, entry=entry,
        segments=tuple(segments), hash_appended=bool(hash_appended), image_length=length,
        signature_length=signature_length, signature_scheme=signature_scheme,
        trailing_bytes=trailing, description=_describe(data, segments[0]),
        warnings=tuple(warnings))


def read_image_file(path: str) -> ImageInfo:
    """Read and measure an image file (missing/unreadable files raise PartkitError).

    It is read as far as the image goes (headers, then segments streamed); its size
    comes from stat, so a multi-GB file costs no memory. It must be a regular file: what
    is flashed is a file, and a FIFO or device has no size to check.
    """


    check_input(path, regular=True, what="an app or bootloader image")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror or exc}",
                                 SourceLocation(path))) from None
    try:
        st = os.fstat(fd)

        def pread(offset: int, length: int) -> bytes:
            if hasattr(os, "pread"):
                return os.pread(fd, length, offset)
            os.lseek(fd, offset, os.SEEK_SET)  # Windows
            return os.read(fd, length)

        try:
            return read_image(ImageBytes(pread, st.st_size), path)
        except OSError as exc:
            raise PartkitError(error(f"cannot read: {exc.strerror or exc}",
                                     SourceLocation(path))) from None
    finally:
        if fd >= 0:
            os.close(fd)
