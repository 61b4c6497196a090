"""Per-chip facts, one registry (``CHIPS``) for every module that needs one.

Each :class:`Chip` row says where the ROM loads the 2nd-stage bootloader from, the chip id
an ESP image header carries, which address windows the cache MMU maps to flash, the
``flash_args`` defaults, and where the esp-at docs flash ``at_customize.bin``. Sources are
named at each field; add a chip by adding one row.
"""

from __future__ import annotations

from partkit.common.record import Record

__all__ = ["BOOTLOADER_OFFSET", "CHIPS", "CHIP_IDS", "DEFAULT_FLASH_WINDOWS", "MMU_PAGE",
           "Chip",
           "bootloader_offset", "chip_by_image_id", "chip_names", "find_chip"]

# The cache windows of the ESP32-S3 and every later RISC-V chip except the P4 (IROM/DROM
# at 0x42000000 / 0x3C000000), from each chip's ``soc/ext_mem_defs.h`` in ESP-IDF.
DEFAULT_FLASH_WINDOWS = ((0x3C000000, 0x3E000000), (0x42000000, 0x44000000))


class Chip(Record):
    """One chip's facts. ``None`` means the fact is unknown (or does not apply) for it."""

    __slots__ = ("at_customize", "bootloader_offset", "flash_freq", "flash_windows",
                 "image_chip_id", "mmu_page_configurable", "name")

    name: str
    # ESP-IDF ESP_ROM_BOOTLOADER_OFFSET_FLASH (components/esp_rom/<chip>/Kconfig.soc_caps.in),
    # the default of CONFIG_BOOTLOADER_OFFSET_IN_FLASH; esptool's BOOTLOADER_FLASH_OFFSET agrees.
    bootloader_offset: int
    # Chip id in the ESP image extended header (esp_image_header_t.chip_id,
    # components/bootloader_support/include/esp_app_format.h; esptool's IMAGE_CHIP_ID).
    image_chip_id: int | None
    # Flash-mapped (cache MMU) address windows: an image segment loaded there is IROM/DROM,
    # which marks an app image; RAM-only images are bootloaders (or RAM apps).
    flash_windows: tuple[tuple[int, int], ...]
    # Kconfig ESPTOOLPY_FLASHFREQ default (components/esptool_py/Kconfig.projbuild).
    flash_freq: str
    # Where the esp-at docs ("How to customize partitions", Flash at_customize.bin) flash
    # at_customize.bin: (flash size in bytes or None for any, address) rows, first match wins.
    at_customize: tuple[tuple[int | None, int], ...]
    # The flash MMU page may be below MMU_PAGE (CONFIG_MMU_PAGE_SIZE): the chip's
    # SOC_MMU_PAGE_SIZE_CONFIGURABLE (components/soc/<chip>/include/soc/Kconfig.soc_caps.in).
    mmu_page_configurable: bool

    def __init__(self, name: str, bootloader_offset: int, image_chip_id: int | None = None,
                 flash_windows: tuple[tuple[int, int], ...] = DEFAULT_FLASH_WINDOWS,
                 flash_freq: str = "80m",
                 at_customize: tuple[tuple[int | None, int], ...] = (),
                 mmu_page_configurable: bool = False) -> None:
        self._init(name=name, bootloader_offset=bootloader_offset,
                   image_chip_id=image_chip_id, flash_windows=flash_windows,
                   flash_freq=flash_freq, at_customize=at_customize,
                   mmu_page_configurable=mmu_page_configurable)


CHIPS: dict[str, Chip] = {c.name: c for c in (
    Chip("esp32", 0x1000, 0, ((0x3F400000, 0x3F800000), (0x400C2000, 0x40C00000)), "40m",
         ((None, 0x20000),)),
    Chip("esp32s2", 0x1000, 2, ((0x3F000000, 0x3FF80000), (0x40080000, 0x40800000)),
         at_customize=((None, 0x20000),)),
    Chip("esp32s3", 0x0, 9),
    Chip("esp32c2", 0x0, 12, flash_freq="60m",
         at_customize=((2 << 20, 0x1A000), (None, 0x1E000)), mmu_page_configurable=True),
    Chip("esp32c3", 0x0, 5, at_customize=((None, 0x1E000),)),
    Chip("esp32c6", 0x0, 13, at_customize=((None, 0x1E000),), mmu_page_configurable=True),
    Chip("esp32c61", 0x0, 20, at_customize=((None, 0x30000),), mmu_page_configurable=True),
    Chip("esp32h2", 0x0, 16, flash_freq="48m", mmu_page_configurable=True),
    Chip("esp32h21", 0x0, 25, flash_freq="48m", mmu_page_configurable=True),
    Chip("linux", 0x0),
    Chip("esp32c5", 0x2000, 23, at_customize=((None, 0x30000),)),
    Chip("esp32h4", 0x2000, 28, flash_freq="48m", mmu_page_configurable=True),
    Chip("esp32p4", 0x2000, 18, ((0x40000000, 0x4C000000),)),
    # Chip id and its one flash window (IROM and DROM both 0x40000000-0x54000000) as
    # esptool's esp32s31 target has them.
    Chip("esp32s31", 0x2000, 32, ((0x40000000, 0x54000000),)),
)}

MMU_PAGE = 0x10000  # the flash MMU page (the default where it is configurable)

# Views of the registry for the callers that index by one fact.
BOOTLOADER_OFFSET: dict[str, int] = {n: c.bootloader_offset for n, c in CHIPS.items()}
CHIP_IDS: dict[int, str] = {c.image_chip_id: n for n, c in CHIPS.items()
                            if c.image_chip_id is not None}


def chip_names() -> list[str]:
    return sorted(CHIPS)


def find_chip(name: str | None) -> Chip | None:
    """The registry row for ``name`` (any case); None for None or an unknown chip."""
    return CHIPS.get((name or "").lower())


def chip_by_image_id(chip_id: int) -> Chip | None:
    """The chip an ESP image header's chip id names; None for an unknown id."""
    name = CHIP_IDS.get(chip_id)
    return None if name is None else CHIPS[name]


def bootloader_offset(chip: str) -> int:
    """Primary bootloader flash offset; raises KeyError for an unknown chip."""
    return CHIPS[chip.lower()].bootloader_offset
