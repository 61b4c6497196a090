"""``partkit new``: random requests give tables the reference accepts, that fit, give
every partition at least what was asked, equal OTA slots, and leave no usable gap."""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partkit.cli import main
from partkit.common.errors import PartkitError
from partkit.plan.new import Request, Want, nvs_size, plan, render_csv
from partkit.table import codec
from partkit.table.names import BUILTIN_SUBTYPES
from partkit.table.options import TableOptions

oracle = pytest.importorskip("esp_idf_defs.partitions", reason="esp-idf-defs needs Python 3.10+")

K = 1024
M = 1024 * K
APP_UNIT = 0x10000
FS = {"fat": 0x81, "spiffs": 0x82, "littlefs": 0x83}


def oracle_accepts(text: str, flash_size: int, table_offset: int) -> bool:
    try:
        table = oracle.PartitionTable.from_csv(text, table_offset, 0, None)
        table.verify(table_offset, None)
        table.verify_size_fits(flash_size)
        table.to_binary(True)
        return True
    except (oracle.InputError, oracle.ValidationError, struct.error, ValueError):
        return False


@st.composite
def requests(draw: st.DrawFn) -> Request:
    flash = draw(st.sampled_from([1 * M, 2 * M, 4 * M, 8 * M, 16 * M, 32 * M]))
    ota = draw(st.sampled_from([0, 0, 2, 2, 3, 4, 16]))
    sizes = st.integers(1, 64).map(lambda n: n * 4 * K) | st.integers(1, 600 * K)
    data: list[Want] = []
    for i in range(draw(st.integers(0, 4))):
        subtype = draw(st.sampled_from([0x02, 0x03, 0x04, 0x06, 0x40, 0x81, 0x82, 0x83, 0x99]))
        size = draw(sizes)
        if subtype == 0x02:
            size = max(size, 12 * K)
        data.append(Want(f"d{i}", subtype, size))
    rest = draw(st.booleans())
    if rest:
        data.append(Want("store", draw(st.sampled_from(list(FS.values()))), None))
    app_size = draw(st.integers(1, 3 * M)) if rest or draw(st.booleans()) else None
    return Request(
        flash_size=flash,
        table_offset=draw(st.sampled_from([0x8000, 0x8000, 0x9000, 0xA000, 0x10000])),
        ota=ota, app_size=app_size,
        nvs=draw(st.sampled_from([None, None, 0, 12 * K, 24 * K, 40 * K, 64 * K])),
        otadata=draw(st.booleans()), phy=draw(st.booleans()),
        coredump=draw(st.sampled_from([0, 0, 64 * K, 0x1000 * 3])), data=tuple(data))


def asked(req: Request) -> dict[str, int]:
    """Name -> the least size the request asked for."""
    out = {w.name: w.size or 1 for w in req.data}
    if req.nvs is None or req.nvs:
        out["nvs"] = nvs_size(req)
    if req.coredump:
        out["coredump"] = req.coredump
    if req.ota or req.otadata:
        out["otadata"] = 0x2000
    if req.phy:
        out["phy_init"] = 0x1000
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests())
def test_random_requests(req: Request) -> None:
    try:
        table = plan(req)
    except PartkitError as exc:
        # Refused only when it cannot fit, naming the shortfall exactly: that much more
        # flash makes it fit, one sector less does not.
        (d,) = exc.diagnostics
        assert "missing" in d.message and "does not fit" in d.message
        missing = int(re.search(r"\((\d+) bytes\)", d.message).group(1))  # type: ignore[union-attr]
        assert missing > 0 and missing % 0x1000 == 0
        plan(req.replace(flash_size=req.flash_size + missing))
        with pytest.raises(PartkitError):
            plan(req.replace(flash_size=req.flash_size + missing - 0x1000))
        return
    text = render_csv(table, BUILTIN_SUBTYPES, "generated")
    assert oracle_accepts(text, req.flash_size, req.table_offset), text
    options = TableOptions(table_offset=req.table_offset, flash_size=req.flash_size)
    loaded = codec.load_table(text.encode(), "new.csv", options)
    assert loaded.table == table
    assert table.highest_end() <= req.flash_size

    by_name = {p.name: p for p in table}
    for name, size in asked(req).items():
        assert by_name[name].size >= size, (name, size)
    apps = [p for p in table if p.type == 0]
    assert len(apps) == max(req.ota, 1)
    assert len({p.size for p in apps}) == 1, "app slots differ"
    assert all(p.offset % APP_UNIT == 0 and p.size % APP_UNIT == 0 for p in apps)
    if req.app_size is not None:
        assert apps[0].size >= req.app_size and apps[0].size - req.app_size < APP_UNIT
    if req.ota or req.otadata:
        assert by_name["otadata"].size == 0x2000

    free_end = req.flash_size - table.highest_end()
    rest = [w for w in req.data if w.size is None]
    if rest:
        # 'rest' runs to the flash end (or to a coredump there): nothing usable is left.
        end = by_name[rest[0].name].end
        assert end == req.flash_size or (by_name["coredump"].offset == end
                                          and by_name["coredump"].end == req.flash_size)
        assert free_end == 0
    if req.app_size is None:
        # 'max': the free space could not give every slot one more 64 KiB unit.
        assert free_end < len(apps) * APP_UNIT
        bigger = [p.replace(size=p.size + APP_UNIT) for p in apps]
        assert sum(p.size for p in bigger) - sum(p.size for p in apps) > free_end


def test_defaults_and_header(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "p.csv"
    r = subprocess.run([sys.executable, "-m", "partkit", "new", "--flash-size", "8MB",
                        "--ota", "2", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.startswith("# Generated by partkit")
    assert "partkit new --flash-size 8MB --ota 2 -o" in text
    assert oracle_accepts(text, 8 * M, 0x8000)
    table = codec.load_table(text.encode(), "p.csv", TableOptions()).table
    names = {p.name: p for p in table}
    # Arduino's layout: nvs 20K, otadata 0xe000, the first slot at 0x10000.
    assert names["nvs"].size == 20 * K and names["nvs"].offset == 0x9000
    assert names["otadata"].size == 0x2000 and names["otadata"].offset == 0xE000
    assert names["ota_0"].size == names["ota_1"].size
    assert names["ota_0"].offset == 0x10000
    # max: the slots take the flash; less than one unit per slot is left.
    assert 8 * M - table.highest_end() < 2 * APP_UNIT
    # show's summary on stderr
    assert "Name" in r.stderr and "ota_1" in r.stderr and "free at the end" in r.stderr


def test_factory_default_writes_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "--flash-size", "4MB", "--fs", "littlefs=rest", "--app-size",
                 "1.5M"]) == 0
    out, err = capsys.readouterr()
    table = codec.load_table(out.encode(), "p.csv", TableOptions(flash_size=4 * M)).table
    fs = table.find_by_name("littlefs")
    factory = table.find_by_name("factory")
    assert fs is not None and factory is not None
    assert fs.end == 4 * M and fs.subtype == 0x83
    assert factory.size == 0x180000
    assert "littlefs" in err


@pytest.mark.parametrize("argv, words", [
    (["--flash-size", "2MB", "--ota", "2", "--app-size", "1M"], ["64 KiB", "missing"]),
    (["--flash-size", "4MB", "--fs", "littlefs=rest", "--data", "x:0x40=rest",
      "--app-size", "1M"], ["only one partition", "littlefs", "x"]),
    (["--flash-size", "4MB", "--fs", "littlefs=rest"], ["--app-size"]),
    (["--flash-size", "1MB", "--ota", "16"], ["missing", "64 KiB unit"]),
    (["--flash-size", "4MB", "--data", "cfg=16K"], ["NAME:SUBTYPE=SIZE"]),
    (["--flash-size", "4MB", "--data", "cfg:bogus=16K"], ["unknown data subtype"]),
    (["--flash-size", "4MB", "--fs", "ext4=1M"], ["unknown file system 'ext4'",
                                                  "littlefs, spiffs or fat"]),
    (["--flash-size", "3MB"], ["--flash-size 3MB", "1MB, 2MB, 4MB"]),
    (["--flash-size", "4MB", "--nvs", "8K"], ["at least 12 KiB"]),
    (["--flash-size", "4MB", "--data", "nvs:nvs=16K"], ["requested twice"]),
    (["--flash-size", "lots"], ["--flash-size"]),
])
def test_impossible_requests_exit_2(argv: list[str], words: list[str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", *argv]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_shortfall_is_exact() -> None:
    """The named shortfall is what it takes: that much more flash makes it fit."""
    req = Request(flash_size=2 * M, ota=2, app_size=1 * M)
    with pytest.raises(PartkitError) as info:
        plan(req)
    assert "65536 bytes" in info.value.diagnostics[0].message
    plan(req.replace(flash_size=2 * M + 65536))


@pytest.mark.parametrize("request_, rows", [
    # ESP-IDF's partitions_singleapp.csv: nvs 24K, phy_init 0xf000, factory 0x10000.
    (Request(flash_size=4 * M, phy=True, app_size=1 * M),
     [("nvs", 0x9000, 0x6000), ("phy_init", 0xF000, 0x1000), ("factory", 0x10000, 1 * M)]),
    # ESP-IDF's partitions_two_ota.csv: nvs 16K, otadata 0xd000, phy 0xf000.
    (Request(flash_size=4 * M, ota=2, phy=True, app_size=1 * M, otadata=True),
     [("nvs", 0x9000, 0x4000), ("otadata", 0xD000, 0x2000), ("phy_init", 0xF000, 0x1000),
      ("ota_0", 0x10000, 1 * M), ("ota_1", 0x110000, 1 * M)]),
    # ESP-IDF's partitions_singleapp_coredump.csv: coredump right after the factory app.
    (Request(flash_size=4 * M, phy=True, app_size=1 * M, coredump=64 * K),
     [("nvs", 0x9000, 0x6000), ("phy_init", 0xF000, 0x1000), ("factory", 0x10000, 1 * M),
      ("coredump", 0x110000, 64 * K)]),
    # Arduino's default.csv: nvs 20K, otadata 0xe000, spiffs, coredump at the flash end.
    (Request(flash_size=4 * M, ota=2, app_size=0x140000, coredump=64 * K,
             data=(Want("spiffs", 0x82, None),)),
     [("nvs", 0x9000, 0x5000), ("otadata", 0xE000, 0x2000), ("ota_0", 0x10000, 0x140000),
      ("ota_1", 0x150000, 0x140000), ("spiffs", 0x290000, 0x160000),
      ("coredump", 0x3F0000, 0x10000)]),
    # Arduino's min_spiffs.csv (refused before as '8 KiB missing').
    (Request(flash_size=4 * M, ota=2, app_size=0x1E0000, data=(Want("spiffs", 0x82, None),)),
     [("nvs", 0x9000, 0x5000), ("otadata", 0xE000, 0x2000), ("ota_0", 0x10000, 0x1E0000),
      ("ota_1", 0x1F0000, 0x1E0000), ("spiffs", 0x3D0000, 0x30000)]),
])
def test_system_partitions_below_the_first_app_as_the_anchors(
        request_: Request, rows: list[tuple[str, int, int]]) -> None:
    assert [(p.name, p.offset, p.size) for p in plan(request_)] == rows


def test_explicit_big_nvs_keeps_otadata_before_the_apps() -> None:
    table = plan(Request(flash_size=4 * M, ota=2, nvs=24 * K, phy=True))
    by_name = {p.name: p for p in table}
    assert by_name["nvs"].offset == 0x9000 and by_name["otadata"].offset == 0xF000
    assert by_name["phy_init"].offset == 0x11000 and by_name["ota_0"].offset == 0x20000
    assert table.sorted_by_offset()[-1].name == "ota_1"


def test_new_then_resize_grows_the_last_slot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """otadata after the slots made partkit's own resize refuse to grow ota_1."""
    out = tmp_path / "p.csv"
    assert main(["new", "--flash-size", "4MB", "--ota", "2", "--app-size", "1M",
                 "-o", str(out)]) == 0
    assert main(["resize", str(out), "--set", "ota_1=1536K", "--flash-size", "4MB"]) == 0
    table = codec.load_table(out.read_bytes(), "p.csv", TableOptions()).table
    assert table.find_by_name("ota_1").size == 1536 * K  # type: ignore[union-attr]


@pytest.mark.parametrize("argv, words", [
    (["--ota", "1"], ["--ota 1", "cannot be updated over the air", "--ota 2"]),
    (["--ota", "17"], ["2 to 16 OTA slots"]),
    (["--app-size", "0"], ["--app-size 0", "at least 64K"]),
])
def test_unusable_app_requests_are_errors(capsys, argv: list[str], words: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["new", "--flash-size", "4MB", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
