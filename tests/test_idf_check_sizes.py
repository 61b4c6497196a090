"""partkit's check_sizes.py entry (the ESP-IDF component's opt-in replacement).

ESP-IDF's build runs it with check_sizes.py's command line; the lines it prints, their
streams and the exit codes are those of ESP-IDF v6.0.2's check_sizes.py (reference §6,
OLD variant), so logs read the same. Run as the component runs it: a script, in a child
process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from partkit.common.resources import resource_dir
from support.idf_build import CSV_LINE, make_idf_build

SCRIPT = Path(resource_dir("idf")) / "check_sizes.py"
CSV = """\
nvs,     data, nvs,     0x9000,  0x6000,
factory, app,  factory, 0x10000, 0x10000,
ota_0,   app,  ota_0,   ,        0x20000,
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--offset", "0x8000", *args],
                          cwd=tmp_path, capture_output=True, text=True)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "pt.csv").write_text(CSV)
    (tmp_path / "app.bin").write_bytes(b"\0" * 70000)
    (tmp_path / "small.bin").write_bytes(b"\0" * 20000)
    (tmp_path / "full.bin").write_bytes(b"\0" * 0x1F800)
    return tmp_path


def test_fits(files: Path) -> None:
    r = _run(files, "partition", "--type", "app", "pt.csv", "small.bin")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == ("small.bin binary size 0x4e20 bytes. Smallest app partition is "
                        "0x10000 bytes. 0xb1e0 bytes (69%) free.\n")


def test_some_slots_too_small_warns(files: Path) -> None:
    r = _run(files, "partition", "--type", "app", "pt.csv", "app.bin")
    assert r.returncode == 0
    assert r.stdout == ("Warning: 1/2 app partitions are too small for binary app.bin size "
                        "0x11170:\n  - Part 'factory' 0/0 @ 0x10000 size 0x10000 "
                        "(overflow 0x1170)\n")


def test_every_slot_too_small_fails(files: Path) -> None:
    r = _run(files, "partition", "--type", "app", "--subtype", "factory", "pt.csv", "app.bin")
    assert r.returncode == 1
    # partkit's diagnostic first (the CSV line, the slot, the overflow, a hint) ...
    assert r.stderr.startswith("pt.csv:2:1: error: app (factory) partition is too small for "
                               "binary app.bin size 0x11170:\n")
    assert "  hint: 'factory' needs 4464 more bytes: make it at least 0x12000 bytes" in r.stderr
    # ... then ESP-IDF's own lines, for tools that grep build logs
    assert r.stderr.endswith("Error: app (factory) partition is too small for binary app.bin "
                             "size 0x11170:\n  - Part 'factory' 0/0 @ 0x10000 size 0x10000 "
                             "(overflow 0x1170)\n")


def test_nearly_full_warns(files: Path) -> None:
    r = _run(files, "partition", "--type", "app", "--subtype", "ota_0", "pt.csv", "full.bin")
    assert r.returncode == 0
    assert r.stdout.splitlines()[1] == ("Warning: The smallest app (ota_0) partition is "
                                        "nearly full (2% free space left)!")


def test_no_matching_partition(files: Path) -> None:
    r = _run(files, "partition", "--type", "data", "--subtype", "fat", "pt.csv", "app.bin")
    assert r.returncode == 0
    assert r.stdout == "WARNING: Partition table does not contain any partitions matching data (fat)\n"


def test_bootloader(files: Path) -> None:
    ok = _run(files, "bootloader", "0x0", "small.bin")
    assert ok.returncode == 0
    assert ok.stdout == "Bootloader binary size 0x4e20 bytes. 0x31e0 bytes (39%) free.\n"
    bad = _run(files, "bootloader", "0x1000", "app.bin")
    assert bad.returncode == 1
    first, esp_idf = bad.stderr.split("\nError: ")
    assert first.startswith("app.bin: error: bootloader app.bin (0x11170 bytes at 0x1000) "
                            "overflows the partition table at 0x8000 by 0xa170 bytes")
    assert esp_idf.startswith("Bootloader binary size 0x11170 bytes is too large for "
                              "partition table offset 0x8000. Bootloader binary can be "
                              "maximum 0x7000 (28672) bytes unless")


def test_bootloader_error_points_at_the_table_offset_setting(files: Path) -> None:
    # Inside the bootloader subproject the component passes the project's sdkconfig: the
    # room is decided by CONFIG_PARTITION_TABLE_OFFSET, so the error points at its line.
    (files / "sdkconfig").write_text("CONFIG_IDF_TARGET=\"esp32c3\"\n"
                                     "CONFIG_PARTITION_TABLE_OFFSET=0x8000\n")
    bad = _run(files, "bootloader", "--partkit-sdkconfig", "sdkconfig", "0x0", "app.bin")
    assert bad.returncode == 1
    assert bad.stderr.startswith("sdkconfig:2:1: error: bootloader app.bin")
    assert "set CONFIG_PARTITION_TABLE_OFFSET to 0x12000 or more" in bad.stderr


def test_bootloader_hook_is_quiet_when_it_fits(files: Path) -> None:
    # In the bootloader subproject ESP-IDF's own check runs right after partkit's and prints
    # the size line; partkit's hook (--partkit-quiet) must not print it a second time on
    # every build, but still speaks first when the bootloader does not fit.
    ok = _run(files, "bootloader", "--partkit-quiet", "0x0", "small.bin")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = _run(files, "bootloader", "--partkit-quiet", "0x1000", "app.bin")
    assert bad.returncode == 1
    assert bad.stderr.startswith("app.bin: error: bootloader app.bin")
    assert "\nError: Bootloader binary size 0x11170 bytes is too large" in bad.stderr
    hook = (Path(resource_dir("idf")) / "bootloader_hook.cmake").read_text()
    assert "--partkit-quiet" in hook


def test_app_error_points_at_the_csv_line_in_a_build(tmp_path: Path) -> None:
    # What ESP-IDF passes is the build's binary table: the CSV line comes from the build dir.
    fx = make_idf_build(tmp_path, app_pad=0x40000)
    r = subprocess.run([sys.executable, str(SCRIPT), "--offset", "0x8000", "partition",
                        "--type", "app", str(fx.build / "partition_table" / "partition-table.bin"),
                        str(fx.app)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{fx.csv}:{CSV_LINE['ota_0']}:1: error: All app partitions "
                               "are too small")
    assert "\nError: All app partitions are too small" in r.stderr


def test_bad_input_is_a_clear_error(files: Path) -> None:
    r = _run(files, "partition", "--type", "app", "missing.csv", "app.bin")
    assert r.returncode == 2
    assert "missing.csv" in r.stderr and "Traceback" not in r.stderr


def test_a_directory_is_no_binary(files: Path) -> None:
    # A wrong path that names a directory must not be measured as a 4K "binary".
    (files / "build").mkdir()
    r = _run(files, "bootloader", "0x0", "build")
    assert r.returncode == 2
    assert "build: error: not a file" in r.stderr and "Bootloader binary size" not in r.stdout


def test_bootloader_offset_at_the_table_is_bad_input(files: Path) -> None:
    r = _run(files, "--allow-failures", "bootloader", "0x8000", "small.bin")
    assert r.returncode == 2
    assert "not below the partition table offset 0x8000" in r.stderr
    assert "Traceback" not in r.stderr
