"""One answer per fact: the chip registry, the size spellings, the error root."""

from __future__ import annotations

import pytest
from partkit.common import chips
from partkit.common.errors import PartkitError
from partkit.common.numbers import format_size


def test_registry_views_come_from_the_rows() -> None:
    # ESP-IDF ESP_ROM_BOOTLOADER_OFFSET_FLASH per chip (components/esp_rom/<chip>/Kconfig).
    assert {name: c.bootloader_offset for name, c in chips.CHIPS.items()} == chips.BOOTLOADER_OFFSET
    assert chips.bootloader_offset("ESP32") == 0x1000
    assert chips.bootloader_offset("esp32c3") == 0x0
    assert chips.bootloader_offset("esp32p4") == 0x2000
    # esptool's IMAGE_CHIP_ID values, both ways.
    assert chips.CHIP_IDS[5] == "esp32c3" and chips.CHIP_IDS[9] == "esp32s3"
    assert all(chips.CHIPS[n].image_chip_id == i for i, n in chips.CHIP_IDS.items())
    assert chips.chip_by_image_id(18) is chips.CHIPS["esp32p4"]
    assert chips.chip_by_image_id(999) is None
    assert chips.find_chip(None) is None and chips.find_chip("esp8266") is None
    assert chips.chip_names() == sorted(chips.CHIPS)


def test_every_module_reads_the_registry() -> None:
    from partkit.esp_at.customize import documented_addresses
    from partkit.flash.appimage import _is_flash_address
    from partkit.flash.flashargs import default_flash_freq

    for name, chip in chips.CHIPS.items():
        assert default_flash_freq(name.upper()) == chip.flash_freq
        assert documented_addresses(name) == tuple(a for _, a in chip.at_customize)
        lo, hi = chip.flash_windows[0]
        assert _is_flash_address(lo, name) and not _is_flash_address(hi, name)
    assert default_flash_freq(None) == "80m" and default_flash_freq("esp32") == "40m"
    assert documented_addresses("esp32c2", 2 << 20) == (0x1A000,)
    assert documented_addresses("esp32c2", 4 << 20) == (0x1E000,)
    assert documented_addresses("esp32h2") == ()
    # An image without a known chip is judged with the S3-style windows.
    assert _is_flash_address(0x42000000, None) and not _is_flash_address(0x3F400000, None)


@pytest.mark.parametrize(("size", "style", "text"), [
    (0x100000, "human", "1 MiB"), (0x180000, "human", "1.5 MiB"), (291, "human", "291 B"),
    (-0x6000, "human", "-24 KiB"),
    (0x100000, "csv", "1M"), (0x6000, "csv", "24K"), (0x123, "csv", "0x123"),
    (0, "csv", "0M"), (0, "esptool", "0"),  # gen_esp32part's first dividing unit; one up
    (4 << 20, "esptool", "4MB"), (0x180000, "esptool", "1536KB"), (100, "esptool", "100"),
    (4 << 20, "map", "4M"), (0x1000, "map", "4K"), (0, "map", "0B"), (1000, "map", "1000B"),
])
def test_one_size_formatter(size: int, style: str, text: str) -> None:
    assert format_size(size, style) == text


def test_size_style_typo_is_a_bug_not_a_default() -> None:
    with pytest.raises(ValueError, match="unknown size style 'MB'"):
        format_size(1, "MB")


def test_platformio_setup_error_is_a_partkit_error() -> None:
    from partkit.buildsys import platformio as pio

    with pytest.raises(PartkitError) as info:
        pio.table_from_platform("yes", True, "p.bin")
    assert isinstance(info.value, pio.SetupError) and info.value.exit_code == 2
    assert [d.message for d in info.value.diagnostics] == [str(info.value)]
    assert str(info.value).startswith("the platform already generates p.bin")


def test_registry_matches_esptools_targets() -> None:
    # esptool read as a test oracle only: every chip both know has esptool's bootloader
    # offset and image chip id, and a flash_freq default esptool can write into a header.
    try:
        from esptool.targets import CHIP_DEFS
    except ImportError:
        from support.tools import missing

        missing("esptool is not installed (it is in the test extra)")
        return
    shared = sorted(set(chips.CHIPS) & set(CHIP_DEFS))
    assert len(shared) >= 12, shared
    for name in shared:
        ours, theirs = chips.CHIPS[name], CHIP_DEFS[name]
        assert ours.bootloader_offset == theirs.BOOTLOADER_FLASH_OFFSET, name
        assert ours.image_chip_id == theirs.IMAGE_CHIP_ID, name
        assert ours.flash_freq in theirs.FLASH_FREQUENCY, name
