"""The ESP image reader on real ESP32-C3 images (riscv64-unknown-elf-gcc + esptool)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from partkit.common.errors import PartkitError
from partkit.flash.appimage import read_image
from support.firmware import (
    app_of_size,
    build_app,
    build_bootloader,
    elf_section_sum,
    sign_image,
)

pytestmark = pytest.mark.firmware


def _read(path: Path):  # type: ignore[no-untyped-def]
    return read_image(path.read_bytes(), str(path))


def test_app_image_is_walked_like_esptool(tmp_path: Path) -> None:
    from esptool.bin_image import LoadFirmwareImage  # oracle only

    app = build_app(tmp_path, 12_345, project_name="walker", version="4.5.6-rc1")
    info = _read(app)
    oracle = LoadFirmwareImage("esp32c3", str(app))
    assert info.is_image and info.measured_by == "image"
    assert info.chip == "esp32c3" and info.chip_id == oracle.chip_id == 5
    assert [(s.address, s.length) for s in info.segments] == [
        (s.addr, len(s.data)) for s in oracle.segments]
    assert info.hash_appended is True
    # Length from first principles: header, segment headers + data, checksum to 16, SHA-256.
    body = 24 + sum(8 + s.length for s in info.segments)
    expected = (body + 1 + 15) // 16 * 16 + 32
    assert info.image_length == expected == app.stat().st_size == info.measured_size
    assert info.trailing_bytes == 0 and info.warnings == ()
    desc = info.description
    assert desc is not None and desc.kind == "app"
    assert (desc.project_name, desc.version, desc.idf_version) == (
        "walker", "4.5.6-rc1", "v5.4-partkit")
    assert info.kind == "app"


def test_image_size_follows_padding(tmp_path: Path) -> None:
    small = _read(build_app(tmp_path, 10_000))
    big = _read(build_app(tmp_path, 10_000 + 4096))
    assert big.measured_size - small.measured_size == 4096


def test_exact_size_helper_hits_the_target(tmp_path: Path) -> None:
    for size in (0x20000, 0x20010, 0x100000):
        app = app_of_size(tmp_path, size, name=f"app-{size:x}.bin")
        assert app.stat().st_size == size
        assert _read(app).measured_size == size


def test_bootloader_image(tmp_path: Path) -> None:
    bl = build_bootloader(tmp_path, 3000)
    info = _read(bl)
    assert info.is_image and info.kind == "bootloader"
    assert not any(s.flash_mapped for s in info.segments)
    assert info.description is not None and info.description.idf_version == "v5.4-partkit"
    assert info.measured_size == bl.stat().st_size


def test_padded_file_is_measured_by_image_length(tmp_path: Path) -> None:
    app = build_app(tmp_path, 5000)
    length = app.stat().st_size
    padded = tmp_path / "padded.bin"
    padded.write_bytes(app.read_bytes() + b"\xff" * 0x3000)
    info = _read(padded)
    assert info.measured_size == length
    assert info.trailing_bytes == 0x3000
    assert info.warnings == ()  # 0xFF padding is normal (esptool --pad-to-size)


def test_non_padding_trailer_is_reported(tmp_path: Path) -> None:
    app = build_app(tmp_path, 5000)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(app.read_bytes() + b"hello world")
    info = _read(junk)
    assert info.measured_size == app.stat().st_size
    assert info.trailing_bytes == 11
    assert len(info.warnings) == 1 and "11 bytes after the end" in info.warnings[0].message


def test_signed_image_counts_its_signature_sector(tmp_path: Path) -> None:
    app = app_of_size(tmp_path, 0x30010)
    signed = sign_image(app, tmp_path / "signed.bin", tmp_path)
    info = _read(signed)
    # espsecure pads to 4 KiB and appends one 4 KiB signature sector.
    assert info.image_length == 0x30010
    assert info.signature_scheme == "RSA"
    assert info.measured_size == 0x31000 + 0x1000 == signed.stat().st_size
    assert info.trailing_bytes == 0


def test_elf_section_sum_understates_the_bin(tmp_path: Path) -> None:
    app = build_app(tmp_path, 0x20000)
    info = _read(app)
    sections = elf_section_sum(app.with_suffix(".elf"))
    # The 64 KiB page alignment of the IROM segment alone makes the .bin much bigger.
    assert info.measured_size > sections + 0x8000


def test_plain_file_measured_by_size_with_warning(tmp_path: Path) -> None:
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"\xee" * 5000)
    info = read_image(plain.read_bytes(), str(plain))
    assert not info.is_image and info.measured_by == "file" and info.kind == "unknown"
    assert info.measured_size == 5000
    assert len(info.warnings) == 1 and "not an ESP image" in info.warnings[0].message


def test_elf_file_warns_specifically(tmp_path: Path) -> None:
    app = build_app(tmp_path, 100)
    elf = app.with_suffix(".elf")
    info = read_image(elf.read_bytes(), str(elf))
    assert info.measured_size == elf.stat().st_size
    assert "ELF" in info.warnings[0].message


def test_empty_file_is_bad_input() -> None:
    with pytest.raises(PartkitError) as exc:
        read_image(b"", "empty.bin")
    assert exc.value.exit_code == 2
    assert "empty.bin: error: empty file" in str(exc.value)


def test_every_truncation_is_a_clean_error(tmp_path: Path) -> None:
    data = build_app(tmp_path, 3000).read_bytes()
    # Header, segment headers, segment data, checksum and SHA-256 all get cut somewhere.
    cuts = sorted({1, 8, 23, 24, 30, 40, 300, len(data) // 2, len(data) - 33, len(data) - 1,
                   *range(25, len(data), 997)})
    for cut in cuts:
        with pytest.raises(PartkitError) as exc:
            read_image(data[:cut], "cut.bin")
        assert "truncated or corrupt ESP image" in str(exc.value), cut


def test_corrupt_checksum_and_hash(tmp_path: Path) -> None:
    data = bytearray(build_app(tmp_path, 3000).read_bytes())
    flipped = bytearray(data)
    flipped[40] ^= 0x01  # inside the first segment: checksum and hash both break
    with pytest.raises(PartkitError, match="checksum byte"):
        read_image(bytes(flipped), "x.bin")
    tail = bytearray(data)
    tail[-1] ^= 0x01  # only the appended SHA-256
    with pytest.raises(PartkitError, match="SHA-256 does not match"):
        read_image(bytes(tail), "x.bin")


def test_bad_segment_count() -> None:
    header = bytes([0xE9, 0]) + bytes(22)
    with pytest.raises(PartkitError, match="0 segments"):
        read_image(header + bytes(100), "zero.bin")


def test_random_garbage_never_crashes() -> None:
    rng = __import__("random").Random(1234)
    for i in range(300):
        n = rng.randrange(1, 600)
        blob = bytearray(rng.getrandbits(8) for _ in range(n))
        if i % 2:
            blob[0] = 0xE9  # looks like an image: exercise the structural checks
        try:
            info = read_image(bytes(blob), "g.bin")
        except PartkitError as exc:
            assert exc.exit_code == 2
        else:
            assert 0 < info.measured_size <= n


def test_reads_file_via_path(tmp_path: Path) -> None:
    from partkit.flash.appimage import read_image_file

    with pytest.raises(PartkitError, match="no such file"):
        read_image_file(str(tmp_path / "missing.bin"))
    with pytest.raises(PartkitError, match="directory"):
        read_image_file(str(tmp_path))
    app = build_app(tmp_path, 100)
    assert read_image_file(os.fspath(app)).is_image
