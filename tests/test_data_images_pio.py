"""``pio run -t buildfs``: partkit checks the file-system image against the partition
``uploadfs`` writes it to (the last spiffs/fat/littlefs data partition, as
platform-espressif32 picks it) and names that partition in the log.

The example's offline platform gets a ``buildfs`` target at test time, shaped like
platform-espressif32's: ``$BUILD_DIR/${ESP32_FS_IMAGE_NAME}.bin`` made from the project's
data directory by a real LittleFS tool (littlefs-python's ``create``), at the size of the
partition the platform found, unless the test overrides that size.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from partkit.data.upload import uploadfs_partition
from partkit.table import codec
from partkit.table.options import TableOptions
from support.pio import offline_core, run_pio
from support.tools import require_tool

pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")

# Two file-system partitions: uploadfs uses the last one ('storage'), not 'spiffs'.
CSV = """\
# Name,   Type, SubType,  Offset,   Size
nvs,      data, nvs,      0x9000,   0x6000
phy_init, data, phy,      0xf000,   0x1000
factory,  app,  factory,  0x10000,  0x100000
spiffs,   data, spiffs,   0x110000, 0x40000
storage,  data, spiffs,   0x150000, 0x20000
"""

BUILDFS = '''

# --- test addition: buildfs as platform-espressif32 wires it -------------------------
import os as _os
import sys as _sys

_fs_name = board.get("build.filesystem", "littlefs")
env.Replace(ESP32_FS_IMAGE_NAME=_fs_name)


def _fs_partition(env):
    """The last spiffs/fat/littlefs data row of the CSV (explicit offsets only here)."""
    found = None
    csv = _os.path.join(env.subst("$PROJECT_DIR"), board.get("build.partitions"))
    for line in open(csv):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 5 and not line.startswith("#") and cells[1] == "data" and \\
                cells[2] in ("spiffs", "fat", "littlefs"):
            found = (int(cells[3], 0), int(cells[4], 0))
    return found


def _fs_emitter(target, source, env):
    start, size = _fs_partition(env)
    override = env.GetProjectOption("custom_test_fs_size", "")
    env.Replace(FS_START=start, FS_SIZE=int(override, 0) if override else size)
    return target, source


env.Append(BUILDERS=dict(DataToBin=Builder(
    action=env.VerboseAction(
        '"$PYTHONEXE" -m littlefs create --block-size 4096 --fs-size $FS_SIZE '
        "--name-max 64 $SOURCE $TARGET", "Building FS image from '$SOURCE' to $TARGET"),
    emitter=_fs_emitter, source_factory=env.Dir, suffix=".bin")))
_fs_image = env.DataToBin(_os.path.join("$BUILD_DIR", "${ESP32_FS_IMAGE_NAME}"),
                          "$PROJECT_DATA_DIR")
AlwaysBuild(_fs_image)
env.AddPlatformTarget("buildfs", _fs_image, _fs_image, "Build Filesystem Image")
'''


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("riscv64-unknown-elf-gcc")
    return offline_core(tmp_path_factory.mktemp("pio-fs") / "core")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    from test_pio_partkit import make_project

    project = make_project(tmp_path, CSV)
    main = project / "platform" / "builder" / "main.py"
    main.write_text(main.read_text() + BUILDFS)
    data = project / "data"
    data.mkdir()
    (data / "index.html").write_text("<p>hello</p>\n")
    (data / "config.json").write_text('{"a": 1}\n')
    return project


def test_uploadfs_partition_is_the_last_fs_one() -> None:
    table = codec.load_table(CSV.encode(), "p.csv", TableOptions()).table
    assert uploadfs_partition(table).name == "storage"
    assert uploadfs_partition(table, "spiffs").name == "spiffs"


@pytest.mark.pio
@pytest.mark.firmware
def test_buildfs_image_checked_against_its_partition(core: Path, project: Path) -> None:
    ok = run_pio(core, project, "-t", "buildfs")
    assert ok.returncode == 0, ok
    image = project / ".pio" / "build" / "esp32c3" / "littlefs.bin"
    assert image.stat().st_size == 0x20000
    assert ("uploadfs writes .pio/build/esp32c3/littlefs.bin to 'storage' at 0x150000 "
            "(0x20000 bytes; the last spiffs/fat/littlefs data partition)") in ok.output, ok
    assert "littlefs: fits" in ok.output

    # An image one 4 KiB block larger than the partition fails the build, by name.
    from test_pio_partkit import set_options

    set_options(project, custom_test_fs_size="0x21000")
    over = run_pio(core, project, "-t", "buildfs")
    assert over.returncode != 0, over
    assert "does not fit partition 'storage' of 131072 bytes (0x20000) at 0x150000: " \
           "4096 bytes too many" in over.output, over
    assert "partitions.csv:6:1: note: 'storage' is defined here" in over.output


# --- partkit data build: FAT at FFat sizes, and the printed flash command ------------------

FFAT_CSV = """\
# Name,   Type, SubType, Offset,   Size
nvs,      data, nvs,     0x9000,   0x5000
otadata,  data, ota,     0xe000,   0x2000
app0,     app,  ota_0,   0x10000,  0x100000
ffat,     data, fat,     0x110000, 0x1F0000
big,      data, fat,     0x300000, 0x1000000
"""


@pytest.mark.parametrize(("name", "size", "cluster_sectors"), [
    ("ffat", 0x1F0000, 1),  # the size of Arduino's FFat tables: crashed in pyfatfs before
    ("big", 0x1000000, 2),  # 16 MB: FAT12 with 8 KiB clusters (pyfatfs' FAT16 refuses it)
])
def test_data_build_fat_at_ffat_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      name: str, size: int, cluster_sectors: int) -> None:
    pytest.importorskip("pyfatfs", reason="pyfatfs (partkit[fs]) missing")
    import struct

    from partkit.cli import main
    from pyfatfs.PyFatFS import PyFatFS

    (tmp_path / "p.csv").write_text(FFAT_CSV)
    data = tmp_path / "data"
    (data / "www").mkdir(parents=True)
    (data / "index.html").write_text("<p>hi</p>\n")
    (data / "www" / "app.js").write_bytes(b"x" * 9000)
    out = tmp_path / f"{name} image.bin"
    code = main(["data", "build", str(tmp_path / "p.csv"), "--partition", name,
                 "--from", str(data), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    image = out.read_bytes()
    assert len(image) == size
    # The boot sector as FatFs reads it: 4 KiB sectors, FAT12 by cluster count.
    bps, spc, reserved, fats, root_entries, total16 = struct.unpack_from("<HBHBHH", image, 11)
    fat_sectors = struct.unpack_from("<H", image, 22)[0]
    total = total16 or struct.unpack_from("<I", image, 32)[0]
    assert (bps, spc, total) == (4096, cluster_sectors, size // 4096)
    clusters = (total - reserved - fats * fat_sectors - root_entries * 32 // bps) // spc
    assert clusters <= 4084 and image[54:62] == b"FAT12   "
    fs = PyFatFS(str(out), read_only=True)
    try:
        assert fs.readtext("/index.html") == "<p>hi</p>\n"
        assert fs.readbytes("/www/app.js") == b"x" * 9000
    finally:
        fs.close()
    # It says what it is not: no wear levelling, so not for FFat.
    assert "raw FAT without wear levelling" in err and "FFat" in err


def test_data_build_prints_a_runnable_flash_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command uses the spelling of the esptool that runs it (this Python's), and is
    shell-quoted; run as printed (plus --port) it writes the image to a mock ESP32-C3."""
    import shlex
    import subprocess
    import sys
    from importlib import metadata

    from partkit.cli import main
    from support.mock_device import MockDevice

    (tmp_path / "p.csv").write_text(CSV)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")
    out = tmp_path / "my fs.bin"
    assert main(["data", "build", str(tmp_path / "p.csv"), "--partition", "storage",
                 "--format", "littlefs", "--from", str(data), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    command = shlex.split(err.split("flash with: ", 1)[1])
    spelling = "write-flash" if int(metadata.version("esptool").split(".")[0]) >= 5 \
        else "write_flash"
    assert command == [sys.executable, "-m", "esptool", spelling, "0x150000", str(out)]
    device = MockDevice(tmp_path / "mock")
    try:
        ran = subprocess.run([*command[:3], "--chip", "esp32c3", "--port", device.url,
                              *command[3:]], capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert device.read(tmp_path, 0x150000, 0x20000) == out.read_bytes()
    finally:
        device.stop()


@pytest.mark.parametrize(("version", "spelling"), [
    ("4.11.0", "write_flash"), ("4.8.1", "write_flash"), ("5.0.0", "write-flash"),
    ("5.3.0", "write-flash")])
def test_write_command_spelling_per_esptool_version(version: str, spelling: str) -> None:
    import shlex
    import sys

    from partkit.common.esptool import write_command

    assert shlex.split(write_command(0x210000, "out dir/ffat.bin", version)) == [
        sys.executable, "-m", "esptool", spelling, "0x210000", "out dir/ffat.bin"]
    both = write_command(0x210000, "ffat.bin", None)  # no esptool here: both forms
    assert "esptool write-flash 0x210000 ffat.bin" in both
    assert "esptool.py write_flash 0x210000 ffat.bin" in both


# --- FAT in ESP-IDF's wear-levelled layout (--format fat-wl) -------------------------------

def wl_volume(image: bytes) -> bytes:
    """The FAT volume as ESP-IDF's wear_levelling component finds it in ``image``: written
    from how WL_Flash reads a partition (not from partkit's writer). Asserts the state
    copies and the config are what a mount accepts without re-initialising."""
    import struct
    import zlib

    sector, size = 4096, len(image)
    state_size = sector
    needed = 64 + (size // sector) * 16  # sizeof(wl_state_t) + a record per sector
    if needed > sector:
        state_size = -(-needed // sector) * sector
    addr_cfg = size - sector
    addr_state1 = size - 2 * state_size - sector
    addr_state2 = size - state_size - sector
    flash_size = ((size - 2 * state_size - sector) // sector - 1) * sector  # minus the spare
    for addr in (addr_state1, addr_state2):
        state = image[addr:addr + 64]
        assert struct.unpack_from("<I", state, 60)[0] == zlib.crc32(state[:60], 0xFFFFFFFF)
        pos, max_pos, moves, _access, max_count, block, version, _dev = \
            struct.unpack_from("<8I", state)
        assert (pos, moves, max_pos, block, version, max_count) == (
            0, 0, flash_size // sector + 1, sector, 2, 16)
        # No position record used yet: the spare is still physical sector 0.
        assert all(image[addr + 64 + i * 16] == 0xFF for i in range(max_pos))
    assert image[addr_state1:addr_state2] == image[addr_state2:addr_cfg]
    config = image[addr_cfg:addr_cfg + 48]
    assert struct.unpack_from("<8I", config) == (0, size, sector, sector, 16, 16, 2, 32)
    assert struct.unpack_from("<I", config, 32)[0] == zlib.crc32(config[:32], 0xFFFFFFFF)
    assert image[:sector] == b"\xff" * sector  # the spare (dummy) sector
    # pos 0, no moves: logical sector N is physical sector N + 1.
    return image[sector:sector + flash_size]


@pytest.mark.parametrize("size", [0x20000, 0x1F0000])  # one and two sectors per state copy
def test_data_build_fat_wear_levelled(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      size: int) -> None:
    pytest.importorskip("pyfatfs", reason="pyfatfs (partkit[fs]) missing")
    from partkit.cli import main
    from pyfatfs.PyFatFS import PyFatFS

    (tmp_path / "p.csv").write_text(
        f"nvs, data, nvs, 0x9000, 0x5000\nfactory, app, factory, 0x10000, 0x100000\n"
        f"ffat, data, fat, 0x110000, {size:#x}\n")
    data = tmp_path / "data"
    (data / "www").mkdir(parents=True)
    (data / "index.html").write_text("<p>wl</p>\n")
    (data / "www" / "big.bin").write_bytes(bytes(range(256)) * 100)
    out = tmp_path / "ffat.bin"
    assert main(["data", "build", str(tmp_path / "p.csv"), "--partition", "ffat",
                 "--format", "fat-wl", "--from", str(data), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "ESP-IDF's wear-levelled layout" in err
    image = out.read_bytes()
    assert len(image) == size
    volume = tmp_path / "volume.bin"
    volume.write_bytes(wl_volume(image))
    fs = PyFatFS(str(volume), read_only=True)
    try:
        assert fs.readtext("/index.html") == "<p>wl</p>\n"
        assert fs.readbytes("/www/big.bin") == bytes(range(256)) * 100
    finally:
        fs.close()
    # partkit's own check sees a FAT image and that it fits.
    assert main(["check", str(tmp_path / "p.csv"), "--data", f"ffat={out}"]) == 0
    assert "fits" in capsys.readouterr().out
