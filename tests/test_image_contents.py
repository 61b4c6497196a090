"""``inspect`` recognises partitions made by the real generators (NVS, LittleFS, FAT)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.flash.contents import SPIFFS_MAGIC, describe
from partkit.table.model import Partition, PartitionTable
from support.tools import missing

SIZE = 0x10000
PART = Partition("p", 1, 0x81, 0x1000, SIZE)


def _image_with(tmp_path: Path, body: bytes) -> str:
    img = tmp_path / "img.bin"
    img.write_bytes(b"\xff" * 0x1000 + body.ljust(SIZE, b"\xff"))
    return str(img)


def _describe(tmp_path: Path, body: bytes) -> tuple[str, str]:
    found = describe(_image_with(tmp_path, body), PART, PartitionTable([PART]))
    return found.kind, found.summary


def test_nvs_from_esp_idf_generator(tmp_path: Path) -> None:
    try:
        import esp_idf_nvs_partition_gen  # noqa: F401
    except ImportError:
        missing("esp-idf-nvs-partition-gen (test extra) is not installed")
    csv = tmp_path / "nvs.csv"
    csv.write_text("key,type,encoding,value\nns,namespace,,\nboot,data,u32,7\n"
                   "greeting,data,string,hello\n")
    out = tmp_path / "nvs.bin"
    proc = subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate",
                           str(csv), str(out), "0x6000", "--outdir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kind, summary = _describe(tmp_path, (tmp_path / "nvs.bin").read_bytes())
    assert kind == "nvs"
    assert summary.startswith("NVS (format 2): 16 pages: 1 active, ")


def test_littlefs_from_littlefs_python(tmp_path: Path) -> None:
    try:
        from littlefs import LittleFS
    except ImportError:
        missing("littlefs-python (test extra) is not installed")
    fs = LittleFS(block_size=4096, block_count=SIZE // 4096)
    with fs.open("hello.txt", "w") as f:
        f.write("hi")
    kind, _ = _describe(tmp_path, bytes(fs.context.buffer))
    assert kind == "littlefs"


def test_fat_from_pyfatfs(tmp_path: Path) -> None:
    try:
        from pyfatfs.PyFat import PyFat
    except ImportError:
        missing("pyfatfs (test extra) is not installed")
    fat = tmp_path / "fat.bin"
    fat.write_bytes(b"\0" * SIZE)
    pf = PyFat()
    pf.mkfs(str(fat), fat_type=PyFat.FAT_TYPE_FAT12, size=SIZE)
    pf.close()
    kind, summary = _describe(tmp_path, fat.read_bytes())
    assert kind == "fat" and "FAT12" in summary and "raw layout" in summary


def test_spiffs_magic_and_fallbacks(tmp_path: Path) -> None:
    body = bytearray(b"\xff" * 0x1000)
    struct.pack_into("<H", body, 254, (SPIFFS_MAGIC ^ 256 ^ (SIZE // 4096)) & 0xFFFF)
    assert _describe(tmp_path, bytes(body))[0] == "spiffs"
    assert _describe(tmp_path, b"")[0] == "erased"
    kind, summary = _describe(tmp_path, b"\x00" * 100)
    assert kind == "data" and "100 bytes" in summary


def test_broken_app_image_is_reported(tmp_path: Path) -> None:
    app = Partition("factory", 0, 0, 0x1000, SIZE)
    img = _image_with(tmp_path, b"\xe9\x03" + b"\x00" * 60)
    found = describe(img, app, PartitionTable([app]))
    assert found.kind == "app" and found.summary.startswith("broken ESP image")


@pytest.mark.parametrize("flip", [False, True])
def test_nvs_header_crc_is_checked(tmp_path: Path, flip: bool) -> None:
    import zlib

    header = bytearray(b"\xff" * 32)
    struct.pack_into("<II", header, 0, 0xFFFFFFFE, 0)
    header[8] = 0xFE
    struct.pack_into("<I", header, 28, zlib.crc32(bytes(header[4:28]), 0xFFFFFFFF))
    if flip:
        header[5] ^= 1
    kind, _ = _describe(tmp_path, bytes(header))
    assert kind == ("data" if flip else "nvs")
