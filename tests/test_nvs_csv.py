"""NVS CSVs are checked by partkit before the generator runs: every problem at
``file:line:col``, all at once, in the CSV's terms (no struct.error, no 'invalid literal
for int()'); valid edge values still build, byte for byte as the generator makes them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main

pytest.importorskip("esp_idf_nvs_partition_gen", reason="esp-idf-nvs-partition-gen missing")

TABLE = """\
nvs,      data, nvs,      0x9000,  0x6000
nvs_keys, data, nvs_keys, 0xf000,  0x1000, encrypted
factory,  app,  factory,  0x10000, 1M
"""

BAD = """\
key,type,encoding,value
early,data,u8,1
ns,namespace,,
big,data,u8,300
low,data,i8,-200
huge,data,u64,18446744073709551616
hexed,data,u8,0x10
junk,data,base64,@@@
odd,data,hex2bin,abc
notHex,data,hex2bin,12zz
a_key_that_is_too_long,data,u8,1
what,blob,u8,1
enc,data,u9,1
gone,file,binary,missing.bin
"""
# (line, column, words) for every problem in BAD
EXPECTED = [
    (2, 7, "entry 'early' comes before any namespace row"),
    (4, 13, "u8 value 300 is out of range (0 to 255)"),
    (5, 13, "i8 value -200 is out of range (-128 to 127)"),
    (6, 15, "u64 value 18446744073709551616 is out of range"),
    (7, 15, "u8 value '0x10' is not a decimal integer (write 16)"),
    (8, 18, "not valid base64"),
    (9, 18, "hex2bin value has 3 hex digits, not an even number"),
    (10, 23, "'z' is not a hex digit"),
    (11, 1, "NVS key 'a_key_that_is_too_long' is 22 bytes; keys are at most 15"),
    (12, 6, "unknown type 'blob'"),
    (13, 10, "unknown encoding 'u9' for a data row"),
    (14, 18, "cannot read 'missing.bin'"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "partitions.csv").write_text(TABLE)
    return tmp_path


def build(project: Path, csv: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["data", "build", str(project / "partitions.csv"), "--partition", "nvs",
                 "--from", str(csv), "-o", str(project / "nvs.bin")])
    return code, capsys.readouterr().err


def test_every_problem_at_its_column_in_one_run(project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    csv = project / "bad.csv"
    csv.write_text(BAD)
    code, err = build(project, csv, capsys)
    assert code == 2 and "Traceback" not in err
    assert "struct.error" not in err and "invalid literal" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == len(EXPECTED), err
    for (line, column, words), got in zip(EXPECTED, lines):
        assert got.startswith(f"{csv}:{line}:{column}: error: "), (got, line, column)
        assert words in got, (words, got)
    assert not (project / "nvs.bin").exists()


def test_utf16_and_missing_files_are_named(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    csv = project / "utf16.csv"
    csv.write_bytes("key,type,encoding,value\nns,namespace,,\n".encode("utf-16"))
    assert csv.read_bytes()[:2] == b"\xff\xfe"
    code, err = build(project, csv, capsys)
    assert code == 2 and f"{csv}:1:1: error: the file is UTF-16" in err, err
    assert "byte order mark FF FE" in err
    code, err = build(project, project / "nope.csv", capsys)
    assert code == 2 and "nope.csv: error: no such file" in err, err
    assert "an NVS image is built from" not in err


def test_edge_values_build_as_the_generator_builds_them(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "cert.txt").write_text("hello")
    csv = project / "edge.csv"
    csv.write_text("\ufeffkey,type,encoding,value\n"  # a UTF-8 BOM is fine
                   "ns,namespace,,\n"
                   "u8max,data,u8,255\ni8min,data,i8,-128\n"
                   "u64max,data,u64,18446744073709551615\ni64min,data,i64,-9223372036854775808\n"
                   'quoted,data,string,"a, b"\nhex,data,hex2bin, 00ff \n'
                   "b64,data,base64,aGVsbG8=\ncert,file,string,cert.txt\n")
    code, err = build(project, csv, capsys)
    assert code == 0, err
    # The generator itself on the same rows (it cannot read a BOM: KeyError 'key'), run
    # from the CSV's directory for the file row.
    plain = project / "plain.csv"
    plain.write_text(csv.read_text(encoding="utf-8-sig"))
    ref = project / "ref.bin"
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate",
                    str(plain), str(ref), "0x6000", "--outdir", str(project)],
                   check=True, capture_output=True, cwd=project)
    ours = (project / "nvs.bin").read_bytes()
    theirs = (project / ref.name).read_bytes()
    assert ours[:len(theirs)] == theirs


def test_plaintext_nvs_with_nvs_keys_warns(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    csv = project / "ok.csv"
    csv.write_text("key,type,encoding,value\nns,namespace,,\nx,data,u8,1\n")
    code, err = build(project, csv, capsys)
    assert code == 0
    assert "warning: the table has an nvs_keys partition ('nvs_keys')" in err, err
    assert "this image of 'nvs' is plaintext" in err
    (project / "partitions.csv").write_text(TABLE.replace(
        "nvs_keys, data, nvs_keys, 0xf000,  0x1000, encrypted\n", ""))
    code, err = build(project, csv, capsys)
    assert code == 0 and "nvs_keys" not in err
