"""Acceptance: assemble an image from real ESP32-C3 firmware, read it back, inspect it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from support.firmware import build_app, build_bootloader
from support.tools import missing

pytestmark = pytest.mark.firmware

CSV = """\
# Name, Type, SubType, Offset, Size, Flags
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
ota_0,    app,  ota_0,   0x10000, 0x100000,
ota_1,    app,  ota_1,   ,        0x100000,
ota_2,    app,  ota_2,   ,        0x80000,
storage,  data, spiffs,  ,        0x40000,
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rt")
    files = {
        "bootloader": build_bootloader(d, name="bootloader.bin"),
        "ota_0": build_app(d, 150_000, project_name="alpha", version="1.0.0", name="a.bin"),
        "ota_1": build_app(d, 90_000, project_name="beta", version="2.0.0", name="b.bin"),
        "storage": d / "storage.bin",
        "table": d / "parts.csv",
    }
    files["storage"].write_bytes(os.urandom(0x23456))
    files["table"].write_text(CSV)
    return files


def _create(built: dict[str, Path], image: Path, *extra: str) -> None:
    code = main(["image", "create", str(image), "--table", str(built["table"]),
                 "--flash-size", "4MB", "--bootloader", str(built["bootloader"]),
                 "--app", f"ota_0={built['ota_0']}", "--app", f"ota_1={built['ota_1']}",
                 "--data", f"storage={built['storage']}", *extra])
    assert code == 0


@pytest.mark.parametrize("slot", [None, 0, 1, 2])
def test_create_read_back_inspect(built: dict[str, Path], tmp_path: Path, slot: int | None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "flash.bin"
    _create(built, image, *(["--ota-slot", str(slot)] if slot is not None else []))
    assert image.stat().st_size == 4 << 20
    for name in ("ota_0", "ota_1", "storage"):
        out = tmp_path / f"{name}.read"
        assert main(["image", "read", str(image), "-n", name, "-o", str(out)]) == 0
        want = built[name].read_bytes()
        got = out.read_bytes()
        assert got[: len(want)] == want, name
        assert set(got[len(want):]) <= {0xFF}
    capsys.readouterr()

    assert main(["image", "inspect", str(image), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["table_offset"] == 0x8000
    assert doc["bootloader"]["offset"] == 0 and doc["bootloader"]["chip"] == "esp32c3"
    parts = {p["name"]: p["contents"] for p in doc["partitions"]}
    assert parts["ota_0"]["kind"] == "app" and parts["ota_0"]["project_name"] == "alpha"
    assert parts["ota_0"]["image_size"] == built["ota_0"].stat().st_size
    assert parts["ota_1"]["version"] == "2.0.0"
    assert parts["ota_2"]["kind"] == "erased"
    assert parts["nvs"]["kind"] == "erased"
    assert parts["otadata"]["kind"] == "otadata"
    assert parts["otadata"]["active_slot"] == slot

    assert main(["image", "inspect", str(image)]) == 0
    text = capsys.readouterr().out
    if slot is None:
        assert "both sectors erased; boots the default app 'ota_0'" in text
    else:
        assert f"otadata: ota_{slot} active (sector 0, ota_seq {slot + 1}" in text


def test_esptool_accepts_app_read_back(built: dict[str, Path], tmp_path: Path) -> None:
    try:
        import esptool  # noqa: F401
    except ImportError:
        missing("esptool is not installed")
    image = tmp_path / "flash.bin"
    _create(built, image)
    out = tmp_path / "app.bin"
    assert main(["image", "read", str(image), "-n", "ota_1", "-o", str(out)]) == 0
    proc = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "image-info",
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(valid)" in proc.stdout  # checksum / validation hash
    assert "beta" in proc.stdout


def test_flash_args_drive_esptool(built: dict[str, Path], tmp_path: Path) -> None:
    """esptool takes @flash_args (merge-bin parses it as write-flash would)."""
    image = tmp_path / "flash.bin"
    _create(built, image, "--ota-slot", "1")
    flash_args = (tmp_path / "flash_args").read_text()
    assert not flash_args.endswith("\n")
    first, *lines = flash_args.split("\n")
    assert first == "--flash-mode dio --flash-freq 80m --flash-size 4MB"
    assert [ln.split()[0] for ln in lines] == ["0x0", "0x8000", "0xd000", "0x10000",
                                               "0x110000", "0x290000"]
    doc = json.loads((tmp_path / "flasher_args.json").read_text())
    assert doc["extra_esptool_args"]["chip"] == "esp32c3"
    assert doc["otadata"]["offset"] == "0xd000"
    assert doc["app"]["offset"] == "0x10000"
    merged = tmp_path / "merged.bin"
    proc = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin",
                           "-o", str(merged), "--pad-to-size", "4MB", "@flash_args"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours, theirs = image.read_bytes(), merged.read_bytes()
    assert len(ours) == len(theirs)
    # esptool patches the flash mode/size into the bootloader header: skip the bootloader
    bl_size = built["bootloader"].stat().st_size
    assert ours[bl_size:] == theirs[bl_size:]


def test_create_faults(built: dict[str, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "flash.bin"
    base = ["image", "create", str(image), "--table", str(built["table"]), "--flash-size", "4MB",
            "--chip", "esp32c3"]
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 0x80001)
    assert main([*base, "--app", f"ota_2={big}"]) == 1
    assert "do not fit partition 'ota_2'" in capsys.readouterr().err
    assert main([*base, "--app", f"storage={big}"]) == 2
    assert "not an app partition" in capsys.readouterr().err
    assert main([*base, "--ota-slot", "3"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main([*base, "--data", f"nvx={big}"]) == 2
    assert "did you mean 'nvs'" in capsys.readouterr().err
    assert not image.exists()
