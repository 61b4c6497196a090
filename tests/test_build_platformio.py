"""partkit.buildsys: what the PlatformIO script and the SCons tool decide, without SCons.

Real inputs: esptool 5 from the venv and platform-espressif32's esptool 4.x package
(tests/support/pio.py), real ESP32-C3 images (tests/support/firmware.py) and LittleFS
images (littlefs-python); the command lines built here are run by partkit's own CLI.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest
from partkit.buildsys import commands
from partkit.buildsys import platformio as pio
from partkit.cli import main as partkit_main
from partkit.table import builtin
from partkit.flash.tablearea import load_table_file
from partkit.table.options import table_options
from support.firmware import app_of_size, bootloader_of_size
from support.pio import esptoolpy_package

CSV = """\
# Name,   Type, SubType, Offset,  Size
nvs,      data, nvs,     0x9000,  0x6000
phy_init, data, phy,     0xf000,  0x1000
factory,  app,  factory, 0x10000, 0x30000
storage,  data, spiffs,  0x40000, 0x20000
"""
SLOT = 0x30000


def _run(argv: list[str]) -> int:
    try:
        return int(partkit_main(argv))
    except SystemExit as exc:  # argparse usage errors
        return exc.code if isinstance(exc.code, int) else 2


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "partitions.csv"
    path.write_text(CSV)
    return path


# --- esptool -------------------------------------------------------------------------

def test_esptool_prefix_prefers_the_named_esptool(tmp_path: Path) -> None:
    exe = tmp_path / "penv" / "bin" / "esptool"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    package = tmp_path / "tool-esptoolpy"
    package.mkdir()
    (package / "esptool.py").write_text("")
    objcopy = tmp_path / "riscv32-esp-elf-objcopy"
    objcopy.write_text("")
    # $UPLOADER may be quoted; a non-esptool $OBJCOPY is passed over.
    assert pio.esptool_prefix("py", [str(objcopy), f'"{exe}"'], str(package)) == [str(exe)]
    # An esptool that does not exist is no esptool.
    assert pio.esptool_prefix("py", [str(tmp_path / "esptool")], str(package)) == [
        "py", str(package / "esptool.py")]
    named_py = tmp_path / "esptool.py"
    named_py.write_text("")
    assert pio.esptool_prefix("py", [" ", str(named_py)], None) == ["py", str(named_py)]
    assert pio.esptool_prefix("py", [], str(tmp_path / "none")) == ["py", "-m", "esptool"]


def test_write_flash_spelling_of_real_esptools(tmp_path: Path) -> None:
    import esptool

    venv = [sys.executable, "-m", "esptool"]
    major = int(esptool.__version__.split(".")[0])
    assert pio.write_flash_spelling(venv) == ("write-flash" if major >= 5 else "write_flash")
    package = esptoolpy_package(tmp_path / "tool-esptoolpy")
    prefix = pio.esptool_prefix(sys.executable, [], str(package))
    assert prefix == [sys.executable, str(package / "esptool.py")]
    assert pio.write_flash_spelling(prefix) == "write_flash"  # esptool 4.x
    # The platform's own upload flags decide without asking.
    assert pio.write_flash_spelling(prefix, ["--chip", "esp32", "write-flash"]) == "write-flash"
    assert pio.write_flash_spelling(venv, ["write_flash"]) == "write_flash"
    assert pio.write_flash_spelling([str(tmp_path / "no-such-esptool")]) == "write_flash"


def test_write_flash_for_version_texts() -> None:
    assert pio.write_flash_for_version("esptool.py v4.11.0\n4.11.0\n") == "write_flash"
    assert pio.write_flash_for_version("esptool v5.1.0\n5.1.0\n") == "write-flash"
    assert pio.write_flash_for_version("esptool.py v3.3\n") == "write_flash"
    assert pio.write_flash_for_version("esptool v10.0.0\n") == "write-flash"
    assert pio.write_flash_for_version("usage: esptool [-h]\n") == "write_flash"


def test_flash_hint_is_a_shell_command() -> None:
    text = pio.flash_hint(["/p y/python", "/pkg/esptool.py"], "write_flash",
                          ".pio/build/my env/partitions.bin", offset="0x8000", chip="esp32c3")
    head, command = text.split("\n ")
    assert head == "\nTo flash the partition table (add --port PORT to choose the port), run:"
    assert shlex.split(command) == ["/p y/python", "/pkg/esptool.py", "--chip", "esp32c3",
                                    "write_flash", "0x8000", ".pio/build/my env/partitions.bin"]
    no_chip = pio.flash_hint(["esptool"], "write-flash", "t.bin", offset="0x9000")
    assert no_chip.endswith("\n esptool write-flash 0x9000 t.bin")


def test_write_table_argv_spellings() -> None:
    assert commands.write_table_argv(["esptool"], "t.bin", offset="0x8000", chip="esp32c3",
                                     port="/dev/ttyUSB0", baud="921600") == [
        "esptool", "--chip", "esp32c3", "--port", "/dev/ttyUSB0", "--baud", "921600",
        "--before", "default-reset", "--after", "hard-reset", "write-flash", "0x8000", "t.bin"]
    # esptool 4.x: underscores everywhere; no port: esptool looks for one; default speed.
    assert commands.write_table_argv(["py", "esptool.py"], "t.bin", offset="0x9000",
                                     write_flash="write_flash") == [
        "py", "esptool.py", "--chip", "auto", "--baud", "460800", "--before", "default_reset",
        "--after", "hard_reset", "write_flash", "0x9000", "t.bin"]
    assert commands.write_table_argv(["esptool"], "t.bin", offset="0x8000", port="COM3",
                                     short_options=True)[3:7] == ["-p", "COM3", "-b", "460800"]


def test_write_table_argv_is_accepted_by_esptool() -> None:
    """The real esptool parses the command (it stops at the missing port, not at usage)."""
    import subprocess

    argv = commands.write_table_argv([sys.executable, "-m", "esptool"], os.devnull,
                                     offset="0x8000", chip="esp32c3",
                                     port="socket://127.0.0.1:1", baud="115200")
    proc = subprocess.run([*argv[:3], "--connect-attempts", "1", *argv[3:]],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "usage:" not in proc.stderr and "invalid choice" not in proc.stderr, proc.stderr
    assert "127.0.0.1:1" in proc.stdout + proc.stderr


# --- partkit command lines, run by partkit -------------------------------------------

@pytest.mark.firmware
def test_check_argv_app_options_reach_the_check(
        table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = app_of_size(tmp_path, SLOT)
    argv = commands.check_argv("app", str(app), str(table), offset="0x8000", chip="esp32c3",
                               flash_size="4MB", app_type="app")
    assert argv[:2] == ["check", f"--app={app}"] and argv[-2:] == ["--", str(table)]
    assert _run(argv) == 0
    # A budget the table cannot meet fails (exit 1): --fail-free reached the check.
    assert _run(commands.check_argv("app", str(app), str(table), offset="0x8000",
                                    fail_free="95%")) == 1
    # The subtype is an app option only.
    assert "--subtype=ota_0" in commands.check_argv("app", "a", "t", offset="0x8000",
                                                    app_subtype="ota_0")
    assert not any(a.startswith("--subtype") for a in commands.check_argv(
        "bootloader", "a", "t", offset="0x8000", app_subtype="ota_0"))
    capsys.readouterr()


def test_check_argv_extra_subtypes_end_before_the_table(tmp_path: Path) -> None:
    csv = tmp_path / "extra.csv"
    csv.write_text(CSV.replace("storage,  data, spiffs", "storage,  data, my_sub"))
    base = {"offset": "0x8000", "flash_size": "4MB"}
    # No image: the table alone is checked, so the option is what decides.
    argv = commands.check_argv("app", "", str(csv), **base)
    argv.remove("--app=")
    assert _run(argv) == 2  # my_sub is unknown
    argv = commands.check_argv("app", "", str(csv), **base, extra_subtypes=["data,my_sub,0x40"])
    argv.remove("--app=")
    assert argv[-4:] == ["--extra-partition-subtypes", "data,my_sub,0x40", "--", str(csv)]
    assert _run(argv) == 0


@pytest.mark.firmware
def test_check_argv_bootloader_offset_wins_over_chip(table: Path, tmp_path: Path) -> None:
    bootloader = bootloader_of_size(tmp_path, 0x2000)
    argv = commands.check_argv("bootloader", str(bootloader), str(table), offset="0x8000",
                               chip="esp32c3", strict=True)
    assert "--chip=esp32c3" in argv and "--strict" in argv
    assert _run(argv) == 0  # at 0x0 there are 0x8000 bytes of room
    argv = commands.check_argv("bootloader", str(bootloader), str(table), offset="0x8000",
                               chip="esp32c3", bootloader_offset="0x7000")
    assert "--bootloader-offset=0x7000" in argv and not any(a.startswith("--chip")
                                                            for a in argv)
    assert _run(argv) == 1  # 0x1000 bytes of room for 0x2000


def test_show_and_map_argv(table: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(commands.show_argv(str(table), offset="0x8000", chip="esp32c3",
                                   flash_size="4MB")) == 0
    assert "factory" in capsys.readouterr().out
    # The flash size reached `show`: the table does not fit 256 KiB.
    assert commands.show_argv(str(table), offset="0x8000", flash_size="256KB")[-2:] == [
        "--flash-size", "256KB"]
    assert _run(commands.show_argv(str(table), offset="0x8000", flash_size="256KB")) != 0
    svg = tmp_path / "map dir" / "partitions.svg"
    svg.parent.mkdir()
    argv = commands.map_argv(str(table), str(svg), offset="0x8000", chip="esp32c3")
    assert "--app" not in argv
    assert _run(argv) == 0
    assert svg.read_text().lstrip().startswith(("<svg", "<?xml"))
    assert commands.map_argv(str(table), "o.svg", offset="0x8000", app="a.bin")[-2:] == [
        "--app", "a.bin"]
    capsys.readouterr()


# --- the table -------------------------------------------------------------------------

def test_table_from_platform() -> None:
    assert pio.table_from_platform("auto", True, "p.bin") is True
    assert pio.table_from_platform("auto", False, "p.bin") is False
    assert pio.table_from_platform("No", False, "p.bin") is True
    assert pio.table_from_platform("yes", False, "p.bin") is False
    with pytest.raises(pio.SetupError) as info:
        pio.table_from_platform("YES", True, ".pio/build/e/partitions.bin")
    assert str(info.value) == ("the platform already generates .pio/build/e/partitions.bin; "
                               "set custom_partkit_generate = auto")


def test_display_path(tmp_path: Path) -> None:
    project = tmp_path / "project"
    assert pio.display_path(str(project / "sub" / "t.csv"), str(project)) == os.path.join(
        "sub", "t.csv")
    outside = str(tmp_path / "other" / "t.csv")
    assert pio.display_path(outside, str(project)) == outside


def test_builtin_candidate(tmp_path: Path) -> None:
    (tmp_path / "mine.csv").write_text(CSV)
    assert pio.builtin_candidate("two_ota", str(tmp_path))
    assert pio.builtin_candidate("huge_app.csv", str(tmp_path))
    assert not pio.builtin_candidate("mine.csv", str(tmp_path))  # the project's file
    assert not pio.builtin_candidate("", str(tmp_path))
    assert not pio.builtin_candidate(os.path.join("tables", "two_ota"), str(tmp_path))
    assert not pio.builtin_candidate(str(tmp_path / "two_ota"), str(tmp_path))


def test_framework_has_table(tmp_path: Path) -> None:
    arduino = tmp_path / "arduino"
    (arduino / "tools" / "partitions").mkdir(parents=True)
    (arduino / "tools" / "partitions" / "huge_app.csv").write_text(CSV)
    (arduino / "variants" / "myboard").mkdir(parents=True)
    (arduino / "variants" / "myboard" / "board.csv").write_text(CSV)
    idf = tmp_path / "idf"
    (idf / "components" / "partition_table").mkdir(parents=True)
    (idf / "components" / "partition_table" / "partitions_two_ota.csv").write_text(CSV)
    both = {pio.ARDUINO: str(arduino), pio.ESPIDF: str(idf)}
    assert set(pio.FRAMEWORK_PACKAGES) == set(both)
    assert pio.framework_has_table("huge_app.csv", both, "myboard")
    assert pio.framework_has_table("board.csv", both, "myboard")
    assert not pio.framework_has_table("board.csv", both, "otherboard")
    assert pio.framework_has_table("partitions_two_ota.csv", both, "")
    assert not pio.framework_has_table("partitions_two_ota.csv", {pio.ARDUINO: str(arduino)}, "")
    assert not pio.framework_has_table("two_ota", both, "myboard")
    assert not pio.framework_has_table("huge_app.csv", {pio.ARDUINO: None}, "myboard")


def test_write_builtin_table(tmp_path: Path) -> None:
    written = pio.write_builtin_table("partitions_two_ota.csv", str(tmp_path))
    assert written is not None
    path, name = written
    assert name == "two_ota"
    assert path == str(tmp_path / "partkit" / "builtin-two_ota.csv")
    text = Path(path).read_text(encoding="utf-8")
    assert text == builtin.csv_text(builtin.lookup("two_ota"))
    loaded = load_table_file(path, table_options()).table
    assert {"ota_0", "ota_1", "otadata"} <= {p.name for p in loaded}
    # Unchanged: not rewritten (a new file would get a new inode).
    before = os.stat(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    stamped = os.stat(path).st_mtime_ns
    assert pio.write_builtin_table("two_ota", str(tmp_path)) == written
    assert os.stat(path).st_mtime_ns == stamped and os.stat(path).st_ino == before.st_ino
    # Changed: rewritten.
    Path(path).write_text("# edited\n")
    pio.write_builtin_table("two_ota", str(tmp_path))
    assert Path(path).read_text(encoding="utf-8") == text


def test_write_builtin_table_unknown_names(tmp_path: Path) -> None:
    assert pio.write_builtin_table("missing.csv", str(tmp_path)) is None
    assert not (tmp_path / "partkit").exists()
    with pytest.raises(pio.SetupError) as info:
        pio.write_builtin_table("two_otta", str(tmp_path))
    message = str(info.value)
    assert message.startswith("board_build.partitions = two_otta: no such file, and ")
    assert "two_ota" in message[len("board_build.partitions = two_otta"):]
    assert not (tmp_path / "partkit").exists()


def test_table_summary_lines() -> None:
    common = {"offset": "0x8000", "flash_size": "4MB", "chip": "esp32c3"}
    assert pio.table_summary("partitions.csv", "generated", **common, slot="factory",
                             slot_size=1048576) == (
        "partkit: table partitions.csv (generated at 0x8000, flash 4MB, chip esp32c3); "
        "app slot 'factory' 1048576 bytes")
    assert pio.table_summary("t.csv", "from the platform", offset="0x9000", flash_size="",
                             chip="", slot="x", slot_size=1) == (
        "partkit: table t.csv (from the platform at 0x9000, flash unchecked, chip ?); "
        "app slot 'x' 1 bytes")
    assert pio.table_summary("t.csv", "generated", **common).endswith(
        "chip esp32c3); no app slot in the table")
    assert pio.table_summary("t.csv", "generated", **common, invalid=True, slot="old").endswith(
        "; app slot unknown: the table is invalid (see the error below)")
    assert pio.table_summary("t.csv", "generated", **common, missing=True,
                             invalid=True).endswith(
        "; app slot unknown: the table file does not exist")


# --- images ----------------------------------------------------------------------------

def test_bootloader_offset() -> None:
    assert pio.bootloader_offset("", "esp32") == 0x1000
    assert pio.bootloader_offset("", "ESP32C3") == 0x0
    assert pio.bootloader_offset("", "esp32p4") == 0x2000
    assert pio.bootloader_offset("0x3000", "esp32") == 0x3000  # the option wins
    assert pio.bootloader_offset("", "") is None
    assert pio.bootloader_offset("", "esp8266") is None


def test_bootloader_image_among_extra_images() -> None:
    images = [("${ESP32_APP_OFFSET}", "boot_app0.bin"), ("0x8000", "partitions.bin"),
              ("0x1000", "/pkg/bootloader_dio_40m.bin"), ("0xe000", "boot_app0.bin")]
    assert pio.bootloader_image(images, 0x1000) == ("0x1000", "/pkg/bootloader_dio_40m.bin")
    assert pio.bootloader_image([("0", "b.bin"), ("0x0", "c.bin")], 0) == ("0", "b.bin")
    assert pio.bootloader_image(images, 0x0) is None
    assert pio.bootloader_image([], 0x1000) is None


def test_is_yes() -> None:
    assert [pio.is_yes(t) for t in ("yes", "On", " 1 ", "TRUE")] == [True] * 4
    assert [pio.is_yes(t) for t in ("no", "", "0", "off", "y")] == [False] * 5


def test_check_fs_image_file(table: Path, tmp_path: Path) -> None:
    pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")
    from partkit.data import littlefs

    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    image = tmp_path / "littlefs.bin"
    image.write_bytes(littlefs.build(str(data), 0x20000))
    rules = pio.uploadfs_rules("espressif32", "6.13.0", filesystem="littlefs")
    code, report, diagnostics = pio.check_fs_image_file(str(table), str(image),
                                                        offset="0x8000", rules=rules)
    assert code == 0, diagnostics
    first, second = report.split("\n")
    assert first == (f"partkit: uploadfs writes {image} to 'storage' at 0x40000 (0x20000 "
                     "bytes; the last spiffs/fat/littlefs data partition)")
    assert second.startswith("partkit: ")
    # The whole file counts: one block more does not fit.
    big = tmp_path / "big.bin"
    big.write_bytes(littlefs.build(str(data), 0x21000))
    code, _, diagnostics = pio.check_fs_image_file(str(table), str(big), offset="0x8000")
    assert code == 1 and any(d.is_error for d in diagnostics)
    # A board_build.filesystem_partition that is not there: pioarduino falls back to the
    # last one, and the report says so.
    rules = pio.uploadfs_rules("espressif32", "55.3.311", partition="nope")
    code, report, _ = pio.check_fs_image_file(str(table), str(image), rules=rules)
    assert code == 0
    assert ("board_build.filesystem_partition = nope is no spiffs/fat/littlefs data "
            "partition of the table, so pioarduino 55.3.311 falls back") in report
    # A table with no file-system partition at all: exit 2 with the reason.
    lone = tmp_path / "lone.csv"
    lone.write_text("factory, app, factory, 0x10000, 0x100000\n")
    code, report, diagnostics = pio.check_fs_image_file(str(lone), str(image))
    assert (code, report) == (2, "") and "no spiffs, fat or littlefs" in diagnostics[0].message


@pytest.mark.parametrize(("version", "by_name", "fat_skip"), [
    ("6.13.0", False, 0x1000),  # platform-espressif32: 4 KiB in, option ignored
    ("55.3.35", False, 0x1000),  # pioarduino before its wear-levelled fatfs builder
    ("55.03.36", False, 0),
    ("55.3.38", False, 0),
    ("55.3.39", True, 0),  # filesystem_partition honoured from here
    ("55.03.311", True, 0),
])
def test_uploadfs_rules_follow_the_platform_version(
        version: str, by_name: bool, fat_skip: int) -> None:
    rules = pio.uploadfs_rules("espressif32", version, filesystem="fatfs", partition="ffat")
    assert (rules.by_name, rules.fat_skip) == (by_name, fat_skip)
    assert version in rules.platform


def test_version_tuple() -> None:
    assert pio.version_tuple("55.03.311") == (55, 3, 311)
    assert pio.version_tuple("6.13.0-rc1") == (6, 13, 0)
    assert pio.version_tuple("") == ()


def test_app_targets_never_include_imageless_ones() -> None:
    registered = ["buildfs", "size", "upload", "uploadfs", "erase", "erase_upload",
                  "__upload-signed-app", "__upload-bootloader", "monitor", "download_fs"]
    assert pio.app_targets(registered) == ["buildprog", "upload", "erase_upload",
                                           "__upload-signed-app"]


def test_flashed_table_offset_and_reconcile(tmp_path: Path) -> None:
    table_bin = str(tmp_path / "partitions.bin")
    images = [("0x0000", str(tmp_path / "bootloader.bin")), ("0x9000", table_bin),
              ("0xe000", str(tmp_path / "boot_app0.bin"))]
    assert pio.flashed_table_offset(images, table_bin) == "0x9000"
    assert pio.flashed_table_offset(images[:1], table_bin) is None
    # Nothing set in the project: the platform's offset is taken.
    assert pio.reconcile_offset("", "", "0x9000", "t.bin") == "0x9000"
    # Set, and the same number: kept as written.
    assert pio.reconcile_offset("36864", "custom_partkit_offset", "0x9000", "t.bin") == "36864"
    # Nothing flashed by the platform (no FLASH_EXTRA_IMAGES entry): the project's or 0x8000.
    assert pio.reconcile_offset("0xa000", "custom_partkit_offset", None, "t.bin") == "0xa000"
    assert pio.reconcile_offset("", "", None, "t.bin") == "0x8000"
    with pytest.raises(pio.SetupError, match=r"board_upload.partition_table_offset = 0x9000, "
                       r"but the platform flashes t.bin at 0x8000"):
        pio.reconcile_offset("0x9000", "board_upload.partition_table_offset", "0x8000", "t.bin")
    with pytest.raises(pio.SetupError, match="not a number"):
        pio.reconcile_offset("nine", "custom_partkit_offset", "0x8000", "t.bin")


def test_check_upload_slot_without_a_slot_there(table: Path) -> None:
    # No app partition starts at the upload offset: the app's tail or head lands elsewhere.
    code, report, diagnostics = pio.check_upload_slot(str(table), "fw.bin", "0x20000",
                                                      offset="0x8000")
    assert (code, report) == (1, "")
    assert "upload writes fw.bin at 0x20000, where no app partition" in diagnostics[0].message
    # The platform has not said where (pioarduino before checkprogsize): not checked, said so.
    code, report, diagnostics = pio.check_upload_slot(str(table), "fw.bin", "")
    assert (code, diagnostics) == (0, [])
    assert "the slot it writes was not checked" in report
