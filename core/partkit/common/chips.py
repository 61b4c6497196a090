"""Per-chip facts: where the ROM loads the 2nd-stage bootloader from.

Source: ESP-IDF ``ESP_ROM_BOOTLOADER_OFFSET_FLASH`` per chip (esptool's
``BOOTLOADER_FLASH_OFFSET`` agrees).
"""

from __future__ import annotations

__all__ = ["BOOTLOADER_OFFSET", "CHIP_IDS", "bootloader_offset", "chip_names"]

BOOTLOADER_OFFSET: dict[str, int] = {
    "esp32": 0x1000,
    "esp32s2": 0x1000,
    "esp32s3": 0x0,
    "esp32c2": 0x0,
    "esp32c3": 0x0,
    "esp32c6": 0x0,
    "esp32c61": 0x0,
    "esp32h2": 0x0,
    "esp32h21": 0x0,
    "linux": 0x0,
    "esp32c5": 0x2000,
    "esp32h4": 0x2000,
    "esp32p4": 0x2000,
    "esp32s31": 0x2000,
}

# Chip id in the ESP image extended header (esptool IMAGE_CHIP_ID).
CHIP_IDS: dict[int, str] = {
    0: "esp32",
    2: "esp32s2",
    5: "esp32c3",
    9: "esp32s3",
    12: "esp32c2",
    13: "esp32c6",
    16: "esp32h2",
    18: "esp32p4",
    20: "esp32c61",
    23: "esp32c5",
    25: "esp32h21",
    28: "esp32h4",
}


def chip_names() -> list[str]:
    return sorted(BOOTLOADER_OFFSET)


def bootloader_offset(chip: str) -> int:
    """Primary bootloader flash offset; raises KeyError for an unknown chip."""
    return BOOTLOADER_OFFSET[chip.lower()]
