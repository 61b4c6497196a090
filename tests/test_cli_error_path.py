"""One error path (issue 25): every command's error is reported once by ``partkit.cli.main``
with its exit code, and the commands that answer differently (``at --json``, ``arduino
size``, ``parttool -q`` and parttool's Ctrl-C) keep their contracts as declared values.
In-process calls: the point is the reporting, not the process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from partkit.cli import main
from support.cli import run

CSV = """\
nvs,      data, nvs,     0x9000,  0x6000,
factory,  app,  factory, 0x10000, 0x100000,
storage,  data, spiffs,  0x110000, 0x10000,
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """A valid table, a flash image holding it, and paths that do not exist."""
    table = tmp_path / "t.csv"
    table.write_text(CSV)
    binary = tmp_path / "t.bin"
    assert main(["gen", "-q", str(table), str(binary)]) == 0
    raw = binary.read_bytes()
    image = tmp_path / "flash.img"
    image.write_bytes(b"\xff" * 0x8000 + raw + b"\xff" * (0x200000 - 0x8000 - len(raw)))
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x5a" * 0x20000)  # larger than 'storage' (0x10000)
    (tmp_path / "src").mkdir()
    return {"table": str(table), "image": str(image), "big": str(big),
            "dir": str(tmp_path), "src": str(tmp_path / "src"),
            "missing": str(tmp_path / "missing.csv"), "out": str(tmp_path / "out.bin")}


# argv (with {placeholders}), exit code, a text of the one error line
ERRORS = [
    (["at", "gen", "{missing}", "--primary", "{table}"], 2, "no such file"),
    (["at", "check", "{missing}", "--primary", "{table}"], 2, "no such file"),
    (["data", "build", "{table}", "--partition", "nope", "--from", "{src}", "-o", "{out}"],
     2, "nope"),
    (["arduino", "check", "{missing}"], 2, "not a directory"),
    (["arduino", "install", "--core-dir", "{dir}"], 2, "no platform.txt"),
    (["buildsys", "bootloader-offset", "esp33"], 2, "unknown chip 'esp33'"),
    (["buildsys", "erased-file", "{out}", "lots"], 2, "lots"),
    (["diff", "{missing}", "{table}"], 2, "no such file"),
    (["new", "--flash-size", "3MB"], 2, "know only"),
    (["resize", "{table}"], 2, "nothing to do"),
    (["parttool", "--image", "{missing}", "read_partition", "-n", "nvs", "--output", "{out}"],
     2, "no such file"),
    (["parttool", "--image", "{image}", "write_partition", "-n", "storage", "--input", "{big}"],
     1, "storage"),
]


@pytest.mark.parametrize(("argv", "code", "text"), ERRORS,
                         ids=[" ".join(a[:2]) + f" {c}" for a, c, _ in ERRORS])
def test_an_error_is_reported_once_with_its_exit_code(
        argv: list[str], code: int, text: str, files: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    got, out, err = run(capsys, *(a.format(**files) for a in argv))
    assert got == code, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and text in errors[0], err
    assert out == ""


def test_at_json_answers_the_error_then_exits_with_its_code(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "at", "gen", files["missing"], "--primary", files["table"],
                         "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["secondary"] == files["missing"]
    assert [d["message"] for d in doc["diagnostics"]] == ["no such file"]
    assert err.count("error: no such file") == 1  # stderr still shows it, once


def test_arduino_size_answers_bad_input_as_json_with_exit_0(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # arduino-cli reads only the JSON of an exit 0: the compile fails with partkit's message
    code, out, err = run(capsys, "arduino", "size", files["missing"])
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["severity"] == "error" and doc["error"] == "not a directory"
    assert "not a directory" in doc["output"]


@pytest.mark.parametrize("code", [1, 2])
def test_parttool_quiet_is_the_exit_status_only(
        code: int, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = next(a for a, c, _ in ERRORS if a[0] == "parttool" and c == code)
    got, out, err = run(capsys, "parttool", "-q", *(a.format(**files) for a in argv[1:]))
    assert (got, out, err) == (code, "", "")


@pytest.mark.parametrize(("state", "line"), [
    ("0x110000..0x120000 may be erased or partially written",
     "partkit: interrupted; 0x110000..0x120000 may be erased or partially written\n"),
    (None, "partkit: interrupted\n"),  # outside a flash step parttool makes no claim
])
def test_parttool_ctrl_c_is_mains_line(
        state: str | None, line: str, files: dict[str, str],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from partkit.parttool import ParttoolTarget

    def cut(*_: object) -> None:
        raise KeyboardInterrupt(*(() if state is None else (state,)))

    monkeypatch.setattr(ParttoolTarget, "write_partition", cut)
    argv = ["--image", files["image"], "write_partition", "-n", "storage", "--input",
            files["table"]]
    assert run(capsys, "parttool", *argv) == (130, "", line)
    assert run(capsys, "parttool", "-q", *argv) == (130, "", "")


def test_at_and_arduino_help_list_their_sub_commands(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    for command, words in (("at", ("gen", "check")), ("data", ("build",)),
                           ("buildsys", ("partition-info", "erased-file")),
                           ("arduino", ("check", "size", "table", "install"))):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "exit status:" in out
        assert all(f"\n  {w} " in out for w in words), out
        code, _, err = run(capsys, command, "frobnicate")
        assert code == 2 and f"partkit {command}: error: unknown command 'frobnicate'" in err


def test_budget_options_are_one_definition(capsys: pytest.CaptureFixture[str]) -> None:
    def budget_help(*argv: str) -> list[str]:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = capsys.readouterr().out
        # each entry of the options list, with its help lines
        return re.findall(r"^  --(?:warn|fail)-free .*(?:\n {8,}\S.*)*", text, re.M)

    entries = budget_help("check")
    assert len(entries) == 2 and "less free space" in entries[0]
    assert entries == budget_help("arduino", "check") == budget_help("arduino", "size")


def test_a_percent_in_a_metavar_survives_intermixed_parsing(
        capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's intermixed parsing reuses its formatted usage as a %-template: the
    # budgets' PCT%|BYTES crashed 'arduino check --help' and every usage error (ValueError)
    with pytest.raises(SystemExit) as exc:
        main(["arduino", "check", "build", "--warn-free"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "[--warn-free PCT%|BYTES]" in err and "expected one argument" in err


# --- parse_args and the '--' that ends --extra-partition-subtypes (brk3) --------------------

CUSTOM_CSV = CSV.replace("storage,  data, spiffs,", "storage,  data, my_sub,")


@pytest.mark.parametrize("sub", [
    ["data", "build", "--partition", "nvs", "--from", "{nvs}", "-o", "{out}"],
    ["image", "info"],
])
def test_the_double_dash_ends_the_extra_subtypes_before_the_table(
        sub: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # what every --extra-partition-subtypes help says: "end the list with -- when the table
    # follows"; the placeholders parse_args put after '--' were taken as more subtypes
    table = tmp_path / "t.csv"
    table.write_text(CUSTOM_CSV)
    target = str(table)
    if sub[0] == "image":
        image = tmp_path / "flash.img"
        assert main(["image", "create", "--table", str(table), "--flash-size", "2MB",
                     "-o", str(image), "--no-flash-args", "--extra-partition-subtypes",
                     "data,my_sub,0x40"]) == 0
        target = str(image)
    nvs = tmp_path / "nvs.csv"
    nvs.write_text("key,type,encoding,value\nns,namespace,,\nk,data,u8,1\n")
    files = {"nvs": str(nvs), "out": str(tmp_path / "nvs.bin")}
    argv = [a.format(**files) for a in sub]
    code, _, err = run(capsys, *argv, "--extra-partition-subtypes", "data,my_sub,0x40", "--",
                       target)
    assert code == 0, err
    if sub[0] == "data":
        assert (tmp_path / "nvs.bin").stat().st_size == 0x6000


def test_a_table_taken_as_a_subtype_gets_the_double_dash_hint(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # the hint looked at the argv of argparse's second (positional) pass only
    with pytest.raises(SystemExit) as exc:
        main(["data", "build", "--partition", "nvs", "--from", files["src"], "-o", files["out"],
              "--extra-partition-subtypes", "data,my_sub,0x40", files["table"]])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "required: table" in err and "end the list with --" in err, err


def test_a_word_too_many_after_the_double_dash_is_named_as_typed(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # it was named as parse_args' placeholder: a NUL and its index
    with pytest.raises(SystemExit) as exc:
        main(["buildsys", "erased-file", "--", files["out"], "8K", "extra"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: unrecognized arguments: extra\n" in err and "\0" not in err, err
    with pytest.raises(SystemExit):  # a second '--' is a word too
        main(["buildsys", "erased-file", "--", files["out"], "8K", "--"])
    err = capsys.readouterr().err
    assert "error: unrecognized arguments: --\n" in err and "\0" not in err, err


def test_arduino_size_help_says_bad_input_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    # it said "2  bad input or usage: an unreadable file, ..." (EXIT_PLAIN), which arduino
    # size never does: bad input is its JSON answer with exit 0
    with pytest.raises(SystemExit):
        main(["arduino", "size", "--help"])
    status = capsys.readouterr().out.partition("exit status:")[2]
    assert "0  the JSON answer, also for bad input" in status
    assert "2  usage" in status and "unreadable file" not in status


@pytest.mark.parametrize("before", [
    ["parttool", "-q", "--image", "{missing}", "read_partition", "-n", "nvs", "--output",
     "{out}"],  # quiet: would print nothing at all
    ["device", "--port", "socket://127.0.0.1:9", "write", "-n", "nvs"],  # no claim
])
def test_a_commands_reporting_does_not_outlive_it(
        before: list[str], files: dict[str, str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # in one process, a Ctrl-C before the next command has started (while its modules load)
    # is reported as main's default, whatever the previous command declared
    assert run(capsys, *(a.format(**files) for a in before))[0] == 2
    import partkit.common.fileio

    class Interrupted:
        def __enter__(self) -> None:
            raise KeyboardInterrupt

        def __exit__(self, *_: object) -> None:
            pass

    monkeypatch.setattr(partkit.common.fileio, "command_scope", Interrupted)
    assert run(capsys, "image", "info", files["image"]) == (
        130, "", "partkit: interrupted; outputs are only replaced whole: each is complete or "
        "as it was\n")


@pytest.mark.parametrize(("argv", "names"), [
    (["at", "gen"], "AT_CUSTOMIZE, --primary"),
    (["data", "build", "--from", "src", "-o", "out.bin"], "table, --partition"),
    (["data", "build", "t.csv", "--partition", "nvs"], "--from, -o/--output"),
])
def test_a_usage_error_names_every_missing_argument(
        argv: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's intermixed parsing checks the options in one pass and the positionals in
    # another: 'partkit at gen' named only --primary (parse_args named both)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: the following arguments are required: {names}\n" in err, err
