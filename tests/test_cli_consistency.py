"""One CLI language (issue 24, item 10): output files named the same way, usage errors
with a hint, no binary on a terminal, refused budgets that say nothing, hints that name
every slot, warnings kept next to errors, a finding reported once."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from support.cli import run

TWO_OTA_CSV = """\
nvs,     data, nvs,   0x9000,  0x5000
otadata, data, ota,   0xe000,  0x2000
app0,    app,  ota_0, 0x10000, 0x100000
app1,    app,  ota_1, 0x110000, 0x100000
"""


def test_image_read_takes_the_output_as_write_takes_its_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "flash.bin"
    assert run(capsys, "image", "create", str(image), "--table", "builtin:two_ota",
               "--flash-size", "4MB", "--no-flash-args")[0] == 0
    out = tmp_path / "nvs.bin"
    assert run(capsys, "image", "read", str(image), "-n", "nvs", str(out))[0] == 0
    assert out.read_bytes() == b"\xff" * 0x4000
    assert run(capsys, "image", "read", str(image), "-n", "nvs", "-o", str(out))[0] == 0
    code, _, err = run(capsys, "image", "read", str(image), "-n", "nvs")
    assert code == 2 and "no output file" in err and "-o OUTPUT" in err
    code, _, err = run(capsys, "image", "read", str(image), "-n", "nvs", "-o", str(out),
                       str(out))
    assert code == 2 and "give the output once" in err


def test_usage_errors_have_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["show", "--flash-sze", "4MB", "t.csv"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "hint: did you mean --flash-size?" in err
    with pytest.raises(SystemExit):
        main(["show", "--json", "--csv", "t.csv"])
    assert "hint: 'partkit show --help' lists every option" in capsys.readouterr().err


def test_gen_does_not_write_binary_to_a_terminal(tmp_path: Path) -> None:
    main_fd, tty_fd = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "partkit", "gen", "--builtin", "two_ota"],
                           stdout=tty_fd, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(tty_fd)
        os.close(main_fd)
    assert r.returncode == 2 and "not writing a binary table to a terminal" in r.stderr
    piped = subprocess.run([sys.executable, "-m", "partkit", "gen", "--builtin", "two_ota"],
                           capture_output=True, timeout=60)
    assert piped.returncode == 0 and piped.stdout[:2] == b"\xaa\x50"


def test_writing_an_nvs_image_into_an_app_slot_warns(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("esp_idf_nvs_partition_gen")
    table = tmp_path / "t.csv"
    table.write_text(TWO_OTA_CSV)
    (tmp_path / "nvs.csv").write_text("key,type,encoding,value\nns,namespace,,\nx,data,u8,1\n")
    nvs = tmp_path / "nvs.bin"
    assert run(capsys, "data", "build", str(table), "--partition", "nvs", "--from",
               str(tmp_path / "nvs.csv"), "-o", str(nvs))[0] == 0
    image = tmp_path / "flash.bin"
    assert run(capsys, "image", "create", str(image), "--table", str(table), "--flash-size",
               "4MB", "--no-flash-args")[0] == 0
    code, _, err = run(capsys, "image", "write", str(image), "-n", "app1", str(nvs))
    assert code == 0
    assert f"warning: '{nvs}' holds nvs, not an app image" in err, err
    code, _, err = run(capsys, "image", "write", str(image), "-n", "nvs", str(nvs))
    assert code == 0 and "warning" not in err


def test_budgets_need_a_unit_and_the_right_order(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "t.csv"
    table.write_text(TWO_OTA_CSV)
    code, _, err = run(capsys, "check", str(table), "--flash-size", "4MB", "--warn-free", "30")
    assert code == 2 and "'30' has no unit" in err and "30%" in err
    code, _, err = run(capsys, "check", str(table), "--flash-size", "4MB", "--warn-free", "5%",
                       "--fail-free", "10%")
    assert code == 2 and "--warn-free 5% is less than --fail-free 10%" in err


def test_overflow_hint_names_every_slot_that_must_grow(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "t.csv"
    table.write_text(TWO_OTA_CSV)
    app = tmp_path / "app.bin"
    app.write_bytes(b"\xee" * 0x101000)
    code, _, err = run(capsys, "check", str(table), "--app", str(app))
    assert code == 1
    assert "'app0' and 'app1' must each hold the app: make each at least 0x101000" in err, err


def test_warnings_are_kept_next_to_errors_and_strict_reports_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "t.csv"
    table.write_text("nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 1M\n"
                     "app, data, nvs, , 0x4000\nx, data, nvs, , 0x2000\n")
    for argv in (["gen", "-q", str(table), str(tmp_path / "o.bin")],
                 ["check", str(table), "--flash-size", "4MB"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert ":4:1: error: NVS partition 'x'" in err
        assert ":3:1: warning: partition has name 'app'" in err, err
    long = tmp_path / "long.csv"
    long.write_text("nvs, data, nvs, 0x9000, 0x6000\n"
                    "factory_with_a_long_name, app, factory, 0x10000, 1M\n")
    code, out, err = run(capsys, "check", str(long), "--flash-size", "4MB", "--strict")
    assert code == 1 and err.count("factory_with_a_long_name' is 24 bytes") == 1, err
    assert "1 error, 0 warnings" in out


@pytest.mark.firmware
def test_check_bootloader_takes_the_chip_from_its_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import build_bootloader

    bl = build_bootloader(tmp_path, name="bl.bin")
    code, out, err = run(capsys, "check", "builtin:two_ota", "--bootloader", str(bl))
    assert code == 0, err
    assert "needs the bootloader's flash offset" not in err
    assert "Bootloader binary size" in out
