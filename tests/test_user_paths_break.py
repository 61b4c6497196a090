"""Defects found by breaking issue 24's work as a demanding user would: each test failed
before its fix. The real tools decide: esp-idf-nvs-partition-gen for NVS CSVs, ESP-IDF
v6.0.2's bootloader_utility.c for the boot order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.flash import otadata
from partkit.flash.bootpredict import predict_boot
from partkit.table import codec
from partkit.table.options import TableOptions

TABLE = "nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 1M\n"


def nvs_build(tmp_path: Path, text: str,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    (tmp_path / "partitions.csv").write_text(TABLE)
    csv = tmp_path / "values.csv"
    csv.write_bytes(text.encode())
    out = tmp_path / "nvs.bin"
    capsys.readouterr()
    code = main(["data", "build", str(tmp_path / "partitions.csv"), "--partition", "nvs",
                 "--from", str(csv), "-o", str(out)])
    return code, capsys.readouterr().err, out


def generator(tmp_path: Path, text: str) -> bytes:
    csv = tmp_path / "ref.csv"
    csv.write_bytes(text.encode())
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(csv),
                    "ref.bin", "0x6000", "--outdir", str(tmp_path)],
                   check=True, capture_output=True, cwd=tmp_path)
    return (tmp_path / "ref.bin").read_bytes()


@pytest.mark.parametrize("rows", [
    # A quote inside an unquoted field is a character (the csv module's rule), so JSON and
    # quoted speech are stored as written, not with their quotes dropped.
    'cfg,data,string,{"a":1}\nq,data,string,He said "hi"\n',
    # A quoted value may span lines (a PEM certificate inline); after the closing quote
    # the field goes on.
    'pem,data,string,"-----BEGIN-----\nAAAA\n-----END-----"\nx,data,string,"ab"cd\n',
    # Only \n, \r and \r\n end a line: a form feed or U+2028 inside a value stays in it.
    "ff,data,string,a\x0cb\u2028c\n",
    # base64 may be wrapped: whitespace inside is skipped, as binascii.a2b_base64 does.
    'b64,data,base64,aGVs bG8=\nwrapped,data,base64,"aGVs\nbG8="\n',
])
def test_nvs_csv_fields_are_read_as_the_generator_reads_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str) -> None:
    pytest.importorskip("esp_idf_nvs_partition_gen")
    text = "key,type,encoding,value\nns,namespace,,\n" + rows
    code, err, out = nvs_build(tmp_path, text, capsys)
    assert code == 0, err
    theirs = generator(tmp_path, text)
    assert out.read_bytes()[:len(theirs)] == theirs


def test_nvs_blob_fill_is_checked_before_the_generator(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A blob_fill length the partition cannot hold is an error at its row, not a
    MemoryError from the generator allocating it; malformed fills are all reported."""
    pytest.importorskip("esp_idf_nvs_partition_gen")
    text = ("key,type,encoding,value\nns,namespace,,\n"
            "huge,data,blob_fill(99999999999;0xff),\n"
            "bad,data,blob_fill(5;0xzz),\n"
            "long,data,blob_sz_fill(3;0x00),toolong\n"
            "ok,data,blob_fill(8;0xAA),abc\n")
    code, err, out = nvs_build(tmp_path, text, capsys)
    assert code == 2 and "Traceback" not in err and "MemoryError" not in err, err
    assert "values.csv:3:11: error: blob_fill length 99999999999 bytes" in err, err
    assert "values.csv:4:10: error: " in err and "blob_fill(LENGTH;0xBB)" in err, err
    assert "values.csv:5:32: error: the value is 7 bytes, longer than the fill length 3" \
        in err, err
    assert not out.exists()
    good = "key,type,encoding,value\nns,namespace,,\nok,data,blob_fill(8;0xAA),abc\n"
    code, err, out = nvs_build(tmp_path, good, capsys)
    assert code == 0, err
    theirs = generator(tmp_path, good)
    assert out.read_bytes()[:len(theirs)] == theirs


DUPLICATES = """\
nvs,      data, nvs,     0x9000,   0x4000
otadata,  data, ota,     0xd000,   0x2000
factory,  app,  factory, 0x10000,  1M
factory2, app,  factory, 0x110000, 1M
ota_a,    app,  ota_0,   0x210000, 512K
ota_b,    app,  ota_0,   0x290000, 512K
"""


def test_boot_prediction_takes_the_last_row_of_a_subtype_as_the_bootloader_does() -> None:
    """gen_esp32part accepts two factory rows or two ota_0 rows; the bootloader's
    partition-table walk (bootloader_utility_load_partition_table) overwrites its slot
    for each, so the last row is the one it boots."""
    table = codec.load_table(DUPLICATES.encode(), "t.csv", TableOptions()).table
    erased = otadata.decode(b"\xff" * 0x2000)
    assert predict_boot(table, erased, lambda p: True).boots.name == "factory2"  # type: ignore[union-attr]
    data = bytearray(b"\xff" * 0x2000)
    data[:32] = otadata.encode_entry(1)
    got = predict_boot(table, otadata.decode(bytes(data)), lambda p: True)
    assert got.boots is not None and got.boots.name == "ota_b"
    # Both ota_0 rows count in app_count (2), so seq 2 selects index 1: no such slot,
    # the bootloader falls back down to ota_0 (the last row) first.
    data[:32] = otadata.encode_entry(2)
    got = predict_boot(table, otadata.decode(bytes(data)), lambda p: True)
    assert got.boots is not None and got.boots.name == "ota_b"


def test_littlefs_name_max_above_esp_littlefs_default_is_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """littlefs-python's default name_max is 255; esp_littlefs mounts with
    CONFIG_LITTLEFS_OBJ_NAME_LEN (64 by default) and littlefs refuses a superblock with a
    larger limit (LFS_ERR_INVAL, then format-on-failure wipes it). The real mount decides."""
    littlefs = pytest.importorskip("littlefs")
    from littlefs.context import UserContext

    size = 0x20000
    (tmp_path / "t.csv").write_text(TABLE + f"storage, data, littlefs, 0x110000, {size:#x}\n")
    built: dict[int, Path] = {}
    for name_max in (255, 64):
        fs = littlefs.LittleFS(block_size=4096, block_count=size // 4096, name_max=name_max)
        with fs.open("a.txt", "w") as f:
            f.write("hello")
        path = tmp_path / f"lfs{name_max}.bin"
        path.write_bytes(bytes(fs.context.buffer))
        built[name_max] = path
        ctx = UserContext(size)
        ctx.buffer[:] = path.read_bytes()
        device = littlefs.LittleFS(context=ctx, block_size=4096, block_count=size // 4096,
                                   name_max=64, mount=False)
        if name_max == 255:
            with pytest.raises(littlefs.LittleFSError):
                device.mount()
        else:
            device.mount()
    capsys.readouterr()
    code = main(["check", str(tmp_path / "t.csv"), "--data", f"storage={built[255]}"])
    err = capsys.readouterr().err
    assert code == 0, err  # a warning: the limit is a build setting partkit cannot see
    assert "warning: " in err and "name_max 255" in err and "CONFIG_LITTLEFS_OBJ_NAME_LEN" \
        in err, err
    code = main(["check", str(tmp_path / "t.csv"), "--data", f"storage={built[64]}"])
    err = capsys.readouterr().err
    assert code == 0 and "name_max" not in err, err
    # image check reads the same superblock in a flash image
    assert main(["gen", str(tmp_path / "t.csv"), str(tmp_path / "t.bin")]) == 0
    image = tmp_path / "flash.img"
    head = (b"\xff" * 0x8000 + (tmp_path / "t.bin").read_bytes()).ljust(0x110000, b"\xff")
    image.write_bytes(head + built[255].read_bytes())
    capsys.readouterr()
    main(["image", "check", str(image), "--json"])
    out = capsys.readouterr().out
    assert "littlefs-name-max" in out, out


@pytest.mark.parametrize("value", ["abc", "-5", "1e9", "12.5"])
def test_malformed_source_date_epoch_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        value: str) -> None:
    """A SOURCE_DATE_EPOCH that is not a count of seconds was silently replaced by the
    default time, so a release build believed it had pinned its timestamps; the
    reproducible-builds specification asks for a failure."""
    pytest.importorskip("pyfatfs")
    (tmp_path / "t.csv").write_text(TABLE + "ffat, data, fat, 0x110000, 512K\n")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("hi")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    out = tmp_path / "f.bin"
    capsys.readouterr()
    code = main(["data", "build", str(tmp_path / "t.csv"), "--partition", "ffat", "--from",
                 str(tmp_path / "files"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"SOURCE_DATE_EPOCH: error: '{value}' is not a count of seconds" in err, err
    assert "hint: " in err and not out.exists()


@pytest.mark.parametrize("text", ["1.5e400M", "0x", "1e3M", "1.5.5M", "0x-5", "0x10K",
                                  "\u0663M", "1" * 5000 + "K", "--4M", "4 M B"])
def test_bad_sizes_are_named_not_python_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """A size option the grammar does not allow said 'could not convert string to float',
    'invalid literal for int() with base 0', or crashed with OverflowError (exit 1, a
    traceback) for 1.5e400M."""
    from partkit.common.numbers import parse_size

    with pytest.raises(ValueError, match=r"^invalid size '"):
        parse_size(text)
    csv = tmp_path / "t.csv"
    csv.write_text(TABLE)
    capsys.readouterr()
    code = main(["resize", str(csv), "-n", "--set", f"factory={text}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "invalid size" in err and "convert" not in err and "literal" not in err, err


@pytest.mark.parametrize("text, value", [("4MB", 4 << 20), ("1.5M", 0x180000), ("64K", 0x10000),
                                         ("0x6000", 0x6000), (".5K", 512), ("4 MiB", 4 << 20),
                                         ("24576", 24576), ("0.0001K", 0)])
def test_good_sizes_still_parse(text: str, value: int) -> None:
    from partkit.common.numbers import parse_size

    assert parse_size(text) == value


def test_nvs_from_a_device_is_not_called_a_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "partitions.csv").write_text(TABLE)
    capsys.readouterr()
    code = main(["data", "build", str(tmp_path / "partitions.csv"), "--partition", "nvs",
                 "--from", "/dev/null", "-o", str(tmp_path / "nvs.bin")])
    err = capsys.readouterr().err
    assert code == 2 and "/dev/null: error: " in err, err
    assert "not a directory" not in err and "not a regular file" in err, err
    code = main(["data", "build", str(tmp_path / "partitions.csv"), "--partition", "nvs",
                 "--from", str(tmp_path), "-o", str(tmp_path / "nvs.bin")])
    assert code == 2 and "this is a directory" in capsys.readouterr().err


def test_set_boot_ignores_an_aborted_record_as_esp_ota_ops_does() -> None:
    """esp_rewrite_ota_data (esp_ota_ops.c) takes the active record through
    bootloader_common_ota_select_valid, which rejects invalid/aborted states: with sector 0
    valid (seq 5) and sector 1 aborted (seq 6), the new record goes into sector 1 and the
    valid one stays intact. partkit followed the aborted record and overwrote sector 0,
    the only bootable record, losing it to a power cut mid-write."""
    from partkit.flash.bootselect import select_slot

    data = bytearray(b"\xff" * 0x2000)
    data[:32] = otadata.encode_entry(5, otadata.STATE_UNDEFINED)
    data[0x1000:0x1020] = otadata.encode_entry(6, otadata.STATE_ABORTED)
    new = select_slot(bytes(data), 1, 2)
    first, second = otadata.decode(new)
    assert new[:0x1000] == bytes(data[:0x1000])  # the bootable record untouched
    assert second.valid and second.seq == 6 and second.slot(2) == 1
    active = otadata.active_entry((first, second))
    assert active is not None and active.index == 1


def test_diff_refuses_stdin_for_both_tables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """'partkit diff - -' read the table from stdin for OLD and then an empty stdin for NEW
    (an empty table), and printed a verdict (diff UNSAFE, nvs-label, ...) about a table
    nobody gave."""
    import io

    csv = tmp_path / "t.csv"
    csv.write_text(TABLE)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(csv.read_bytes())))
    capsys.readouterr()
    code = main(["diff", "-", "-"])
    out, err = capsys.readouterr()
    assert code == 2 and "diff " not in out, out
    assert "error: OLD and NEW are both '-'" in err and "hint: " in err, err


def test_resize_reads_builtin_tables_and_stdin_with_an_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README: builtin:NAME and '-' work wherever a table path is read. resize said
    'builtin:default: error: no such file' - the natural start of a custom table."""
    import io

    out = tmp_path / "mine.csv"
    capsys.readouterr()
    code = main(["resize", "builtin:default", "-o", str(out), "--set", "spiffs=1M",
                 "--flash-size", "4MB"])
    assert code == 0, capsys.readouterr().err
    mine = codec.load_table(out.read_bytes(), str(out), TableOptions()).table
    assert mine.find_by_name("spiffs").size == 0x100000  # type: ignore[union-attr]
    # in place is impossible for both: bad input with a hint
    code = main(["resize", "builtin:default", "--set", "spiffs=1M"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be edited in place" in err and "hint: " in err, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(out.read_bytes())))
    code = main(["resize", "-", "-n", "--set", "spiffs=0x80000"])
    err = capsys.readouterr().err
    assert code == 0 and "no such file" not in err, err


def test_nvs_wrapped_base64_file_builds_as_the_generator_builds_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """base64 files are wrapped at 76 columns (base64(1), openssl); the check rejected
    every such file as 'not valid base64' although the generator reads it."""
    pytest.importorskip("esp_idf_nvs_partition_gen")
    import base64

    (tmp_path / "cert.b64").write_bytes(base64.encodebytes(bytes(range(256)) * 2))
    assert b"\n" in (tmp_path / "cert.b64").read_bytes().strip()
    text = "key,type,encoding,value\nns,namespace,,\ncert,file,base64,cert.b64\n"
    code, err, out = nvs_build(tmp_path, text, capsys)
    assert code == 0, err
    theirs = generator(tmp_path, text)
    assert out.read_bytes()[:len(theirs)] == theirs


def test_nvs_namespace_count_is_bounded(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """NVS numbers namespaces 1..254 (255 is 'any namespace'); the generator crashed with
    struct.error at the 256th and wrote index 255 for the 255th."""
    pytest.importorskip("esp_idf_nvs_partition_gen")

    def csv(count: int) -> str:
        return "key,type,encoding,value\n" + "".join(
            f"n{i},namespace,,\nk,data,u8,1\n" for i in range(count)) + "n0,namespace,,\n"

    (tmp_path / "partitions.csv").write_text(
        "nvs, data, nvs, 0x9000, 0x100000\nfactory, app, factory, 0x110000, 1M\n")
    for count, expect in ((254, 0), (300, 2)):
        values = tmp_path / f"ns{count}.csv"
        values.write_text(csv(count))
        capsys.readouterr()
        code = main(["data", "build", str(tmp_path / "partitions.csv"), "--partition", "nvs",
                     "--from", str(values), "-o", str(tmp_path / "nvs.bin")])
        err = capsys.readouterr().err
        assert code == expect and "Traceback" not in err and "struct.error" not in err, err
    assert f"ns300.csv:{2 * 254 + 2}:1: error: namespace 'n254' is the 255th" in err, err
    assert len([line for line in err.splitlines() if ": error: " in line]) == 1, err


def test_an_nvs_csv_placed_as_the_nvs_image_is_warned_about(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'image create --data nvs=values.csv' (the CSV that data build takes, not the image)
    and 'image write IMG -n nvs values.csv' put the text into the partition silently,
    though image check then rejects it (data-contents); the warning only covered files
    recognised as another format."""
    (tmp_path / "t.csv").write_text(TABLE)
    values = tmp_path / "values.csv"
    values.write_text("key,type,encoding,value\nns,namespace,,\nx,data,u8,1\n")
    image = tmp_path / "flash.img"
    capsys.readouterr()
    code = main(["image", "create", str(image), "--flash-size", "4MB", "--table",
                 str(tmp_path / "t.csv"), "--data", f"nvs={values}", "--no-flash-args"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{values}: warning: " in err and "not an nvs image" in err, err
    assert "partkit data build" in err, err
    code = main(["image", "write", str(image), "-n", "nvs", str(values)])
    err = capsys.readouterr().err
    assert code == 0 and "not an nvs image" in err, err
    main(["image", "check", str(image), "--json"])
    assert "data-contents" in capsys.readouterr().out  # what the warning foretells


BOOTLOADER_ROWS = """\
bootloader,      bootloader,      primary, N/A,      N/A
partition_table, partition_table, primary, N/A,      N/A
nvs,             data,            nvs,     0x9000,   0x6000
factory,         app,             factory, 0x10000,  1M
storage,         data,            spiffs,  0x110000, 0x100000
blota,           bootloader,      ota,     0x300000, 0x10000
"""


def test_fill_stops_at_a_bootloader_row() -> None:
    """--fill looked past bootloader-type rows (an OTA or recovery bootloader region) and
    grew 'storage' to the flash end, over 'blota'; only the final reload caught it, as an
    overlap on a row the user never touched."""
    from partkit.common.errors import PartkitError
    from partkit.plan.resize import Edit, resize
    from partkit.table.options import table_options

    options = table_options(chip="esp32c3")
    table = codec.load_table(BOOTLOADER_ROWS.encode(), "t.csv", options).table
    new = resize(table, Edit(fill=("storage",)), 4 << 20)
    storage = new.find_by_name("storage")
    assert storage is not None and storage.end == 0x300000
    with pytest.raises(PartkitError, match="'blota' at 0x300000 directly follows it") as info:
        resize(new, Edit(fill=("storage",), allow_move=True), 4 << 20)
    assert "bootloader rows never move" in str(info.value.diagnostics[0].hint)


def test_new_with_an_unaligned_table_offset_names_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    """--offset 0x8800 failed on the generated text ('<stdout>:5:1: error: partition
    'nvs' offset 0x9800 is not aligned'), a place the user never wrote."""
    capsys.readouterr()
    code = main(["new", "--flash-size", "4MB", "--ota", "2", "--offset", "0x8800"])
    out, err = capsys.readouterr()
    assert code == 2 and not out, out
    assert "error: --offset 0x8800: the partition table starts on a 4K boundary" in err, err
    assert "<stdout>" not in err and "hint: " in err, err
