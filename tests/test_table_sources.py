"""``show`` and ``check`` read the table out of a flash image or dump (at --offset) as
``diff`` does, and every table argument takes ``-`` for stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main


def partkit(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partkit", *args], capture_output=True,
                          input=None if stdin is None else stdin.decode("latin-1"),
                          text=True, encoding="latin-1")


@pytest.mark.firmware
def test_show_and_check_read_a_merged_image(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import build_app, build_bootloader

    app, bl = build_app(tmp_path, 2000, name="app.bin"), build_bootloader(tmp_path, name="bl.bin")
    table = tmp_path / "pt.bin"
    assert main(["gen", "-q", "builtin:two_ota", str(table)]) == 0
    merged = tmp_path / "merged.bin"
    subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin", "-o",
                    str(merged), "--flash-size", "4MB", "0x0", str(bl), "0x8000", str(table),
                    "0x110000", str(app)], check=True, capture_output=True)
    capsys.readouterr()
    assert main(["show", str(merged), "--no-map"]) == 0
    out, err = capsys.readouterr()
    assert "not a partition table" not in err, err
    assert "ota_1" in out and "0x210000" in out
    # Blank otadata: factory first, which is erased; the bootloader falls back to ota_0.
    assert "boot: no valid otadata record: factory first, but 'factory' holds no loadable " \
        "app: the bootloader falls back to 'ota_0'" in out, out
    assert main(["check", str(merged), "--app", str(app), "--flash-size", "4MB"]) == 0
    out = capsys.readouterr().out
    assert f"{merged}@0x8000" in out
    # The table elsewhere: --offset says where, a wrong one says what was found.
    assert main(["show", str(merged), "--offset", "0x9000"]) == 2
    assert "no partition table at 0x9000" in capsys.readouterr().err


def test_tables_are_not_mistaken_for_images(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "pt.bin"
    assert main(["gen", "-q", "builtin:two_ota", str(table)]) == 0
    sector = tmp_path / "sector.bin"  # the whole 4 KiB sector, as a signed table has it
    sector.write_bytes(table.read_bytes().ljust(0x1000, b"\xff"))
    wide = tmp_path / "utf16.csv"  # UTF-16 text has NUL bytes and is larger than 0xC00
    wide.write_text("# " + "x" * 2000 + "\nnvs, data, nvs, 0x9000, 0x6000\n", encoding="utf-16")
    for path in (sector, wide):
        capsys.readouterr()
        assert main(["show", str(path), "--no-map"]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "nvs" in out and "boot:" not in out


def test_stdin_for_show_check_and_diff(tmp_path: Path) -> None:
    table = tmp_path / "pt.bin"
    assert main(["gen", "-q", "builtin:two_ota", str(table)]) == 0
    data = table.read_bytes()
    r = partkit("show", "-", "--no-map", stdin=data)
    assert r.returncode == 0 and "ota_1" in r.stdout, r.stderr
    r = partkit("check", "-", "--flash-size", "4MB", stdin=data)
    assert r.returncode == 0, r.stderr
    r = partkit("diff", "-", str(table), stdin=data)
    assert r.returncode == 0 and "SAFE" in r.stdout, r.stdout + r.stderr
    csv = b"nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 1M\n"
    r = partkit("show", "-", "--no-map", stdin=csv)
    assert r.returncode == 0 and "factory" in r.stdout, r.stderr
