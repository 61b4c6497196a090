"""Differential property tests: partkit vs ESP-IDF's partition classes (esp-idf-defs).

Hypothesis generates thousands of tables and option sets; both implementations must agree
on success or failure, and on every output byte.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partkit.table import binary
from partkit.table import codec
from partkit.common.errors import PartkitError
from partkit.table.options import TableOptions

oracle = pytest.importorskip("esp_idf_defs.partitions", reason="esp-idf-defs needs Python 3.10+")

NAMES = ["nvs", "otadata", "phy_init", "factory", "ota_0", "ota_1", "storage", "app", "data",
         "coredump", "spiffs", "x", "", "a_very_long_partition_name", "fat", "tee_0", "ñame"]
TYPES = ["app", "data", "APP", "Data", "0", "1", "0x40", "64", "0xfe", "bootloader",
         "partition_table", "2", "3", "0x99"]
SUBTYPES = ["", "factory", "ota_0", "ota_1", "ota_15", "test", "tee_0", "nvs", "ota", "phy",
            "coredump", "spiffs", "fat", "littlefs", "undefined", "nvs_keys", "efuse",
            "tee_ota", "0", "1", "2", "0x10", "0x20", "0x82", "6", "primary", "recovery",
            "0x99", "otak"]
FLAGS = ["", "encrypted", "readonly", "encrypted:readonly", ":readonly:", "bogus"]


@st.composite
def numbers(draw: st.DrawFn, small: bool = False) -> str:
    kind = draw(st.sampled_from(["hex", "dec", "k", "m", "neg"] if not small else
                                ["hex", "dec", "k"]))
    if kind == "hex":
        value = draw(st.integers(0, 0x400) if small else st.sampled_from(
            [0x1000, 0x2000, 0x3000, 0x6000, 0x9000, 0xd000, 0xf000, 0x10000, 0x18000,
             0x100000, 0x110000, 0x140000, 0x1F0000, 0x200000, 0x3F0000, 0x400000, 0x800,
             0x123]))
        return draw(st.sampled_from([f"0x{value:x}", f"0X{value:X}"]))
    if kind == "dec":
        return str(draw(st.sampled_from([4096, 8192, 12288, 24576, 65536, 1048576, 100])))
    if kind == "k":
        return f"{draw(st.sampled_from([4, 8, 12, 16, 20, 24, 64, 128, 960, 1500]))}K"
    if kind == "m":
        return f"{draw(st.sampled_from([1, 2, 3, 4]))}M"
    return f"-{draw(st.sampled_from([1, 2, 3, 4]))}M"


@st.composite
def rows(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    ptype = draw(st.sampled_from(TYPES))
    subtype = draw(st.sampled_from(SUBTYPES))
    offset = draw(st.one_of(st.just(""), st.just(""), numbers()))
    size = draw(st.one_of(numbers(), st.just("1M"), st.just("0x2000"), st.just("")))
    flags = draw(st.sampled_from(FLAGS))
    sep = draw(st.sampled_from([",", ", ", " ,\t"]))
    fields = [name, ptype, subtype, offset, size, flags][: draw(st.integers(2, 6))]
    return sep.join(fields)


@st.composite
def tables(draw: st.DrawFn) -> str:
    lines = draw(st.lists(rows(), min_size=0, max_size=12))
    if draw(st.booleans()):
        lines.insert(0, "# Name, Type, SubType, Offset, Size, Flags")
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


@st.composite
def option_sets(draw: st.DrawFn) -> TableOptions:
    return TableOptions(
        table_offset=draw(st.sampled_from([0x8000, 0x8000, 0x9000, 0xA000, 0x10000])),
        primary_bootloader_offset=draw(st.sampled_from([None, 0x0, 0x1000, 0x2000])),
        recovery_bootloader_offset=draw(st.sampled_from([None, 0x3F0000, 0x200000])),
        md5=draw(st.booleans()),
        verify=draw(st.sampled_from([True, True, False])),
        secure=draw(st.sampled_from([None, None, "v1", "v2"])),
        flash_size=draw(st.sampled_from([None, None, 0x100000, 0x200000, 0x400000,
                                         0x800000])),
    )


def run_oracle(text: str, o: TableOptions) -> bytes | None:
    """The reference's bytes, or None when it rejects (or crashes on) the table."""
    try:
        table = oracle.PartitionTable.from_csv(text, o.table_offset, o.primary_bootloader_offset,
                                               o.recovery_bootloader_offset)
        if o.verify:
            table.verify(o.table_offset, o.secure)
        if o.flash_size is not None:
            table.verify_size_fits(o.flash_size)
        out: bytes = table.to_binary(o.md5)
        return out
    except (oracle.InputError, struct.error, ValueError, OverflowError):
        return None


def run_partkit(text: str, o: TableOptions) -> bytes | None:
    try:
        loaded = codec.load_table(text.encode("utf-8"), "gen.csv", o)
        return codec.encode(loaded.table, o)
    except PartkitError as exc:
        assert exc.diagnostics and all(d.message for d in exc.diagnostics)
        return None


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=tables(), options=option_sets())
def test_same_verdict_and_bytes(text: str, options: TableOptions) -> None:
    expected = run_oracle(text, options)
    got = run_partkit(text, options)
    assert got == expected, (text, options)


@settings(max_examples=1500, deadline=None)
@given(text=tables(), options=option_sets())
def test_binary_round_trip(text: str, options: TableOptions) -> None:
    """Our binary decodes (by the oracle and by us) to the same CSV rendering."""
    produced = run_partkit(text, options)
    if produced is None or not options.md5:
        return
    theirs = oracle.PartitionTable.from_binary(produced)
    ours, warnings = binary.decode(produced, "t.bin", True)
    assert codec.to_csv(ours, options) == theirs.to_csv()
    assert binary.encode(ours, True) == produced
