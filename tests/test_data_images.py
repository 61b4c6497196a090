"""Data partition images (``partkit data build``, ``check --data``, ``image create --data``):
built at the partition's size with the real libraries and read back with them."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main

littlefs = pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")
pytest.importorskip("esp_idf_nvs_partition_gen", reason="esp-idf-nvs-partition-gen missing")
pytest.importorskip("pyfatfs", reason="pyfatfs missing")

TABLE = """\
# Name,   Type, SubType,  Offset,   Size
nvs,      data, nvs,      0x9000,   16K
otadata,  data, ota,      0xd000,   8K
ota_0,    app,  ota_0,    0x10000,  1M
ota_1,    app,  ota_1,    0x110000, 1M
storage,  data, littlefs, 0x210000, 128K
ffat,     data, fat,      0x230000, 256K
legacy,   data, spiffs,   0x270000, 64K
"""

NVS_CSV = """\
key,type,encoding,value
# a comment line
config,namespace,,
count,data,u8,5
offset,data,i32,-7
greeting,data,string,hello world
raw,data,hex2bin,deadbeef
cert,file,binary,cert.pem
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "partitions.csv").write_text(TABLE)
    files = tmp_path / "data"
    (files / "www" / "img").mkdir(parents=True)
    (files / "index.html").write_text("<h1>partkit</h1>\n")
    (files / "www" / "img" / "logo.bin").write_bytes(bytes(range(256)) * 40)
    (files / "config.json").write_text('{"wifi": "on"}\n')
    (tmp_path / "nvs.csv").write_text(NVS_CSV)
    (tmp_path / "cert.pem").write_bytes(b"-----BEGIN CERT-----\nabc\n")
    # The NVS 'file' entry must resolve from the CSV's directory, not the cwd.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path


def build(project: Path, *argv: str) -> int:
    return main(["data", "build", str(project / "partitions.csv"), *argv])


def test_littlefs_image_mounts_back_with_the_files(project: Path) -> None:
    out = project / "storage.bin"
    assert build(project, "--partition", "storage", "--from", str(project / "data"),
                 "-o", str(out)) == 0
    image = out.read_bytes()
    assert len(image) == 128 * 1024  # exactly the partition
    fs = littlefs.LittleFS(block_size=4096, block_count=32, mount=False)
    fs.context.buffer = bytearray(image)
    fs.mount()
    assert sorted(fs.listdir("/")) == ["config.json", "index.html", "www"]
    with fs.open("www/img/logo.bin", "rb") as f:
        assert f.read() == bytes(range(256)) * 40
    with fs.open("index.html", "r") as f:
        assert f.read() == "<h1>partkit</h1>\n"
    assert fs.stat("index.html").size == len("<h1>partkit</h1>\n")


def _nvs_entries(image: bytes) -> dict[tuple[str, str], object]:
    """A small NVS reader (format 2 pages, test oracle): (namespace, key) -> value."""
    items: dict[tuple[int, str], tuple[int, bytes, bytes]] = {}
    namespaces: dict[int, str] = {}
    for page in range(len(image) // 4096):
        raw = image[page * 4096:(page + 1) * 4096]
        state = struct.unpack_from("<I", raw)[0]
        if state == 0xFFFFFFFF:
            continue
        bitmap = raw[32:64]
        i = 0
        while i < 126:
            st = (bitmap[i // 4] >> ((i % 4) * 2)) & 3
            entry = raw[64 + 32 * i:64 + 32 * (i + 1)]
            if st != 2:
                i += 1
                continue
            ns, kind, span = entry[0], entry[1], entry[2]
            key = entry[8:24].split(b"\0", 1)[0].decode()
            payload = b"".join(raw[64 + 32 * j:64 + 32 * (j + 1)] for j in range(i + 1, i + span))
            if ns == 0:
                namespaces[entry[24]] = key
            elif kind == 0x42:  # blob chunks (chunk index in byte 3): concatenate
                size = struct.unpack_from("<H", entry, 24)[0]
                _, _, before = items.get((ns, key), (0x42, b"", b""))
                items[(ns, key)] = (0x42, entry[24:32], before + payload[:size])
            elif kind != 0x48:  # the blob index only describes the chunks
                items[(ns, key)] = (kind, entry[24:32], payload)
            i += max(span, 1)
    out: dict[tuple[str, str], object] = {}
    signed = {0x11: "<b", 0x12: "<h", 0x14: "<i", 0x18: "<q"}
    unsigned = {0x01: "<B", 0x02: "<H", 0x04: "<I", 0x08: "<Q"}
    for (ns, key), (kind, data, payload) in items.items():
        fmt = signed.get(kind) or unsigned.get(kind)
        if fmt is not None:
            value: object = struct.unpack_from(fmt, data)[0]
        elif kind == 0x21:  # string: u16 size (with NUL), then the bytes
            value = payload[:struct.unpack_from("<H", data)[0] - 1].decode()
        else:  # blob, chunks joined above
            value = payload
        out[(namespaces[ns], key)] = value
    return out


def test_nvs_image_decodes_back_to_the_csv(project: Path) -> None:
    out = project / "nvs.bin"
    assert build(project, "--partition", "nvs", "--from", str(project / "nvs.csv"),
                 "-o", str(out)) == 0
    image = out.read_bytes()
    assert len(image) == 16 * 1024
    entries = _nvs_entries(image)
    assert entries[("config", "count")] == 5
    assert entries[("config", "offset")] == -7
    assert entries[("config", "greeting")] == "hello world"
    assert entries[("config", "raw")] == bytes.fromhex("deadbeef")
    assert entries[("config", "cert")] == b"-----BEGIN CERT-----\nabc\n"
    keys = {k for _, k in entries}
    assert {"count", "offset", "greeting", "raw", "cert"} <= keys


def test_fat_image_reads_back(project: Path) -> None:
    from pyfatfs.PyFatFS import PyFatFS

    out = project / "ffat.bin"
    assert build(project, "--partition", "ffat", "--from", str(project / "data"),
                 "-o", str(out)) == 0
    assert out.stat().st_size == 256 * 1024
    fs = PyFatFS(str(out), read_only=True)
    try:
        assert fs.readbytes("/www/img/logo.bin") == bytes(range(256)) * 40
        assert fs.readtext("/config.json") == '{"wifi": "on"}\n'
    finally:
        fs.close()


def test_check_data_fits_and_one_block_over_fails(project: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    table = str(project / "partitions.csv")
    out = project / "storage.bin"
    assert build(project, "--partition", "storage", "--from", str(project / "data"),
                 "-o", str(out)) == 0
    capsys.readouterr()
    assert main(["check", table, "--data", f"storage={out}"]) == 0
    report = capsys.readouterr().out
    assert "data 'storage' at 0x210000" in report and "littlefs: fits" in report
    # The same file system one 4 KiB block bigger: the whole file must fit, so it fails.
    big = project / "storage-big.bin"
    fs = littlefs.LittleFS(block_size=4096, block_count=33)
    big.write_bytes(bytes(fs.context.buffer))
    assert main(["check", table, "--data", f"storage={big}"]) == 1
    captured = capsys.readouterr()
    assert "4096 bytes too many" in captured.err
    assert "partitions.csv:6:1: note: 'storage' is defined here" in captured.err
    assert "check FAILED" in captured.out


def test_check_data_json_and_kind_mismatch(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    jsonschema = pytest.importorskip("jsonschema")
    out = project / "nvs.bin"
    assert build(project, "--partition", "nvs", "--from", str(project / "nvs.csv"),
                 "-o", str(out)) == 0
    capsys.readouterr()
    code = main(["check", str(project / "partitions.csv"), "--data", f"storage={out}",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0  # fits; the wrong kind is a warning
    doc = json.loads(captured.out)
    schema = json.loads((Path(__file__).parent.parent / "docs" /
                         "check-report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["data"][0]["kind"] == "nvs" and doc["data"][0]["fits"] is True
    assert "holds nvs, but partition 'storage' expects littlefs" in captured.err


def test_spiffs_partition_may_hold_littlefs_not_fat(project: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # One table (flash.contents.EXPECTED_CONTENTS) for check --data and image check: FAT in a
    # spiffs partition never mounts (ESP-IDF's and Arduino's FAT mounts want subtype fat).
    table = str(project / "partitions.csv")
    for fmt in ("littlefs", "fat"):
        assert build(project, "--partition", "legacy", "--from", str(project / "data"),
                     "--format", fmt, "-o", str(project / f"legacy-{fmt}.bin")) == 0
    capsys.readouterr()
    assert main(["check", table, "--data", f"legacy={project / 'legacy-littlefs.bin'}"]) == 0
    assert "holds" not in capsys.readouterr().err
    assert main(["check", table, "--data", f"legacy={project / 'legacy-fat.bin'}"]) == 0
    assert ("holds fat, but partition 'legacy' expects spiffs or littlefs"
            in capsys.readouterr().err)
    flash = project / "flash.bin"
    assert main(["image", "create", str(flash), "--table", table, "--flash-size", "4MB",
                 "--data", f"legacy={project / 'legacy-fat.bin'}"]) == 0
    capsys.readouterr()
    main(["image", "check", str(flash), "--json"])
    report = json.loads(capsys.readouterr().out)
    contents = [f for f in report["findings"] if f["code"] == "data-contents"]
    assert [f["partition"] for f in contents] == ["legacy"], report["findings"]


def test_image_create_and_inspect_recognise_built_images(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    table = str(project / "partitions.csv")
    for name, src in (("storage", "data"), ("nvs", "nvs.csv"), ("ffat", "data")):
        assert build(project, "--partition", name, "--from", str(project / src),
                     "-o", str(project / f"{name}.bin")) == 0
    flash = project / "flash.bin"
    assert main(["image", "create", str(flash), "--table", table, "--flash-size", "4MB",
                 "--data", f"storage={project / 'storage.bin'}",
                 "--data", f"nvs={project / 'nvs.bin'}",
                 "--data", f"ffat={project / 'ffat.bin'}"]) == 0
    args = (project / "flash_args").read_text()
    assert "0x210000 storage.bin" in args and "0x9000 nvs.bin" in args
    capsys.readouterr()
    assert main(["image", "inspect", str(flash), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = {p["name"]: p["contents"]["kind"] for p in doc["partitions"]}
    assert kinds["storage"] == "littlefs"
    assert kinds["nvs"] == "nvs"
    assert kinds["ffat"] == "fat"


@pytest.mark.parametrize("argv, words", [
    (["--partition", "legacy", "--from", "data"], ["subtype spiffs", "--format littlefs"]),
    (["--partition", "legacy", "--from", "data", "--format", "spiffs"],
     ["SPIFFS images are not supported", "spiffsgen.py"]),
    (["--partition", "ota_0", "--from", "data"], ["not a data partition"]),
    (["--partition", "storag", "--from", "data"], ["did you mean 'storage'"]),
    (["--partition", "nvs", "--from", "data"], ["built from a CSV file"]),
    (["--partition", "storage", "--from", "nvs.csv"], ["built from a directory"]),
])
def test_bad_requests_exit_2(project: Path, capsys: pytest.CaptureFixture[str],
                             argv: list[str], words: list[str]) -> None:
    argv = [str(project / a) if a in ("data", "nvs.csv") else a for a in argv]
    assert build(project, *argv, "-o", str(project / "x.bin")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert not (project / "x.bin").exists()


def test_files_that_do_not_fit_are_refused(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (project / "data" / "huge.bin").write_bytes(os.urandom(300 * 1024))
    for name in ("storage", "ffat"):
        assert build(project, "--partition", name, "--from", str(project / "data"),
                     "-o", str(project / "x.bin")) == 2
        assert "do not fit" in capsys.readouterr().err
    (project / "big.csv").write_text("key,type,encoding,value\nns,namespace,,\n" + "".join(
        f"k{i},data,string,{'x' * 1000}\n" for i in range(40)))
    assert build(project, "--partition", "nvs", "--from", str(project / "big.csv"),
                 "-o", str(project / "x.bin")) == 2
    assert "do not fit a 16 KiB partition" in capsys.readouterr().err


def test_missing_extra_names_the_install(project: Path) -> None:
    code = ("import sys; sys.modules['littlefs'] = None; from partkit.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "data", "build",
                        str(project / "partitions.csv"), "--partition", "storage", "--from",
                        str(project / "data"), "-o", str(project / "x.bin")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "needs the 'littlefs-python' package" in r.stderr
    assert "pip install partkit[fs]" in r.stderr
    assert "Traceback" not in r.stderr


def test_core_imports_no_fs_library() -> None:
    """Loading the data package (and the CLI module) must not import the libraries."""
    code = ("import sys, partkit.data, partkit.data.check, partkit.cli.data; "
            "print([m for m in ('littlefs', 'pyfatfs', 'esp_idf_nvs_partition_gen') "
            "if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def _littlefs_image(blocks: int, block_size: int = 4096) -> bytes:
    fs = littlefs.LittleFS(block_size=block_size, block_count=blocks, name_max=64)
    with fs.open("a.txt", "wb") as f:
        f.write(b"hello")
    return bytes(fs.context.buffer)


def test_littlefs_built_for_another_geometry_is_refused(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 64 KiB LittleFS in the 128 KiB 'storage' fits by size, but esp_littlefs mounts
    with the partition's 32 blocks: littlefs refuses and format-on-failure wipes it."""
    import json

    table = str(project / "partitions.csv")
    small = project / "small.bin"
    small.write_bytes(_littlefs_image(16))
    device = littlefs.LittleFS(block_size=4096, block_count=32, mount=False)
    device.context.buffer = bytearray(small.read_bytes().ljust(128 * 1024, b"\xff"))
    with pytest.raises(littlefs.errors.LittleFSError):
        device.mount()  # the real library agrees it does not mount
    capsys.readouterr()
    assert main(["check", table, "--data", f"storage={small}"]) == 1
    err = capsys.readouterr().err
    assert "will not mount in 'storage'" in err and "says 16 blocks" in err, err
    assert "the partition has 32 (131072 bytes)" in err and "LFS_ERR_INVAL" in err, err
    tiny_blocks = project / "512.bin"
    tiny_blocks.write_bytes(_littlefs_image(256, 512))  # 128 KiB of 512-byte blocks
    assert main(["check", table, "--data", f"storage={tiny_blocks}"]) == 1
    assert "superblock says 512-byte blocks" in capsys.readouterr().err
    fitting = project / "fitting.bin"
    fitting.write_bytes(_littlefs_image(32))
    assert main(["check", table, "--data", f"storage={fitting}"]) == 0
    # image check reads the same superblock in the assembled image.
    flash = project / "flash.bin"
    assert main(["image", "create", str(flash), "--table", table, "--flash-size", "4MB",
                 "--data", f"storage={small}", "--no-flash-args"]) == 0
    capsys.readouterr()
    assert main(["image", "check", str(flash), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = [f for f in report["findings"] if f["code"] == "littlefs-geometry"]
    assert [f["partition"] for f in found] == ["storage"], report["findings"]


@pytest.mark.parametrize("version, disk", [(None, 0x00020001), ("2.1", 0x00020001),
                                           ("2.0", 0x00020000)])
def test_littlefs_version(project: Path, version: str | None, disk: int) -> None:
    from partkit.flash.lfsmeta import read_superblock

    out = project / "storage.bin"
    extra = ["--littlefs-version", version] if version else []
    assert build(project, "--partition", "storage", "--from", str(project / "data"),
                 *extra, "-o", str(out)) == 0
    image = out.read_bytes()
    fs = littlefs.LittleFS(block_size=4096, block_count=32, mount=False)
    fs.context.buffer = bytearray(image)
    fs.mount()
    assert fs.fs_stat().disk_version == disk  # littlefs itself reads the version back
    sb = read_superblock(lambda at, n: image[at:at + n], len(image))
    assert sb is not None and sb.version == (disk >> 16, disk & 0xFFFF)
    assert (sb.block_size, sb.block_count, sb.name_max) == (4096, 32, 64)


def test_littlefs_version_only_for_littlefs(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert build(project, "--partition", "ffat", "--from", str(project / "data"),
                 "--littlefs-version", "2.0", "-o", str(project / "f.bin")) == 2
    assert "--littlefs-version is for LittleFS images, not fat" in capsys.readouterr().err
    assert not (project / "f.bin").exists()
