"""One flash size for every command (issue 25): show, check and map judge a flash image
by its bootloader header's size code, as diff does, not by --flash-size or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from partkit.cli import main

TABLE = ("nvs, data, nvs, 0x9000, 0x6000,\n"
         "otadata, data, ota, 0xf000, 0x2000,\n"
         "factory, app, factory, 0x20000, 3M,\n")  # ends at 0x320000: past 2MB, within 4MB


def _image(tmp_path: Path, name: str, length: int, size_code: int | None) -> Path:
    """A dump of ``length`` bytes whose table is 'partkit gen' output at 0x8000 and whose
    bootloader header (at 0x0, as on the C3) carries ``size_code`` in byte 3's high nibble
    (None: no bootloader, erased flash)."""
    csv = tmp_path / "t.csv"
    csv.write_text(TABLE)
    assert main(["gen", str(csv), str(tmp_path / "t.bin")]) == 0
    data = bytearray(b"\xff" * length)
    if size_code is not None:
        data[0:4] = bytes([0xE9, 1, 2, (size_code << 4) | 0xF])
    table = (tmp_path / "t.bin").read_bytes()
    data[0x8000:0x8000 + len(table)] = table
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _diff_answer(image: Path | str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 ) -> tuple[int, str]:
    """diff's flash size and where it says it came from."""
    capsys.readouterr()
    main(["diff", str(image), str(tmp_path / "t.csv"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    return int(doc["flash_size"]), str(doc["flash_size_source"])


def _diff_size(image: Path | str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> int:
    return _diff_answer(image, tmp_path, capsys)[0]


@pytest.mark.parametrize(("length", "code", "size"), [
    (4 << 20, 1, 2 << 20),  # header says 2MB in a 4MB file: the header decides
    (0x120000, 2, 4 << 20),  # unpadded merge-bin: the header, not the length
    (4 << 20, None, 4 << 20),  # no bootloader: a full dump's length
])
def test_show_check_map_and_diff_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       length: int, code: int | None, size: int) -> None:
    image = _image(tmp_path, "flash.bin", length, code)
    diffed, origin = _diff_answer(image, tmp_path, capsys)
    assert diffed == size
    fits = size >= 0x320000
    assert main(["show", str(image)]) == 0
    assert (f"flash {size >> 20} MiB (from {origin}): partitions end at 0x320000"
            in capsys.readouterr().out)
    # exit 1 either way: the image holds no app, so nothing boots (check follows the boot)
    assert main(["check", str(image)]) == 1
    out, err = capsys.readouterr()
    assert (f"flash 0x{size:x} bytes ({size >> 20}MB, from {origin}): partitions end at "
            "0x320000") in out
    assert fits == ("beyond the" not in err)
    assert main(["map", str(image), "-o", str(tmp_path / "m.svg")]) == (0 if fits else 1)
    err = capsys.readouterr().err
    assert fits == ("past the end of the flash" not in err)


def test_image_check_judges_a_full_dump_by_its_length(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No bootloader, no --flash-size: a 2MB dump's length is the flash (as diff and check say).
    image = _image(tmp_path, "dump.bin", 2 << 20, None)
    assert _diff_size(image, tmp_path, capsys) == 2 << 20
    main(["image", "check", str(image), "--json"])
    codes = {p["code"] for p in json.loads(capsys.readouterr().out)["findings"]}
    assert "flash-size" in codes
    # An unpadded file's length says nothing of the flash.
    short = _image(tmp_path, "short.bin", 0x120000, None)
    main(["image", "check", str(short), "--json"])
    codes = {p["code"] for p in json.loads(capsys.readouterr().out)["findings"]}
    assert "flash-size" not in codes


def test_device_show_draws_the_bootloader_header_size_as_diff_judges(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.mock_device import MockDevice

    device = MockDevice(tmp_path / "state")  # an ESP32-C3 with a 4MB flash chip
    try:
        image = _image(tmp_path, "flash.bin", 0x9000, 1)  # its bootloader header says 2MB
        device.write(tmp_path, 0, image.read_bytes())
        assert _diff_size(device.url, tmp_path, capsys) == 2 << 20
        assert main(["device", "--port", device.url, "show"]) == 0
        out = capsys.readouterr().out
        assert "esp32c3, 4 MB flash" in out  # the chip, as it is
        # what the bootloader checks, and where it said so
        assert (f"flash 2 MiB (from the bootloader header at {device.url}@0x0, byte 3): "
                "partitions end at 0x320000") in out
    finally:
        device.stop()


def test_a_device_is_judged_by_the_header_at_its_chips_bootloader_offset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.mock_device import MockDevice

    device = MockDevice(tmp_path / "state", chip="esp32")  # its ROM loads 0x1000
    try:
        image = bytearray(_image(tmp_path, "flash.bin", 0x9000, 2).read_bytes())  # 4MB at 0x0
        image[0x1000:0x1004] = bytes([0xE9, 1, 2, 0x1F])  # the ESP32's bootloader says 2MB
        device.write(tmp_path, 0, bytes(image))
        assert _diff_answer(device.url, tmp_path, capsys) == (
            2 << 20, f"the bootloader header at {device.url}@0x1000, byte 3")
    finally:
        device.stop()


def test_device_apply_judges_new_by_the_header_at_its_chips_bootloader_offset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.mock_device import MockDevice

    old = tmp_path / "old.csv"
    old.write_text("nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 1M,\n")
    assert main(["gen", str(old), str(tmp_path / "old.bin")]) == 0
    flash = bytearray(b"\xff" * 0x9000)
    flash[0:4] = bytes([0xE9, 1, 2, 0x2F])  # a leftover saying 4MB in sector 0
    flash[0x1000:0x1004] = bytes([0xE9, 1, 2, 0x1F])  # the ESP32's bootloader: 2MB
    table = (tmp_path / "old.bin").read_bytes()
    flash[0x8000:0x8000 + len(table)] = table
    (tmp_path / "t.csv").write_text(TABLE)  # NEW ends at 0x320000, past 2MB
    device = MockDevice(tmp_path / "state", chip="esp32")
    try:
        device.write(tmp_path, 0, bytes(flash))
        capsys.readouterr()
        code = main(["device", "apply", "--port", device.url, str(tmp_path / "t.csv"),
                     "--json"])
        doc = json.loads(capsys.readouterr().out)
        assert doc["flash_size"] == 2 << 20 and code != 0
        assert device.read(tmp_path, 0x8000, len(table)) == table  # nothing written
    finally:
        device.stop()


def test_device_show_names_the_header_at_its_chips_offset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: device show took the first header (a leftover at 0x0 saying 4MB) and named
    no origin, while 'partkit diff PORT' judged the same chip at 2MB."""
    from support.mock_device import MockDevice

    device = MockDevice(tmp_path / "state", chip="esp32")  # its ROM loads 0x1000
    try:
        image = bytearray(_image(tmp_path, "flash.bin", 0x9000, 2).read_bytes())  # 4MB at 0x0
        image[0x1000:0x1004] = bytes([0xE9, 1, 2, 0x1F])  # the ESP32's bootloader says 2MB
        device.write(tmp_path, 0, bytes(image))
        origin = f"the bootloader header at {device.url}@0x1000, byte 3"
        capsys.readouterr()
        assert main(["device", "show", "--port", device.url, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert (doc["flash_size"], doc["flash_size_origin"]) == (2 << 20, origin)
        assert main(["device", "show", "--port", device.url]) == 0
        assert f"(from {origin})" in capsys.readouterr().out
        assert _diff_answer(device.url, tmp_path, capsys) == (2 << 20, origin)
    finally:
        device.stop()
