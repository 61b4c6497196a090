"""`--idf-build-dir` on the builds ESP-IDF users have: extra subtypes, the linux target,
secure boot, built-in tables, Kconfig budgets (issue 21, items 3 to 5).

Build directories are written in ESP-IDF's formats (support.idf_build) around real
ESP32-C3 images; the extra-subtypes header is laid out as ESP-IDF v6.0.2's
gen_extra_subtypes_inc.py writes it (recorded in tests/data/idf_recorded).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.common.resources import resource_dir
from partkit.idf.builddir import read_extra_subtypes
from support.firmware import app_of_size, bootloader_of_size
from support.idf_build import CSV_LINE, make_idf_build

pytestmark = pytest.mark.firmware

RECORDED = Path(__file__).parent / "data" / "idf_recorded"

# ESP-IDF's own test app tools/test_apps/build_system/custom_partition_subtypes
SUBTYPES_CSV = """\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
ota_0,    app,  ota_0,   0x10000, 0x30000,
ota_1,    app,  ota_1,   0x40000, 0x30000,
storage,  data, spiffs,  0x70000, 0x10000,
custom,   app,  my_app1, 0x80000, 0x10000,
"""


def _check(capsys: pytest.CaptureFixture[str], build: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["check", "--idf-build-dir", str(build), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def _edit_json(path: Path, **changes: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc, indent=4))


# --- item 3: EXTRA_PARTITION_SUBTYPES ------------------------------------------------------


def test_extra_subtypes_come_from_the_build(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path, csv=SUBTYPES_CSV.replace("my_app1", "0x40"))
    fx.csv.write_text(SUBTYPES_CSV)  # the table was generated with the names known
    inc = RECORDED / "v6.0.2-custom_partition_subtypes" / "extra_partition_subtypes.inc"
    (fx.build / "config" / "extra_partition_subtypes.inc").write_bytes(inc.read_bytes())
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "cannot read" not in err and "not valid" not in err
    rc = main(["show", "--idf-build-dir", str(fx.build)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "my_app1" in out and "not valid" not in err
    rc, out, _ = _check(capsys, fx.build, "--json")
    assert json.loads(out)["idf_build"]["extra_partition_subtypes"] == [
        "app,my_app1,0x40", "app,my_app2,0x41"]


def test_without_the_subtypes_header_the_csv_name_is_unknown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same build before ESP-IDF wrote the header: the binary is still checked, and
    # the warning says why its CSV could not be read.
    fx = make_idf_build(tmp_path, csv=SUBTYPES_CSV.replace("my_app1", "0x40"))
    fx.csv.write_text(SUBTYPES_CSV)
    rc, _, err = _check(capsys, fx.build)
    assert rc == 0
    assert "cannot read" in err and "my_app1" in err


def test_subtypes_header_enum_lines_are_enough(tmp_path: Path) -> None:
    inc = tmp_path / "extra_partition_subtypes.inc"
    inc.write_text("/* Automatically generated file. DO NOT EDIT. */\n\n#pragma once\n\n"
                   "ESP_PARTITION_SUBTYPE_APP_MY_APP1 = 0x40,\n"
                   "ESP_PARTITION_SUBTYPE_PARTITION_TABLE_MY_PT = 0x9,\n")
    assert read_extra_subtypes(str(inc)) == ("app,my_app1,0x40", "partition_table,my_pt,0x9")
    assert read_extra_subtypes(str(tmp_path / "absent.inc")) == ()


# --- item 4: never an unqualified OK -----------------------------------------------------


def _linux(fx_build: Path) -> None:
    (fx_build / "flasher_args.json").unlink()
    (fx_build / "flash_args").unlink()
    _edit_json(fx_build / "project_description.json", target="linux", app_bin="missing.bin")
    # A real v6.0.2 linux build's sdkconfig.json has no ESPTOOLPY_FLASHSIZE.
    config = fx_build / "config" / "sdkconfig.json"
    doc = json.loads(config.read_text())
    doc.pop("ESPTOOLPY_FLASHSIZE", None)
    config.write_text(json.dumps(doc))


def test_linux_build_says_the_app_was_not_checked(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    _linux(fx.build)
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "check OK: " not in out
    assert "check OK (partly): " in out
    assert "not checked: the app: the linux target builds a host executable" in out
    rc, out, _ = _check(capsys, fx.build, "--json")
    doc = json.loads(out)
    assert doc["ok"] is True and doc["app"] is None
    assert doc["complete"] is False
    assert doc["not_checked"] == ["the partitions against the flash size: the build names "
                                  "no flash size (no ESPTOOLPY_FLASHSIZE)",
                                  "the app: the linux target builds a host executable, "
                                  "no app image"]


def test_a_failed_partial_check_also_says_what_it_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    _linux(fx.build)
    _edit_json(fx.build / "config" / "sdkconfig.json", ESPTOOLPY_FLASHSIZE="256KB")
    rc, out, _ = _check(capsys, fx.build)
    assert rc == 1 and "check FAILED" in out
    assert "not checked: the app" in out


def test_a_chip_build_without_flasher_files_says_so(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.build / "flasher_args.json").unlink()
    (fx.build / "flash_args").unlink()
    _edit_json(fx.build / "project_description.json", app_bin="missing.bin")
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "check OK (partly)" in out
    assert "neither flasher_args.json nor flash_args" in out


def test_a_complete_build_is_plainly_ok(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    rc, out, _ = _check(capsys, fx.build, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["complete"] is True and doc["not_checked"] == []
    rc, out, _ = _check(capsys, fx.build)
    assert "check OK: 0 errors" in out and "not checked" not in out


# --- item 5: wrong or missing text -------------------------------------------------------


def test_bootloader_summary_line_says_over(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    bootloader_of_size(fx.build / "bootloader", 0x8010, name="bootloader.bin")
    rc, out, _ = _check(capsys, fx.build)
    assert rc == 1
    line = next(x for x in out.splitlines() if "bootloader/bootloader.bin" in x)
    assert line.endswith("-> bootloader: OVER by 0x10"), line


def test_bad_kconfig_budget_is_named_as_in_sdkconfig(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    (fx.project / "sdkconfig").write_text('CONFIG_IDF_TARGET="esp32c3"\n'
                                          'CONFIG_PARTKIT_FAIL_FREE="lots"\n')
    _edit_json(fx.build / "project_description.json", config_file=str(fx.project / "sdkconfig"))
    _edit_json(fx.build / "config" / "sdkconfig.json", PARTKIT_FAIL_FREE="lots")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert err.startswith(f"{fx.project / 'sdkconfig'}:2:1: error: CONFIG_PARTKIT_FAIL_FREE: "
                          "'lots' is not a percentage or a size")
    assert "--fail-free" not in err
    # The command line's own option keeps its name.
    rc, _, err = _check(capsys, fx.build, "--fail-free", "lots")
    assert rc == 2 and "--fail-free: 'lots'" in err


def test_kconfig_percentage_out_of_range_says_so(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # menuconfig takes any string: 150% is a percentage, just not one of a slot.
    fx = make_idf_build(tmp_path)
    (fx.project / "sdkconfig").write_text('CONFIG_PARTKIT_WARN_FREE="150%"\n')
    _edit_json(fx.build / "project_description.json", config_file=str(fx.project / "sdkconfig"))
    _edit_json(fx.build / "config" / "sdkconfig.json", PARTKIT_WARN_FREE="150%")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert err.startswith(f"{fx.project / 'sdkconfig'}:1:1: error: CONFIG_PARTKIT_WARN_FREE: "
                          "'150%' is out of range: a share of the slot is 0% to 100%")


def test_kconfig_budgets_in_the_wrong_order_are_named_as_in_sdkconfig(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    _edit_json(fx.build / "config" / "sdkconfig.json", PARTKIT_WARN_FREE="1%",
               PARTKIT_FAIL_FREE="5%")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 2
    assert "CONFIG_PARTKIT_WARN_FREE 1% is less than CONFIG_PARTKIT_FAIL_FREE 5%" in err


def test_kconfig_budget_finding_names_the_kconfig_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    _edit_json(fx.build / "config" / "sdkconfig.json", PARTKIT_WARN_FREE="99%")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 0
    assert "below the CONFIG_PARTKIT_WARN_FREE budget of 99%" in err
    assert "--warn-free budget" not in err


def _builtin_build(tmp_path: Path) -> tuple[Path, Path]:
    """A build on ESP-IDF's built-in single-app table (as in hello_world)."""
    idf = tmp_path / "esp-idf"
    table_dir = idf / "components" / "partition_table"
    table_dir.mkdir(parents=True)
    csv = ("# Name,   Type, SubType, Offset,  Size, Flags\n"
           "nvs,      data, nvs,     ,        0x6000,\n"
           "phy_init, data, phy,     ,        0x1000,\n"
           "factory,  app,  factory, ,        1M,\n")
    (table_dir / "partitions_singleapp.csv").write_text(csv)
    fx = make_idf_build(tmp_path / "p", csv=csv)
    _edit_json(fx.build / "project_description.json", idf_path=str(idf))
    _edit_json(fx.build / "config" / "sdkconfig.json", PARTITION_TABLE_CUSTOM=False,
               PARTITION_TABLE_FILENAME="partitions_singleapp.csv")
    flasher = json.loads((fx.build / "flasher_args.json").read_text())
    for key in ("otadata", "storage"):  # the built-in table has neither partition
        offset = flasher.pop(key)["offset"]
        flasher["flash_files"].pop(offset)
    (fx.build / "flasher_args.json").write_text(json.dumps(flasher))
    return fx.build, table_dir / "partitions_singleapp.csv"


def test_builtin_table_overflow_hint_offers_a_larger_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, builtin = _builtin_build(tmp_path)
    app_of_size(build, 0x100010, name="demo.bin")
    rc, _, err = _check(capsys, build)
    assert rc == 1
    assert f"{builtin}:4:1: error:" in err  # the message still shows where the slot is
    hint = next(x for x in err.splitlines() if x.startswith("  hint:"))
    assert "built-in partitions_singleapp.csv" in hint
    assert "CONFIG_PARTITION_TABLE_CUSTOM" in hint
    assert str(builtin.parent) not in hint  # never "edit $IDF_PATH/components/..."


def test_custom_table_overflow_hint_is_about_the_csv(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_idf_build(tmp_path)
    app_of_size(fx.build, 0x30010, name="demo.bin")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1 and f"{fx.csv}:{CSV_LINE['ota_0']}:1: error:" in err
    assert "built-in" not in err


def test_secure_boot_build_keeps_flash_size_and_checks_the_bootloader(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Secure boot v2: flasher_args.json says "keep" and leaves the bootloader out of
    # flash_files (it is flashed by hand); the bootloader must still fit.
    fx = make_idf_build(tmp_path)
    flasher = fx.flasher_args
    flasher["flash_settings"]["flash_size"] = "keep"  # type: ignore[index]
    flasher["write_flash_args"] = ["--flash-mode", "dio", "--flash-size", "keep",
                                   "--flash-freq", "80m"]
    flasher["flash_files"].pop("0x0")  # type: ignore[attr-defined]
    flasher.pop("bootloader")
    fx.write_flasher_args()
    _edit_json(fx.build / "config" / "sdkconfig.json", SECURE_BOOT=True,
               SECURE_BOOT_V2_ENABLED=True)
    rc, out, err = _check(capsys, fx.build, "--json")
    doc = json.loads(out)
    assert doc["idf_build"]["flash_size"] == "4MB"
    assert doc["flash"] is not None and doc["flash"]["flash_size"] == 0x400000
    assert doc["bootloader"] is not None
    bootloader_of_size(fx.build / "bootloader", 0x8010, name="bootloader.bin")
    rc, _, err = _check(capsys, fx.build)
    assert rc == 1 and "Bootloader binary size 0x8010 bytes is too large" in err


def test_no_flash_size_anywhere_is_said_not_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # flasher_args.json says "keep" and sdkconfig.json names no ESPTOOLPY_FLASHSIZE: the
    # partitions cannot be held against the flash, so no plain OK.
    fx = make_idf_build(tmp_path)
    fx.flasher_args["flash_settings"]["flash_size"] = "keep"  # type: ignore[index]
    fx.write_flasher_args()
    config = fx.build / "config" / "sdkconfig.json"
    doc = json.loads(config.read_text())
    doc.pop("ESPTOOLPY_FLASHSIZE")
    config.write_text(json.dumps(doc))
    rc, out, err = _check(capsys, fx.build)
    assert rc == 0, err
    assert "check OK (partly)" in out
    assert "not checked: the partitions against the flash size" in out
    rc, out, _ = _check(capsys, fx.build, "--json")
    assert json.loads(out)["complete"] is False


def test_quiet_check_prints_the_verdict_and_problems_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The component's on-build check runs on every build, also a no-op one: -q keeps it to
    # the verdict (ESP-IDF prints its own size lines right after), the findings and what
    # was not checked.
    fx = make_idf_build(tmp_path)
    rc, out, err = _check(capsys, fx.build, "-q")
    assert (rc, out, err) == (0, "check OK: 0 errors, 0 warnings\n", "")
    _linux(fx.build)
    rc, out, _ = _check(capsys, fx.build, "--quiet")
    assert out.splitlines() == [
        "check OK (partly): 0 errors, 0 warnings",
        "not checked: the partitions against the flash size: the build names no flash size "
        "(no ESPTOOLPY_FLASHSIZE)",
        "not checked: the app: the linux target builds a host executable, no app image"]
    fx = make_idf_build(tmp_path / "over")
    app_of_size(fx.build, 0x30010, name="demo.bin")  # 16 bytes over the 0x30000 slots
    rc, out, err = _check(capsys, fx.build, "-q")
    assert rc == 1 and out.startswith("check FAILED: "), out
    assert len(out.splitlines()) == 1
    assert f"{fx.csv}:{CSV_LINE['ota_0']}:1: error: " in err
    component = Path(resource_dir("idf"), "project_include.cmake").read_text()
    assert "COMMAND ${python} -m partkit check -q ${check_args}" in component


def test_component_cmake_hints_end_with_a_full_stop() -> None:
    # The component's configure-time messages read like the CMake module's: "Hint: ...".
    from partkit.common.resources import resource_dir

    text = Path(resource_dir("idf"), "project_include.cmake").read_text()
    hints = [line.strip() for line in text.splitlines() if '"Hint:' in line]
    assert hints
    for hint in hints:
        assert hint.endswith('.")'), hint
