"""Built-in tables: each one's bytes equal what ESP-IDF's generator makes of the origin CSV.

The origin CSVs are test data (tests/data/builtin/SOURCES.tsv names each one's repository,
path and commit; most are in the conformance corpus, whose recorded reference outputs are
compared too). esp-idf-defs (ESP-IDF's partition classes) is the oracle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.flash import tablearea
from partkit.table import builtin, codec
from partkit.table.options import TableOptions

DATA = Path(__file__).parent / "data"
SOURCES = {
    row[0]: row[1:]
    for row in (line.split("\t") for line in
                (DATA / "builtin" / "SOURCES.tsv").read_text().splitlines()[1:])
}
CASES = {}
for _line in (DATA / "conformance" / "cases.jsonl").read_text().splitlines():
    _case = json.loads(_line)
    CASES[_case["id"]] = _case
NAMES = [b.name for b in builtin.all_builtins()]


def oracle(csv_text: str, offset: int = 0x8000) -> bytes:
    partitions = pytest.importorskip("esp_idf_defs.partitions",
                                     reason="esp-idf-defs needs Python 3.10+")
    table = partitions.PartitionTable.from_csv(csv_text, offset, None)
    table.verify(offset)
    data: bytes = table.to_binary()
    return data


def partkit_bytes(name: str, options: TableOptions | None = None) -> bytes:
    options = options or TableOptions()
    return codec.encode(tablearea.load_table_file(f"builtin:{name}", options).table, options)


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "partkit", *args], capture_output=True)


def test_every_builtin_has_an_origin_file() -> None:
    assert set(SOURCES) == set(NAMES)
    assert len(NAMES) == len(set(NAMES))
    families = {b.family for b in builtin.all_builtins()}
    assert families == {"esp-idf", "arduino-esp32"}


@pytest.mark.parametrize("name", NAMES)
def test_builtin_equals_reference_bytes_of_its_origin_csv(name: str) -> None:
    file, repo, path, _commit = SOURCES[name]
    origin = (DATA / file).read_text()
    ours = partkit_bytes(name)
    assert ours == oracle(origin)
    # the same CSV, as partkit renders it, through the oracle
    assert oracle(builtin.csv_text(builtin.lookup(name))) == ours
    # and the reference's own recorded output, where the corpus has this file
    case = CASES.get(f"{file.removeprefix('conformance/real/')}#A")
    if case is not None and case["rc"] == 0:
        assert "--offset" in case["args"] and case["args"][case["args"].index("--offset") + 1] \
            == "0x8000"
        assert (DATA / "conformance" / case["output"]).read_bytes() == ours
    assert path.endswith(f"{name}.csv") and repo.startswith("espressif/")


@pytest.mark.parametrize("name", [b.name for b in builtin.all_builtins()
                                  if b.family == "esp-idf"])
def test_esp_idf_builtins_follow_the_table_offset(name: str) -> None:
    origin = (DATA / SOURCES[name][0]).read_text()
    options = TableOptions(table_offset=0x20000)
    ours = partkit_bytes(name, options)
    assert ours == oracle(origin, 0x20000)
    assert ours != partkit_bytes(name)


def test_golden_md5s_of_the_two_menuconfig_defaults() -> None:
    import hashlib

    assert hashlib.md5(partkit_bytes("singleapp")).hexdigest() == \
        "5d61d196adc3dba01928f264eb169be7"
    assert hashlib.md5(partkit_bytes("two_ota")).hexdigest() == \
        "9f94bf1e89f37d80f4310d5af19a6e59"


def test_origin_file_names_are_accepted() -> None:
    two_ota = partkit_bytes("two_ota")
    assert partkit_bytes("partitions_two_ota.csv") == two_ota
    assert partkit_bytes("two_ota.csv") == two_ota
    assert partkit_bytes("huge_app.csv") == partkit_bytes("huge_app")


def test_gen_by_name_writes_the_reference_bytes(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "pt.bin"
    proc = cli("gen", "-q", "--builtin", "two_ota", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == partkit_bytes("two_ota")
    proc = cli("gen", "-q", "--offset", "0x9000", "builtin:singleapp", str(out))
    assert proc.returncode == 0, proc.stderr
    origin = (DATA / SOURCES["singleapp"][0]).read_text()
    assert out.read_bytes() == oracle(origin, 0x9000)
    # binary -> CSV of a built-in by name
    proc = cli("gen", "--builtin", "huge_app")
    assert proc.returncode == 0
    assert proc.stdout[:2] == b"\xaa\x50"


def test_unknown_name_lists_the_known_ones_with_a_guess(tmp_path: Path) -> None:
    proc = cli("gen", "--builtin", "two_otta", str(tmp_path / "x.bin"))
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "Traceback" not in err
    assert "builtin:two_otta: error: unknown built-in partition table 'two_otta'" in err
    assert "did you mean 'two_ota'?" in err
    assert "huge_app" in err and "singleapp_tee" in err
    assert not (tmp_path / "x.bin").exists()
    proc = cli("show", "builtin:hugeapp")
    assert proc.returncode == 2 and "did you mean 'huge_app'?" in proc.stderr.decode()


def test_show_list_builtin() -> None:
    proc = cli("show", "--list-builtin")
    assert proc.returncode == 0
    text = proc.stdout.decode()
    for name in NAMES:
        assert f"  {name} " in text
    assert "esp-idf:" in text and "arduino-esp32:" in text
    doc = json.loads(cli("show", "--list-builtin", "--json").stdout)
    assert [d["name"] for d in doc] == NAMES
    two_ota = next(d for d in doc if d["name"] == "two_ota")
    assert two_ota["origin"] == "ESP-IDF components/partition_table/partitions_two_ota.csv"


def test_builtin_is_read_by_show_check_and_map(tmp_path: Path) -> None:
    proc = cli("show", "builtin:two_ota", "--json")
    assert proc.returncode == 0
    parts = json.loads(proc.stdout)["partitions"]
    assert [(p["name"], p["offset"]) for p in parts][:2] == [("nvs", 0x9000), ("otadata", 0xD000)]
    proc = cli("check", "builtin:default", "--flash-size", "4MB")
    assert proc.returncode == 0, proc.stderr
    proc = cli("check", "builtin:default_8MB", "--flash-size", "4MB")
    assert proc.returncode != 0  # an 8MB scheme on a 4MB flash
    svg = tmp_path / "map.svg"
    proc = cli("map", "builtin:huge_app", "-o", str(svg))
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in svg.read_text()
    atc = tmp_path / "at_customize.csv"
    atc.write_text("name,type,subtype,offset,size\n")
    proc = cli("at", "gen", str(atc), "--primary", "builtin:two_ota")
    assert proc.returncode == 2  # read, and found without the ESP-AT region
    assert "builtin:two_ota: error: the primary table has no 'at_customize'" in \
        proc.stderr.decode()


def test_headers_from_gen(tmp_path: Path) -> None:
    header, inc = tmp_path / "partitions.h", tmp_path / "extra.inc"
    proc = cli("gen", "-q", "--builtin", "two_ota", str(tmp_path / "pt.bin"), "--header",
               str(header), "--subtypes-header", str(inc), "--extra-partition-subtypes",
               "data,my_sub,0x40", "app,my_app,41")
    assert proc.returncode == 0, proc.stderr
    text = header.read_text()
    assert "#define PARTITION_OTA_1_OFFSET 0x210000\n" in text
    assert "#define PARTITION_OTA_1_SUBTYPE 0x11\n" in text
    assert "#define PARTITION_PHY_INIT_TYPE 0x01\n" in text
    lines = inc.read_text().splitlines()
    assert "ESP_PARTITION_SUBTYPE_DATA_MY_SUB = 0x40," in lines
    assert "ESP_PARTITION_SUBTYPE_APP_MY_APP = 0x41," in lines
