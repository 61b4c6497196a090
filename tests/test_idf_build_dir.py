"""`partkit check --idf-build-dir`: everything an ESP-IDF build flashes, options from the build.

Build directories are written in ESP-IDF's own formats (support.idf_build) around real
ESP32-C3 images; each broken case breaks one thing and must fail for that reason alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from partkit.cli import main
from support.firmware import app_of_size, bootloader_of_size
from support.idf_build import CSV_LINE, DEFAULT_CSV, make_idf_build

pytestmark = pytest.mark.firmware


def _check(capsys: pytest.CaptureFixture[str], build: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["check", "--idf-build-dir", str(build), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_good_build_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "target esp32c3, flash 4MB" in out
    for name in ("bootloader/bootloader.bin", "demo.bin", "ota_data_initial.bin", "storage.bin"):
        assert name in out
    assert "check OK" in out
    assert "error" not in err


def test_json_report_names_build_and_flashed_files(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    rc, out, _ = _check(capsys, fx.build, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] is True
    assert doc["idf_build"]["target"] == "esp32c3"
    assert doc["idf_build"]["table_source"] == str(fx.csv)
    flashed = {f["name"]: f for f in doc["flashed"]}
    assert flashed["storage"]["region"] == "storage" and flashed["storage"]["fits"] is True
    assert flashed["app"]["region"] == "ota_0"
    assert doc["app"]["image"]["chip"] == "esp32c3"
    assert doc["bootloader"]["offset"] == 0


def test_app_over_its_slot_fails_at_the_csv_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    app_of_size(fx.build, 0x30010, name="demo.bin")  # 16 bytes over the 0x30000 slots
    rc, out, err = _check(capsys, fx.build)
    assert rc == 1
    assert f"{fx.csv}:{CSV_LINE['ota_0']}:" in err
    assert "0x10" in err and "ota_0" in err
    assert "check FAILED" in out


def test_app_padded_past_its_slot_fails(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    with open(fx.app, "ab") as f:  # padding after the image is flashed too
        f.write(b"\xff" * (0x30000 - os.path.getsize(fx.app) + 1))
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1
    assert "ota_0" in err


def test_bootloader_into_the_table_fails(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    bootloader_of_size(fx.build / "bootloader", 0x8010, name="bootloader.bin")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1
    assert "bootloader" in err.lower() and "0x8000" in err


def test_table_offset_comes_from_sdkconfig(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # The same oversized bootloader fits when the build moved the table to 0x9000.
    csv = DEFAULT_CSV.replace("nvs,      data, nvs,     0x9000,  0x4000,",
                              "nvs,      data, nvs,     0xa000,  0x3000,")
    fx = make_idf_build(tmp_path, csv=csv, table_offset=0x9000)
    bootloader_of_size(fx.build / "bootloader", 0x8010, name="bootloader.bin")
    rc, out, err = _check(capsys, fx.build, "--json")
    assert rc == 0, err
    assert json.loads(out)["table"]["offset"] == 0x9000


def test_extra_image_over_its_partition_fails(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path, storage_size=0x10001)
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1
    assert f"{fx.csv}:{CSV_LINE['storage']}:" in err
    assert "storage.bin" in err and "0x1 bytes past the end of partition 'storage'" in err


def test_flashed_images_that_overlap_fail(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "extra.bin").write_bytes(b"\x00" * 0x100)
    files = fx.flasher_args["flash_files"]
    assert isinstance(files, dict)
    files["0x70100"] = "extra.bin"  # inside storage.bin's 0x8000 bytes
    fx.write_flasher_args()
    rc, out, err = _check(capsys, fx.build, "--json")
    assert rc == 1
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert "images-overlap" in codes
    assert "storage.bin (0x70000..0x78000) overlaps extra.bin at 0x70100" in err


def test_table_past_the_flash_size_fails(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    csv = DEFAULT_CSV + "big,      data, fat,     0x80000, 0x200000,\n"
    fx = make_idf_build(tmp_path, csv=csv, flash_size="2MB")
    rc, out, err = _check(capsys, fx.build, "--json")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["flash"]["flash_size"] == 0x200000 and doc["flash"]["fits"] is False


def test_fail_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    rc, _, err = _check(capsys, fx.build, "--fail-free", "95%")
    assert rc == 1
    assert "95%" in err or "budget" in err


@pytest.mark.parametrize("victim", ["project_description.json", "config/sdkconfig.json"])
def test_missing_json_is_bad_input_naming_the_file(tmp_path: Path, victim: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / victim).unlink()
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert str(fx.build / victim) in err and "Traceback" not in err


@pytest.mark.parametrize("victim", ["project_description.json", "config/sdkconfig.json",
                                    "flasher_args.json"])
def test_malformed_json_points_at_the_spot(tmp_path: Path, victim: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    path = fx.build / victim
    path.write_text('{\n  "target": "esp32c3",\n  oops\n}\n')
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert f"{path}:3:3: error: malformed JSON" in err


def test_foreign_json_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "project_description.json").write_text('["not", "an", "idf", "file"]')
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2 and "project_description.json" in err


def test_flashed_file_missing_is_bad_input(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "storage.bin").unlink()
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert str(fx.build / "storage.bin") in err and "missing" in err


def test_app_not_built_yet_names_the_listing_not_the_cwd(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # After `idf.py partition-table` (or an app that failed to link) flasher_args.json lists
    # an app that is not there: say so and how to make it, not "relative paths resolve
    # from <cwd>" (the path is the build's own, absolute).
    fx = make_idf_build(tmp_path)
    app = Path(fx.flasher_args["app"]["file"])  # type: ignore[index]
    (fx.build / app).unlink()
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert "is listed in flasher_args.json but the file is missing" in err
    assert "relative paths resolve" not in err


def test_not_a_build_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _check(capsys, tmp_path)
    assert rc == 2 and "project_description.json" in err and "idf.py build" in err


def test_flash_args_alone_is_enough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Older or trimmed builds: no flasher_args.json, only the esptool argfile.
    fx = make_idf_build(tmp_path, storage_size=0x10001)
    (fx.build / "flasher_args.json").unlink()
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1
    assert "storage.bin" in err and "past the end of partition 'storage'" in err


def test_missing_file_names_flash_args_when_that_listed_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "flasher_args.json").unlink()
    (fx.build / "bootloader" / "bootloader.bin").unlink()
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert "is listed in flash_args but the file is missing" in err


def test_linux_target_checks_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "flasher_args.json").unlink()
    (fx.build / "flash_args").unlink()
    desc = json.loads((fx.build / "project_description.json").read_text())
    desc["target"] = "linux"
    desc["app_bin"] = "missing.bin"
    (fx.build / "project_description.json").write_text(json.dumps(desc))
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "target linux" in out


def test_show_and_map_read_the_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path, table_offset=0x8000)
    assert main(["show", "--idf-build-dir", str(fx.build), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["partitions"]][:2] == ["nvs", "otadata"]
    svg = tmp_path / "map.svg"
    assert main(["map", "--idf-build-dir", str(fx.build), "-o", str(svg)]) == 0
    text = svg.read_text()
    assert text.startswith("<svg") or "<svg" in text[:200]
    assert "ota_0" in text and "storage" in text


def test_image_create_assembles_what_the_build_flashes(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    fx = make_idf_build(tmp_path)
    image = tmp_path / "flash.img"
    assert main(["image", "create", "--idf-build-dir", str(fx.build), "-o", str(image)]) == 0
    data = image.read_bytes()
    assert len(data) == 4 * 1024 * 1024
    assert data[0x10000:0x10000 + fx.app.stat().st_size] == fx.app.read_bytes()
    table = (fx.build / "partition_table" / "partition-table.bin").read_bytes()
    assert data[0x8000:0x8000 + len(table)] == table
    assert data[:fx.bootloader.stat().st_size] == fx.bootloader.read_bytes()
    capsys.readouterr()
    assert main(["image", "inspect", str(image), "--json"]) == 0


def test_image_create_refuses_a_build_that_does_not_fit(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    fx = make_idf_build(tmp_path, storage_size=0x10001)
    image = tmp_path / "flash.img"
    rc = main(["image", "create", "--idf-build-dir", str(fx.build), "-o", str(image)])
    assert rc == 1
    assert not image.exists()
    assert "storage" in capsys.readouterr().err


def test_component_kconfig_budgets_apply_and_the_command_line_wins(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    config_path = fx.build / "config" / "sdkconfig.json"
    config = json.loads(config_path.read_text())
    config.update({"PARTKIT_FAIL_FREE": "95%", "PARTKIT_WARN_FREE": "", "PARTKIT_STRICT": False})
    config_path.write_text(json.dumps(config))
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1 and "below the CONFIG_PARTKIT_FAIL_FREE budget of 95%" in err
    rc, _, err = _check(capsys, fx.build, "--fail-free", "1%")
    assert rc == 0, err


@pytest.mark.parametrize(("argv", "option"), [
    (["check", "--idf-build-dir", "B", "--flash-size", "8MB"], "--flash-size"),
    (["check", "--idf-build-dir", "B", "--app", "A"], "--app"),
    (["check", "--idf-build-dir", "B", "--offset", "0x9000"], "--offset"),
    (["show", "--idf-build-dir", "B", "--chip", "esp32"], "--chip"),
    (["map", "--idf-build-dir", "B", "-o", "M", "--flash-size", "2MB"], "--flash-size"),
    (["check", "--arduino-build-dir", "B", "--bootloader", "A"], "--bootloader"),
    (["check", "--arduino-build-dir", "B", "--data", "storage=A"], "--data"),
    # before: a value equal to the option's default ('app') slipped through
    (["check", "--idf-build-dir", "B", "--type", "app"], "--type"),
])
def test_options_a_build_folder_answers_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        option: str) -> None:
    """Before: ignored without a word; check said OK for the build's 4MB while the user
    asked about 8MB."""
    fx = make_idf_build(tmp_path)
    subst = {"B": str(fx.build), "A": str(fx.build / "demo.bin"), "M": str(tmp_path / "m.svg")}
    argv = [subst.get(a, a) if not a.startswith("storage=") else f"storage={subst['A']}"
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {option} has no effect with {argv[1]}" in err, err
    assert "hint:" in err and not (tmp_path / "m.svg").exists()


def test_what_a_build_folder_takes_is_still_taken(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    assert main(["check", "--idf-build-dir", str(fx.build), "--fail-free", "1K", "--strict",
                 "-q"]) == 0
    svg = tmp_path / "m.svg"
    assert main(["map", "--idf-build-dir", str(fx.build), "-o", str(svg), "--app",
                 f"ota_1={fx.build / 'demo.bin'}"]) == 0, capsys.readouterr().err
