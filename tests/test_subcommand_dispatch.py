"""``partkit image`` and ``partkit device`` on the one dispatcher and the one error path
(issue 25): a wrong or missing sub-command is a usage error with a did-you-mean, and an
error from any sub-command reaches the user exactly once, printed by ``partkit.cli.main``.

Device cases that need a chip run against esp32-mock-bootloader (esptool's real protocol).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from partkit.cli import main
from support.mock_device import MockDevice

ROOT = Path(__file__).resolve().parents[1]
TABLE_CSV = ROOT / "tests" / "data" / "device" / "partitions.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- a wrong or missing sub-command -----------------------------------------------------------


@pytest.mark.parametrize(("argv", "problem"), [
    (["image", "raed", "flash.bin", "-n", "nvs"], "unknown command 'raed' (did you mean 'read'?)"),
    (["image", "SET-BOOT", "flash.bin"], "did you mean 'set-boot'?"),
    (["image", "frobnicate"], "unknown command 'frobnicate'\n"),
    (["image", "--json", "info"], "no command given"),  # the word comes first in image
    # device: options may come first, their values are no command words
    (["device", "--port", "socket://127.0.0.1:9", "raed", "-n", "nvs", "-o", "x"],
     "unknown command 'raed' (did you mean 'read'?)"),
    (["device", "--port", "socket://127.0.0.1:9", "-n", "nvs", "otadat"],
     "unknown command 'otadat' (did you mean 'otadata'?)"),
    (["device", "--port", "show"], "no command given"),  # 'show' is --port's value
    (["device", "--port", "socket://127.0.0.1:9"], "no command given"),
])
def test_wrong_or_missing_subcommand_is_a_usage_error(
        argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    first, _, usage = err.partition("\n")
    assert first.startswith(f"partkit {argv[0]}: error: ")
    assert problem in first + "\n"
    assert usage.startswith(f"usage: partkit {argv[0]} ")
    assert "commands:" in usage and "  read " in usage and "  set-boot " in usage


@pytest.mark.parametrize("command", ["image", "device"])
def test_no_arguments_prints_the_usage_and_exits_2(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, command)
    assert code == 2 and out == ""
    assert err.startswith(f"usage: partkit {command} ")
    code, out, err = run(capsys, command, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: partkit {command} ")
    assert "otadata" in out


@pytest.mark.parametrize("argv", [
    ["device", "--port", "socket://127.0.0.1:9", "--help"],  # after the leading options
    ["device", "-q", "-p", "socket://127.0.0.1:9", "-h"],
    ["image", "--json", "-h"],
])
def test_help_without_a_command_word_is_the_usage(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: partkit {argv[0]} ") and "commands:" in out


def test_a_device_option_value_before_the_word_is_no_command_word(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # '-n otadata write FILE': write into the otadata partition, not the 'otadata' command
    missing = tmp_path / "absent.bin"
    code, _, err = run(capsys, "device", "--port", "socket://127.0.0.1:9", "-n", "otadata",
                       "write", str(missing))
    assert code == 2
    _once(err, str(missing))  # write's own check, before connecting


# --- '--' ---------------------------------------------------------------------------------------


def test_dashes_end_the_extra_subtypes_list(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # as the option's help says: end the list with -- when IMAGE / INPUT follows
    image = tmp_path / "flash.bin"
    assert run(capsys, "image", "create", str(image), "--table", str(TABLE_CSV),
               "--flash-size", "4MB")[0] == 0
    code, out, err = run(capsys, "image", "info", "--extra-partition-subtypes",
                         "data,calib,0x40", "--", str(image))
    assert code == 0 and err == ""
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("calib ")] == [
        ["calib", "data", "calib"]]  # the subtype named by the list (else 0x40)
    # device: the input after -- is the input (checked before connecting to the port)
    missing = tmp_path / "absent.bin"
    code, _, err = run(capsys, "device", "--port", "socket://127.0.0.1:9", "write", "-n", "nvs",
                       "--extra-partition-subtypes", "data,calib,0x40", "--", str(missing))
    assert code == 2
    _once(err, str(missing))


@pytest.mark.parametrize(("argv", "unrecognized"), [
    (["device", "show", "--", "--port", "socket://127.0.0.1:9"], "--port socket://127.0.0.1:9"),
    (["image", "info", "flash.bin", "--", "a.bin", "b.bin"], "a.bin b.bin"),
    (["image", "info", "--extra-partition-subtypes", "data,calib,0x40", "--", "flash.bin",
      "extra"], "extra"),
])
def test_an_error_shows_the_words_after_dashes_as_given(
        argv: list[str], unrecognized: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert "\0" not in err  # no stand-in of the parser leaks into the message
    error = next(line for line in err.splitlines() if "error:" in line)
    assert "error: unrecognized arguments: " in error and error.endswith(unrecognized)
    assert "took your input file too" not in err  # the list was ended with --


# --- every error once -------------------------------------------------------------------------


def _once(err: str, text: str) -> None:
    assert err.count(text) == 1, err
    assert err.count("error:") == 1, err  # nothing else reported, nothing twice
    assert "Traceback" not in err


@pytest.mark.parametrize("sub", [["info"], ["read", "-n", "nvs", "out.bin"],
                                 ["write", "-n", "nvs", "in.bin"], ["erase", "-n", "nvs"],
                                 ["inspect"], ["check"], ["set-boot", "--slot", "ota_0"],
                                 ["otadata"], ["apply", "new.csv"]])
def test_an_image_error_is_reported_once(sub: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.bin"
    code, _, err = run(capsys, "image", sub[0], str(missing), *sub[1:])
    assert code == 2
    _once(err, str(missing))


def test_image_create_and_apply_errors_are_reported_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "image", "create", str(tmp_path / "f.bin"), "--table",
                       str(tmp_path / "absent.csv"), "--flash-size", "4MB")
    assert code == 2
    _once(err, "absent.csv")
    image = tmp_path / "flash.bin"
    assert run(capsys, "image", "create", str(image), "--table", str(TABLE_CSV),
               "--flash-size", "4MB")[0] == 0
    # a CheckFailed (exit 1) from deep in apply: NEW drops the nvs partition
    new = tmp_path / "new.csv"
    new.write_text("".join(line for line in TABLE_CSV.read_text().splitlines(keepends=True)
                           if not line.startswith("nvs,")))
    code, _, err = run(capsys, "image", "apply", str(image), str(new), "--running", "factory")
    assert code == 1
    _once(err, "refusing to apply an UNSAFE change")


def test_device_errors_before_connecting_are_reported_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = "socket://127.0.0.1:9"  # never contacted: each error comes first
    code, _, err = run(capsys, "device", "--port", port, "write", "-n", "nvs")
    assert code == 2
    _once(err, "no input file")
    code, _, err = run(capsys, "device", "--port", port, "write", "-n", "nvs",
                       str(tmp_path / "absent.bin"))
    assert code == 2
    _once(err, "absent.bin")
    code, _, err = run(capsys, "device", "--port", port, "apply", "--table", "t.csv", "n.csv")
    assert code == 2
    _once(err, "--table does not apply")


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    from partkit.flash.tablearea import load_table_file
    from partkit.table.codec import encode
    from partkit.table.options import table_options

    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    table = load_table_file(str(TABLE_CSV), table_options()).table
    device.write(tmp, 0x8000, encode(table, table_options()))
    yield device  # type: ignore[misc]
    device.stop()


def test_device_errors_on_the_chip_are_reported_once(
        mock: MockDevice, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "device", "--port", mock.url, "info", "-n", "storag")
    assert code == 2
    _once(err, "no partition named 'storag'")
    code, _, err = run(capsys, "device", "--port", mock.url, "set-boot", "--slot", "ota_9")
    assert code == 2
    _once(err, "no app slot 'ota_9'")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * 0x7000)  # nvs holds 0x4000
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "nvs", str(big))
    assert code == 1
    _once(err, "nvs")


def test_ctrl_c_outside_a_device_write_makes_no_claim(
        mock: MockDevice, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a bare Ctrl-C while reading: nothing was being written, so no word about outputs
    from partkit.device.session import Session

    def interrupted(self: object, offset: int, length: int, progress: object = None) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(Session, "read", interrupted)
    code, out, err = run(capsys, "device", "--port", mock.url, "show")
    assert code == 130
    assert out == ""
    assert err.splitlines()[-1] == "partkit: interrupted", err
    assert err.count("interrupted") == 1
