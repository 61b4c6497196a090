"""ESP-AT secondary tables: every stock pair passes byte-identical to gen_esp32part, and seeded
breakages of them fail with messages that name the entry, its line and the region."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from support.tools import missing, require_tool

ESP_AT = Path(__file__).resolve().parent / "data" / "conformance" / "esp-at"
LEGACY_PREFIX = "legacy_v2_"


def _conformance_dir() -> Path:
    if not ESP_AT.is_dir():
        missing(f"esp-at conformance data not found at {ESP_AT}")
    return ESP_AT


def _pairs() -> list[tuple[str, Path, Path]]:
    """(id, at_customize.csv, partitions_at.csv); a legacy file pairs with its module."""
    if not ESP_AT.is_dir():
        return []
    out = []
    for secondary in sorted(ESP_AT.glob("*.at_customize.csv")):
        stem = secondary.name.split(".")[0]
        module = stem[len(LEGACY_PREFIX):] if stem.startswith(LEGACY_PREFIX) else stem
        out.append((stem, secondary, ESP_AT / f"{module}.partitions_at.csv"))
    return out


PAIRS = _pairs()
C3 = "module_esp32c3_default"


def _oracle():  # type: ignore[no-untyped-def]
    if sys.version_info < (3, 10):
        pytest.skip("esp-idf-defs (the gen_esp32part oracle) needs Python 3.10+")
    from esp_idf_defs.partitions import PartitionTable

    return PartitionTable


def _oracle_binary(csv_text: str) -> bytes:
    """What esp-at's build does: plain 'gen_esp32part.py -q at_customize.csv at_customize.bin'
    (default table offset 0x8000, MD5 row)."""
    table = _oracle().from_csv(csv_text)
    table.verify()
    data: bytes = table.to_binary()
    return data


def _oracle_region(primary_text: str) -> tuple[int, int]:
    table = _oracle().from_csv(primary_text)
    row = table.find_by_name("at_customize")
    assert row is not None and row.type == 0x40
    return int(row.offset), int(row.offset) + int(row.size)


def run_at(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["at", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _c3(tmp_path: Path, secondary: str | None = None, primary: str | None = None
        ) -> tuple[Path, Path]:
    """The C3 stock pair written to tmp_path, optionally with one file replaced."""
    base = _conformance_dir()
    sec = tmp_path / "at_customize.csv"
    pri = tmp_path / "partitions_at.csv"
    sec.write_text(secondary if secondary is not None
                   else (base / f"{C3}.at_customize.csv").read_text())
    pri.write_text(primary if primary is not None
                   else (base / f"{C3}.partitions_at.csv").read_text())
    return sec, pri


def _stock_c3() -> str:
    return (_conformance_dir() / f"{C3}.at_customize.csv").read_text()


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"seed '{old}' not in the stock file any more"
    return text.replace(old, new, 1)


def _with_row(row: str) -> str:
    """The C3 stock table with ``row`` inserted before fs_storage (0x47000): rows must keep
    offsets increasing down the file, and 0x3e000-0x46fff is free in the stock layout."""
    return _replace(_stock_c3(), "fs_storage,", f"{row}\nfs_storage,")


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


# --------------------------------------------------------------------------- stock pairs


def test_conformance_data_present() -> None:
    _conformance_dir()
    assert len(PAIRS) >= 7, "every esp-at module pair plus the legacy file"
    assert any(stem.startswith(LEGACY_PREFIX) for stem, _, _ in PAIRS)
    for _, _, primary in PAIRS:
        assert primary.is_file(), primary


@pytest.mark.parametrize(("stem", "secondary", "primary"), PAIRS, ids=[p[0] for p in PAIRS])
def test_stock_pair_generates_gen_esp32part_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stem: str, secondary: Path,
    primary: Path,
) -> None:
    out_bin = tmp_path / "at_customize.bin"
    code, out, err = run_at(capsys, "gen", secondary, "--primary", primary, "-o", out_bin)
    assert code == 0, err
    assert "error" not in err
    assert out_bin.read_bytes() == _oracle_binary(secondary.read_text())
    start, end = _oracle_region(primary.read_text())
    assert f"flash {out_bin} at 0x{start:x}" in out
    assert f"write-flash 0x{start:x} {out_bin}" in out
    # Independent containment check with the oracle's reading of the secondary table.
    for p in _oracle().from_csv(secondary.read_text()):
        assert start + 0x1000 <= p.offset and p.offset + p.size <= end, p.name


@pytest.mark.parametrize(("stem", "secondary", "primary"), PAIRS, ids=[p[0] for p in PAIRS])
def test_stock_pair_json_and_binary_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stem: str, secondary: Path,
    primary: Path,
) -> None:
    out_bin = tmp_path / "at.bin"
    code, out, err = run_at(capsys, "gen", secondary, "--primary", primary, "-o", out_bin,
                            "--json")
    assert code == 0, err
    report = json.loads(out)
    start, end = _oracle_region(primary.read_text())
    assert report["ok"] is True
    assert report["address"] == start
    assert report["region"]["end"] == end
    assert report["esptool"][-2:] == [f"0x{start:x}", str(out_bin)]
    oracle_rows = [(p.name, p.type, p.subtype, p.offset, p.size)
                   for p in _oracle().from_csv(secondary.read_text())]
    assert [(p["name"], p["type"], p["subtype"], p["offset"], p["size"])
            for p in report["partitions"]] == oracle_rows
    assert report["free"] == (end - start - 0x1000) - sum(r[4] for r in oracle_rows)
    # The written binary checks clean against the same primary table.
    code, out, err = run_at(capsys, "check", out_bin, "--primary", primary, "--json")
    assert code == 0, err
    assert json.loads(out)["partitions"] == report["partitions"]


CHIP_OF = {
    "module_esp32_default": ("esp32", None),
    "module_esp32c2-2mb": ("esp32c2", "2MB"),
    "module_esp32c3_default": ("esp32c3", None),
    "module_esp32c3_rainmaker": ("esp32c3", None),
    "module_esp32c5_default": ("esp32c5", None),
}


@pytest.mark.parametrize("module", sorted(CHIP_OF))
def test_stock_region_matches_documented_address(
    capsys: pytest.CaptureFixture[str], module: str
) -> None:
    chip, flash = CHIP_OF[module]
    base = _conformance_dir()
    extra = ["--flash-size", flash] if flash else []
    code, out, err = run_at(capsys, "check", base / f"{module}.at_customize.csv", "--primary",
                            base / f"{module}.partitions_at.csv", "--chip", chip, *extra)
    assert code == 0, err
    assert "documents" not in err  # no cross-check warning for the stock tables
    assert f"esptool --chip {chip} write-flash" in out


def test_documented_address_mismatch_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    base = _conformance_dir()
    code, _, err = run_at(capsys, "check", base / f"{C3}.at_customize.csv", "--primary",
                          base / f"{C3}.partitions_at.csv", "--chip", "esp32")
    assert code == 0
    assert "warning: at_customize.bin goes to 0x1e000 (from the primary table); esp-at " \
        "documents 0x20000 for esp32" in err
    # ESP32-C2 has two documented addresses, picked by flash size.
    code, _, err = run_at(capsys, "check", base / "module_esp32c2-2mb.at_customize.csv",
                          "--primary", base / "module_esp32c2-2mb.partitions_at.csv",
                          "--chip", "esp32c2", "--flash-size", "4MB")
    assert code == 0
    assert "esp-at documents 0x1e000 for esp32c2" in err


def test_legacy_v2_layout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The v2.x file (one 0x40 partition per certificate) is valid in the ESP32 region and
    is not asked for v3's mfg_nvs; renaming one of its partitions is caught."""
    base = _conformance_dir()
    legacy = base / f"{LEGACY_PREFIX}module_esp32_default.at_customize.csv"
    primary = base / "module_esp32_default.partitions_at.csv"
    code, out, err = run_at(capsys, "check", legacy, "--primary", primary)
    assert code == 0, err
    assert err == ""
    assert "0x20000" in out
    # A new 0x40 partition with the next free subtype is not mistaken for a rename.
    text = legacy.read_text()
    added = text.replace("fatfs,", "my_cert,0x40,12,0x37000,8K\nfatfs,")
    sec = tmp_path / "added.csv"
    sec.write_text(added)
    code, _, err = run_at(capsys, "check", sec, "--primary", primary)
    assert code == 0, err
    renamed = _replace(text, "ble_data,", "ble_dat,")
    sec.write_text(renamed)
    code, _, err = run_at(capsys, "check", sec, "--primary", primary)
    assert code == 2
    assert (f"{sec}:{_line_of(renamed, 'ble_dat,')}:1: error: partition 'ble_dat' looks like "
            "esp-at's predefined partition 'ble_data' renamed") in err
    retyped = _replace(text, "server_cert,0x40,2,", "server_cert,data,0x40,")
    sec.write_text(retyped)
    code, _, err = run_at(capsys, "check", sec, "--primary", primary)
    assert code == 2
    assert "predefined partition 'server_cert' has type data (0x01); esp-at defines it as " \
        "0x40" in err


def test_sixteen_byte_name_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    text = _with_row("abcdefghijklmnop, 0x40, 1, 0x3e000, 4K")
    sec, pri = _c3(tmp_path, text)
    out_bin = tmp_path / "o.bin"
    code, _, err = run_at(capsys, "gen", sec, "--primary", pri, "-o", out_bin)
    assert code == 0, err
    assert out_bin.read_bytes() == _oracle_binary(text)


def test_sdkconfig_offset_cross_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    sec, pri = _c3(tmp_path)
    sdkconfig = tmp_path / "sdkconfig"
    sdkconfig.write_text("CONFIG_IDF_TARGET=\"esp32c3\"\n"
                         "CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET=0x1E000\n")
    code, _, err = run_at(capsys, "check", sec, "--primary", pri, "--sdkconfig", sdkconfig)
    assert code == 0, err
    sdkconfig.write_text("# comment\nCONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET=0x20000\n")
    code, _, err = run_at(capsys, "check", sec, "--primary", pri, "--sdkconfig", sdkconfig)
    assert code == 2
    assert (f"{sdkconfig}:2: error: CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET=0x20000 but "
            "the 'at_customize' region of the primary table starts at 0x1e000") in err
    assert "hint: set CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET=0x1e000" in err


# --------------------------------------------------------------------------- seeded faults


def _fails(capsys: pytest.CaptureFixture[str], tmp_path: Path, secondary: str,
           primary: str | None = None) -> tuple[str, Path]:
    """Run gen on a broken pair: exit 2, GCC-style errors, no traceback, nothing written."""
    sec, pri = _c3(tmp_path, secondary, primary)
    out_bin = tmp_path / "never.bin"
    code, _out, err = run_at(capsys, "gen", sec, "--primary", pri, "-o", out_bin)
    assert code == 2, err
    assert "Traceback" not in err
    assert re.search(r"^\S+:\d+(:\d+)?: error: ", err, re.M), err
    assert not out_bin.exists()
    return err, sec


def test_entry_past_the_region_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _replace(_stock_c3(), "0x47000, 100K", "0x47000, 104K")
    err, sec = _fails(capsys, tmp_path, text)
    line = _line_of(text, "fs_storage")
    assert (f"{sec}:{line}:1: error: partition 'fs_storage' (0x47000-0x60fff) ends 0x1000 "
            "bytes past the end of the 'at_customize' region 0x1e000-0x5ffff") in err
    assert "hint: shrink it to 0x19000 bytes or less" in err
    assert "partitions_at.csv:5:1: note: 'at_customize' region 0x1e000-0x5ffff defined here" in err


def test_entry_overlapping_the_secondary_table_sector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _replace(_stock_c3(), "mfg_nvs, data, nvs, 0x1f000", "mfg_nvs, data, nvs, 0x1e000")
    err, sec = _fails(capsys, tmp_path, text)
    assert (f"{sec}:{_line_of(text, 'mfg_nvs')}:1: error: partition 'mfg_nvs' "
            "(0x1e000-0x3cfff) overlaps the secondary table's own sector 0x1e000-0x1efff, "
            "where at_customize.bin is written") in err
    assert "hint: user partitions start at 0x1f000" in err


def test_entry_outside_the_region_names_the_primary_partition_hit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _stock_c3() + "late, 0x40, 1, 0x60000, 4K\n"
    err, sec = _fails(capsys, tmp_path, text)
    assert (f"{sec}:{_line_of(text, 'late')}:1: error: partition 'late' (0x60000-0x60fff) lies "
            "outside the 'at_customize' region 0x1e000-0x5ffff; it overlaps primary partition "
            "'ota_0' (0x60000-0x22ffff)") in err


def test_empty_offset_gets_a_specific_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    text = "# Name, Type, SubType, Offset, Size\nfirst, 0x40, 1, , 4K\n" + \
        _stock_c3().split("\n", 1)[1]
    err, _ = _fails(capsys, tmp_path, text)
    assert "partition 'first' (0x9000-0x9fff) lies outside" in err
    assert "Its offset field is empty, so gen_esp32part (which esp-at runs with the default " \
        "table offset 0x8000) put it at 0x9000; give an explicit offset." in err


def test_long_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with_row("a_very_long_partition_name, 0x40, 1, 0x3e000, 4K")
    err, sec = _fails(capsys, tmp_path, text)
    assert (f"{sec}:{_line_of(text, 'a_very_long')}:1: error: partition name "
            "'a_very_long_partition_name' is 26 bytes; names are at most 16 bytes") in err
    assert "gen_esp32part would silently cut it to 'a_very_long_part'" in err
    assert err.count("'a_very_long_partition_name' is 26 bytes") == 1  # no codec duplicate


@pytest.mark.parametrize("new_name", ["my_nvs", "MFG_NVS", "certs"])
def test_renamed_predefined_partition(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      new_name: str) -> None:
    text = _replace(_stock_c3(), "mfg_nvs,", f"{new_name},")
    err, sec = _fails(capsys, tmp_path, text)
    assert (f"{sec}:{_line_of(text, new_name)}:1: error: partition '{new_name}' looks like "
            "esp-at's predefined partition 'mfg_nvs' renamed") in err
    assert "hint: name it 'mfg_nvs'" in err


def test_changed_predefined_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _replace(_stock_c3(), "mfg_nvs, data, nvs,", "mfg_nvs, 0x40, 2,")
    err, sec = _fails(capsys, tmp_path, text)
    assert (f"{sec}:{_line_of(text, 'mfg_nvs')}:1: error: predefined partition 'mfg_nvs' has "
            "type 0x40; esp-at defines it as data (0x01)") in err


def test_changed_predefined_subtype_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _replace(_stock_c3(), "fs_storage, data, 0xff,", "fs_storage, data, fat,")
    sec, pri = _c3(tmp_path, text)
    code, _, err = run_at(capsys, "check", sec, "--primary", pri)
    assert code == 0, err


@pytest.mark.parametrize(("ptype", "message"), [
    ("0x20", "has type 0x20, which ESP-IDF reserves (0x00-0x3f)"),
    ("0xff", "has type 0xff, which esp_partition_find() reads as 'any type'"),
    ("partition_table", "has type partition_table, which belongs in the primary table"),
])
def test_bad_types(tmp_path: Path, capsys: pytest.CaptureFixture[str], ptype: str,
                   message: str) -> None:
    text = _with_row(f"odd, {ptype}, 1, 0x3e000, 4K")
    err, _ = _fails(capsys, tmp_path, text)
    assert f"error: partition 'odd' {message}" in err


def test_all_problems_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    text = _with_row("this_name_is_too_long, 0x40, 1, 0x3e000, 4K")
    text = _replace(text, "0x47000, 100K", "0x47000, 104K")
    text = _replace(text, "0x1f000", "0x1e000")
    err, _ = _fails(capsys, tmp_path, text)
    assert err.count(": error: ") == 3, err


def test_duplicate_names_still_caught_by_the_codec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _with_row("fs_storage, 0x40, 1, 0x3e000, 4K")
    err, _ = _fails(capsys, tmp_path, text)
    assert "fs_storage" in err and "more than once" in err


def test_binary_that_gen_esp32part_accepts_is_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gen_esp32part happily encodes an entry past the region; 'at check' on that binary
    reports it by entry index and byte offset."""
    text = _replace(_stock_c3(), "0x47000, 100K", "0x47000, 104K")
    _sec, pri = _c3(tmp_path)
    bad_bin = tmp_path / "at_customize.bin"
    bad_bin.write_bytes(_oracle_binary(text))
    code, _, err = run_at(capsys, "check", bad_bin, "--primary", pri)
    assert code == 2
    assert (f"{bad_bin}: entry 2 (byte 0x20): error: partition 'fs_storage' (0x47000-0x60fff) "
            "ends 0x1000 bytes past the end") in err


def test_primary_without_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    primary = (_conformance_dir() / f"{C3}.partitions_at.csv").read_text()
    primary = _replace(primary, "at_customize,", "at_custom,")
    sec, pri = _c3(tmp_path, None, primary)
    code, _, err = run_at(capsys, "check", sec, "--primary", pri)
    assert code == 2
    assert f"{pri}: error: the primary table has no 'at_customize' partition" in err
    assert "type-0x40 rows found: 'at_custom'" in err


def test_shadowed_name_and_missing_mfg_nvs_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "# Name, Type, SubType, Offset, Size\nnvs, 0x40, 1, 0x1f000, 4K\n"
    sec, pri = _c3(tmp_path, text)
    code, _, err = run_at(capsys, "check", sec, "--primary", pri)
    assert code == 0, err
    assert (f"{sec}:2:1: warning: partition 'nvs' is also a partition of the primary table"
            in err)
    assert f"{pri}:4:1: note: primary partition here" in err
    assert "warning: no 'mfg_nvs' partition" in err


def test_check_missing_file_and_bad_chip(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    sec, pri = _c3(tmp_path)
    code, _, err = run_at(capsys, "check", tmp_path / "nope.csv", "--primary", pri)
    assert code == 2 and "nope.csv: error: no such file" in err
    code, _, err = run_at(capsys, "check", sec, "--primary", pri, "--chip", "esp32c33")
    assert code == 2 and "unknown chip 'esp32c33'" in err


def test_json_failure_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _replace(_stock_c3(), "0x47000, 100K", "0x47000, 104K")
    sec, pri = _c3(tmp_path, text)
    code, out, _ = run_at(capsys, "check", sec, "--primary", pri, "--json")
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False
    [problem] = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert problem["line"] == _line_of(text, "fs_storage")
    assert "past the end" in problem["message"]


# --------------------------------------------------------------------------- real tools


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed entry point, end to end: 0 for a stock pair, 2 for a broken one."""
    sec, pri = _c3(tmp_path)
    cmd = [sys.executable, "-m", "partkit", "at", "gen", str(sec), "--primary", str(pri)]
    ok = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "at_customize.bin").stat().st_size == 0xC00  # default output name
    sec.write_text(_replace(sec.read_text(), "0x1f000", "0x1e000"))
    bad = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "own sector" in bad.stderr


def test_esptool_places_the_binary_at_the_reported_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Feed the address/file pair we print to the real esptool (merge-bin instead of a device
    write) and find our table at that address in its output."""
    esptool = require_tool("esptool")
    sec, pri = _c3(tmp_path)
    out_bin = tmp_path / "at_customize.bin"
    code, out, err = run_at(capsys, "gen", sec, "--primary", pri, "-o", out_bin, "--chip",
                            "esp32c3", "--json")
    assert code == 0, err
    argv = json.loads(out)["esptool"]
    write = argv.index("write-flash")
    merged = tmp_path / "merged.bin"
    cmd = [esptool, *argv[1:write], "merge-bin", "-o", str(merged), *argv[write + 1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    address = int(argv[write + 1], 16)
    image = merged.read_bytes()
    assert image[address:address + 0xC00] == out_bin.read_bytes()
    # And partkit reads the table back out of the flash image at that offset.
    code, _, err = run_at(capsys, "check", out_bin, "--primary", pri)
    assert code == 0, err
