"""``partkit check`` end to end: real ESP32-C3 images, exit codes, JSON schema, annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.firmware import (
    app_of_size,
    bootloader_of_size,
    build_app,
    elf_section_sum,
    sign_image,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "check-report.schema.json"

OTA_CSV = """\
# Name,   Type, SubType, Offset,   Size
nvs,      data, nvs,     0x9000,   0x4000
otadata,  data, ota,     0xd000,   0x2000
phy_init, data, phy,     0xf000,   0x1000
ota_0,    app,  ota_0,   0x10000,  0x100000
ota_1,    app,  ota_1,   0x110000, 0x100000
"""


def partkit(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("GITHUB_ACTIONS", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "partkit", "check", *map(str, args)],
                          capture_output=True, text=True, env=full_env, cwd=cwd)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def single_slot(tmp_path: Path, size: int, name: str = "factory") -> Path:
    return write(tmp_path / "single.csv",
                 f"nvs, data, nvs, 0x9000, 0x6000\n{name}, app, factory, 0x10000, {size:#x}\n")


# --- acceptance 1: real images -----------------------------------------------------------


@pytest.mark.firmware
def test_image_that_fits_passes(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = app_of_size(tmp_path, 0xC0000, name="app.bin")
    r = partkit(table, "--app", app)
    assert r.returncode == 0, r.stderr
    assert ("app.bin binary size 0xc0000 bytes. Smallest app partition is 0x100000 bytes. "
            f"0x40000 bytes ({0x40000 / 0x100000:.0%}) free.") in r.stdout
    assert "esp32c3 app image 'partkit-demo' 1.0.0" in r.stdout
    assert r.stderr == ""


@pytest.mark.firmware
def test_exactly_full_slot_passes_one_byte_over_fails(tmp_path: Path) -> None:
    app = app_of_size(tmp_path, 0x40000, name="app.bin")
    full = partkit(single_slot(tmp_path, 0x40000), "--app", app)
    assert full.returncode == 0, full.stderr
    assert "0x0 bytes (0%) free." in full.stdout
    # An unaligned slot is an invalid table (exit 2) unless validation is off.
    unaligned = single_slot(tmp_path, 0x40000 - 1, name="main_app")
    invalid = partkit(unaligned, "--app", app)
    assert invalid.returncode == 2
    assert "size 0x3ffff is not aligned to 0x1000" in invalid.stderr
    over = partkit(unaligned, "--app", app, "--no-verify")
    assert over.returncode == 1
    assert ("app partition is too small for binary app.bin size 0x40000:\n"
            "  - Part 'main_app' 0/0 @ 0x10000 size 0x3ffff (overflow 0x1)") in over.stderr
    assert "'main_app' needs 1 more byte" in over.stderr
    assert "single.csv:2:1: error:" in over.stderr  # the slot's CSV line
    assert "OVERFLOW by 0x1 (1 byte)" in over.stdout


@pytest.mark.firmware
def test_sixteen_bytes_over_an_aligned_slot(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = app_of_size(tmp_path, 0x100010, name="big.bin")
    r = partkit(table, "--app", app)
    assert r.returncode == 1
    assert "All app partitions are too small for binary big.bin size 0x100010:" in r.stderr
    assert "Part 'ota_0' 0/16 @ 0x10000 size 0x100000 (overflow 0x10)" in r.stderr
    assert "Part 'ota_1' 0/17 @ 0x110000 size 0x100000 (overflow 0x10)" in r.stderr


@pytest.mark.firmware
def test_image_fits_but_padded_file_does_not(tmp_path: Path) -> None:
    """esptool writes the whole file: 0xFF padding past the slot overwrites the next one."""
    app = app_of_size(tmp_path, 0x3F000, name="app.bin")
    padded = tmp_path / "padded.bin"
    padded.write_bytes(app.read_bytes() + b"\xff" * 0x3000)  # file is 0x42000 > slot
    table = single_slot(tmp_path, 0x40000)
    r = partkit(table, "--app", padded)
    assert r.returncode == 1, r.stderr
    assert ("app partition is too small for binary padded.bin size 0x42000:\n"
            "  - Part 'factory' 0/0 @ 0x10000 size 0x40000 (overflow 0x2000)") in r.stderr
    assert f"{table}:2:1: error:" in r.stderr  # the slot's CSV line
    # The report explains it: the image fits, the padding does not.
    assert "image length 0x3f000 (258048 bytes)" in r.stdout
    assert "file 0x42000 (270336 bytes) with 12288 trailing bytes" in r.stdout
    assert "the image itself is 0x3f000 bytes and would fit" in r.stderr
    assert "OVERFLOW by 0x2000" in r.stdout and "check FAILED" in r.stdout
    doc = json.loads(partkit(table, "--app", padded, "--json").stdout)
    image = doc["app"]["image"]
    assert (image["measured_size"], image["flashed_size"], image["trailing_bytes"]) == (
        0x3F000, 0x42000, 0x3000)
    assert doc["app"]["slots"][0]["free"] == -0x2000 and doc["exit_code"] == 1
    # Padded exactly to the slot: every flashed byte fits.
    padded.write_bytes(app.read_bytes() + b"\xff" * 0x1000)
    full = partkit(table, "--app", padded)
    assert full.returncode == 0, full.stderr
    assert "padded.bin binary size 0x40000 bytes" in full.stdout


@pytest.mark.firmware
def test_padded_bootloader_past_the_table_fails(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    bl = bootloader_of_size(tmp_path, 0x6000, name="bl.bin")
    padded = tmp_path / "bl-padded.bin"
    padded.write_bytes(bl.read_bytes() + b"\xff" * 0x2800)  # 0x8800 > 0x8000 before the table
    r = partkit(table, "--bootloader", padded, "--chip", "esp32c3")
    assert r.returncode == 1
    assert "Bootloader binary size 0x8800 bytes is too large for partition table offset" in r.stderr
    assert "it overflows by 2048 bytes" in r.stderr
    assert "the image itself is 0x6000 bytes and would fit" in r.stderr
    assert "OVERFLOW by 0x800" in r.stdout


@pytest.mark.firmware
def test_signed_file_measured_by_signed_image_length(tmp_path: Path) -> None:
    app = app_of_size(tmp_path, 0x3E010, name="app.bin")
    signed = sign_image(app, tmp_path / "signed.bin", tmp_path)
    # Image padded to 0x3f000 + 4 KiB signature sector = 0x40000: exactly a 256K slot.
    ok = partkit(single_slot(tmp_path, 0x40000), "--app", signed)
    assert ok.returncode == 0, ok.stderr
    assert "signed.bin binary size 0x40000 bytes" in ok.stdout
    assert "RSA Secure Boot V2 signature sector" in ok.stdout
    # The unsigned image (0x3e010) would fit 0x3f000; the signed one does not.
    bad = partkit(single_slot(tmp_path, 0x3F000), "--app", signed)
    assert bad.returncode == 1 and "(overflow 0x1000)" in bad.stderr


@pytest.mark.firmware
def test_elf_section_sum_fits_but_bin_does_not(tmp_path: Path) -> None:
    app = build_app(tmp_path, 0xF8000, name="app.bin")
    sections = elf_section_sum(app.with_suffix(".elf"))
    slot = 0x100000
    assert sections <= slot < app.stat().st_size  # what ELF-based tools would pass
    r = partkit(single_slot(tmp_path, slot), "--app", app)
    assert r.returncode == 1
    overflow = app.stat().st_size - slot
    assert f"(overflow {overflow:#x})" in r.stderr


@pytest.mark.firmware
def test_bootloader_fits_and_overflows(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    bl = bootloader_of_size(tmp_path, 0x5000, name="bootloader.bin")
    r = partkit(table, "--bootloader", bl, "--chip", "esp32c3")
    assert r.returncode == 0, r.stderr
    free = 0x8000 - 0x5000
    assert (f"Bootloader binary size 0x5000 bytes. {free:#x} bytes "
            f"({round(free * 100 / 0x8000)}%) free.") in r.stdout
    big = bootloader_of_size(tmp_path, 0x7010, name="big-bl.bin")
    esp32 = partkit(table, "--bootloader", big, "--chip", "esp32")  # 0x1000: limit 0x7000
    assert esp32.returncode == 1
    assert ("Bootloader binary size 0x7010 bytes is too large for partition table offset "
            "0x8000. Bootloader binary can be maximum 0x7000 (28672) bytes") in esp32.stderr
    at_zero = partkit(table, "--bootloader", big, "--bootloader-offset", "0x0")
    assert at_zero.returncode == 0, at_zero.stderr
    assert f"{0x8000 - 0x7010:#x} bytes" in at_zero.stdout
    # esp32 bootloader offset with an esp32c3 image: wrong chip is an error too.
    assert "image is for esp32c3" in esp32.stderr


@pytest.mark.firmware
def test_bootloader_overlapping_recovery(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV + "storage, data, spiffs, 0x3f0000, 0x10000\n")
    bl = bootloader_of_size(tmp_path, 0x5000, name="bootloader.bin")
    r = partkit(table, "--bootloader", bl, "--chip", "esp32c3",
                "--recovery-bootloader-offset", "0x3f0000")
    assert r.returncode == 1
    assert "overlaps partition 'storage'" in r.stderr


# --- budgets, flash, rules -----------------------------------------------------------------


@pytest.mark.firmware
def test_budgets_fail_before_overflow(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = app_of_size(tmp_path, 0xF0000, name="app.bin")  # 6.25 % free
    assert partkit(table, "--app", app, "--warn-free", "5%").returncode == 0
    warn = partkit(table, "--app", app, "--warn-free", "10%")
    assert warn.returncode == 0 and "below the --warn-free budget of 10%" in warn.stderr
    fail = partkit(table, "--app", app, "--warn-free", "10%", "--fail-free", "0x20000")
    assert fail.returncode == 1
    assert "error: app partition 'ota_0' has 0x10000 bytes (6.2%) free" in fail.stderr
    assert "below the --fail-free budget of 0x20000 bytes" in fail.stderr


def binary_table(rows: list[tuple[str, int, int, int, int]]) -> bytes:
    """A binary table written from the documented layout (entries, MD5 row, 0xFF fill)."""
    import hashlib
    import struct

    entries = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, s, off, size,
                                   name.encode(), 0) for name, t, s, off, size in rows)
    md5 = b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(entries).digest()
    return (entries + md5).ljust(0xC00, b"\xff")


def test_flash_size_uses_highest_end(tmp_path: Path) -> None:
    # In a binary table the last entry need not reach furthest into flash.
    table = tmp_path / "t.bin"
    table.write_bytes(binary_table([("nvs", 1, 2, 0x9000, 0x6000),
                                    ("big", 0, 0, 0x300000, 0x180000),
                                    ("spiffs", 1, 0x82, 0x10000, 0x10000)]))
    r = partkit(table, "--flash-size", "4MB")
    assert r.returncode == 1
    assert "partition 'big' ends at 0x480000, 0x80000 bytes beyond the 4MB flash" in r.stderr
    ok = partkit(table, "--flash-size", "8MB")
    assert ok.returncode == 0 and f"{0x800000 - 0x480000:#x} ({0x800000 - 0x480000} bytes) " \
        "free at the end" in ok.stdout


def test_rules_warn_then_strict_fails(tmp_path: Path) -> None:
    table = write(tmp_path / "t.csv", "ota_0, app, ota_0, 0x10000, 0x100000\n"
                                      "ota_1, app, ota_1, 0x110000, 0x80000\n")
    r = partkit(table, "--flash-size", "4MB")
    assert r.returncode == 0
    assert "warning: OTA app partitions (ota_0, ota_1) but no otadata partition" in r.stderr
    assert "warning: OTA app partitions differ in size" in r.stderr
    strict = partkit(table, "--strict", "--flash-size", "4MB")
    assert strict.returncode == 1 and "error: OTA app partitions" in strict.stderr


def test_plain_file_parity_and_warning(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    plain = tmp_path / "fake.bin"
    plain.write_bytes(b"\xee" * (1000 * 1024))
    r = partkit(table, "--app", plain)
    assert r.returncode == 0
    free = 0x100000 - 1000 * 1024
    assert ("fake.bin binary size 0xfa000 bytes. Smallest app partition is 0x100000 bytes. "
            f"{free:#x} bytes ({free / 0x100000:.0%}) free.") in r.stdout
    assert "The smallest app partition is nearly full (2% free space left)!" in r.stderr
    assert "not an ESP image" in r.stderr


def test_binary_table_input(tmp_path: Path) -> None:
    csv = write(tmp_path / "p.csv", OTA_CSV)
    binary = tmp_path / "p.bin"
    gen = subprocess.run([sys.executable, "-m", "partkit", "gen", str(csv), str(binary)],
                         capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    plain = tmp_path / "fake.bin"
    plain.write_bytes(b"\xee" * (1500 * 1024))
    r = partkit(binary, "--app", plain)
    assert r.returncode == 1
    assert "All app partitions are too small for binary fake.bin size 0x177000:" in r.stderr


# --- acceptance 3: JSON schema and annotations -----------------------------------------------


@pytest.mark.firmware
def test_json_validates_against_schema(tmp_path: Path) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = app_of_size(tmp_path, 0x80000, name="app.bin")
    bl = bootloader_of_size(tmp_path, 0x6000, name="bl.bin")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"\xee" * 0x120000)
    runs = [
        partkit(table, "--json", "--app", app, "--bootloader", bl, "--chip", "esp32c3",
                "--flash-size", "4MB", "--warn-free", "60%", "--fail-free", "1K"),
        partkit(table, "--json", "--app", plain, "--subtype", "ota_1"),
        partkit(table, "--json", "--flash-size", "2MB"),
        partkit(table, "--json", "--app", app, "--type", "data", "--subtype", "nvs"),
    ]
    docs = []
    for r in runs:
        assert r.returncode in (0, 1), r.stderr
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, schema)
        assert doc["exit_code"] == r.returncode and doc["ok"] == (r.returncode == 0)
        docs.append(doc)
    first = docs[0]
    assert first["app"]["image"]["measured_size"] == 0x80000
    assert first["app"]["image"]["description"]["project_name"] == "partkit-demo"
    assert [s["partition"]["name"] for s in first["app"]["slots"]] == ["ota_0", "ota_1"]
    assert first["app"]["slots"][0]["free"] == 0x80000
    assert first["bootloader"]["limit"] == 0x8000 and first["bootloader"]["free"] == 0x2000
    assert first["flash"]["highest_end"] == 0x210000
    assert [f["code"] for f in first["findings"]] == ["budget-warn"]
    assert docs[1]["app"]["status"] == "fail" and docs[1]["app"]["slots"][0]["free"] < 0
    assert docs[2]["flash"]["fits"] is False
    assert docs[3]["app"]["selector"]["label"] == "data (nvs)"


@pytest.mark.firmware
def test_github_annotations(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = app_of_size(tmp_path, 0x100010, name="big.bin")
    r = partkit(table, "--app", app, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    annotations = [line for line in r.stderr.splitlines() if line.startswith("::")]
    assert len(annotations) == 1
    line = annotations[0]
    assert line.startswith(f"::error file={table},line=5,col=1::")
    message = line.split("::", 2)[2]
    # Multi-line messages are escaped onto one line (%0A), as the Actions runner requires.
    assert "\n" not in message and "%0A  - Part 'ota_0' 0/16" in message
    assert "too small for binary big.bin size 0x100010:" in message
    quiet = partkit(table, "--app", app)
    assert not any(line.startswith("::") for line in quiet.stderr.splitlines())
    fitting = app_of_size(tmp_path, 0xFC000, name="tight.bin")
    warn = partkit(table, "--app", fitting, env={"GITHUB_ACTIONS": "true"})
    assert warn.returncode == 0
    assert f"::warning file={table},line=5,col=1::The smallest app partition is nearly full " \
        "(2%25 free space left)!" in warn.stderr


# --- acceptance 5: bad inputs ----------------------------------------------------------------


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    truncated = tmp_path / "trunc.bin"
    truncated.write_bytes(bytes([0xE9, 3, 2, 0x20]) + bytes(20) + b"\x20\x00\x00\x3c\xff\xff")
    garbage_table = tmp_path / "garbage.csv"
    garbage_table.write_bytes(b"\x00\x01\x02 garbage, not, a table\xff\xfe\n")
    cases = [
        ((tmp_path / "missing.csv",), "missing.csv: error: no such file"),
        ((table, "--app", tmp_path / "nope.bin"), "nope.bin: error: no such file"),
        ((table, "--app", empty), "empty.bin: error: empty file"),
        ((table, "--app", truncated), "trunc.bin: error: truncated or corrupt ESP image"),
        ((table, "--bootloader", empty, "--chip", "esp32c3"), "empty.bin: error: empty file"),
        ((garbage_table, "--flash-size", "4MB"), "garbage.csv"),
        ((table,), "nothing to check: "),
        ((table, "--app", table, "--warn-free", "lots"), "--warn-free: 'lots' is not"),
        ((table, "--app", table, "--type", "apq"), "did you mean 'app'"),
        ((table, "--bootloader", table), "needs the bootloader's flash offset"),
        ((table, "--chip", "esp32c9"), "unknown chip"),
        ((table, "--flash-size", "4XB"), "--flash-size"),
        ((table, "--app", tmp_path), "is a directory"),
    ]
    for args, expected in cases:
        r = partkit(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert expected in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


@pytest.mark.firmware
def test_truncated_real_image_exit_2(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    app = build_app(tmp_path, 20_000, name="app.bin")
    cut = tmp_path / "cut.bin"
    cut.write_bytes(app.read_bytes()[: app.stat().st_size // 2])
    r = partkit(table, "--app", cut)
    assert r.returncode == 2
    assert "cut.bin: error: truncated or corrupt ESP image" in r.stderr
    assert "declares" in r.stderr and "hint:" in r.stderr


def test_usage_error_exit_2(tmp_path: Path) -> None:
    r = partkit()
    assert r.returncode == 2 and "usage: partkit check" in r.stderr


@pytest.mark.firmware
def test_bootloader_passed_as_app_is_flagged(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV)
    bl = bootloader_of_size(tmp_path, 0x4000, name="bootloader.bin")
    r = partkit(table, "--app", bl)
    assert r.returncode == 0
    assert "warning: this looks like a bootloader image, checked as an app" in r.stderr


# --- table validation and CSV locations (issue 9) ------------------------------------------


def test_misaligned_app_offset_fails(tmp_path: Path) -> None:
    table = write(tmp_path / "p.csv", OTA_CSV.replace("ota_0,    app,  ota_0,   0x10000,  0x100000",
                                                      "ota_0,    app,  ota_0,   0x10800,  0xF0000"))
    r = partkit(table, "--flash-size", "4MB")
    assert r.returncode == 2
    assert f"{table}:5:1: error: partition 'ota_0' offset 0x10800 is not aligned" in r.stderr
    assert "check OK" not in r.stdout
    # --no-verify: sizes only, as check_sizes.py.
    assert partkit(table, "--flash-size", "4MB", "--no-verify").returncode == 0


def _gen(csv: Path, out: Path) -> Path:
    gen = subprocess.run([sys.executable, "-m", "partkit", "gen", "-q", str(csv), str(out)],
                         capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    return out


def test_table_source_points_errors_at_the_csv_line(tmp_path: Path) -> None:
    csv = write(tmp_path / "partitions.csv", OTA_CSV)
    binary = _gen(csv, tmp_path / "partition-table.bin")
    plain = tmp_path / "big.bin"
    plain.write_bytes(b"\xee" * 0x100001)
    bare = partkit(binary, "--app", plain, "--subtype", "ota_1")
    assert bare.returncode == 1
    assert f"{binary}: entry 5 (byte 0x80): error:" in bare.stderr
    r = partkit(binary, "--app", plain, "--subtype", "ota_1", "--table-source", csv)
    assert r.returncode == 1
    assert f"{csv}:6:1: error: app (ota_1) partition is too small" in r.stderr
    assert "entry 5" not in r.stderr
    assert f"table {binary}:" in r.stdout  # the binary is what was checked


def test_table_source_mismatch_warns_and_keeps_binary_locations(tmp_path: Path) -> None:
    csv = write(tmp_path / "partitions.csv", OTA_CSV)
    binary = _gen(csv, tmp_path / "partition-table.bin")
    write(csv, OTA_CSV.replace("ota_0,    app,  ota_0,   0x10000,  0x100000",
                               "ota_0,    app,  ota_0,   0x10000,  0x80000"))
    plain = tmp_path / "big.bin"
    plain.write_bytes(b"\xee" * 0x100001)
    r = partkit(binary, "--app", plain, "--table-source", csv)
    assert r.returncode == 1
    assert (f"{csv}: warning: {binary} does not match {csv} at entry 4 ('ota_0')") in r.stderr
    assert f"{binary}: entry 4 (byte 0x60): error: All app partitions" in r.stderr
    # The check used the binary's sizes (0x100000 slots), not the edited CSV's.
    assert "(overflow 0x1)" in r.stderr


def _long_binary(rows: list[tuple[str, int, int, int, int]]) -> bytes:
    """Entry rows, the MD5 row and the end marker, however long that gets."""
    import hashlib
    import struct

    entries = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, s, off, size,
                                   name.encode(), 0) for name, t, s, off, size in rows)
    md5 = b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(entries).digest()
    return entries + md5 + b"\xff" * 32


def test_entries_past_0xc00_do_not_exist(tmp_path: Path) -> None:
    """The bootloader reads 0xC00 bytes: a factory app as entry 121 is not on the device."""
    rows = [(f"d{i}", 1, 0x81, 0x9000 + i * 0x1000, 0x1000) for i in range(120)]
    rows.append(("factory", 0, 0, 0x100000, 0x100000))
    table = tmp_path / "long.bin"
    table.write_bytes(_long_binary(rows))
    assert table.stat().st_size == 3936
    plain = tmp_path / "app.bin"
    plain.write_bytes(b"\xee" * 0x1000)
    r = partkit(table, "--app", plain, "--no-verify")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "check OK" not in r.stdout
    assert f"{table}: entry 97 (byte 0xc00): error: the table does not end within the first " \
        "0xc00 bytes" in r.stderr
    # A table that ends in time is read whatever follows (a signed 0x1000 sector).
    signed = tmp_path / "signed.bin"
    signed.write_bytes(binary_table([("factory", 0, 0, 0x10000, 0x100000)])
                       + b"\xe7\x02" + b"\x5a" * 0x3FE)
    ok = partkit(signed, "--app", plain)
    assert ok.returncode == 0, ok.stderr


def test_github_annotation_escapes_paths_and_messages(tmp_path: Path) -> None:
    """Workflow commands: `%` CR LF escaped in the message, plus `:` `,` in properties."""
    odd = tmp_path / "odd, 100%: dir"
    odd.mkdir()
    table = write(odd / "p.csv", OTA_CSV)
    plain = odd / "big.bin"
    plain.write_bytes(b"\xee" * 0x100001)
    r = partkit(table, "--app", plain, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    annotation = next(x for x in r.stderr.splitlines() if x.startswith("::error "))
    escaped = str(table).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
    assert annotation.startswith(f"::error file={escaped},line=5,col=1::"), annotation
    props, message = annotation[len("::error "):].split("::", 1)
    assert [p.split("=", 1)[0] for p in props.split(",")] == ["file", "line", "col"]
    assert "\n" not in message and "%0A  - Part 'ota_1'" in message
    warning = next(x for x in r.stderr.splitlines() if x.startswith("::warning "))
    assert f"file={str(plain).replace('%', '%25').replace(':', '%3A').replace(',', '%2C')}::" \
        in warning


def test_unreadable_table_source_warns_and_checks_the_binary(tmp_path: Path) -> None:
    csv = write(tmp_path / "partitions.csv", OTA_CSV)
    binary = _gen(csv, tmp_path / "partition-table.bin")
    plain = tmp_path / "big.bin"
    plain.write_bytes(b"\xee" * 0x100001)
    r = partkit(binary, "--app", plain, "--table-source", tmp_path / "gone.csv")
    assert r.returncode == 1, r.stderr
    assert "warning: cannot read" in r.stderr and "gone.csv" in r.stderr
    assert f"{binary}: entry 4 (byte 0x60): error: All app partitions" in r.stderr
