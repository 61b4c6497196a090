"""The CMake module without a cross compiler: table generation, checks, rebuild behaviour.

Each test configures a small ``project(... NONE)`` in a tmp dir whose path has spaces and
builds it with real cmake + Ninja and cmake + Unix Makefiles. App and bootloader "images"
are raw files of an exact size (partkit measures non-images by file size), so the
one-byte boundary is exact; tests/test_cmake_build.py does the same with real firmware.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cmake_projects.cmakebuild import GENERATORS, Project, module_dir, mtimes, oracle_table

pytestmark = [pytest.mark.cmake, pytest.mark.slow]

CSV = """\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     ,        0x6000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, 0x10000, 1M,
storage,  data, spiffs,  ,        0x40000,
"""

PROJECT = """\
cmake_minimum_required(VERSION 3.16)
project(tables NONE)
include("@MODULE@/partkit.cmake")

set(TABLE_ARGS "" CACHE STRING "extra partkit_add_partition_table arguments")
set(APP_SIZE 4096 CACHE STRING "bytes in app.bin")
set(BL_SIZE 4096 CACHE STRING "bytes in bootloader.bin")

partkit_add_partition_table(partition-table CSV partitions.csv
  OUTPUT "table dir/partition-table.bin" CHIP esp32c3 ${TABLE_ARGS} ALL)

# Raw stand-ins for images, of an exact size.
set(write_bytes "open((a := __import__('sys').argv)[1], 'wb').write(bytes([0xEE]) * int(a[2]))")
add_custom_command(OUTPUT app.bin
  COMMAND "${PARTKIT_PYTHON}" -c "${write_bytes}" app.bin ${APP_SIZE} VERBATIM)
add_custom_target(app ALL DEPENDS app.bin)
add_custom_command(OUTPUT bootloader.bin
  COMMAND "${PARTKIT_PYTHON}" -c "${write_bytes}" bootloader.bin ${BL_SIZE} VERBATIM)
add_custom_target(bootloader ALL DEPENDS bootloader.bin)

partkit_check_app_size(app APP_BIN app.bin TABLE partition-table)
partkit_check_bootloader_size(bootloader BOOTLOADER_BIN bootloader.bin TABLE partition-table)
"""

SLOT = 0x100000  # factory
BOOTLOADER_MAX = 0x8000  # esp32c3: bootloader at 0x0, table at 0x8000


def make_project(root: Path, generator: str, project: str = PROJECT, csv: str = CSV) -> Project:
    src = root / "source dir"
    src.mkdir(parents=True)
    (src / "CMakeLists.txt").write_text(project.replace("@MODULE@", module_dir().as_posix()))
    (src / "partitions.csv").write_text(csv)
    return Project(src, root / "build dir", generator)


@pytest.fixture(params=list(GENERATORS))
def generator(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def table_path(p: Project) -> Path:
    return p.path("table dir/partition-table.bin")


def test_table_equals_reference_and_rebuilds_exactly(tmp_path: Path, generator: str) -> None:
    p = make_project(tmp_path, generator)
    p.configure()
    first = p.build()
    assert table_path(p).read_bytes() == oracle_table(CSV)
    assert "partkit: generating partition table" in first.output
    assert "check OK" in first.output

    # No-op rebuild: nothing of partkit runs, no file changes.
    watched = [table_path(p), *sorted(p.path("partkit").glob("*.stamp"))]
    assert len(watched) == 3  # table + app check + bootloader check
    before = mtimes(*watched)
    again = p.build()
    assert "partkit:" not in again.output  # no partkit custom command ran
    assert "check OK" not in again.output
    assert mtimes(*watched) == before
    if generator == "Ninja":
        assert "ninja: no work to do." in p.ninja_dry_run().output

    # An option change regenerates the table (new bytes) and reruns both checks.
    p.configure(TABLE_ARGS="NO_MD5")
    changed = p.build()
    assert table_path(p).read_bytes() == oracle_table(CSV, md5=False)
    assert changed.output.count("partkit: checking") == 2
    assert all(m != before[f] for f, m in mtimes(*watched).items())

    # So does an edit of the CSV; the unchanged app image is not rebuilt.
    app_before = mtimes(p.path("app.bin"))
    edited = CSV.replace("0x40000", "0x80000")
    (p.src / "partitions.csv").write_text(edited)
    log = p.build()
    assert table_path(p).read_bytes() == oracle_table(edited, md5=False)
    assert log.output.count("partkit: generating partition table") == 1
    assert log.output.count("partkit: checking") == 2
    assert mtimes(p.path("app.bin")) == app_before


def test_app_one_byte_too_big_fails_the_build(tmp_path: Path, generator: str) -> None:
    p = make_project(tmp_path, generator)
    p.configure(APP_SIZE=str(SLOT))
    exact = p.build()
    assert "0x0 bytes (0%) free" in exact.output

    p.configure(APP_SIZE=str(SLOT + 1))
    log = p.build(check=False)
    assert log.returncode != 0
    assert "Part 'factory' 0/0 @ 0x10000 size 0x100000 (overflow 0x1)" in log.output
    # The failure sticks: no stale stamp lets the next build pass.
    assert p.build(check=False).returncode != 0

    p.configure(APP_SIZE=str(SLOT - 0x1000))
    assert "0x1000 bytes (0%) free" in p.build().output


def test_bootloader_one_byte_too_big_fails_the_build(tmp_path: Path, generator: str) -> None:
    p = make_project(tmp_path, generator)
    p.configure(BL_SIZE=str(BOOTLOADER_MAX))
    assert "Bootloader binary size 0x8000 bytes. 0x0 bytes (0%) free." in p.build().output
    p.configure(BL_SIZE=str(BOOTLOADER_MAX + 1))
    log = p.build(check=False)
    assert log.returncode != 0
    assert "Bootloader binary size 0x8001 bytes is too large for partition table offset" in (
        log.output
    )


def test_csv_error_fails_the_build_with_its_line(tmp_path: Path, generator: str) -> None:
    p = make_project(tmp_path, generator)
    p.configure()
    p.build()
    bad = CSV.replace("phy_init, data, phy,", "phy_init, data, nosuchsubtype,")
    (p.src / "partitions.csv").write_text(bad)
    log = p.build(check=False)
    assert log.returncode != 0
    assert "partitions.csv:3:" in log.output
    assert "nosuchsubtype" in log.output
    assert p.build(check=False).returncode != 0  # still failing: the old table is stale

    (p.src / "partitions.csv").write_text(CSV)
    p.build()
    assert table_path(p).read_bytes() == oracle_table(CSV)


OPTIONS_CSV = """\
bootloader,      bootloader,      primary, N/A,     N/A
partition_table, partition_table, primary, N/A,     N/A
nvs,             data,            nvs,     ,        0x5000
factory,         app,             factory, 0x10000, 1M
blob,            data,            blob,    ,        0x10000
"""

OPTIONS_PROJECT = """\
cmake_minimum_required(VERSION 3.16)
project(options NONE)
include("@MODULE@/partkit.cmake")
partkit_add_partition_table(pt CSV partitions.csv OFFSET 0x9000 CHIP esp32 SECURE v2
  EXTRA_SUBTYPES "data, blob, 40" ALL)
partkit_get_partition_info(blob TABLE pt TYPE data SUBTYPE blob INFO name subtype offset)
message(STATUS "blob: ${blob}")
get_target_property(props pt PARTKIT_OFFSET)
get_target_property(chip pt PARTKIT_CHIP)
message(STATUS "props: ${props} ${chip}")
"""


def test_table_options_reach_the_generator(tmp_path: Path) -> None:
    p = make_project(tmp_path, "Ninja", OPTIONS_PROJECT, OPTIONS_CSV)
    log = p.configure()
    assert "blob: blob 64 0x110000" in log.output
    assert "props: 0x9000 esp32" in log.output
    build = p.build()
    # The reference knows no extra subtypes: give it the number the name stands for.
    reference = oracle_table(OPTIONS_CSV.replace("blob,    ,", "0x40,    ,"), offset=0x9000,
                             bootloader_offset=0x1000)
    assert p.path("partition-table.bin").read_bytes() == reference
    assert "write-flash 0x9000 partition-table.bin" in build.output
    assert "--chip esp32 " in build.output
    assert "--secure v2" in p.path("build.ninja").read_text()


def test_printed_flash_command_is_one_shell_word_per_path(tmp_path: Path) -> None:
    """Issue 20 item 12: the hint printed "out dir/pt $x.bin" in double quotes, where a
    shell expands $x (and `...` would run)."""
    import shlex
    import subprocess

    project = PROJECT.replace('OUTPUT "table dir/partition-table.bin"',
                              'OUTPUT "out dir/pt $x it\'s.bin"')
    p = make_project(tmp_path, "Ninja", project)
    p.configure()
    log = p.build()
    lines = [line for line in log.output.splitlines() if "write-flash" in line]
    assert lines, log.output
    words = shlex.split(lines[0])
    assert words[-1] == "out dir/pt $x it's.bin", lines[0]
    assert (p.build_dir / words[-1]).is_file()
    # what a shell makes of the pasted path: the same name, no expansion
    pasted = lines[0].split("write-flash ", 1)[1].split(" ", 1)[1]
    shell = subprocess.run(["sh", "-c", f"printf '%s' {pasted}"], capture_output=True,
                           text=True, env={"x": "EXPANDED", "PATH": "/usr/bin:/bin"})
    assert shell.stdout == "out dir/pt $x it's.bin", (lines[0], shell.stdout)
