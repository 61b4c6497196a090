"""The flash settings in a bootloader's image header, rewritten as esptool rewrites them.

The ROM reads flash mode (byte 2), flash size (high nibble of byte 3) and flash frequency
(low nibble of byte 3) from the bootloader's header; ``esptool write-flash`` and
``esptool merge-bin`` replace them when given ``--flash-mode/--flash-freq/--flash-size``
and then recompute the appended SHA-256 (the checksum byte covers only the segments).
``partkit image create`` does the same, so the image it writes says the flash it is for.
"""

from __future__ import annotations

import hashlib

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.record import Record
from partkit.flash.appimage import read_image

__all__ = ["FLASH_MODES", "HeaderPatch", "flash_freq_code", "flash_size_code",
           "patch_flash_params"]

FLASH_MODES = {"qio": 0, "qout": 1, "dio": 2, "dout": 3}
# Frequency codes per chip (esptool's FLASH_FREQUENCY facts); chips not listed use _FREQ.
_FREQ = {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2}
_CHIP_FREQ: dict[str, dict[str, int]] = {
    "esp32c2": {"60m": 0xF, "30m": 0x0, "20m": 0x1, "15m": 0x2},
    "esp32c5": {"80m": 0xF, "40m": 0x0, "20m": 0x2},
    "esp32c6": {"80m": 0x0, "40m": 0x0, "20m": 0x2},
    "esp32c61": {"80m": 0xF, "40m": 0x0, "20m": 0x2},
    "esp32h2": {"48m": 0xF, "24m": 0x0, "16m": 0x1, "12m": 0x2},
    "esp32h21": {"48m": 0xF, "24m": 0x0},
    "esp32h4": {"48m": 0xF, "24m": 0x0},
    "esp32s31": {"80m": 0xF, "40m": 0x0, "20m": 0x2},
}
_MIB = 1 << 20
_SHA_LEN = 32


def flash_freq_code(chip: str, freq: str) -> int:
    """The header's frequency nibble; raises ValueError naming the chip's choices."""
    table = _CHIP_FREQ.get(chip, _FREQ)
    try:
        return table[freq.lower()]
    except KeyError:
        raise ValueError(f"{chip} has no flash frequency '{freq}' (one of: "
                         f"{', '.join(table)})") from None


def flash_size_code(size: int) -> int:
    """The header's size nibble (shifted into the high half): 1MB 0x00 ... 128MB 0x70."""
    if size < _MIB or size & (size - 1) or size > 128 * _MIB:
        raise ValueError(f"the header cannot say a {size} byte flash (1MB to 128MB, powers "
                         "of two)")
    return ((size // _MIB).bit_length() - 1) << 4


class HeaderPatch(Record):
    """A bootloader with new flash settings: the bytes, and what changed."""

    __slots__ = ("data", "new", "old", "sha_updated")

    data: bytes
    old: bytes  # header bytes 2..3 before
    new: bytes  # and after
    sha_updated: bool

    def __init__(self, data: bytes, old: bytes, new: bytes, sha_updated: bool) -> None:
        self._init(data=data, old=old, new=new, sha_updated=sha_updated)

    @property
    def changed(self) -> bool:
        return self.old != self.new


def patch_flash_params(image: bytes, path: str, chip: str, mode: str | None,
                       freq: str | None, size: int | None) -> HeaderPatch:
    """``image`` (a bootloader, possibly followed by padding) with the header's mode,
    frequency and size set (None: keep that one, as esptool's ``keep``); raises
    PartkitError when it is not a valid image, or is signed and the settings differ (a
    changed header would void the signature), ValueError for a setting the chip does not
    have."""

    params = bytes([
        image[2] if mode is None else FLASH_MODES[mode.lower()],
        (image[3] & 0xF0 if size is None else flash_size_code(size))
        | (image[3] & 0x0F if freq is None else flash_freq_code(chip, freq))])
    info = read_image(image, path)  # raises for a broken image
    if not info.is_image or info.image_length is None:
        raise PartkitError(error("not an ESP image: its flash settings cannot be set",
                                 SourceLocation(path)))
    old = image[2:4]
    if old == params:
        return HeaderPatch(image, old, params, False)
    if info.signature_length:
        raise PartkitError(error(
            "a signed bootloader: its header's flash settings cannot change without voiding "
            "the signature", SourceLocation(path),
            "sign a bootloader built for this flash (--flash-size/--flash-mode/--flash-freq "
            "of the build)"))
    data = image[:2] + params + image[4:]
    if info.hash_appended:
        end = info.image_length - _SHA_LEN
        data = data[:end] + hashlib.sha256(data[:end]).digest() + data[end + _SHA_LEN:]
    return HeaderPatch(data, old, params, info.hash_appended)
