"""CMake size checks on real ESP32-C3 images: the whole file must fit, errors at the CSV line.

A ``project(... NONE)`` copies prebuilt images (Debian RISC-V GCC + esptool elf2image, from
tests/support/firmware.py) into the build tree, so each scenario only swaps a file and
rebuilds: padded past its slot, exactly full, built for another chip. Paths have spaces,
in the source/build trees and in the image paths listed in ``flash_args``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import GENERATORS, Project, module_dir
from support.firmware import app_of_size, bootloader_of_size

pytestmark = [pytest.mark.cmake, pytest.mark.firmware, pytest.mark.slow]

CSV = """\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
factory,  app,  factory, 0x10000, 0x40000,
storage,  data, spiffs,  ,        0x40000,
"""
FACTORY_LINE = 4
SLOT = 0x40000

PROJECT = """\
cmake_minimum_required(VERSION 3.16)
project(checks NONE)
include("@MODULE@/partkit.cmake")
set(TABLE_CHIP esp32c3 CACHE STRING "CHIP of the table")

partkit_add_partition_table(partition-table CSV partitions.csv CHIP ${TABLE_CHIP}
  OUTPUT "table dir/partition-table.bin" FLASH_SIZE 4MB ALL)

foreach(image app bootloader)
  add_custom_command(OUTPUT "images dir/${image}.bin"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "images dir"
    COMMAND "${CMAKE_COMMAND}" -E copy "${CMAKE_CURRENT_SOURCE_DIR}/${image}.bin"
      "images dir/${image}.bin"
    DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${image}.bin" VERBATIM)
  add_custom_target(${image} ALL DEPENDS "images dir/${image}.bin")
endforeach()

partkit_check_app_size(app APP_BIN "images dir/app.bin" TABLE partition-table)
partkit_check_bootloader_size(bootloader BOOTLOADER_BIN "images dir/bootloader.bin"
  TABLE partition-table)
partkit_add_flash_args(TABLE partition-table APP "images dir/app.bin"
  BOOTLOADER "images dir/bootloader.bin" DEPENDS app bootloader)
"""


def make_project(root: Path, generator: str) -> Project:
    src = root / "source dir"
    src.mkdir(parents=True)
    (src / "CMakeLists.txt").write_text(PROJECT.replace("@MODULE@", module_dir().as_posix()))
    (src / "partitions.csv").write_text(CSV)
    app_of_size(src, 0x30000, name="app.bin")
    bootloader_of_size(src, 0x5000, name="bootloader.bin")
    return Project(src, root / "build dir", generator)


@pytest.fixture(scope="module", params=list(GENERATORS))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    p = make_project(tmp_path_factory.mktemp("cmake checks"), str(request.param))
    p.configure()
    log = p.build()
    assert log.output.count("check OK") == 2, log
    return p


def _set_app(p: Project, data: bytes) -> None:
    (p.src / "app.bin").write_bytes(data)


def test_padded_app_fails_the_build_at_the_csv_line(project: Project, tmp_path: Path) -> None:
    """A real image that fits, padded with 0xFF past its slot: the flashed file does not."""
    image = app_of_size(tmp_path, SLOT - 0x1000, name="app.bin").read_bytes()
    original = (project.src / "app.bin").read_bytes()
    csv = project.src / "partitions.csv"
    try:
        _set_app(project, image + b"\xff" * 0x1800)  # 0x800 past the slot
        log = project.build(check=False)
        assert log.returncode != 0
        # The binary table is checked, the message points at the CSV row (file:line:col).
        assert (f"{csv}:{FACTORY_LINE}:1: error: app partition is too small for binary "
                "app.bin size 0x40800:") in log.output, log
        assert "Part 'factory' 0/0 @ 0x10000 size 0x40000 (overflow 0x800)" in log.output
        assert "image length 0x3f000 (258048 bytes)" in log.output
        assert "the image itself is 0x3f000 bytes and would fit" in log.output
        assert "entry 3 (byte 0x40)" not in log.output
        assert project.build(check=False).returncode != 0  # no stale success
        # Padded to exactly the slot: passes.
        _set_app(project, image + b"\xff" * 0x1000)
        log = project.build()
        assert "app.bin binary size 0x40000 bytes" in log.output
        assert "0x0 bytes (0%) free" in log.output
    finally:
        _set_app(project, original)
    assert "check OK" in project.build().output


def test_padded_bootloader_fails_the_build(project: Project) -> None:
    bl = project.src / "bootloader.bin"
    original = bl.read_bytes()
    try:
        bl.write_bytes(original + b"\xff" * (0x8000 - len(original) + 16))
        log = project.build(check=False)
        assert log.returncode != 0
        assert "Bootloader binary size 0x8010 bytes is too large for partition table offset " \
            "0x8000" in log.output, log
        assert "it overflows by 16 bytes" in log.output
    finally:
        bl.write_bytes(original)
    assert project.build().returncode == 0


def test_flash_args_quote_paths_for_esptool(project: Project) -> None:
    """esptool splits @flash_args lines like a shell: paths with spaces are quoted."""
    lines = project.path("flash_args").read_text().split("\n")
    assert lines[1:] == ["0x0 'images dir/bootloader.bin'", "0x10000 'images dir/app.bin'",
                         "0x8000 'table dir/partition-table.bin'",
                         "0xd000 ota_data_initial.bin"]
    merged = project.path("merged.bin")
    esptool = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3",
                              "merge-bin", "-o", str(merged), "@flash_args"],
                             cwd=project.build_dir, capture_output=True, text=True)
    assert esptool.returncode == 0, esptool.stdout + esptool.stderr
    data = merged.read_bytes()
    app = project.path("images dir/app.bin").read_bytes()
    table = project.path("table dir/partition-table.bin").read_bytes()
    assert data[0x10000:0x10000 + len(app)] == app
    assert data[0x8000:0x8000 + len(table)] == table


def test_app_for_another_chip_fails_the_table_chip(tmp_path: Path) -> None:
    """The app check gets the table's CHIP: an esp32c3 app fails a CHIP esp32 table."""
    p = make_project(tmp_path, next(iter(GENERATORS)))
    p.configure(TABLE_CHIP="esp32")
    log = p.build("app_check_app_size", check=False)
    assert log.returncode != 0
    assert "image is for esp32c3 (chip id 5), not esp32" in log.output, log
    p.configure(TABLE_CHIP="esp32c3")
    assert "check OK" in p.build("app_check_app_size").output


def test_semicolon_in_csv_path_is_a_configure_error(tmp_path: Path) -> None:
    p = make_project(tmp_path, next(iter(GENERATORS)))
    odd = p.src / "a;b"
    odd.mkdir()
    shutil.copy(p.src / "partitions.csv", odd / "partitions.csv")
    text = (p.src / "CMakeLists.txt").read_text()
    (p.src / "CMakeLists.txt").write_text(text.replace(
        "CSV partitions.csv", 'CSV "${CMAKE_CURRENT_SOURCE_DIR}/a\\;b/partitions.csv"'))
    log = p.configure(check=False)
    assert log.returncode != 0
    assert "partkit_add_partition_table: CSV path" in log.output
    assert "contains a `;`, which CMake" in log.output, log
    assert "rename the file or directory" in log.output


def test_flash_target_writes_quoted_paths_to_a_device(project: Project) -> None:
    """The `flash` target (esptool write-flash @flash_args) against a mock ESP32-C3."""
    from cmake_projects.cmakebuild import run

    mock = pytest.importorskip("esp32_mock_bootloader")
    with mock.mock_bootloader("esp32c3") as device:
        env = dict(project.env, ESPPORT=device.url())
        log = run([project.cmake, "--build", str(project.build_dir), "--target", "flash"],
                  env=env)
    assert log.returncode == 0, log
    assert log.output.count("Hash of data verified") == 4, log  # bl, app, table, otadata
    size = (project.path("images dir/app.bin")).stat().st_size
    assert f"Wrote {size} bytes" in log.output
