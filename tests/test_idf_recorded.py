"""`--idf-build-dir` on build directories recorded from real ESP-IDF builds (v5.1 to v6.0).

tests/data/idf_recorded/<version>-<project>/ holds what a real ``idf.py set-target esp32c3``
+ ``idf.py bootloader`` left in the build directory (see its README): project_description.json
(component lists trimmed), config/sdkconfig.json, flasher_args.json, flash_args, the
partition table binary made by ESP-IDF's gen_esp32part.py, the bootloader.bin built by
ESP-IDF (Debian's riscv64 gcc standing in for ESP's), and ``ninja -t query`` of the edges
that order partkit's checks. The app is a real ESP32-C3 image (support.firmware), since
the ESP-IDF app itself does not compile offline. CI cannot have ESP-IDF; these files carry
what the real builds showed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.idf.builddir import read_build_dir
from support.firmware import app_of_size, bootloader_of_size

pytestmark = pytest.mark.firmware

RECORDED = Path(__file__).parent / "data" / "idf_recorded"
VERSIONS = sorted(p.name for p in RECORDED.glob("*-esp32c3"))


def _build_from(name: str, root: Path) -> tuple[Path, Path]:
    """The recorded build, moved under ``root`` (its absolute paths rewritten)."""
    src = RECORDED / name
    project = root / "project"
    build = project / "build"
    for sub in ("config", "partition_table", "bootloader"):
        (build / sub).mkdir(parents=True)
    shutil.copy(src / "partitions.csv", project / "partitions.csv")
    desc = json.loads((src / "project_description.json").read_text())
    desc.update(project_path=str(project), build_dir=str(build),
                config_file=str(project / "sdkconfig"))
    (build / "project_description.json").write_text(json.dumps(desc, indent=4))
    shutil.copy(src / "sdkconfig.json", build / "config" / "sdkconfig.json")
    for name_ in ("flasher_args.json", "flash_args"):
        if (src / name_).exists():
            shutil.copy(src / name_, build / name_)
    shutil.copy(src / "partition-table.bin", build / "partition_table" / "partition-table.bin")
    if (src / "bootloader.bin").exists():
        shutil.copy(src / "bootloader.bin", build / "bootloader" / "bootloader.bin")
    if (src / "extra_partition_subtypes.inc").exists():
        shutil.copy(src / "extra_partition_subtypes.inc", build / "config")
    return project, build


def _check(capsys: pytest.CaptureFixture[str], build: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["check", "--idf-build-dir", str(build), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_recordings_cover_v5_and_v6() -> None:
    assert any(v.startswith("v6.") for v in VERSIONS), VERSIONS
    assert any(v.startswith("v5.") for v in VERSIONS), VERSIONS


@pytest.mark.parametrize("name", VERSIONS)
def test_recorded_build_is_read_as_esp_idf_wrote_it(name: str, tmp_path: Path) -> None:
    project, build = _build_from(name, tmp_path)
    b = read_build_dir(str(build))
    assert b.target == "esp32c3" and b.chip == "esp32c3"
    assert b.project_name == "hello_world"
    assert b.flash_size_text == "2MB" and b.flash_size == 0x200000
    assert b.options.table_offset == 0x8000
    assert b.options.primary_bootloader_offset == 0
    assert b.table_source == str(project / "partitions.csv")
    assert b.app is not None and b.app.offset == 0x10000
    assert b.bootloader is not None and b.bootloader.offset == 0
    assert b.not_checked == ()


@pytest.mark.parametrize("name", VERSIONS)
def test_recorded_build_with_a_fitting_app_passes(name: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, build = _build_from(name, tmp_path)
    app_of_size(build, 0x30000, project_name="hello_world", name="hello_world.bin")
    rc, out, err = _check(capsys, build)
    assert rc == 0, err
    assert "check OK: 0 errors" in out
    assert "bootloader/bootloader.bin" in out and "-> bootloader: ok" in out


@pytest.mark.parametrize("name", VERSIONS)
def test_recorded_build_oversized_app_fails_at_the_csv_line(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, build = _build_from(name, tmp_path)
    app_of_size(build, 0x40100, project_name="hello_world", name="hello_world.bin")
    rc, _, err = _check(capsys, build)
    assert rc == 1
    assert err.startswith(f"{project / 'partitions.csv'}:4:1: error: app partition is too "
                          "small for binary hello_world.bin size 0x40100")
    assert "hint: 'factory' needs 256 more bytes" in err


@pytest.mark.parametrize("name", VERSIONS)
def test_recorded_ninja_graph_runs_partkit_first(name: str) -> None:
    # ninja -t query of the real build.ninja files: ESP-IDF's size checks wait for partkit's.
    query = (RECORDED / name / "ninja-query.txt").read_text()
    edges: dict[str, list[str]] = {}
    current = ""
    for line in query.splitlines():
        if line and not line.startswith((" ", "#")):
            current = line.rstrip(":")
            edges[current] = []
        elif line.startswith("    ") and current:
            edges[current].append(line.strip())
    def inputs(name: str) -> list[str]:
        # v5.x creates the size checks in esptool_py's directory (esp-idf/esptool_py/...)
        found = [e for e in edges if e == name or e.endswith("/" + name)]
        assert found, f"no edge {name} in {list(edges)}"
        return [i for e in found for i in edges[e]]

    assert "partkit-check" in inputs("app_check_size")
    assert "app" not in inputs("partkit-check")  # no cycle: partkit reads the image, not `app`
    assert "partkit_bootloader_check" in inputs("bootloader_check_size")
    assert ("bootloader-prefix/src/bootloader-stamp/bootloader-partkit_hook"
            in edges["bootloader-prefix/src/bootloader-stamp/bootloader-build"])


def test_recorded_custom_subtypes_build(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # ESP-IDF's tools/test_apps/build_system/custom_partition_subtypes, configured for
    # esp32c3: the table names my_app1/my_app2, known only through EXTRA_PARTITION_SUBTYPES.
    _, build = _build_from("v6.0.2-custom_partition_subtypes", tmp_path)
    app_of_size(build, 0x30000, project_name="custom_partition_subtypes",
                name="custom_partition_subtypes.bin")
    bootloader_of_size(build / "bootloader", 0x5000, name="bootloader.bin")  # not built there
    # The test app flashes gen_empty_partition.py's output into my_app1 (256K of 0xff).
    (build / "blank_file.bin").write_bytes(b"\xff" * 0x40000)
    rc, out, err = _check(capsys, build)
    assert "cannot read" not in err and "not valid" not in err
    assert rc == 0, err
    assert "blank_file.bin" in out and "-> my_app1: ok" in out
    rc = main(["show", "--idf-build-dir", str(build)])
    out, err = capsys.readouterr()
    assert rc == 0 and "my_app1" in out and "my_app2" in out and err == ""
    # In the build, partkit's check waits for the header it reads the subtypes from.
    query = (RECORDED / "v6.0.2-custom_partition_subtypes" / "ninja-query.txt").read_text()
    assert "esp-idf/partition_table/extra_subtype_hdr" in query.split("partkit-check:")[1]
