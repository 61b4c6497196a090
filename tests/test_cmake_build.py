"""The ESP32-C3 CMake example, built for real: cross compiler, esptool, partkit.

examples/cmake-esp32c3 is copied into a tmp dir whose path has spaces and built once per
generator (Ninja, Unix Makefiles); the tests then walk one build tree through the
scenarios a firmware developer meets: fresh build, no-op rebuild, CSV edit, option change,
an app that outgrows its slot, a typo in the CSV.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cmake_projects.cmakebuild import (
    GENERATORS,
    ROOT,
    TOOLCHAIN,
    Project,
    copy_tree,
    module_dir,
    mtimes,
    oracle_table,
)
from support.tools import missing, require_tool

pytestmark = [pytest.mark.cmake, pytest.mark.firmware, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "cmake-esp32c3"
SLOT = 0x100000  # factory, ota_0 and ota_1 in the example's partitions.csv
DEFAULT_PAD = "200000"  # the example's APP_PAD_BYTES


@pytest.fixture(scope="module", params=list(GENERATORS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    require_tool("riscv64-unknown-elf-gcc")
    try:
        import esptool  # noqa: F401
    except ImportError:
        missing("esptool is not installed (it is in the test extra)")
    root = tmp_path_factory.mktemp("cmake example")
    src = copy_tree(EXAMPLE, root / "my firmware")
    p = Project(src, root / "build output", str(request.param))
    p.defines.update(CMAKE_TOOLCHAIN_FILE=TOOLCHAIN.as_posix(),
                     partkit_DIR=module_dir().as_posix())
    log = p.configure()
    assert "boot app at 0x10000; otadata (offset size): 0xd000 0x2000" in log.output
    p.build()
    return p


def csv(p: Project) -> Path:
    return p.src / "partitions.csv"


def outputs(p: Project) -> list[Path]:
    return [p.path("partition-table.bin"), *sorted(p.path("partkit").glob("*.stamp"))]


def test_fresh_build_makes_reference_table_and_checks_images(example: Project) -> None:
    log = example.builds[0]
    table = example.path("partition-table.bin").read_bytes()
    assert table == oracle_table(csv(example).read_text())
    assert example.path("app.bin").read_bytes()[0] == 0xE9  # a real ESP image
    assert "esp32c3 app image 'partkit_cmake_esp32c3' 1.2.0" in log.output
    assert "Smallest app partition is 0x100000 bytes." in log.output
    assert "Bootloader binary size 0x" in log.output
    assert log.output.count("check OK") == 2
    assert "write-flash 0x8000 partition-table.bin" in log.output
    assert len(outputs(example)) == 3


def test_noop_rebuild_runs_nothing(example: Project) -> None:
    before = mtimes(*outputs(example), example.path("app.bin"))
    log = example.build()
    assert "partkit:" not in log.output  # no partkit custom command ran
    assert "check OK" not in log.output
    assert "esptool" not in log.output
    assert mtimes(*outputs(example), example.path("app.bin")) == before
    if example.generator == "Ninja":
        assert "ninja: no work to do." in example.ninja_dry_run().output


def test_csv_edit_regenerates_the_table_and_rechecks(example: Project) -> None:
    original = csv(example).read_text()
    app = mtimes(example.path("app.elf"), example.path("app.bin"))
    bootloader = mtimes(example.path("bootloader.elf"), example.path("bootloader.bin"))
    before = mtimes(*outputs(example))
    edited = original.replace("0xF0000", "0x80000")
    assert edited != original
    try:
        csv(example).write_text(edited)
        log = example.build()
        assert example.path("partition-table.bin").read_bytes() == oracle_table(edited)
        assert log.output.count("partkit: generating partition table") == 1
        assert log.output.count("partkit: checking") == 2
        # The app includes the layout header (storage's size changed), the bootloader not.
        assert log.output.count("Building C object") == 1
        assert all(m != app[f] for f, m in mtimes(*app).items())
        assert mtimes(*bootloader) == bootloader
        assert all(m != before[f] for f, m in mtimes(*outputs(example)).items())
    finally:
        csv(example).write_text(original)
        example.build()


def test_option_change_regenerates_the_table(example: Project) -> None:
    text = csv(example).read_text()
    firmware = mtimes(example.path("app.bin"), example.path("bootloader.bin"))
    try:
        example.configure(PARTITION_TABLE_MD5="OFF")
        log = example.build()
        assert example.path("partition-table.bin").read_bytes() == oracle_table(text, md5=False)
        assert log.output.count("partkit: generating partition table") == 1
        assert log.output.count("partkit: checking") == 2
        assert mtimes(example.path("app.bin"), example.path("bootloader.bin")) == firmware
    finally:
        example.configure(PARTITION_TABLE_MD5="ON")
        example.build()
    assert example.path("partition-table.bin").read_bytes() == oracle_table(text)


def test_app_outgrowing_its_slot_fails_the_build(example: Project) -> None:
    size = example.path("app.bin").stat().st_size
    exact_pad = int(example.defines.get("APP_PAD_BYTES", DEFAULT_PAD)) + SLOT - size
    try:
        # Exactly full: passes, but the example's WARN_FREE 10% budget warns.
        example.configure(APP_PAD_BYTES=str(exact_pad))
        log = example.build()
        assert example.path("app.bin").stat().st_size == SLOT
        assert "0x0 bytes (0%) free" in log.output
        # ESP images grow in 16-byte steps (esptool pads the checksum): the smallest overflow.
        example.configure(APP_PAD_BYTES=str(exact_pad + 16))
        log = example.build(check=False)
        assert example.path("app.bin").stat().st_size == SLOT + 16
        assert log.returncode != 0
        assert "All app partitions are too small for binary app.bin size 0x100010" in log.output
        assert "Part 'factory' 0/0 @ 0x10000 size 0x100000 (overflow 0x10)" in log.output
        # Reported at the factory row of the CSV (file:line:col), not the binary's entry.
        assert f"{csv(example)}:6:1: error: All app partitions are too small" in log.output
        assert example.build(check=False).returncode != 0  # no stale success
    finally:
        example.configure(APP_PAD_BYTES=DEFAULT_PAD)
    assert "check OK" in example.build().output


def test_csv_error_fails_the_build_with_its_line(example: Project) -> None:
    original = csv(example).read_text()
    lines = original.splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("ota_1"))
    lines[number - 1] = lines[number - 1].replace("ota_1,    ,", "ota_1,    0x210001,")
    try:
        csv(example).write_text("".join(lines))
        log = example.build(check=False)
        assert log.returncode != 0
        assert f"partitions.csv:{number}:" in log.output
    finally:
        csv(example).write_text(original)
    assert example.build().returncode == 0
    assert example.path("partition-table.bin").read_bytes() == oracle_table(original)


def test_flash_args_drive_esptool(example: Project) -> None:
    """flash_args lists every image at its offset; esptool merges them into one flash image."""
    import json
    import sys

    from cmake_projects.cmakebuild import run

    lines = example.path("flash_args").read_text().split("\n")
    assert lines == ["--flash-mode dio --flash-freq 80m --flash-size 4MB", "0x0 bootloader.bin",
                     "0x10000 app.bin", "0x8000 partition-table.bin",
                     "0xd000 ota_data_initial.bin", "0x310000 storage.bin"]
    info = json.loads(example.path("flasher_args.json").read_text())
    assert info["flash_files"] == {"0x0": "bootloader.bin", "0x10000": "app.bin",
                                   "0x8000": "partition-table.bin",
                                   "0xd000": "ota_data_initial.bin",
                                   "0x310000": "storage.bin"}
    assert info["app"] == {"offset": "0x10000", "file": "app.bin", "encrypted": "false"}
    assert info["extra_esptool_args"]["chip"] == "esp32c3"

    log = run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin",
               "-o", "merged.bin", "@flash_args"], cwd=example.build_dir)
    assert log.returncode == 0, log
    merged = example.path("merged.bin").read_bytes()
    table = example.path("partition-table.bin").read_bytes()
    app = example.path("app.bin").read_bytes()
    assert merged[0x8000:0x8000 + len(table)] == table
    assert merged[0x10000:0x10000 + len(app)] == app
    assert merged[0xD000:0xF000] == b"\xff" * 0x2000  # erased otadata: boot the factory app
