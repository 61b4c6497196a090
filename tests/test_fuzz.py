"""No input can produce a traceback: mutated CSVs, random bytes and damaged binaries go
through `partkit gen` and `partkit show`, which must exit 0, 1 or 2, with a message on error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partkit.cli import main

CONFORMANCE = Path(__file__).resolve().parent / "data" / "conformance"
SEEDS = sorted((CONFORMANCE / "real").rglob("*.csv"))[:200]
GOOD_BINARY = sorted((CONFORMANCE / "expected").glob("*.bin"))[:50]
FUZZ = settings(max_examples=600, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _exercise(data: bytes, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
              extra: list[str]) -> None:
    source = tmp_path / "input.csv"
    source.write_bytes(data)
    for argv in (["gen", *extra, str(source), str(tmp_path / "out.bin")],
                 ["show", str(source), "--chip", "esp32"]):
        rc = main(argv)  # any exception fails the test: that would be a traceback
        _, err = capsysbinary.readouterr()
        assert rc in (0, 1, 2), argv
        if rc:
            assert b"error:" in err, (argv, err)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Path]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)).read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "junk"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b",", b"\n", b"$X", b"-", b"k", b"0x",
                                                  b"\xff", b"\x00", b"#", b":", b"9" * 30]))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.binary(max_size=12))
    return bytes(data)


OPTION_SETS = st.sampled_from([[], ["--no-verify"], ["--disable-md5sum"],
                               ["--flash-size", "4MB"], ["--secure", "v1"],
                               ["--offset", "0x9000", "--chip", "esp32c3"]])


@FUZZ
@given(data=mutated(SEEDS), extra=OPTION_SETS)
def test_mutated_csv(data: bytes, extra: list[str], tmp_path: Path,
                     capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _exercise(data, tmp_path, capsysbinary, extra)


@FUZZ
@given(data=mutated(GOOD_BINARY), extra=OPTION_SETS)
def test_damaged_binary(data: bytes, extra: list[str], tmp_path: Path,
                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _exercise(data, tmp_path, capsysbinary, extra)


@FUZZ
@given(data=st.one_of(st.binary(max_size=4096),
                      st.binary(max_size=200).map(lambda b: b"\xaa\x50" + b),
                      st.binary(max_size=200).map(lambda b: b"\xeb\xeb" + b"\xff" * 14 + b),
                      st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.text(max_size=100).map(lambda t: t.encode("utf-16"))),
       extra=OPTION_SETS)
def test_random_bytes(data: bytes, extra: list[str], tmp_path: Path,
                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _exercise(data, tmp_path, capsysbinary, extra)


def test_seeds_present() -> None:
    assert len(SEEDS) >= 100 and len(GOOD_BINARY) >= 20
