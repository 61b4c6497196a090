"""``partkit diff`` never gives a traceback: mutated pairs of real tables (CSV text and
binary bytes), random options; every run exits 0, 1 or 2 and a JSON report parses."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from partkit.cli import main
from partkit.common.errors import PartkitError
from partkit.table.codec import encode, load_table
from partkit.table.options import TableOptions

REAL = Path(__file__).resolve().parent / "data" / "conformance" / "real"
SEEDS = [REAL / rel for rel in (
    "Aircoookie__WLED/tools__WLED_ESP32_4MB_1MB_FS.csv",
    "Aircoookie__WLED/tools__WLED_ESP32_4MB_256KB_FS.csv",
    "Aircoookie__WLED/tools__WLED_ESP32_2MB_noOTA.csv",
    "espressif__esp-idf/components__partition_table__partitions_two_ota.csv",
    "espressif__esp-idf/components__partition_table__partitions_singleapp.csv",
    "espressif__esp-idf/components__partition_table__partitions_two_ota_large.csv",
    "Blockstream__Jade/partitions.csv",
    "espressif__arduino-esp32/tools__partitions__storage_4MB_noota.csv",
)]
FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _binary(text: bytes) -> bytes | None:
    try:
        loaded = load_table(text, "seed.csv", TableOptions())
        return encode(loaded.table, TableOptions())
    except PartkitError:
        return None


@st.composite
def side(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    if draw(st.booleans()):
        as_binary = _binary(bytes(data))
        if as_binary is not None:
            data = bytearray(as_binary)
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "number"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b",", b"\n", b"0x1000", b"readonly", b"ota_0",
                                                  b"\xff", b"\x00", b"nvs", b"64K"]))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 24))]
        else:  # a plausible edit: a digit of an offset or size changes
            digits = [i for i, c in enumerate(data) if chr(c) in "0123456789abcdefABCDEF"]
            if digits:
                at = digits[pos % len(digits)]
                data[at] = ord(draw(st.sampled_from("0123456789ABCDEF")))
    return bytes(data)


OPTIONS = st.lists(st.sampled_from([
    ["--running", "ota_0"], ["--running", "factory"], ["--running", "app0"],
    ["--erase", "nvs"], ["--erase", "spiffs"], ["--secure", "v1"], ["--secure", "v2"],
    ["--flash-size", "4MB"], ["--new-offset", "0x9000"], ["--chip", "esp32c3"],
    ["--disable-md5sum"],
]), max_size=3)


@FUZZ
@given(old=side(), new=side(), options=OPTIONS, as_json=st.booleans())
def test_mutated_pairs_never_traceback(old: bytes, new: bytes, options: list[list[str]],
                                       as_json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "old.csv", Path(tmp) / "new.csv"]
        paths[0].write_bytes(old)
        paths[1].write_bytes(new)
        argv = ["diff", str(paths[0]), str(paths[1]), *(a for o in options for a in o)]
        if as_json:
            argv.append("--json")
        rc = main(argv)  # an exception here is a traceback for the user
        out, err = capsys.readouterr()
    assert rc in (0, 1, 2)
    event(f"exit {rc}")  # --hypothesis-show-statistics: all three verdicts occur
    if rc == 2:
        assert "error:" in err
    elif as_json:
        report = json.loads(out)
        assert report["safe"] is (rc == 0)
        assert bool(report["violations"]) is (rc == 1)
    else:
        assert out.rstrip().endswith("SAFE" if rc == 0 else ")")
