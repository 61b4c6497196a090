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
from support.tools import require_tool

pytestmark = [pytest.mark.cmake, pytest.mark.firmware, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "cmake-esp32c3"
SLOT = 0x100000  # factory, ota_0 and ota_1 in the example's partitions.csv
DEFAULT_PAD = "200000"  # the example's APP_PAD_BYTES


@pytest.fixture(scope="module", params=list(GENERATORS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    require_tool("riscv64-unknown-elf-gcc")
    pytest.importorskip("esptool", reason="esptool is in the test extra")
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
    assert "partkit" not in log.output.replace("partition-table", "")
    assert "esptool" not in log.output
    assert mtimes(*outputs(example), example.path("app.bin")) == before
    if example.generator == "Ninja":
        assert "ninja: no work to do." in example.ninja_dry_run().output


def test_csv_edit_regenerates_only_the_table_and_rechecks(example: Project) -> None:
    original = csv(example).read_text()
    firmware = mtimes(example.path("app.elf"), example.path("app.bin"),
                      example.path("bootloader.bin"))
    before = mtimes(*outputs(example))
    edited = original.replace("0xF0000", "0x80000")
    assert edited != original
    try:
        csv(example).write_text(edited)
        log = example.build()
        assert example.path("partition-table.bin").read_bytes() == oracle_table(edited)
        assert log.output.count("partkit: generating partition table") == 1
        assert log.output.count("partkit: checking") == 2
        assert "Building C object" not in log.output
        assert mtimes(example.path("app.elf"), example.path("app.bin"),
                      example.path("bootloader.bin")) == firmware
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
