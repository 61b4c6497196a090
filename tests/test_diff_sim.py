"""``partkit diff`` plans replayed on a simulated device (tests/support/fieldsim.py) with a
power cut after every sector operation and in the middle of each: a SAFE verdict holds only
if every such state boots the running app with its NVS readable.

Each class of the field model has a broken and a fixed case; property tests draw thousands
of table pairs from the real corpus (in-process) and compare verdicts with the simulator.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from partkit.common.errors import PartkitError
from partkit.diff import DiffOptions, diff_tables, side_of
from partkit.flash.bootpredict import ota_count, ota_index
from partkit.table.binary import encode
from partkit.table.codec import load_table
from partkit.table.model import Partition, PartitionTable
from partkit.table.options import TableOptions
from support import fieldsim

REAL = Path(__file__).parent / "data" / "conformance" / "real"
MB = 1 << 20
# Rules whose breaking bricks the worst-case device during the plan (the simulator must
# find it). ota-reindex is left out: it is conservative where the bootloader's fallback
# (a blank selected slot, then the next lower one) happens to rescue the running app.
BRICKING = {"flash-size", "md5-row", "running-slot-moved", "running-slot-shrunk",
            "nvs-label", "boot-default"}


def table(text: str) -> PartitionTable:
    return load_table(text.encode(), "t.csv", TableOptions()).table


def device(old: PartitionTable, running: Partition, *, md5: bool = True,
           header: int = 4 * MB, seq_base: int = 0, fill: bool = True,
           rng: random.Random | None = None) -> fieldsim.Device:
    """OLD on a device that runs ``running``: its image fills the slot (``fill``), other app
    slots hold older images, otadata selects the running slot, NVS has pages."""
    rng = rng or random.Random(0)
    dev = fieldsim.Device({}, 0x8000, header, md5, not md5, 1,
                          uses_nvs=old.find_by_name("nvs") is not None)
    dev.put(0x8000, encode(old, md5))
    for n, p in enumerate(p for p in old if p.type == 0):
        if p.offset == running.offset:
            dev.add_image(1, p.offset, p.size if fill else min(p.size, 0x1000 * rng.randint(1, 64)))
        elif p.end <= header:
            dev.add_image(10 + n, p.offset, min(p.size, 0x3000))
    for p in old:
        if p.type == 1 and p.subtype == 2:
            for s in range(p.offset // 0x1000, p.offset // 0x1000 + min(p.size // 0x1000, 4)):
                dev.sectors[s] = f"NVS{s}".encode()
        elif p.type == 1 and p.subtype not in (0,) and p.end <= header:
            dev.sectors[p.offset // 0x1000] = f"DATA{p.name}".encode()
    ota = old.find(1, 0)
    k = ota_index(running)
    if ota and k is not None and ota_count(old):
        seq = k + 1 + ota_count(old) * seq_base
        dev.put(ota[0].offset, fieldsim.otadata_record(seq, fieldsim.STATE_VALID))
        if seq > ota_count(old):  # the record before it, in the other sector
            dev.put(ota[0].offset + 0x1000, fieldsim.otadata_record(seq - 1))
    return dev


def run(old: PartitionTable, new: PartitionTable, running: str, *, erase: tuple[str, ...] = (),
        md5: tuple[bool, bool] = (True, True), flash: int = 4 * MB, seq_base: int = 0,
        fill: bool = True, fast: bool = False) -> tuple[object, fieldsim.Outcome]:
    report = diff_tables(side_of(old, md5=md5[0]), side_of(new, md5=md5[1]),
                         DiffOptions(running=(running,), erase=erase, flash_size=flash))
    run_part = report.running[0]
    dev = device(old, run_part, md5=md5[0], header=flash, seq_base=seq_base, fill=fill)
    watch = fieldsim.watched(dev, (old, new)) if fast else None
    outcome = fieldsim.replay(dev, report.plan, encode(new, md5[1]),
                              (run_part.offset, run_part.end), watch)
    consistent(report)
    return report, outcome


def consistent(report: object) -> None:
    """The report does not contradict itself: a partition the plan copies is not called
    lost, one it erases is not called kept, and a SAFE plan never touches the running app."""
    copied = {s.partition for s in report.plan if s.action == "copy"}  # type: ignore[attr-defined]
    for v in report.violations:  # type: ignore[attr-defined]
        if "contents are lost" in v.message:
            assert not copied & set(v.partitions), (v.message, copied)
    for s in report.plan:  # type: ignore[attr-defined]
        if "the existing pages stay" in s.note:
            assert not any(t.action == "erase" and t.partition == s.partition
                           and t.offset < s.offset for t in report.plan)  # type: ignore[attr-defined]
    if report.safe:  # type: ignore[attr-defined]
        for s in report.plan:  # type: ignore[attr-defined]
            if s.action != "write-table":
                assert not any(s.offset < r.end and r.offset < s.end
                               for r in report.running), s  # type: ignore[attr-defined]


FACTORY_ONLY = """\
nvs,      data, nvs,     0x9000,  0x4000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 1M,
"""
TWO_OTA = """\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
app0,     app,  ota_0,   0x10000, 1M,
app1,     app,  ota_1,   0x110000, 1M,
"""


def test_factory_only_to_ota_in_place_is_safe_and_never_erases_the_running_app() -> None:
    new = table("""\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
ota_0,    app,  ota_0,   0x10000, 1M,
ota_1,    app,  ota_1,   0x110000, 1M,
""")
    report, out = run(table(FACTORY_ONLY), new, "factory")
    assert report.safe, report.violations  # type: ignore[attr-defined]
    assert not any(s.offset < 0x110000 and s.end > 0x10000
                   for s in report.plan if s.action != "write-table")  # type: ignore[attr-defined]
    assert out.failures == [] and not out.touched_running and out.window > 0
    # broken: the running factory app becomes ota_1, which blank otadata does not boot, and
    # the record that would select it lands in OLD's nvs pages
    old = table(FACTORY_ONLY.replace("0x4000", "0x6000"))
    broken = table("""\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
app1,     app,  ota_1,   0x10000, 1M,
app0,     app,  ota_0,   0x110000, 1M,
""")
    report, out = run(old, broken, "factory", erase=("nvs",))
    assert "ota-reindex" in report.broken_codes  # type: ignore[attr-defined]
    assert out.failures


def test_swapped_ota_rows() -> None:
    swapped = table(TWO_OTA.replace("app0,     app,  ota_0,", "app0,     app,  ota_1,")
                    .replace("app1,     app,  ota_1,", "app1,     app,  ota_0,"))
    report, out = run(table(TWO_OTA), swapped, "app0")
    assert report.broken_codes == ("ota-reindex",)  # type: ignore[attr-defined]
    assert out.failures  # forced, the devices boot the other slot for a while
    renamed = table(TWO_OTA.replace("app0,", "appX,").replace("app1,", "app0,").replace(
        "appX,", "app1,"))  # names trade places, subtypes stay with the offsets
    report, out = run(table(TWO_OTA), renamed, "app0")
    assert report.safe and out.failures == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("seq_base", [0, 1, 2, 5])
def test_more_ota_slots_rewrites_otadata_first(seq_base: int) -> None:
    three = table(TWO_OTA.replace("1M,", "0x80000,").replace("0x110000", "0x90000")
                  + "app2, app, ota_2, 0x110000, 0x80000,\n")
    old = table(TWO_OTA.replace("1M,", "0x80000,").replace("0x110000", "0x90000"))
    report, out = run(old, three, "app1", seq_base=seq_base)
    assert report.safe, report.violations  # type: ignore[attr-defined]
    steps = [s.action for s in report.plan]  # type: ignore[attr-defined]
    assert steps.index("write-otadata") < steps.index("write-table")
    assert out.failures == []
    # the same plan without the pre-write: some devices boot another slot
    bare = tuple(s for s in report.plan if s.action != "write-otadata")  # type: ignore[attr-defined]
    dev = device(old, old.find_by_name("app1"), seq_base=seq_base)  # type: ignore[arg-type]
    cut = fieldsim.replay(dev, bare, encode(three, True), (0x90000, 0x110000))
    # (seq - 1) % 3 with seq = 2 + 2b: slot 0 holds an older image, which then boots; slot 2
    # is blank, and the bootloader falls back to slot 1, the running app
    assert bool(cut.failures) is ((1 + 2 * seq_base) % 3 == 0)


def test_ota_count_change_without_a_common_record_is_unsafe() -> None:
    # ota_1 of 2 slots becomes ota_0 of 3: (s-1) odd and divisible by 3 at once: fine;
    # ota_1 of 2 becomes ota_0 of 2 (rows swapped): impossible
    old = table(TWO_OTA)
    new = table(TWO_OTA.replace("app0,     app,  ota_0,", "app0,     app,  ota_1,").replace(
        "app1,     app,  ota_1,", "app1,     app,  ota_0,"))
    report, out = run(old, new, "app1", seq_base=1)
    assert "ota-reindex" in report.broken_codes and out.failures  # type: ignore[attr-defined]


def test_flash_size_is_the_bootloader_header() -> None:
    old = table(TWO_OTA)
    new = table(TWO_OTA + "storage, data, spiffs, 0x400000, 0x100000,\n")
    report, out = run(old, new, "app0", flash=4 * MB)  # 8 MB chip, header says 4MB
    assert report.broken_codes == ("flash-size",) and out.failures  # type: ignore[attr-defined]
    report, out = run(old, new, "app0", flash=8 * MB)
    assert report.safe and out.failures == []  # type: ignore[attr-defined]


def _image(path: Path, table_bytes: bytes, header_size: int, length: int) -> None:
    with open(path, "wb") as f:
        f.write(fieldsim.image_header(0, header_size).ljust(0x8000, b"\xff"))
        f.write(table_bytes.ljust(0x1000, b"\xff"))
        f.truncate(length)


def test_image_sides_take_the_flash_size_from_the_header(tmp_path: Path) -> None:
    from partkit.diff import load_side

    old, new = table(TWO_OTA), table(TWO_OTA + "storage, data, spiffs, 0x400000, 0x100000,\n")
    dump = tmp_path / "dump.bin"
    _image(dump, encode(old, True), 4 * MB, 8 * MB)  # an 8 MB dump whose bootloader says 4MB
    report = diff_tables(load_side(str(dump), TableOptions()), side_of(new),
                         DiffOptions(running=("app0",)))
    assert report.broken_codes == ("flash-size",)
    assert report.flash_size == 4 * MB and "byte 3" in (report.flash_source or "")
    merged = tmp_path / "merged.bin"  # esptool merge-bin without padding: 1.3 MB long
    _image(merged, encode(old, True), 4 * MB, 0x140000)
    report = diff_tables(load_side(str(merged), TableOptions()), side_of(old))
    assert report.safe and report.flash_size == 4 * MB


def test_running_slot_read_from_otadata(tmp_path: Path) -> None:
    from partkit.diff import load_side

    old = table(TWO_OTA)
    dump = tmp_path / "dump.bin"
    _image(dump, encode(old, True), 4 * MB, 4 * MB)
    with open(dump, "r+b") as f:
        f.seek(0xD000)
        f.write(fieldsim.otadata_record(2))  # (2 - 1) % 2 = ota_1
        for n, offset in enumerate((0x10000, 0x110000)):  # both slots hold an app
            f.seek(offset)
            f.write(fieldsim.image_header(n, 4 * MB))
    # app0 moves: fine when app1 runs (which otadata says), unsafe for app0
    new = table(TWO_OTA.replace("app0,     app,  ota_0,   0x10000, 1M,\n", "")
                + "app0,     app,  ota_0,   0x210000, 1M,\n")
    report = diff_tables(load_side(str(dump), TableOptions()), side_of(new))
    assert report.running_from == "otadata" and [p.name for p in report.running] == ["app1"]
    assert report.safe


def test_nvs_label() -> None:
    old = table(TWO_OTA)
    report, out = run(old, table(TWO_OTA.replace("nvs,      data", "nvs2,     data")), "app0")
    assert report.broken_codes == ("nvs-label",) and out.failures  # type: ignore[attr-defined]
    report, out = run(old, table(TWO_OTA.replace("phy_init,", "phy,")), "app0")
    assert report.safe and out.failures == []  # type: ignore[attr-defined]


def test_nvs_growing_in_place_is_harmless_when_its_new_pages_are_erased_first() -> None:
    old = table(TWO_OTA.replace("nvs,      data, nvs,     0x9000,  0x4000,",
                                "nvs,      data, nvs,     0x9000,  0x3000,\n"
                                "keys,     data, nvs_keys, 0xc000, 0x1000,"))
    new = table(TWO_OTA + "keys,     data, nvs_keys, 0x210000, 0x1000,\n")
    report, out = run(old, new, "app0", erase=("keys",))
    assert report.safe, report.violations  # type: ignore[attr-defined]
    assert out.failures == []
    # erasing the grown pages after the table instead: NVS reads a page of nvs_keys
    late = sorted(report.plan, key=lambda s: s.action != "write-table")  # type: ignore[attr-defined]
    dev = device(old, old.find_by_name("app0"))  # type: ignore[arg-type]
    assert fieldsim.replay(dev, tuple(late), encode(new, True), (0x10000, 0x110000)).failures


def test_md5_row_dropped() -> None:
    old = table(TWO_OTA)
    report, out = run(old, old, "app0", md5=(True, False))
    assert report.broken_codes == ("md5-row",) and out.failures  # type: ignore[attr-defined]


def test_encrypted_flag_on_otadata_and_nvs_keys_is_ignored() -> None:
    old = table(TWO_OTA + "keys, data, nvs_keys, 0x210000, 0x1000,\n")
    new = table(TWO_OTA.replace("otadata,  data, ota,     0xd000,  0x2000,",
                                "otadata,  data, ota,     0xd000,  0x2000, encrypted")
                + "keys, data, nvs_keys, 0x210000, 0x1000, encrypted\n")
    report, _ = run(old, new, "app0")
    assert report.safe  # type: ignore[attr-defined]
    new = table(TWO_OTA + "keys, data, spiffs, 0x210000, 0x1000, encrypted\n")
    old = table(TWO_OTA + "keys, data, spiffs, 0x210000, 0x1000,\n")
    report, _ = run(old, new, "app0")
    assert report.broken_codes == ("encryption-changed",)  # type: ignore[attr-defined]


def test_overlapping_copy_runs_from_the_far_end() -> None:
    old = table(TWO_OTA + "store, data, spiffs, 0x210000, 0x8000,\n")
    new = table(TWO_OTA + "store, data, spiffs, 0x214000, 0x8000,\n")
    report, _ = run(old, new, "app0")
    (copy,) = [s for s in report.plan if s.action == "copy"]  # type: ignore[attr-defined]
    assert copy.descending and "high end down" in copy.note
    dev = fieldsim.Device({}, 0x8000, 4 * MB, True, False, 1)
    for i in range(8):
        dev.sectors[0x210 + i] = f"S{i}".encode()
    for descending, intact in ((True, True), (False, False)):
        d = dev.copy()
        for s, token in fieldsim._sector_ops(copy.replace(descending=descending), d, b""):
            d.sectors[s] = d.sectors[token[1]]  # type: ignore[index]
        assert ([d.sectors.get(0x214 + i) for i in range(8)]
                == [f"S{i}".encode() for i in range(8)]) is intact
    # the report does not contradict itself: the rule says the copy cannot survive a cut
    assert "data-moved" in report.broken_codes  # type: ignore[attr-defined]
    assert any("overwrites its own source" in v.message for v in report.violations)  # type: ignore[attr-defined]


# --- property tests over the corpus -------------------------------------------------------


def _corpus() -> list[PartitionTable]:
    out = []
    for path in sorted(REAL.rglob("*.csv")):
        try:
            t = load_table(path.read_bytes(), str(path), TableOptions()).table
        except PartkitError:
            continue
        if any(p.type == 0 for p in t) and max(p.end for p in t) <= 16 * MB:
            out.append(t)
    return out


CORPUS = _corpus()


def _mutate(t: PartitionTable, how: int, rnd: random.Random) -> PartitionTable:
    parts = list(t)
    apps = [i for i, p in enumerate(parts) if p.type == 0]
    if how == 0 and len(apps) >= 2:  # two app rows trade subtypes
        a, b = rnd.sample(apps, 2)
        pa, pb = parts[a], parts[b]
        parts[a], parts[b] = pa.replace(subtype=pb.subtype), pb.replace(subtype=pa.subtype)
    elif how == 1:  # nvs renamed
        parts = [p.replace(name="nvs_x") if p.name == "nvs" else p for p in parts]
    elif how == 2 and apps:  # an app row's subtype changes
        i = rnd.choice(apps)
        parts[i] = parts[i].replace(subtype=rnd.choice([0x00, 0x10, 0x11, 0x12]))
    elif how == 3:  # the last partition grows or shrinks by a sector or a block
        i = max(range(len(parts)), key=lambda j: parts[j].end)
        parts[i] = parts[i].replace(size=max(0x1000, parts[i].size + rnd.choice(
            [-0x10000, -0x1000, 0x1000, 0x10000])))
    elif how == 4 and apps:  # an app slot is dropped
        del parts[rnd.choice(apps)]
    return t.replace(partitions=tuple(parts))


SIM = settings(max_examples=2500, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(CORPUS) - 1), st.integers(0, 4), st.integers(0, 2 ** 16))
def test_watching_fewer_sectors_finds_the_same_failures(a: int, how: int, seed: int) -> None:
    """The property test boots only where a boot can change (fieldsim.watched): the same
    failing states as booting after every sector operation."""
    rnd = random.Random(seed)
    old = CORPUS[a]
    running = rnd.choice([p for p in old if p.type == 0 and p.end <= 16 * MB])
    if fieldsim.judge(device(old, running, header=16 * MB)):
        return
    new = _mutate(old, how, rnd)
    try:
        full = run(old, new, running.name, flash=16 * MB)[1]
        fast = run(old, new, running.name, flash=16 * MB, fast=True)[1]
    except PartkitError:
        return
    # (a state skipped boots as the one before it: the same reasons, fewer repeats)
    assert fast.failures[:1] == full.failures[:1]
    assert {f.split(": ", 1)[1] for f in fast.failures} == \
        {f.split(": ", 1)[1] for f in full.failures}


@SIM
@given(st.integers(0, len(CORPUS) - 1), st.integers(0, len(CORPUS) - 1),
       st.integers(0, 6), st.integers(0, 2 ** 16), st.integers(0, 3), st.booleans())
def test_safe_iff_no_device_bricks(a: int, b: int, how: int, seed: int, seq_base: int,
                                   fill: bool) -> None:
    rnd = random.Random(seed)
    old = CORPUS[a]
    new = _mutate(old, how, rnd) if how < 5 else CORPUS[b]
    apps = [p for p in old if p.type == 0 and p.end <= 16 * MB]
    running = rnd.choice(apps)
    if fieldsim.judge(device(old, running, header=16 * MB, seq_base=seq_base, fill=fill)):
        event("skipped: OLD does not boot this slot")
        return  # OLD itself does not boot this slot (e.g. otadata cannot select it)
    try:
        report, out = run(old, new, running.name, flash=16 * MB, seq_base=seq_base, fill=fill,
                          fast=True)
    except PartkitError:
        event("skipped: NEW is bad input")
        return  # NEW is not a valid table: bad input, no verdict
    codes = set(report.broken_codes)  # type: ignore[attr-defined]
    event("SAFE" if not codes else "UNSAFE, bricks in the simulator" if out.failures
          else "UNSAFE, no brick in the simulator")
    if not codes:
        assert out.failures == [], out.failures[:3]
        assert not out.touched_running
    if fill and codes & BRICKING:
        assert out.failures, codes
    if out.failures:
        assert codes, out.failures[:3]


def test_next_update_slot_follows_subtype_order_not_table_order() -> None:
    # ota_1's row comes first (lower offset): the next OTA after ota_0 is still ota_1, and
    # after ota_1 it wraps to ota_0
    t = table(TWO_OTA.replace("app0,     app,  ota_0,", "app0,     app,  ota_1,").replace(
        "app1,     app,  ota_1,", "app1,     app,  ota_0,"))
    for running, expected in (("app1", "app0"), ("app0", "app1"), ("0x110000", "app0")):
        report = diff_tables(side_of(t), side_of(t), DiffOptions(running=(running,)))
        assert report.next_update is not None and report.next_update.name == expected


def test_running_slot_by_offset() -> None:
    report = diff_tables(side_of(table(TWO_OTA)), side_of(table(TWO_OTA)),
                         DiffOptions(running=("0x110000",)))
    assert [p.name for p in report.running] == ["app1"]
