"""``partkit image create`` sets the bootloader header's flash mode/frequency/size (and the
appended SHA-256) as ``esptool merge-bin --flash-mode --flash-freq --flash-size`` does, so
its bootloader and table pass ``partkit image check`` for every chip. Bootloader and app
images are real: the bundled firmware linked at each chip's flash-mapped addresses and turned
into an image by ``esptool --chip CHIP elf2image``, so the whole image, app included, must
pass ``image check`` on every chip partkit supports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.common.chips import BOOTLOADER_OFFSET, find_chip
from partkit.flash.flashargs import default_flash_freq

pytestmark = pytest.mark.firmware

CHIPS = sorted(c for c in BOOTLOADER_OFFSET if c != "linux")
# The table above every chip's bootloader room (0x2000 + a 0x18000 bootloader).
TABLE = "nvs, data, nvs, , 0x6000\notadata, data, ota, , 0x2000\nfactory, app, factory, , 1M\n"
TABLE_OFFSET = 0x20000


def esptool(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "esptool", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from support.firmware import build_app, build_bootloader
    from support.tools import require_tool

    require_tool("riscv64-unknown-elf-gcc")
    require_tool("riscv64-unknown-elf-ld")
    root = tmp_path_factory.mktemp("fw")
    bootloader = build_bootloader(root, name="bl.bin")
    app = build_app(root, 2000, name="app.bin")
    return root, bootloader.with_suffix(".elf"), app.with_suffix(".elf")


def test_created_image_passes_image_check_for_every_chip(
        elves: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import build_chip_app, chip_app_addresses

    root, bootloader_elf, _ = elves
    table = root / "t.csv"
    table.write_text(TABLE)
    for chip in CHIPS:
        bl, app = root / f"bl-{chip}.bin", root / f"app-{chip}.bin"
        esptool("--chip", chip, "elf2image", "-o", str(bl), str(bootloader_elf))  # 1MB header
        build_chip_app(root, chip, name=app.name)
        image = root / f"{chip}.img"
        capsys.readouterr()
        assert main(["image", "create", str(image), "--table", str(table), "--offset",
                     hex(TABLE_OFFSET), "--flash-size", "4MB", "--chip", chip,
                     "--bootloader", str(bl), "--app", f"factory={app}",
                     "--no-flash-args"]) == 0, (chip, capsys.readouterr().err)
        err = capsys.readouterr().err
        freq = default_flash_freq(chip)
        assert f"bootloader header flash settings set to dio {freq} 4MB" in err, (chip, err)
        assert "SHA-256 recomputed" in err, err
        code = main(["image", "check", str(image), "--chip", chip, "--offset",
                     hex(TABLE_OFFSET), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert report["header_flash_size"] == 4 << 20 and report["bootloader"]["valid"]
        errors = {f["code"]: f["message"] for f in report["findings"]
                  if f["severity"] == "error"}
        assert not errors and code == 0, (chip, errors)
        factory = next(p for p in report["partitions"] if p["name"] == "factory")
        assert factory["contents"]["valid"] and factory["contents"]["chip"] == chip, factory
        # partkit's flash windows agree with esptool's map for the addresses linked here.
        registry = find_chip(chip)
        assert registry is not None
        windows = registry.flash_windows
        for address in chip_app_addresses(chip):
            assert any(lo <= address < hi for lo, hi in windows), (chip, hex(address))
        # Byte for byte what esptool merge-bin writes for the same settings.
        merged = root / f"{chip}-merged.bin"
        offset = BOOTLOADER_OFFSET[chip]
        esptool("--chip", chip, "merge-bin", "-o", str(merged), "--flash-mode", "dio",
                "--flash-freq", freq, "--flash-size", "4MB", hex(offset), str(bl))
        ours = image.read_bytes()[offset:offset + bl.stat().st_size]
        theirs = merged.read_bytes()
        assert ours == theirs[len(theirs) - len(ours):], chip
        assert ours != bl.read_bytes()  # the header did change (1MB -> 4MB)


def test_unknown_mode_and_frequency_are_usage_errors(
        elves: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, bootloader_elf, _ = elves
    bl = root / "bl-h2.bin"
    esptool("--chip", "esp32h2", "elf2image", "-o", str(bl), str(bootloader_elf))
    base = ["image", "create", str(root / "x.img"), "--table", "builtin:singleapp",
            "--flash-size", "4MB", "--bootloader", str(bl), "--no-flash-args"]
    for extra, words in ((["--flash-freq", "80m"], ["esp32h2 has no flash frequency '80m'",
                                                    "48m"]),
                         (["--flash-mode", "quad"], ["--flash-mode quad", "qio"])):
        capsys.readouterr()
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        for word in words:
            assert word in err, err
    assert not (root / "x.img").exists()


def test_signed_bootloader_is_not_patched(elves: tuple[Path, Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A new header would void a Secure Boot V2 signature: refused unless it already says
    the image's flash."""
    from support.firmware import sign_image

    root, bootloader_elf, _ = elves
    base = ["image", "create", str(tmp_path / "x.img"), "--table", "builtin:singleapp",
            "--chip", "esp32c3", "--no-flash-args"]
    for size, code in (("2MB", 0), ("4MB", 2)):
        bl = tmp_path / f"bl-{size}.bin"
        esptool("--chip", "esp32c3", "elf2image", "--flash-mode", "dio", "--flash-size",
                "2MB", "--flash-freq", "80m", "-o", str(bl), str(bootloader_elf))
        signed = sign_image(bl, tmp_path / f"signed-{size}.bin", tmp_path)
        capsys.readouterr()
        assert main([*base, "--flash-size", size, "--bootloader", str(signed)]) == code
        err = capsys.readouterr().err
        if code:
            assert "a signed bootloader" in err and "voiding the signature" in err, err
        else:
            assert "header flash settings" not in err
            assert (tmp_path / "x.img").read_bytes()[:signed.stat().st_size] == \
                signed.read_bytes()
