"""Issue 9, section 3: defects found by trying every command, one test (or more) each.

Every test here failed before its fix: it runs the real CLI entry point (``partkit.cli.main``)
on real files and asserts what the user sees (exit code, the one clear message, files).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from partkit.cli import main

SVG = "{http://www.w3.org/2000/svg}"

TABLE = """\
nvs,      data, nvs,     0x9000,  0x6000
phy_init, data, phy,     0xf000,  0x1000
factory,  app,  factory, 0x10000, 0x100000
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# --- map with --flash-size: the flash end, what lies beyond, a legend for every colour ------


def test_map_marks_the_flash_end_and_fails_when_the_table_runs_past_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "big.csv", TABLE + "storage, data, spiffs, 0x110000, 0x300000\n")
    svg = tmp_path / "map.svg"
    code, _, err = run(["map", str(csv), "--flash-size", "4MB", "-o", str(svg)], capsys)
    assert code == 1
    # the same verdict as check (table-exceeds-flash): an error, since it fails the command
    assert f"{csv}:4:1: error: the table runs 0x10000 bytes past the end of the flash" in err
    root = ET.fromstring(svg.read_text())  # the picture is still written
    beyond = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "beyond-flash"]
    assert [(int(e.get("data-offset", "")), int(e.get("data-size", ""))) for e in beyond] == [
        (0x400000, 0x10000)]
    assert beyond[0].get("fill") == "#d0021b"
    ends = [e for e in root.iter(f"{SVG}line") if e.get("class") == "flash-end"]
    assert len(ends) == 1
    flash = next(e for e in root.iter(f"{SVG}rect") if e.get("class") == "flash")
    top, height = float(flash.get("y", "")), float(flash.get("height", ""))
    assert float(ends[0].get("y1", "")) == pytest.approx(top + height * 0x400000 / 0x410000)


def test_map_that_fits_exits_0_and_marks_the_flash_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", TABLE)
    svg = tmp_path / "map.svg"
    code, _, err = run(["map", str(csv), "--flash-size", "4MB", "-o", str(svg)], capsys)
    assert code == 0, err
    root = ET.fromstring(svg.read_text())
    assert not [e for e in root.iter(f"{SVG}rect") if e.get("class") == "beyond-flash"]
    assert [e for e in root.iter(f"{SVG}line") if e.get("class") == "flash-end"]


@pytest.mark.parametrize("flash", ["4MB", "1MB"])
def test_map_legend_has_an_entry_for_every_colour_used(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flash: str) -> None:
    csv = write(tmp_path / "t.csv", TABLE + "blob, 0x40, 1, , 0x1000\n")
    svg = tmp_path / "map.svg"
    run(["map", str(csv), "--flash-size", flash, "--chip", "esp32", "-o", str(svg)], capsys)
    root = ET.fromstring(svg.read_text())
    drawn = {e.get("fill") for e in root.iter(f"{SVG}rect")
             if e.get("class") in ("partition", "region", "used", "beyond-flash", "flash", "gap",
                                   "free")} - {"none"}
    legend = {e.get("fill") for e in root.iter(f"{SVG}rect") if e.get("class") == "legend"}
    assert drawn <= legend, drawn - legend
    assert len(legend) == len([e for e in root.iter(f"{SVG}text")
                               if e.get("class") == "legend-text"])
    # The custom type (0x40) has its own colour and its own legend entry.
    texts = {e.text for e in root.iter(f"{SVG}text") if e.get("class") == "legend-text"}
    assert "custom type" in texts
    assert ("past the end of the flash" in texts) == (flash == "1MB")


# --- -o is the output everywhere except gen ---------------------------------------------------


def test_dash_o_in_check_is_not_taken_for_the_offset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", TABLE)
    code, _, err = run(["check", str(csv), "-o", "0x9000", "--flash-size", "4MB"], capsys)
    assert code == 2
    assert "-o is the output file" in err and "--offset 0x9000" in err


def test_dash_o_in_show_is_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.csv", TABLE)
    code, out, err = run(["show", "t.csv", "--csv", "-o", "copy.csv"], capsys)
    assert code == 0, err
    assert out == ""
    assert "factory,app,factory,0x10000,1M," in (tmp_path / "copy.csv").read_text()
    # --offset is the table offset in show as everywhere.
    code, _, err = run(["show", "t.csv", "--offset", "0x9000"], capsys)
    assert code == 2 and "overlaps the partition table" in err


def test_gen_keeps_dash_o_as_the_offset(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", "nvs, data, nvs, , 0x6000\n")
    out = tmp_path / "t.bin"
    assert run(["gen", "-q", "-o", "0x9000", str(csv), str(out)], capsys)[0] == 0
    assert int.from_bytes(out.read_bytes()[4:8], "little") == 0xA000


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        assert main([*argv, "--help"]) == 0
    except SystemExit as exc:  # argparse's --help
        assert exc.code == 0
    return capsys.readouterr().out


def test_the_table_offset_is_offset_in_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["gen"], ["show"], ["check"], ["map"], ["image", "info"],
                    ["image", "inspect"], ["image", "create"]):
        text = help_text(command, capsys)
        assert "--offset N" in text, command
        assert bool(re.search(r"-o( N)?, --offset", text)) == (command == ["gen"]), command


# --- hints that mislead -----------------------------------------------------------------------


def test_overlap_hint_suggests_shrinking_the_previous_partition(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", TABLE + "storage, data, spiffs, 0x100000, 0x10000\n")
    code, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 2
    assert "shrink 'factory' to 0xf0000 so it ends at 0x100000" in err
    assert "move the row" not in err


def test_size_hint_does_not_offer_keywords(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", "nvs, data, nvs, , 1G\n")
    code, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 2 and "size must be a number" in err
    assert "keyword" not in err


def test_unknown_subtype_points_at_extra_partition_subtypes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", "nvs, data, nvs, , 0x6000\nmine, data, my_blob, , 4K\n")
    code, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 2
    assert f"{csv}:2:13: error:" in err
    assert "--extra-partition-subtypes TYPE,my_blob,VALUE" in err
    # ... and the option really makes it valid.
    code, _, err = run(["gen", "-q", "--extra-partition-subtypes", "data,my_blob,0x40", "--",
                        str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 0, err


@pytest.mark.parametrize("command", [["gen", "-q"], ["show"], ["check"]])
def test_extra_partition_subtypes_swallowing_the_input_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    csv = write(tmp_path / "t.csv", TABLE)
    try:
        code = main([*command, "--extra-partition-subtypes", "data,my_blob,0x40", str(csv)])
    except SystemExit as exc:  # argparse's usage error
        code = int(str(exc.code))
    err = capsys.readouterr().err
    assert code == 2
    assert "end the list with --" in err and "took" in err


def test_app_image_given_as_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import build_app

    app = build_app(tmp_path)
    for command in (["gen", "-q", str(app), str(tmp_path / "o.bin")], ["show", str(app)]):
        code, _, err = run(command, capsys)
        assert code == 2
        assert error_lines(err) == [f"{app}: error: this is an ESP app or bootloader image "
                                    "(first byte 0xE9), not a partition table"]
        assert "UTF-8" not in err
    elf = app.with_suffix(".elf")
    code, _, err = run(["gen", "-q", str(elf), str(tmp_path / "o.bin")], capsys)
    assert code == 2 and "this is an ELF file" in err and "Field 'type'" not in err


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    codec: str) -> None:
    csv = tmp_path / "t.csv"
    csv.write_bytes(TABLE.encode(codec))
    code, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 2
    assert "\x00" not in err
    assert len(error_lines(err)) == 1 and "UTF-16 without a byte-order mark" in err


def test_semicolon_separated_csv_is_named(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    csv = write(tmp_path / "t.csv", "# Name;Type;SubType;Offset;Size\n"
                + TABLE.replace(",", ";"))
    code, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert code == 2
    assert error_lines(err) == [f"{csv}:2:4: error: fields are separated by ';': partition "
                                "tables separate them with ','"]


# --- name length: one rule ---------------------------------------------------------------------


def test_name_length_is_one_rule_in_gen_check_and_at(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    primary = write(tmp_path / "partitions_at.csv", TABLE
                    + "at_customize, 0x40, 0, 0x110000, 0x20000\n")
    for length in (16, 17):
        name = "n" * length
        flagged = length > 16
        csv = write(tmp_path / f"{length}.csv", TABLE + f"{name}, data, spiffs, , 0x10000\n")
        code, _, err = run(["gen", str(csv), str(tmp_path / "o.bin")], capsys)
        assert code == 0 and (f"'{name}' is" in err) == flagged, err
        code, out, err = run(["check", str(csv), "--flash-size", "4MB"], capsys)
        assert code == 0 and (f"'{name}' is" in out + err) == flagged, out + err
        secondary = write(tmp_path / f"at{length}.csv", f"{name}, 0x41, 1, 0x111000, 4K\n")
        code, _, err = run(["at", "check", str(secondary), "--primary", str(primary)], capsys)
        assert code == (2 if flagged else 0), err
        assert (f"'{name}' is 17 bytes; names are at most 16 bytes" in err) == flagged, err


def test_name_rule_is_documented_with_its_reason() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "compat.md").read_text()
    assert "label[17]" in docs and "16 bytes" in docs


# --- input paths: one clear line, exit 2 ----------------------------------------------------


def test_image_commands_on_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dump"
    folder.mkdir()
    for command in (["inspect"], ["info"], ["read", "-n", "nvs", "-o", str(tmp_path / "o")],
                    ["erase", "-n", "nvs"], ["write", "-n", "nvs", str(tmp_path / "x")]):
        code, _, err = run(["image", command[0], str(folder), *command[1:]], capsys)
        assert code == 2, command
        assert error_lines(err) == [f"{folder}: error: is a directory, expected a file"], err
        assert "Traceback" not in err and "truncated" not in err


def test_image_path_through_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An OS error other than "missing" or "directory" (here ENOTDIR) is one line too.
    plain = tmp_path / "flash.bin"
    plain.write_bytes(b"\xff" * 0x10000)
    inner = f"{plain}/inner.bin"
    code, _, err = run(["image", "inspect", inner], capsys)
    assert code == 2 and error_lines(err) == [f"{inner}: error: cannot read: Not a directory"]


def test_missing_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.bin")
    for argv in (["image", "inspect", missing], ["image", "info", missing],
                 ["show", missing], ["map", missing, "-o", str(tmp_path / "m.svg")],
                 ["check", missing, "--flash-size", "4MB"]):
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert error_lines(err) == [f"{missing}: error: no such file"], (argv, err)


# --- image create: images for --chip; where the files went; @flash_args from here ------------

CREATE_TABLE = """\
nvs,      data, nvs,     0x9000,  0x6000
otadata,  data, ota,     0xf000,  0x2000
factory,  app,  factory, 0x20000, 0x100000
"""


@pytest.fixture(scope="module")
def chip_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real ESP32-C3 app and bootloader, and the same app converted for the ESP32-S3 by
    esptool's elf2image (so its header names another chip)."""
    import subprocess
    import sys

    from support.firmware import build_app, build_bootloader

    out = tmp_path_factory.mktemp("chips")
    app = build_app(out)
    s3 = out / "app-s3.bin"
    subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32s3", "elf2image", "-o",
                    str(s3), str(app.with_suffix(".elf"))], check=True, capture_output=True)
    return {"c3": app, "s3": s3, "bootloader": build_bootloader(out)}


def test_image_create_refuses_an_app_for_another_chip(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], chip_images: dict[str, Path]) -> None:
    csv = write(tmp_path / "t.csv", CREATE_TABLE)
    image = tmp_path / "flash.bin"
    base = ["image", "create", str(image), "--table", str(csv), "--flash-size", "4MB"]
    code, _, err = run([*base, "--chip", "esp32s3", "--app", f"factory={chip_images['c3']}"],
                       capsys)
    assert code == 2
    assert error_lines(err) == [f"{chip_images['c3']}: error: app 'factory' image is built for "
                                "esp32c3, but the flash image is for esp32s3 (--chip)"]
    assert "--force" in err
    assert not image.exists()
    # Without --chip the bootloader's header decides, and an S3 app does not go with it.
    code, _, err = run([*base, "--bootloader", str(chip_images["bootloader"]),
                        "--app", f"factory={chip_images['s3']}"], capsys)
    assert code == 2 and "built for esp32s3, but the flash image is for esp32c3" in err
    assert not image.exists()
    # --force places it, with a warning.
    code, _, err = run([*base, "--chip", "esp32s3", "--app", f"factory={chip_images['c3']}",
                        "--force"], capsys)
    assert code == 0 and "warning: app 'factory' image is built for esp32c3" in err
    assert image.exists()
    # The right chip passes without a word about chips.
    code, _, err = run([*base, "--chip", "esp32c3", "--app", f"factory={chip_images['c3']}",
                        "--bootloader", str(chip_images["bootloader"])], capsys)
    assert code == 0 and "built for" not in err


def test_image_create_says_where_it_wrote_and_how_to_flash_from_here(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], chip_images: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.csv", CREATE_TABLE)
    code, _, err = run(["image", "create", "out/flash.bin", "--table", "t.csv", "--flash-size",
                        "4MB", "--bootloader", str(chip_images["bootloader"]),
                        "--app", f"factory={chip_images['c3']}"], capsys)
    assert code == 0, err
    assert ("Wrote in 'out': flash_args, flasher_args.json, "
            "partition_table/partition-table.bin, ota_data_initial.bin") in err
    for name in ("flash_args", "flasher_args.json", "partition_table/partition-table.bin",
                 "ota_data_initial.bin"):
        assert (tmp_path / "out" / name).is_file(), name
    command = next(line for line in err.splitlines() if line.startswith("Flash with: "))
    assert command == ("Flash with: cd out && python -m esptool --chip esp32c3 write-flash "
                       "@flash_args")
    # Run the printed command for real (merge-bin instead of write-flash: no device here),
    # from the directory the user ran image create in: the merged bytes are the image's.
    cd, _, esptool = command.removeprefix("Flash with: ").partition(" && ")
    argv = shlex.split(esptool)
    assert argv[:3] == ["python", "-m", "esptool"]
    argv = [sys.executable, *argv[1:-2], "merge-bin", "-o", "merged.bin", "--pad-to-size", "4MB",
            argv[-1]]
    subprocess.run(argv, cwd=tmp_path / shlex.split(cd)[1], check=True, capture_output=True)
    merged = (tmp_path / "out" / "merged.bin").read_bytes()
    image = (tmp_path / "out" / "flash.bin").read_bytes()
    # esptool rewrites the bootloader's flash-mode header bytes; from the table on, every
    # byte (table, otadata, app) must be the image's.
    assert len(merged) == len(image) and merged[0x8000:] == image[0x8000:]


# --- --help: every option and positional described, chips listed, exit codes -----------------

COMMANDS = [["gen"], ["show"], ["check"], ["map"], ["at", "gen"], ["at", "check"],
            ["image", "info"], ["image", "read"], ["image", "write"], ["image", "erase"],
            ["image", "inspect"], ["image", "create"], ["image", "check"],
            ["image", "set-boot"], ["image", "otadata"], ["diff"], ["new"], ["resize"],
            ["data", "build"]]


def _options_without_help(text: str) -> list[str]:
    """Option or positional entries of an argparse-style help that have no description."""
    import re

    lines = text.splitlines()
    bare = []
    in_arguments = False  # past the description: in "positional arguments:", "options:", ...
    for i, line in enumerate(lines):
        if re.match(r"^\S.*:$", line):
            in_arguments = line != "exit status:"
            continue
        if not in_arguments or not re.match(r"^  (-\S|[A-Z][A-Z_]*(  |$))", line):
            continue
        term = line[2:]
        if re.search(r"\S {2,}\S", term):
            continue  # the description follows on the same line
        if i + 1 < len(lines) and lines[i + 1].startswith(" " * 8) and lines[i + 1].strip():
            continue  # ... or on the next, indented
        bare.append(term)
    return bare


@pytest.mark.parametrize("command", COMMANDS, ids=["-".join(c) for c in COMMANDS])
def test_help_is_complete(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(command, capsys)
    assert "options:" in text
    assert _options_without_help(text) == []
    assert "exit status:" in text
    assert "\n  0  " in text and "\n  2  " in text
    if "--chip" in text:
        from partkit.common.chips import chip_names

        assert all(chip in text for chip in chip_names()), "--chip without the valid chips"



# --- section 6: the pre-commit hook -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BROKEN = TABLE + "storage, data, spiffs, 0x100000, 0x10000\n"  # overlaps factory


def _hook() -> dict[str, object]:
    import yaml  # a pre-commit dependency, installed with the [test] extra

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return next(h for h in hooks if h["id"] == "partkit-check-csv")


def _run_hook(files: list[Path], cwd: Path, args: list[str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """The hook's command line as pre-commit builds it: entry + args + file names, with
    `partkit` the console script installed in this environment."""
    hook = _hook()
    entry = shlex.split(str(hook["entry"]))
    assert entry[0] == "partkit"
    script = shutil.which("partkit", path=str(Path(sys.executable).parent))
    assert script is not None, "the partkit console script is not installed"
    argv = [script, *entry[1:], *(args if args is not None else hook.get("args", [])),
            *(str(f.relative_to(cwd)) for f in files)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_pre_commit_hook_selects_partition_csvs() -> None:
    import re

    hook = _hook()
    assert hook["language"] == "python" and hook.get("pass_filenames", True)
    files = re.compile(str(hook["files"]))
    for name in ("partitions.csv", "main/partitions_two_ota.csv", "partition_table.csv"):
        assert files.search(name), name
    for name in ("data.csv", "partitions.c", "docs/partitions.csv.md"):
        assert not files.search(name), name


def test_pre_commit_hook_entry_on_good_and_broken_tables(tmp_path: Path) -> None:
    good = write(tmp_path / "partitions.csv", TABLE)
    other = write(tmp_path / "partitions_ota.csv", "nvs, data, nvs, , 0x6000\n"
                  "ota_0, app, ota_0, , 1M\nota_1, app, ota_1, , 1M\notadata, data, ota, , 8K\n")
    bad = write(tmp_path / "partitions_bad.csv", BROKEN)
    result = _run_hook([good, other], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # quiet when all is well
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run_hook([good, bad, other], tmp_path)
    assert result.returncode != 0
    assert "partitions_bad.csv:4:1: error: partition 'storage' at 0x100000 overlaps" in (
        result.stderr)
    assert "partitions.csv:" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    # args: [--strict] turns warnings into failures.
    long_name = write(tmp_path / "partitions_long.csv", TABLE + "n" * 17 + ", data, fat, , 64K\n")
    assert _run_hook([long_name], tmp_path).returncode == 0
    strict = _run_hook([long_name], tmp_path, ["--strict"])
    assert strict.returncode != 0 and "partitions_long.csv:4:1: error:" in strict.stderr


def test_pre_commit_try_repo(tmp_path: Path) -> None:
    """The real pre-commit installs this repository as a hook and runs it."""
    if shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("pre-commit is not installed (pip install -e '.[test]')")
    work = tmp_path / "work"
    work.mkdir()
    write(work / "partitions.csv", TABLE)
    write(work / "partitions_bad.csv", BROKEN)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=work, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=work, check=True, env=env)
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "partkit-check-csv"]
    result = subprocess.run([*pre_commit, "--files", "partitions.csv"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
    result = subprocess.run([*pre_commit, "--all-files"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "partitions_bad.csv:4:1: error: partition 'storage'" in result.stdout


# --- "cannot write undo journal" points at -o COPY ---------------------------------------------


def _freeze(directory: Path) -> None:
    """Make ``directory`` refuse new files: chmod for users, the immutable flag for root."""
    directory.chmod(0o555)
    probe = directory / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return
    probe.unlink()
    subprocess.run(["chattr", "+i", str(directory)], check=True)


def _thaw(directory: Path) -> None:
    subprocess.run(["chattr", "-i", str(directory)], check=False, capture_output=True)
    directory.chmod(0o755)


def test_undo_journal_failure_suggests_a_copy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    csv = write(tmp_path / "t.csv", TABLE)
    image = folder / "flash.bin"
    assert run(["image", "create", str(image), "--table", str(csv), "--flash-size", "2MB",
                "--no-flash-args"], capsys)[0] == 0
    data = write(tmp_path / "nvs.bin", "x" * 100)
    before = image.read_bytes()
    _freeze(folder)
    try:
        code, _, err = run(["image", "write", str(image), "-n", "nvs", str(data)], capsys)
    finally:
        _thaw(folder)
    assert code == 2
    assert "error: cannot write undo journal" in err and "-o COPY" in err
    assert image.read_bytes() == before
    # ... and the suggestion works: the copy is written, the image left alone.
    _freeze(folder)
    try:
        copy = tmp_path / "copy.bin"
        code, _, err = run(["image", "write", str(image), "-n", "nvs", str(data), "-o", str(copy)],
                           capsys)
    finally:
        _thaw(folder)
    assert code == 0, err
    assert image.read_bytes() == before and copy.read_bytes()[0x9000:0x9064] == b"x" * 100
