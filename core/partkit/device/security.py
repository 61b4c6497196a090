"""Flash encryption and secure boot, as the ROM reports them (GET_SECURITY_INFO).

Writing plaintext to an encrypted flash, or erasing a region secure boot relies on, can
leave a device that never boots again. Like ``esptool erase-region`` (which parttool runs
before every write), partkit refuses to change flash on such a device unless forced.
"""

from __future__ import annotations

from partkit.common.record import Record

__all__ = ["SECURE_BOOT_EN", "SECURE_DOWNLOAD_ENABLE", "Security", "from_security_info"]

# bits of the GET_SECURITY_INFO flags word (ROM layout, the same on every chip)
SECURE_BOOT_EN = 1 << 0
SECURE_DOWNLOAD_ENABLE = 1 << 2


class Security(Record):
    """What the device said about its security features (None: it could not tell)."""

    __slots__ = ("flash_encryption", "secure_boot", "secure_download")

    flash_encryption: bool | None
    secure_boot: bool | None
    secure_download: bool

    def __init__(self, flash_encryption: bool | None, secure_boot: bool | None,
                 secure_download: bool = False) -> None:
        self._init(flash_encryption=flash_encryption, secure_boot=secure_boot,
                   secure_download=secure_download)

    @property
    def active(self) -> list[str]:
        """The features that make changing flash risky, as words for a message."""
        out = []
        if self.flash_encryption:
            out.append("flash encryption")
        if self.secure_boot:
            out.append("secure boot")
        return out


def from_security_info(flags: int, flash_crypt_cnt: int) -> Security:
    """Decode GET_SECURITY_INFO: encryption is on while an odd number of the
    ``(SPI_BOOT_)FLASH_CRYPT_CNT`` eFuse bits is set."""
    return Security(
        flash_encryption=bin(flash_crypt_cnt).count("1") % 2 == 1,
        secure_boot=bool(flags & SECURE_BOOT_EN),
        secure_download=bool(flags & SECURE_DOWNLOAD_ENABLE),
    )
