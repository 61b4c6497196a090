"""`partkit gen` / `partkit show` behaviour beyond the reference: diagnostics, atomic output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from partkit.cli import main

TWO_OTA = """\
# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def write(tmp_path: Path, text: str, name: str = "partitions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_error_has_path_line_column_and_hint(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factroy, , 1M\n")
    rc, _, err = run(["gen", str(csv), str(tmp_path / "o.bin")], capsys)
    assert rc == 2
    first = err.splitlines()[2]  # after the two status lines
    assert first.startswith(f"{csv}:2:15: error: Value 'factroy' is not valid. Known keywords: "
                            "factory, test, ota_0")
    assert "hint: did you mean 'factory'?" in err
    assert not (tmp_path / "o.bin").exists()


def test_all_independent_errors_in_one_run(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "a, data, nvs, , 0x3000, bogus\nb, dta, nvs, , 4K\n"
                          "c, data, nvs, , \nd, app, factory, 0x18000, 1M\n")
    rc, _, err = run(["gen", str(csv), str(tmp_path / "o.bin")], capsys)
    assert rc == 2
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert [e.split(":")[1] for e in errors] == ["1", "2", "3"]  # layout waits for clean rows
    assert "unknown flag 'bogus'" in errors[0]
    assert "did you mean 'data'?" in err
    assert "Size field can't be empty" in errors[2]


def test_verification_errors_all_reported_with_lines(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "nvs, data, nvs, 0x9800, 0x2000\nf, app, factory, 0x18000, 1M\n"
                          "nvs, data, 0x99, 0x200000, 4K\n")
    rc, _, err = run(["gen", str(csv), str(tmp_path / "o.bin")], capsys)
    assert rc == 2
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert any(e.startswith(f"{csv}:1:") and "not aligned to 0x1000" in e for e in errors)
    assert any(e.startswith(f"{csv}:1:") and "must be flagged 'readonly'" in e for e in errors)
    assert any(e.startswith(f"{csv}:2:") and "not aligned to 0x10000" in e for e in errors)
    assert any(e.startswith(f"{csv}:3:") and "used more than once" in e for e in errors)
    assert f"{csv}:1:1: note: 'nvs' first defined here" in err


def test_binary_errors_name_entry_and_byte(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.bin"
    assert main(["gen", "-q", str(write(tmp_path, TWO_OTA)), str(good)]) == 0
    data = bytearray(good.read_bytes())
    data[64:66] = b"OH"
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    rc, _, err = run(["gen", str(bad)], capsys)
    assert rc == 2
    assert f"{bad}: entry 3 (byte 0x40): error: invalid magic bytes 4f 48" in err


def test_warnings_go_to_stderr_and_strict_fails(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "ota_0, app, ota_1, , 1M\n")
    rc, out, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert rc == 0 and out == ""
    assert f"{csv}:1:1: warning: partition has name 'ota_0' which is a partition subtype" in err
    rc, _, err = run(["gen", "-q", "--strict", str(csv), str(tmp_path / "s.bin")], capsys)
    assert rc == 2 and "error:" in err and "[--strict]" in err
    assert not (tmp_path / "s.bin").exists()


def test_output_parent_created_and_atomic(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, TWO_OTA)
    out = tmp_path / "deep" / "er" / "pt.bin"
    assert main(["gen", "-q", str(csv), str(out)]) == 0
    assert len(out.read_bytes()) == 0xC00
    assert [p.name for p in out.parent.iterdir()] == ["pt.bin"]  # no temp files left


def test_failed_run_leaves_previous_output_untouched(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pt.bin"
    assert main(["gen", "-q", str(write(tmp_path, TWO_OTA)), str(out)]) == 0
    before = out.read_bytes()
    broken = write(tmp_path, TWO_OTA + "oops, data, nvs, 0x9000, 4K\n", "broken.csv")
    assert main(["gen", "-q", str(broken), str(out)]) == 2
    assert out.read_bytes() == before


def test_interrupted_write_leaves_no_truncated_table(tmp_path: Path) -> None:
    """Kill the writer between writing the temp file and the rename: the old file stays."""
    csv = write(tmp_path, TWO_OTA)
    out = tmp_path / "pt.bin"
    out.write_bytes(b"old table")
    script = (
        "import os, sys, partkit.common.fileio as f\n"
        "os.replace = lambda *a: os.kill(os.getpid(), 9)\n"
        "from partkit.cli import main\n"
        f"main(['gen', '-q', {str(csv)!r}, {str(out)!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    assert out.read_bytes() == b"old table"


def test_unwritable_output_is_a_clean_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run(["gen", "-q", str(write(tmp_path, TWO_OTA)), str(blocker / "pt.bin")], capsys)
    assert rc == 2 and "error: cannot write" in err


def test_missing_input_and_usage_errors(tmp_path: Path, capsys) -> None:
    rc, _, err = run(["gen", str(tmp_path / "nope.csv")], capsys)
    assert rc == 2 and "nope.csv: error: no such file" in err
    for argv in (["gen"], ["gen", "--offset", "zz", "x.csv"], ["gen", "--flash-size", "3MB", "x"],
                 ["gen", "--secure", "V2", "x.csv"], ["gen", "--bogus", "x.csv"],
                 ["gen", "--chip", "esp33", "x.csv"]):
        rc, _, err = run(argv, capsys)
        assert rc == 2 and "error:" in err, argv
    rc, _, err = run(["gem"], capsys)
    assert rc == 2 and "did you mean 'gen'?" in err


def test_chip_sets_bootloader_offset(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "bootloader, bootloader, primary, N/A, N/A\n" + TWO_OTA)
    rc, _, err = run(["gen", "-q", str(csv), str(tmp_path / "o.bin")], capsys)
    assert rc == 2 and "hint: pass --chip" in err
    for chip, offset, size in (("esp32", 0x1000, 0x7000), ("esp32c3", 0, 0x8000),
                               ("esp32c5", 0x2000, 0x6000)):
        assert main(["gen", "-q", "--chip", chip, str(csv), str(tmp_path / f"{chip}.bin")]) == 0
        data = (tmp_path / f"{chip}.bin").read_bytes()
        assert int.from_bytes(data[4:8], "little") == offset
        assert int.from_bytes(data[8:12], "little") == size


def test_show_summary_json_csv(tmp_path: Path, capsys) -> None:
    csv = write(tmp_path, "nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x20000, 1M\n")
    rc, out, _ = run(["show", str(csv), "--chip", "esp32c3", "--flash-size", "4MB"], capsys)
    assert rc == 0
    assert "(gap)" in out and "0xf000" in out and "0x20000" in out  # 0xf000..0x20000 unused
    assert "(free to flash end)" in out and "0x120000" in out
    rc, out, _ = run(["show", str(csv), "--json", "--flash-size", "4MB"], capsys)
    doc = json.loads(out)
    assert [p["name"] for p in doc["partitions"]] == ["nvs", "factory"]
    assert doc["gaps"] == [{"offset": 0xF000, "size": 0x11000}]
    assert doc["free_at_end"] == 0x400000 - 0x120000
    rc, out, _ = run(["show", str(csv), "--csv"], capsys)
    assert out.splitlines()[2] == "nvs,data,nvs,0x9000,24K,"


def test_python_m_smoke(tmp_path: Path) -> None:
    csv = write(tmp_path, TWO_OTA)
    proc = subprocess.run([sys.executable, "-m", "partkit", "gen", str(csv)],
                          capture_output=True, env=dict(os.environ))
    assert proc.returncode == 0
    assert proc.stderr == b"Parsing CSV input...\nVerifying table...\n"
    import hashlib

    assert hashlib.md5(proc.stdout).hexdigest() == "9f94bf1e89f37d80f4310d5af19a6e59"
