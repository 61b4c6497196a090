"""Defects found by an adversarial review of the Arduino support (issue 23), one test each.

Each test failed before its fix; see the commit that added it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from partkit.cli import main

CORE = Path(__file__).parent / "data" / "arduino_core"
SIM_CORE = CORE / "espressif" / "esp32"


def _fake_core(path: Path) -> Path:
    path.mkdir(parents=True)
    shutil.copyfile(SIM_CORE / "platform.txt", path / "platform.txt")
    shutil.copyfile(SIM_CORE / "boards.txt", path / "boards.txt")
    return path


def _manage(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    rc = main(["arduino", *argv, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return {c["path"]: c["state"] for c in json.loads(out)["cores"]}


@pytest.mark.parametrize("user", [b"compiler.c.extra_flags=-DA=1",  # no final newline
                                  b"a=1\r\nb=2",
                                  b"\xef\xbb\xbfa=1\r\n"])  # Notepad's BOM
def test_uninstall_gives_back_the_users_file_byte_for_byte(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], user: bytes) -> None:
    core = _fake_core(tmp_path / "core")
    local = core / "platform.local.txt"
    local.write_bytes(user)
    _manage(capsys, "install", "--core-dir", str(core))
    text = local.read_bytes()
    assert b"recipe.advanced_size.pattern=" in text
    # every line the user wrote is still a line of its own (nothing glued to the block)
    lines = text.splitlines()
    assert all(line in lines for line in user.removeprefix(b"\xef\xbb\xbf").splitlines())
    if user.startswith(b"\xef\xbb\xbf"):
        assert text.startswith(b"\xef\xbb\xbf")  # the BOM stays first
    assert set(_manage(capsys, "uninstall", "--core-dir", str(core)).values()) == {"removed"}
    assert local.read_bytes() == user


def test_a_block_an_editor_turned_into_crlf_is_still_current(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core = _fake_core(tmp_path / "core")
    local = core / "platform.local.txt"
    local.write_bytes(b"a=1\r\n")
    _manage(capsys, "install", "--core-dir", str(core))
    crlf = local.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    local.write_bytes(crlf)  # what a Windows editor does when the user saves the file
    assert set(_manage(capsys, "status", "--core-dir", str(core)).values()) == {"current"}
    assert set(_manage(capsys, "install", "--core-dir", str(core)).values()) == {"unchanged"}
    assert local.read_bytes() == crlf
    _manage(capsys, "uninstall", "--core-dir", str(core))
    assert local.read_bytes() == b"a=1\r\n"


# arduino-cli's contract for recipe.advanced_size.pattern output (as test_arduino.py)
SIZE_SCHEMA = {
    "type": "object", "required": ["output", "severity", "sections", "error"],
    "additionalProperties": False,
    "properties": {"output": {"type": "string"},
                   "severity": {"enum": ["info", "warning", "error"]},
                   "error": {"type": "string", "minLength": 1},
                   "sections": {"type": "array"}},
}


@pytest.mark.parametrize("case", ["no folder", "empty folder", "broken options", "size tool"])
def test_size_answers_json_even_for_bad_input(tmp_path: Path, case: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # arduino-cli drops the JSON of a non-zero exit: "Error while determining sketch size:
    # exit status 2", without partkit's reason; the JSON error is what fails the compile
    import jsonschema

    build = tmp_path / "build"
    extra: list[str] = []
    if case != "no folder":
        build.mkdir()
    if case == "broken options":
        (build / "build.options.json").write_text('{"fqbn": ')
    if case == "size tool":
        (build / "partitions.csv").write_text("factory, app, factory, 0x10000, 1M\n")
        assert main(["gen", "-q", str(build / "partitions.csv"),
                     str(build / "S.ino.partitions.bin")]) == 0
        extra = ["--size-tool", str(tmp_path / "no-such-size")]
    rc = main(["arduino", "size", str(build), *extra])
    out, _ = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)
    jsonschema.validate(doc, SIZE_SCHEMA)
    assert doc["severity"] == "error"
    assert ": error: " in doc["output"] and "Traceback" not in doc["output"]
    if case == "broken options":
        assert f"{build / 'build.options.json'}:1:" in doc["output"]


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("LOCALAPPDATA", "USERPROFILE", "ARDUINO_IDE_PATH", "ARDUINO_CONFIG_FILE",
                "ARDUINO_DIRECTORIES_DATA", "ARDUINO_DIRECTORIES_USER"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_ide2_sketchbook_and_data_from_its_own_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # IDE 2 writes its Preferences (sketchbook location) to ~/.arduinoIDE/arduino-cli.yaml,
    # not to ~/.arduino15; a git install in that sketchbook was not found
    home = _home(tmp_path, monkeypatch)
    book = tmp_path / "My Sketches"
    data = tmp_path / "ide2 data"
    (home / ".arduinoIDE").mkdir()
    (home / ".arduinoIDE" / "arduino-cli.yaml").write_text(
        f"directories:\n  data: {data}  # moved by hand\n  user: '{book}'\n")
    git = _fake_core(book / "hardware" / "espressif" / "esp32")
    boards_manager = _fake_core(data / "packages" / "esp32" / "hardware" / "esp32" / "3.1.0")
    assert _manage(capsys, "status") == {str(boards_manager): "absent", str(git): "absent"}


def test_a_release_is_newer_than_its_release_candidate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    home = _home(tmp_path, monkeypatch)
    pkg = home / ".arduino15" / "packages" / "esp32" / "hardware" / "esp32"
    for version in ("3.0.0-rc1", "3.0.0", "2.0.17"):
        _fake_core(pkg / version)
    assert _manage(capsys, "install") == {str(pkg / "3.0.0"): "installed"}


@pytest.mark.firmware
@pytest.mark.parametrize("case", ["removed", "edited", "variant"])
def test_the_tables_origin_is_named_only_when_the_copy_is_that_file(
        tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    # the core never deletes the build folder's partitions.csv: after the sketch's own CSV
    # is removed, the old copy is built again; it is not "the 'default' partition scheme"
    from test_arduino import CUSTOM_CSV, _build_folder

    build, sketch = _build_folder(tmp_path, app_size=0x40000)
    options = json.loads((build / "build.options.json").read_text())
    if case == "removed":
        (sketch / "partitions.csv").unlink()
    elif case == "edited":
        (sketch / "partitions.csv").write_text(CUSTOM_CSV.replace("0x1F0000", "0x1E0000"))
    else:  # a board whose variant has its own table (copied before the menu scheme's)
        hw = tmp_path / "hw"
        shutil.copytree(CORE, hw)
        variant = hw / "espressif" / "esp32" / "variants" / "esp32c3"
        shutil.copyfile(build / "partitions.csv", variant / "partitions.csv")
        (sketch / "partitions.csv").unlink()
        options["hardwareFolders"] = str(hw)
        (build / "build.options.json").write_text(json.dumps(options))
    assert main(["check", "--arduino-build-dir", str(build), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    line = doc["arduino_build"]["size_line"]
    assert "'default' partition scheme" not in line
    assert line.endswith(
        "(1048576 bytes, from the 'esp32c3' variant's partitions.csv)" if case == "variant"
        else "left by an earlier build (not the sketch's, the variant's or the scheme's))")
    assert doc["arduino_build"]["table_source"] == str(build / "partitions.csv")


def test_a_menu_the_fqbn_does_not_name_takes_its_first_choice(tmp_path: Path) -> None:
    # 'arduino-cli compile --fqbn esp32:esp32:esp32c3' (no options) builds with the first
    # choice of every menu; boards.txt need not repeat it at board level
    from partkit.arduino.builddir import find_board

    hw = tmp_path / "hw"
    shutil.copytree(CORE, hw)
    boards = hw / "espressif" / "esp32" / "boards.txt"
    text = boards.read_text().replace("esp32c3.build.flash_size=4MB\n", "")
    text = text.replace("esp32c3.menu.FlashSize.4M=4MB (32Mb)\n"
                        "esp32c3.menu.FlashSize.4M.build.flash_size=4MB\n", "")
    text = text.replace("esp32c3.menu.FlashSize.2M.build.flash_size=2MB\n",
                        "esp32c3.menu.FlashSize.2M.build.flash_size=2MB\n"
                        "esp32c3.menu.FlashSize.4M=4MB (32Mb)\n"
                        "esp32c3.menu.FlashSize.4M.build.flash_size=4MB\n")
    boards.write_text(text)
    props, _ = find_board([str(hw)], "espressif:esp32:esp32c3")
    assert props["build.flash_size"] == "2MB"  # 2M is now the menu's first choice
    assert props["build.partitions"] == "default"
    props, _ = find_board([str(hw)], "espressif:esp32:esp32c3:PartitionScheme=huge_app")
    assert props["build.flash_size"] == "2MB" and props["upload.maximum_size"] == "3145728"


@pytest.mark.firmware
def test_build_properties_given_to_arduino_cli_win_over_the_board(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 'arduino-cli compile --build-property build.flash_size=2MB --build-property
    # build.partitions=huge_app' builds with those (build.options.json records them); the
    # check used the board's 4MB and called the huge_app table an earlier build's leftover
    from test_arduino import _build_folder

    build, _ = _build_folder(tmp_path, app_size=0x40000, csv=None,
                             fqbn="espressif:esp32:esp32c3")
    shutil.copyfile(SIM_CORE / "tools" / "partitions" / "huge_app.csv", build / "partitions.csv")
    assert main(["gen", "-q", str(build / "partitions.csv"),
                 str(build / "Blink.ino.partitions.bin")]) == 0
    options = json.loads((build / "build.options.json").read_text())
    options["customBuildProperties"] = ("build.extra_flags=-DA=1,-DB=2,build.flash_size=2MB,"
                                        "build.partitions=huge_app")
    (build / "build.options.json").write_text(json.dumps(options))
    assert main(["check", "--arduino-build-dir", str(build), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)["arduino_build"]
    assert doc["flash_size"] == "2MB"
    assert doc["size_line"].endswith("from the 'huge_app' partition scheme)")
