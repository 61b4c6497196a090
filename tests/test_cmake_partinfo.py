"""partkit_get_partition_info / partkit.flash.partinfo against parttool's get_partition_info.

The cases and expected strings are ESP-IDF's PartToolTests (reference §9.1): the same
CSVs, selectors and ``--info`` fields, through the core API and through a real CMake
configure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import Project, module_dir, run
from partkit.table.codec import load_table
from partkit.common.errors import PartkitError
from partkit.table.options import TableOptions
from partkit.flash.partinfo import format_info, query_tokens, select

BASIC_CSV = """\
# Name, Type, SubType, Offset, Size, Flags
nvs, data, nvs, 0x9000, 0x4000
otadata, data, ota, 0xd000, 0x2000
phy_init, data, phy, 0xf000, 0x1000
factory, app, factory, 0x10000, 1M
nvs1_user, data, nvs, 0x110000, 0x4000
nvs2_user, data, nvs, 0x114000, 0x4000
nvs_key1, data, nvs_keys, 0x118000, 0x1000, encrypted
nvs_key2, data, nvs_keys, 0x119000, 0x1000, encrypted
"""

FALLBACK_CSV = """\
# Name, Type, SubType, Offset, Size, Flags
nvs, data, nvs, 0x9000, 0x4000
otadata, data, ota, 0xd000, 0x2000
phy_init, data, phy, 0xf000, 0x1000
ota_0, app, ota_0, 0x30000, 1M
ota_1, app, ota_1, , 1M
"""
FALLBACK_NO_OTA0_CSV = FALLBACK_CSV.replace("ota_0", "ota_2")

# (csv, selector, info fields, part_list, parttool's output)
CASES: list[tuple[str, dict[str, str], tuple[str, ...], bool, str]] = [
    ("basic", {"type": "data", "subtype": "nvs"}, ("offset",), False, "0x9000"),
    ("basic", {"type": "data", "subtype": "nvs"}, ("size",), False, "0x4000"),
    ("basic", {"name": "otadata"}, ("offset",), False, "0xd000"),
    ("basic", {"boot_default": "1"}, ("offset",), False, "0x10000"),
    ("basic", {"type": "data", "subtype": "nvs"}, ("name", "offset", "size", "encrypted"),
     False, "nvs 0x9000 0x4000 False"),
    ("basic", {"type": "data", "subtype": "nvs"}, ("name", "offset", "size", "encrypted"),
     True, "nvs 0x9000 0x4000 False nvs1_user 0x110000 0x4000 False "
           "nvs2_user 0x114000 0x4000 False"),
    ("basic", {"type": "data", "subtype": "nvs"}, ("name",), True, "nvs nvs1_user nvs2_user"),
    ("basic", {"type": "data", "subtype": "nvs_keys"}, ("name",), True, "nvs_key1 nvs_key2"),
    ("basic", {"name": "nvs"}, ("encrypted",), False, "False"),
    ("basic", {"name": "nvs1_user"}, ("encrypted",), False, "False"),
    ("basic", {"name": "nvs2_user"}, ("encrypted",), False, "False"),
    ("basic", {"name": "nvs_key1"}, ("encrypted",), False, "True"),
    ("basic", {"name": "nvs_key2"}, ("encrypted",), False, "True"),
    ("basic", {"type": "data", "subtype": "nvs_keys"}, ("name", "encrypted"), True,
     "nvs_key1 True nvs_key2 True"),
    ("basic", {"type": "data", "subtype": "nvs"}, ("name", "encrypted"), True,
     "nvs False nvs1_user False nvs2_user False"),
    ("fallback", {"type": "app", "subtype": "ota_1"}, ("offset",), False, "0x130000"),
    ("fallback", {"boot_default": "1"}, ("offset",), False, "0x30000"),
    ("fallback_no_ota0", {"boot_default": "1"}, ("offset",), False, "0x130000"),
    # Beyond PartToolTests, same rules: numbers, defaults, misses, the other fields.
    ("basic", {"type": "1", "subtype": "0x2"}, ("name",), False, "nvs"),
    ("basic", {"name": "factory"}, (), False, "0x10000 0x100000"),
    ("basic", {"name": "otadata"}, ("type", "subtype", "readonly"), False, "1 0 False"),
    ("basic", {"name": "nosuch"}, ("offset",), False, ""),
    ("basic", {"type": "nosuchtype", "subtype": "nvs"}, ("offset",), False, ""),
    ("basic", {"type": "data", "subtype": "NVS"}, ("offset",), False, ""),  # case-sensitive
    ("basic", {"type": "data", "subtype": "spiffs"}, ("offset",), True, ""),
]
CSVS = {"basic": BASIC_CSV, "fallback": FALLBACK_CSV, "fallback_no_ota0": FALLBACK_NO_OTA0_CSV}


def case_id(case: tuple[str, dict[str, str], tuple[str, ...], bool, str]) -> str:
    csv, selector, fields, part_list, _ = case
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    return f"{csv}-{sel}-{'+'.join(fields) or 'default'}{'-list' if part_list else ''}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_core_matches_parttool(case: tuple[str, dict[str, str], tuple[str, ...], bool, str],
                               tmp_path: Path) -> None:
    csv, selector, fields, part_list, expected = case
    path = tmp_path / f"{csv}.csv"
    path.write_text(CSVS[csv])
    tokens = [f"table={path}", *(f"{k}={v}" for k, v in selector.items()),
              *(f"info={f}" for f in fields), *(["part_list=1"] if part_list else [])]
    assert query_tokens(tokens) == expected


def test_select_needs_exactly_one_selector() -> None:
    table = load_table(BASIC_CSV.encode(), "t.csv", TableOptions()).table
    with pytest.raises(PartkitError, match="exactly one"):
        select(table)
    with pytest.raises(PartkitError, match="exactly one"):
        select(table, name="nvs", boot_default=True)
    # A type alone (parttool would refuse) matches every subtype of it, in table order.
    assert [p.name for p in select(table, type="data", part_list=True)][:3] == [
        "nvs", "otadata", "phy_init"]


def test_unknown_field_is_an_error() -> None:
    table = load_table(BASIC_CSV.encode(), "t.csv", TableOptions()).table
    with pytest.raises(PartkitError, match="unknown partition info field 'adress'"):
        format_info(table.partitions, ["adress"])


def test_extra_subtypes_and_chip(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("bootloader, bootloader, primary, N/A, N/A\n"
                    "factory, app, factory, 0x10000, 1M\nmine, data, blob, , 0x1000\n")
    tokens = [f"table={path}", "chip=esp32", "extra=data,blob,40", "type=data",
              "subtype=blob", "info=name", "info=subtype", "info=offset"]
    assert query_tokens(tokens) == "mine 64 0x110000"
    boot = [f"table={path}", "chip=esp32", "extra=data,blob,40", "name=bootloader"]
    assert query_tokens(boot) == "0x1000 0x7000"
    with pytest.raises(PartkitError, match="unknown chip 'esp99'"):
        query_tokens([f"table={path}", "chip=esp99", "name=factory"])


PROJECT = """\
cmake_minimum_required(VERSION 3.16)
project(lookups NONE)
include("@MODULE@/partkit.cmake")
@LOOKUPS@
partkit_add_partition_table(pt CSV "tables/basic.csv" OFFSET 0x8000)
partkit_get_partition_info(r TABLE pt BOOT_DEFAULT INFO offset size)
message(STATUS "RESULT target-boot = '${r}'")
"""


@pytest.mark.cmake
def test_cmake_function_matches_parttool(tmp_path: Path) -> None:
    src = tmp_path / "lookup project"
    (src / "tables").mkdir(parents=True)
    for name, text in CSVS.items():
        (src / "tables" / f"{name}.csv").write_text(text)
    lookups = []
    for i, (csv, selector, fields, part_list, _) in enumerate(CASES):
        args = [f'TABLE "tables/{csv}.csv"']
        for key, value in selector.items():
            args.append("BOOT_DEFAULT" if key == "boot_default" else f"{key.upper()} {value}")
        if fields:
            args.append("INFO " + " ".join(fields))
        if part_list:
            args.append("PART_LIST")
        lookups.append(f"partkit_get_partition_info(r{i} {' '.join(args)})\n"
                       f"message(STATUS \"RESULT {i} = '${{r{i}}}'\")")
    text = PROJECT.replace("@MODULE@", module_dir().as_posix())
    (src / "CMakeLists.txt").write_text(text.replace("@LOOKUPS@", "\n".join(lookups)))
    log = Project(src, tmp_path / "build", "Ninja").configure()
    results = dict(re.findall(r"-- RESULT (\S+) = '(.*)'", log.output))
    assert {int(k): v for k, v in results.items() if k.isdigit()} == {
        i: c[4] for i, c in enumerate(CASES)}
    assert results["target-boot"] == "0x10000 0x100000"


@pytest.mark.cmake
@pytest.mark.parametrize("call, message", [
    ("partkit_get_partition_info(r TABLE t.csv NAME a BOOT_DEFAULT)", "exactly one of NAME"),
    ("partkit_get_partition_info(r TABLE t.csv SUBTYPE nvs)", "exactly one of NAME"),
    ("partkit_get_partition_info(r TABLE t.csv NAME a INFO adress)",
     "unknown partition info field 'adress'"),
    ("partkit_get_partition_info(r TABLE nope.csv NAME a)", "neither a target nor"),
    ('partkit_get_partition_info(r TABLE "a;b/t.csv" NAME a)',
     "/src/a;b/t.csv` contains a `;`"),
    ("partkit_get_partition_info(r TABLE t.csv NAME a OFSET 1)", "unexpected arguments: OFSET"),
    ("partkit_get_partition_info(r TABLE t.csv NAME a OFFSET 8k)", "OFFSET `8k` is not an"),
    ("partkit_add_partition_table(pt CSV t.csv SECURE v3)", "SECURE must be v1 or v2"),
    ("partkit_add_partition_table(pt CSV t.csv OUTPUT)", "without a value: OUTPUT"),
    ("partkit_add_partition_table(pt OFFSET 0x8000)", "missing required parameter `CSV`"),
    ("partkit_add_partition_table(pt CSV missing.csv)", "missing.csv` does not exist"),
    ("partkit_add_partition_table(t CSV t.csv)", "a target named `t` already exists"),
    ("partkit_check_app_size(t APP_BIN a.bin TABLE nosuch)", "`nosuch` is not a target"),
])
def test_cmake_argument_errors(tmp_path: Path, call: str, message: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.csv").write_text(BASIC_CSV)
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(bad NONE)\n"
        f'include("{module_dir().as_posix()}/partkit.cmake")\n'
        f"add_custom_target(t)\n{call}\n")
    log = Project(src, tmp_path / "build", "Ninja").configure(check=False)
    assert log.returncode != 0
    assert message in " ".join(log.output.split()), log.output


def test_run_helper_reports_output(tmp_path: Path) -> None:
    import sys

    log = run([sys.executable, "-c", "print('hi')"])
    assert (log.returncode, log.output.strip()) == (0, "hi")
