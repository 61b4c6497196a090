"""partkit's Arduino support without the IDE: ``check --arduino-build-dir``, the advanced
size JSON (``partkit arduino size``) and ``partkit arduino install/uninstall/status``.

Build folders hold what the esp32 core's build leaves (the layout test_arduino_builder.py
gets from a real arduino-builder run): real ESP32-C3 images from support.firmware, the table
made by ``partkit gen`` from ``partitions.csv``, and ``build.options.json`` naming the FQBN
and the hardware folder of the simulated core in tests/data/arduino_core.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from partkit.cli import main
from support.firmware import app_of_size, bootloader_of_size
from support.tools import require_tool

CORE = Path(__file__).parent / "data" / "arduino_core"
SIM_CORE = CORE / "espressif" / "esp32"
CUSTOM_CSV = """\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     0x9000,  0x5000,
otadata,  data, ota,     0xe000,  0x2000,
app0,     app,  ota_0,   0x10000, 0x100000,
app1,     app,  ota_1,   0x110000,0x100000,
spiffs,   data, spiffs,  0x210000,0x1F0000,
"""
APP0_LINE = 4

# arduino-cli's contract for recipe.advanced_size.pattern output
SIZE_SCHEMA = {
    "type": "object",
    "required": ["output", "severity", "sections", "error"],
    "additionalProperties": False,
    "properties": {
        "output": {"type": "string"},
        "severity": {"enum": ["info", "warning", "error"]},
        "error": {"type": "string"},
        "sections": {"type": "array", "items": {
            "type": "object", "required": ["name", "size", "max_size"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"},
                           "size": {"type": "integer", "minimum": 0},
                           "max_size": {"type": "integer", "minimum": 0}}}},
    },
}


def _build_folder(root: Path, *, app_size: int, csv: str | None = CUSTOM_CSV,
                  fqbn: str = "espressif:esp32:esp32c3:PartitionScheme=default,FlashSize=4M",
                  ) -> tuple[Path, Path]:
    """(build folder, sketch folder) as the esp32 core leaves them after a compile."""
    sketch = root / "Blink"
    sketch.mkdir(parents=True)
    (sketch / "Blink.ino").write_text("void setup() {}\nvoid loop() {}\n")
    if csv is not None:
        (sketch / "partitions.csv").write_text(csv)
        table_csv = csv
    else:
        scheme = re.search(r"PartitionScheme=(\w+)", fqbn)
        table_csv = (SIM_CORE / "tools" / "partitions" /
                     f"{scheme.group(1) if scheme else 'default'}.csv").read_text()
    build = root / "build"
    build.mkdir()
    (build / "partitions.csv").write_text(table_csv)
    assert main(["gen", "-q", str(build / "partitions.csv"),
                 str(build / "Blink.ino.partitions.bin")]) == 0
    app_of_size(build, app_size, name="Blink.ino.bin")
    bootloader_of_size(build, 0x3000, name="Blink.ino.bootloader.bin")
    (build / "build.options.json").write_text(json.dumps({
        "fqbn": fqbn, "hardwareFolders": f"/usr/share/arduino-builder,{CORE}",
        "sketchLocation": str(sketch / "Blink.ino"), "toolsFolders": "/usr/bin"}))
    return build, sketch


# --- partkit check --arduino-build-dir -----------------------------------------------------

@pytest.mark.firmware
def test_build_folder_reports_validate_against_the_check_schema(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the reports of --arduino-build-dir and --idf-build-dir (arduino_build,
    idf_build, flashed, complete, not_checked) were refused by docs/check-report.schema.json."""
    import jsonschema
    from support.idf_build import make_idf_build

    schema = json.loads((Path(__file__).parents[1] / "docs" / "check-report.schema.json"
                         ).read_text())
    build, _ = _build_folder(tmp_path / "a", app_size=0x80000)
    too_big, _ = _build_folder(tmp_path / "b", app_size=0x180000)
    idf = make_idf_build(tmp_path / "i").build
    for option, folder in (("--arduino-build-dir", build), ("--arduino-build-dir", too_big),
                           ("--idf-build-dir", idf)):
        code = main(["check", option, str(folder), "--json"])
        doc = json.loads(capsys.readouterr().out)
        jsonschema.validate(doc, schema)
        assert doc["exit_code"] == code and ("arduino_build" in doc) == (option[2] == "a")


@pytest.mark.firmware
def test_check_build_dir_fits_with_the_board_read_from_boards_txt(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, sketch = _build_folder(tmp_path, app_size=0x80000)
    rc = main(["check", "--arduino-build-dir", str(build), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["arduino_build"]["target"] == "esp32c3"
    assert doc["arduino_build"]["flash_size"] == "4MB"
    assert doc["arduino_build"]["table_source"] == str(sketch / "partitions.csv")
    assert {f["name"]: f["region"] for f in doc["flashed"]} == {
        "bootloader": "bootloader", "partition-table": "partition table",
        "boot_app0": "otadata", "app": "app0"}
    assert doc["arduino_build"]["not_checked"] == []
    assert doc["flash"]["flash_size_origin"] == "the board's build.flash_size"
    rc = main(["check", "--arduino-build-dir", str(build)])
    out, _ = capsys.readouterr()
    assert out.startswith(f"Arduino build {build}: project Blink.ino, target esp32c3")
    assert ("Sketch uses 524288 bytes (50%) of the 'app0' partition (1048576 bytes, from "
            "partitions.csv)") in out


@pytest.mark.firmware
def test_check_build_dir_overflow_points_at_the_sketchs_csv_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, sketch = _build_folder(tmp_path, app_size=0x100010)
    rc = main(["check", "--arduino-build-dir", str(build)])
    _, err = capsys.readouterr()
    assert rc == 1
    assert f"{sketch / 'partitions.csv'}:{APP0_LINE}:1: error:" in err


@pytest.mark.firmware
def test_check_build_dir_menu_flash_size_applies(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the FlashSize=2M menu choice overrides the board's 4MB: the 4 MB table does not fit
    build, _ = _build_folder(tmp_path, app_size=0x40000, csv=None,
                             fqbn="espressif:esp32:esp32c3:PartitionScheme=default,FlashSize=2M")
    rc = main(["check", "--arduino-build-dir", str(build), "--json"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert json.loads(out)["arduino_build"]["flash_size"] == "2MB"
    assert "0x200000" in err  # the flash size named in the failure
    # the table came from the menu scheme, not the sketch
    assert json.loads(out)["arduino_build"]["table_source"] == str(build / "partitions.csv")


@pytest.mark.firmware
def test_boot_app0_written_into_another_partition_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the core's upload writes boot_app0.bin at 0xe000 whatever the table says: here that
    # is inside nvs (otadata moved to the end), which the upload would overwrite
    csv = CUSTOM_CSV.replace("nvs,      data, nvs,     0x9000,  0x5000,",
                             "nvs,      data, nvs,     0x9000,  0x7000,").replace(
        "otadata,  data, ota,     0xe000,  0x2000,\n", "").replace(
        "spiffs,   data, spiffs,  0x210000,0x1F0000,",
        "spiffs,   data, spiffs,  0x210000,0x1E0000,\notadata,  data, ota,     0x3F0000,0x2000,")
    build, sketch = _build_folder(tmp_path, app_size=0x40000, csv=csv)
    rc = main(["check", "--arduino-build-dir", str(build)])
    _, err = capsys.readouterr()
    assert rc == 1, err
    assert (f"{sketch / 'partitions.csv'}:2:1: error: boot_app0.bin is flashed at 0xe000, "
            "inside partition 'nvs' which starts at 0x9000") in err


@pytest.mark.firmware
def test_without_build_options_says_what_it_did_not_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an arduino-cli --output-dir copy: images only
    build, _ = _build_folder(tmp_path, app_size=0x40000)
    for name in ("build.options.json", "partitions.csv"):
        (build / name).unlink()
    rc = main(["check", "--arduino-build-dir", str(build)])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "project Blink.ino, target unknown chip, flash size unknown" in out
    assert "not checked: the bootloader: its offset is unknown" in out
    assert "not checked: the table against the flash: flash size unknown" in out
    assert "not checked: boot_app0.bin" in out


@pytest.mark.firmware
def test_budgets_in_the_wrong_order_are_refused_as_check_refuses_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one definition of --warn-free/--fail-free (cli.common): the build-folder forms used
    # to take a warning budget below the failing one that 'partkit check TABLE' refuses
    build, _ = _build_folder(tmp_path, app_size=0x80000)
    budgets = ["--warn-free", "1%", "--fail-free", "5%"]
    refused = "--warn-free 1% is less than --fail-free 5%"
    for argv in (["arduino", "check", str(build)], ["check", "--arduino-build-dir", str(build)]):
        assert main([*argv, *budgets]) == 2, argv
        assert capsys.readouterr().err.count(refused) == 1, argv
    assert main(["arduino", "size", str(build), *budgets]) == 0  # arduino-cli's contract
    doc = json.loads(capsys.readouterr().out)
    assert doc["severity"] == "error" and refused in doc["output"]
    assert main(["arduino", "check", str(build), "--warn-free", "5%", "--fail-free", "1%"]) == 0


def test_check_build_dir_bad_input_exits_2(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--arduino-build-dir", str(tmp_path / "nope")]) == 2
    assert "error: not a directory" in capsys.readouterr().err
    (tmp_path / "build.options.json").write_text('{"fqbn": ')
    assert main(["check", "--arduino-build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'build.options.json'}:1:" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["check", "--arduino-build-dir", str(tmp_path), "--idf-build-dir", str(tmp_path)])
    assert exc.value.code == 2


# --- partkit arduino size (recipe.advanced_size.pattern) -----------------------------------

def _size(capsys: pytest.CaptureFixture[str], build: Path, *extra: str) -> dict[str, object]:
    import jsonschema

    rc = main(["arduino", "size", str(build), *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc: dict[str, object] = json.loads(out)
    jsonschema.validate(doc, SIZE_SCHEMA)
    return doc


def _classic_ram(size_output: str) -> int:
    """The simulated core's recipe.size.regex.data summed over 'size -A' lines, as the IDE."""
    props = dict(line.split("=", 1) for line in
                 (SIM_CORE / "platform.txt").read_text().splitlines()
                 if line.startswith("recipe.size.regex.data="))
    regex = re.compile(props["recipe.size.regex.data"])
    return sum(int(m.group(1)) for line in size_output.splitlines()
               if (m := regex.match(line)))


@pytest.mark.firmware
def test_advanced_size_fit_reports_the_real_slot_and_ram(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("riscv64-unknown-elf-size")
    build, _ = _build_folder(tmp_path, app_size=0x80000)
    tool = str(SIM_CORE / "tools" / "bin" / "riscv32-esp-elf-size")
    doc = _size(capsys, build, "--size-tool", tool, "--ram-max", "327680")
    listing = subprocess.run([tool, "-A", str(build / "Blink.ino.elf")], capture_output=True,
                             text=True, check=True).stdout
    ram = _classic_ram(listing)
    assert ram > 0
    assert doc["severity"] == "info" and doc["error"] == ""
    assert doc["sections"] == [{"name": "text", "size": 0x80000, "max_size": 0x100000},
                               {"name": "data", "size": ram, "max_size": 327680}]
    assert str(doc["output"]).startswith(
        "Sketch uses 524288 bytes (50%) of the 'app0' partition (1048576 bytes, from "
        "partitions.csv)\nGlobal variables use")


@pytest.mark.firmware
def test_advanced_size_warning_budget(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    build, _ = _build_folder(tmp_path, app_size=0x80000)
    doc = _size(capsys, build, "--warn-free", "60%")  # 50 % free
    assert doc["severity"] == "warning" and doc["error"] == ""
    assert "warning:" in str(doc["output"])


@pytest.mark.firmware
def test_advanced_size_overflow_is_an_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    build, sketch = _build_folder(tmp_path, app_size=0x100010)
    doc = _size(capsys, build, "--chip", "{build.mcu}")  # an undefined property: looked up
    assert doc["severity"] == "error"
    assert "too small" in str(doc["error"])
    assert f"{sketch / 'partitions.csv'}:{APP0_LINE}:1: error:" in str(doc["output"])
    assert doc["sections"] == [{"name": "text", "size": 0x100010, "max_size": 0x100000}]


# --- partkit arduino install / uninstall / status ------------------------------------------

def _fake_core(path: Path) -> Path:
    path.mkdir(parents=True)
    shutil.copyfile(SIM_CORE / "platform.txt", path / "platform.txt")
    shutil.copyfile(SIM_CORE / "boards.txt", path / "boards.txt")
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """One esp32 core in every kind of place the IDEs install them."""
    home = tmp_path / "home"
    pkg = Path("packages", "esp32", "hardware", "esp32")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "win" / "AppData" / "Local"))
    for var in ("ARDUINO_IDE_PATH", "ARDUINO_CONFIG_FILE", "ARDUINO_DIRECTORIES_DATA",
                "ARDUINO_DIRECTORIES_USER"):
        monkeypatch.delenv(var, raising=False)
    cli_data = tmp_path / "cli data"
    (home / ".arduino15").mkdir(parents=True)
    (home / ".arduino15" / "arduino-cli.yaml").write_text(
        f"board_manager:\n  additional_urls: []\ndirectories:\n  data: {cli_data}\n"
        "  downloads: /tmp/x\n")
    book2 = tmp_path / "book2"
    (home / ".arduino15" / "preferences.txt").write_text(f"sketchbook.path={book2}\n")
    return {
        "linux-old": _fake_core(home / ".arduino15" / pkg / "3.0.7"),
        "linux": _fake_core(home / ".arduino15" / pkg / "3.1.10"),
        "macos": _fake_core(home / "Library" / "Arduino15" / pkg / "3.1.0"),
        "windows": _fake_core(tmp_path / "win" / "AppData" / "Local" / "Arduino15" / pkg
                              / "3.2.0"),
        "portable": _fake_core(tmp_path / "ide" / "portable" / pkg / "2.0.17"),
        "cli-data": _fake_core(cli_data / pkg / "3.3.0"),
        "sketchbook": _fake_core(home / "Arduino" / "hardware" / "espressif" / "esp32"),
        "sketchbook-pref": _fake_core(book2 / "hardware" / "espressif" / "esp32"),
    }


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    rc = main(["arduino", *argv, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return rc, json.loads(out)


def _states(doc: dict[str, object]) -> dict[str, str]:
    cores = doc["cores"]
    assert isinstance(cores, list)
    return {c["path"]: c["state"] for c in cores}


def test_status_finds_cores_in_every_location(places: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = _run(capsys, "status", "--ide-dir", str(tmp_path / "ide"))
    assert _states(doc) == {str(p): "absent" for p in places.values()}


def test_install_rerun_and_uninstall(places: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ide = ("--ide-dir", str(tmp_path / "ide"))
    user = "# my own settings\ncompiler.c.extra_flags=-DMY_FLAG=1\n"
    local = places["windows"] / "platform.local.txt"
    local.write_text(user)
    _, doc = _run(capsys, "install", *ide)
    states = _states(doc)
    # the newest version in each place; the old 3.0.7 folder only with --all
    assert states == {str(p): "installed" for k, p in places.items() if k != "linux-old"}
    text = local.read_text()
    assert text.endswith(user) and "recipe.advanced_size.pattern=" in text  # block first
    assert Path(str(local) + ".partkit-backup").read_text() == user
    before = {p: (p / "platform.local.txt").read_bytes() for k, p in places.items()
              if k != "linux-old"}
    _, doc = _run(capsys, "install", *ide, "--all")
    states = _states(doc)
    assert states.pop(str(places["linux-old"])) == "installed"
    assert set(states.values()) == {"unchanged"}
    assert all((p / "platform.local.txt").read_bytes() == b for p, b in before.items())
    _, doc = _run(capsys, "status", *ide)
    assert set(_states(doc).values()) == {"current"}
    _, doc = _run(capsys, "uninstall", *ide)
    assert set(_states(doc).values()) == {"removed"}
    assert local.read_text() == user  # the user's file exactly as it was
    assert not (places["linux"] / "platform.local.txt").exists()  # partkit's own: gone
    _, doc = _run(capsys, "uninstall", *ide)
    assert set(_states(doc).values()) == {"absent"}


def test_hook_sorts_after_the_cores_hooks_and_quotes_the_interpreter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.arduino.properties import read_properties

    core = _fake_core(tmp_path / "core")
    python = str(tmp_path / "my python" / "bin" / "python3")
    _run(capsys, "install", "--core-dir", str(core), "--python", python)
    local = read_properties(str(core / "platform.local.txt"))
    platform = read_properties(str(core / "platform.txt"))
    hooks = sorted(k for k in {**platform, **local}
                   if k.startswith("recipe.hooks.objcopy.postobjcopy."))
    assert hooks[-1] in local and len(hooks) == 3  # the core's .1 and .3, then partkit's
    assert local[hooks[-1]].startswith(f'"{python}" -m partkit arduino check "{{build.path}}"')
    assert local["recipe.advanced_size.pattern"].startswith(f'"{python}" -m partkit arduino size')
    # another interpreter: the block is updated, not duplicated
    _, doc = _run(capsys, "install", "--core-dir", str(core))
    assert set(_states(doc).values()) == {"updated"}
    assert (core / "platform.local.txt").read_text().count("# >>> partkit >>>") == 1


def test_install_refuses_a_damaged_block(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.arduino.localtxt import BEGIN

    core = _fake_core(tmp_path / "core")
    (core / "platform.local.txt").write_text(f"a=1\n{BEGIN}\nrecipe.x=y\n")
    assert main(["arduino", "install", "--core-dir", str(core)]) == 2
    err = capsys.readouterr().err
    assert f"{core / 'platform.local.txt'}:2:" in err and "no end marker" in err
    assert main(["arduino", "install", "--core-dir", str(tmp_path)]) == 2
    assert "no platform.txt" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["check"], ["size"], ["table"], ["install"],
                                     ["uninstall"], ["status"]])
def test_help_is_complete(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.common.chips import chip_names

    try:  # 'arduino --help' is the dispatcher's list; a sub-command's is argparse's
        assert main(["arduino", *command, "--help"]) == 0
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    assert "exit status:" in text and "\n  0  " in text and "\n  2  " in text
    if "--chip" in text:
        assert all(chip in text for chip in chip_names())
    if command in (["check"], []):
        assert "\n  1  " in text


def test_install_into_an_unusable_file_is_bad_input(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    core = _fake_core(tmp_path / "core")
    (core / "platform.local.txt").mkdir()  # not a file: cannot be read or replaced
    assert main(["arduino", "install", "--core-dir", str(core)]) == 2
    err = capsys.readouterr().err
    assert f"{core / 'platform.local.txt'}: error: cannot" in err and "Traceback" not in err
