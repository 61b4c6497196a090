"""partkit.check.checks: check_sizes.py parity (reference §6.1, §6.2, §9.2) and partkit's extras.

Expected texts are built here from the reference's documented formulas (free = slot - size,
``{free/smallest:.0%}``, ``round(free*100/max)``), not copied from partkit's output.
"""

from __future__ import annotations

import pytest
from partkit.check.checks import (
    Budget,
    check_app,
    check_bootloader,
    check_flash,
    check_rules,
    resolve_selector,
    run_checks,
)
from partkit.common.errors import PartkitError
from partkit.flash.appimage import read_image
from partkit.table.codec import load_table
from partkit.table.model import Partition, PartitionTable
from partkit.table.options import TableOptions

K = 1024
M = 1024 * 1024
BASE_CSV = "nvs, data, nvs, , 0x4000\notadata, data, ota, , 0x2000\nphy, data, phy, , 0x1000\n"


def table_of(apps: list[tuple[str, str, str]], table_offset: int = 0) -> PartitionTable:
    """The §9.2 base table plus app rows (name, subtype, size), auto-filled like the test."""
    rows = "".join(f"{name}, app, {sub}, , {size}\n" for name, sub, size in apps)
    opts = TableOptions(table_offset=table_offset, verify=False)
    return load_table((BASE_CSV + rows).encode(), "parts.csv", opts).table


def fake_bin(kilobytes: int, name: str = "app.bin"):  # type: ignore[no-untyped-def]
    """§9.2's fake binaries: kilobytes x 1024 bytes of EE (plain files, not images)."""
    return read_image(b"\xee" * (kilobytes * K), name)


def errors(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.diagnostic.message for f in result.findings if f.is_error]


def warns(result) -> list[str]:  # type: ignore[no-untyped-def]
    """Warnings other than the expected 'plain file, not an image' one."""
    return [f.diagnostic.message for f in result.findings
            if not f.is_error and f.code != "not-an-image"]


def codes(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in result.findings if f.code != "not-an-image"]


# --- §9.2 TestAppSizes -----------------------------------------------------------------


def test_sizes_ok_and_ok_line_formula() -> None:
    table = table_of([("factory", "factory", "1M")])
    result = check_app(table, fake_bin(512))
    assert errors(result) == [] and warns(result) == [] and result.status != "fail"
    size, smallest = 512 * K, 1 * M
    free = smallest - size
    assert result.summary == (
        f"app.bin binary size {size:#x} bytes. Smallest app partition is {smallest:#x} bytes. "
        f"{free:#x} bytes ({free / smallest:.0%}) free.")
    assert result.summary.endswith("0x80000 bytes (50%) free.")


def test_single_part_too_small() -> None:
    table = table_of([("factory", "factory", "1M")])
    result = check_app(table, fake_bin(1500, "too_big.bin"))
    (message,) = errors(result)
    factory = table.find_by_name("factory")
    assert factory is not None
    assert message == (
        f"app partition is too small for binary too_big.bin size {1500 * K:#x}:\n"
        f"  - Part 'factory' 0/0 @ {factory.offset:#x} size {M:#x} "
        f"(overflow {1500 * K - M:#x})")
    assert result.status == "fail" and result.summary is None


def test_all_parts_too_small() -> None:
    table = table_of([("ota_0", "ota_0", "500K"), ("ota_1", "ota_1", "500K"),
                      ("ota_2", "ota_2", "500K")])
    result = check_app(table, fake_bin(501, "just_too_big.bin"))
    (message,) = errors(result)
    assert message.startswith(
        f"All app partitions are too small for binary just_too_big.bin size {501 * K:#x}:")
    assert message.count("(overflow 0x400)") == 3
    assert "Part 'ota_2' 0/18 @" in message  # type and subtype in decimal


def test_one_part_too_small_is_a_warning() -> None:
    table = table_of([("factory", "factory", "500K"), ("ota_0", "ota_0", "1M"),
                      ("ota_1", "ota_1", "1M")])
    result = check_app(table, fake_bin(501, "app.bin"))
    assert errors(result) == []
    (message,) = warns(result)
    assert message.startswith(
        f"1/3 app partitions are too small for binary app.bin size {501 * K:#x}:\n"
        "  - Part 'factory' 0/0 @ ")
    assert result.status == "warning"
    assert codes(result) == ["some-slots-too-small"]


# --- §6.1 details -----------------------------------------------------------------------


def test_nearly_full_warning_uses_percent_format() -> None:
    table = table_of([("factory", "factory", "1M")])
    size = M - 40 * K
    result = check_app(table, read_image(b"\xee" * size, "a.bin"))
    ratio = (M - size) / M
    assert ratio < 0.05
    assert warns(result) == [
        f"The smallest app partition is nearly full ({ratio:.0%} free space left)!"]
    assert errors(result) == []


def test_no_nearly_full_warning_at_five_percent() -> None:
    table = table_of([("factory", "factory", "1280K")])
    size = 1280 * K - 64 * K  # exactly 5 % free: not "< 0.05"
    assert (1280 * K - size) / (1280 * K) == 0.05
    assert codes(check_app(table, read_image(b"\xee" * size, "a.bin"))) == []


def test_percent_rounds_half_even() -> None:
    table = table_of([("factory", "factory", "1M")])
    free = M // 8  # 12.5 % -> "12%" with Python's round-half-even formatting
    result = check_app(table, read_image(b"\xee" * (M - free), "a.bin"))
    assert result.summary is not None and result.summary.endswith(f"({free / M:.0%}) free.")
    assert "(12%)" in result.summary


def test_exactly_full_fits() -> None:
    table = table_of([("factory", "factory", "1M")])
    result = check_app(table, read_image(b"\xee" * M, "a.bin"))
    assert errors(result) == []
    assert "0x0 bytes (0%) free." in (result.summary or "")


def test_tee_slots_excluded_unless_asked() -> None:
    table = table_of([("tee_0", "tee_0", "256K"), ("ota_0", "ota_0", "1536K"),
                      ("ota_1", "ota_1", "1536K")])
    image = fake_bin(256)
    result = check_app(table, image)
    assert [r.partition.name for r in result.candidates] == ["ota_0", "ota_1"]
    assert "Smallest app partition is 0x180000 bytes." in (result.summary or "")
    ptype, sub, label = resolve_selector("app", "tee_0")
    tee = check_app(table, image, ptype=ptype, subtype=sub, label=label)
    assert label == "app (tee_0)"
    assert tee.summary is not None and "Smallest app (tee_0) partition is 0x40000" in tee.summary
    assert warns(tee) == ["The smallest app (tee_0) partition is nearly full (0% free space left)!"]


def test_no_matching_partitions_warns_only() -> None:
    table = table_of([("factory", "factory", "1M")])
    ptype, sub, label = resolve_selector("app", "ota_3")
    result = check_app(table, fake_bin(10), ptype=ptype, subtype=sub, label=label)
    assert result.status == "no-match"
    assert warns(result) == [
        "Partition table does not contain any partitions matching app (ota_3)"]


def test_selector_numbers_and_unknown_words() -> None:
    assert resolve_selector("0x40", None) == (0x40, None, "0x40")
    assert resolve_selector("data", "0x99") == (1, 0x99, "data (0x99)")
    with pytest.raises(PartkitError) as exc:
        resolve_selector("ap", None)
    assert exc.value.exit_code == 2 and "did you mean 'app'" in str(exc.value)
    with pytest.raises(PartkitError, match="unknown partition subtype 'ota_x'"):
        resolve_selector("app", "ota_x")


# --- §6.2 / §9.2 TestBootloaderSizes ------------------------------------------------------


def test_bootloader_ok() -> None:
    result = check_bootloader(fake_bin(25, "bl.bin"), offset=0x1000, table_offset=0x8000)
    limit, size = 0x8000 - 0x1000, 25 * K
    free = limit - size
    assert result.fits and result.findings[0].code == "not-an-image"
    assert not any(f.is_error for f in result.findings)
    assert result.summary == (f"Bootloader binary size {size:#x} bytes. {free:#x} bytes "
                              f"({round(free * 100 / limit)}%) free.")


def test_bootloader_too_big() -> None:
    result = check_bootloader(fake_bin(40, "bl.bin"), offset=0x1000, table_offset=0x8000)
    (message,) = errors(result)
    assert message == (
        "Bootloader binary size 0xa000 bytes is too large for partition table offset 0x8000. "
        "Bootloader binary can be maximum 0x7000 (28672) bytes unless the partition table "
        "offset is increased in the Partition Table section of the project configuration menu.")
    assert result.summary is None


def test_bootloader_exactly_full() -> None:
    result = check_bootloader(fake_bin(40, "bl.bin"), offset=0x1000, table_offset=0xB000)
    assert errors(result) == []
    assert result.summary == "Bootloader binary size 0xa000 bytes. 0x0 bytes (0%) free."


def test_bootloader_round_half_even() -> None:
    # free * 100 / limit = 12.5 -> round() gives 12
    limit = 0x8000
    size = limit - limit // 8
    result = check_bootloader(read_image(b"\xee" * size, "b.bin"), offset=0, table_offset=limit)
    assert result.summary is not None and result.summary.endswith(
        f"({round((limit - size) * 100 / limit)}%) free.")
    assert "(12%)" in result.summary


def test_bootloader_offset_must_precede_table() -> None:
    with pytest.raises(PartkitError, match="not after the bootloader offset"):
        check_bootloader(fake_bin(1), offset=0x8000, table_offset=0x8000)


def test_recovery_bootloader_overlap_and_partitions() -> None:
    table = PartitionTable([Partition("factory", 0, 0, 0x10000, 0x100000),
                            Partition("storage", 1, 0x82, 0x3E0000, 0x20000)], "t.csv")
    image = fake_bin(24, "bl.bin")
    ok = check_bootloader(image, offset=0, table_offset=0x8000, recovery_offset=0x3F0000 - 0x10000)
    assert [f.code for f in ok.findings if f.is_error] == []
    clash = check_bootloader(image, offset=0, table_offset=0x8000, recovery_offset=0x3F0000,
                             table=table)
    assert [f.code for f in clash.findings if f.is_error] == ["recovery-overlaps-partition"]
    assert "'storage'" in errors(clash)[0]
    primary = check_bootloader(image, offset=0, table_offset=0x8000, recovery_offset=0x4000)
    assert "bootloader-overlaps-recovery" in [f.code for f in primary.findings]
    beyond = check_bootloader(image, offset=0, table_offset=0x8000, recovery_offset=0x3FC000,
                              flash_size=0x400000)
    assert "recovery-exceeds-flash" in [f.code for f in beyond.findings]


# --- table vs flash -----------------------------------------------------------------------


def test_flash_check_uses_highest_end_not_last_row() -> None:
    table = PartitionTable([
        Partition("nvs", 1, 2, 0x9000, 0x6000),
        Partition("big", 0, 0, 0x300000, 0x180000),  # ends 0x480000
        Partition("small", 1, 0x82, 0x10000, 0x10000),  # last row, ends low
    ], "t.csv")
    result = check_flash(table, 0x400000)
    assert not result.fits and result.last is not None and result.last.name == "big"
    assert result.free == 0x400000 - 0x480000
    assert result.findings[0].code == "table-exceeds-flash"
    assert "0x80000 bytes beyond" in result.findings[0].diagnostic.message
    fine = check_flash(table, 8 * M)
    assert fine.fits and fine.free == 8 * M - 0x480000 and fine.findings == ()


# --- budgets ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "percent", "value"), [
    ("10%", True, 10.0), ("2.5%", True, 2.5), ("64K", False, 65536), ("0x1000", False, 4096),
    ("4096B", False, 4096)])
def test_budget_parse(text: str, percent: bool, value: float) -> None:
    b = Budget.parse(text)
    assert (b.percent, b.value) == (percent, value)


@pytest.mark.parametrize("text", ["", "ten", "150%", "-1%", "%", "30", "65536"])
def test_budget_parse_rejects(text: str) -> None:
    with pytest.raises(PartkitError) as exc:
        Budget.parse(text, "--warn-free")
    assert exc.value.exit_code == 2


def test_budget_without_unit_says_which_to_write() -> None:
    with pytest.raises(PartkitError) as exc:
        Budget.parse("30", "--warn-free")
    (d,) = exc.value.diagnostics
    assert d.message == "--warn-free: '30' has no unit" and "30%" in (d.hint or "")


def test_inverted_budgets_are_refused() -> None:
    with pytest.raises(PartkitError, match="less than --fail-free 10%"):
        Budget.check_order(Budget.parse("5%"), Budget.parse("10%"))
    Budget.check_order(Budget.parse("10%"), Budget.parse("5%"))
    Budget.check_order(Budget.parse("5%"), Budget.parse("64K"))  # units differ: no order


def test_budgets_warn_and_fail() -> None:
    table = table_of([("factory", "factory", "1M")])
    image = read_image(b"\xee" * (M - 80 * K), "a.bin")  # 7.8 % free
    quiet = check_app(table, image, warn_free=Budget.parse("5%"))
    assert codes(quiet) == []
    soft = check_app(table, image, warn_free=Budget.parse("10%"))
    assert codes(soft) == ["budget-warn"] and soft.status == "warning"
    hard = check_app(table, image, warn_free=Budget.parse("10%"), fail_free=Budget.parse("100K"))
    assert codes(hard) == ["budget-fail"] and hard.status == "fail"
    assert "below the --fail-free budget of 0x19000 bytes" in errors(hard)[0]


# --- rules ------------------------------------------------------------------------------


def rule_table() -> PartitionTable:
    return PartitionTable([
        Partition("nvs", 1, 2, 0x9000, 0x6000),
        Partition("factory", 0, 0, 0x10000, 0x100000),
        Partition("factory_two", 0, 0, 0x110000, 0x100000),
        Partition("ota_0", 0, 0x10, 0x210000, 0x100000),
        Partition("ota_1", 0, 0x11, 0x310000, 0x80000),
        Partition("a_very_long_name1", 1, 0x82, 0x390000, 0x10000),
        Partition("huge", 0, 0x20, 0x1000000, 0x1100000),
    ], "rules.csv")


def test_rules_warn() -> None:
    findings = check_rules(rule_table())
    assert sorted(f.code for f in findings) == sorted([
        "ota-without-otadata", "ota-unequal-sizes", "name-too-long", "app-over-16mib",
        "multiple-factory"])
    assert not any(f.is_error for f in findings)
    by_code = {f.code: f.diagnostic.message for f in findings}
    assert "a_very_long_name1' is 17 bytes" in by_code["name-too-long"]
    assert "ota_0 0x100000, ota_1 0x80000" in by_code["ota-unequal-sizes"]


def test_rules_strict_are_errors() -> None:
    assert all(f.is_error for f in check_rules(rule_table(), strict=True))


def test_rules_clean_table() -> None:
    table = table_of([("ota_0", "ota_0", "1M"), ("ota_1", "ota_1", "1M")])
    assert check_rules(table) == ()
    assert check_rules(PartitionTable([Partition("n" * 15, 1, 2, 0x9000, 0x1000)])) == ()


# --- the whole run ----------------------------------------------------------------------


def test_run_checks_exit_codes() -> None:
    table = table_of([("factory", "factory", "1M")], table_offset=0x8000)
    opts = TableOptions(flash_size=4 * M, chip="esp32c3")
    ok = run_checks(table, opts, app=fake_bin(512), bootloader=fake_bin(20, "bl.bin"))
    assert ok.exit_code == 0 and ok.bootloader is not None and ok.bootloader.offset == 0
    bad = run_checks(table, opts, app=fake_bin(1100))
    assert bad.exit_code == 1 and [f.code for f in bad.errors] == ["app-too-small"]
    with pytest.raises(PartkitError, match="needs the bootloader's flash offset"):
        run_checks(table, TableOptions(), bootloader=fake_bin(20))
