"""ESP-AT's secondary partition table (``at_customize.csv``) checked against its parent region.

esp-at reserves one row of its primary table (``partitions_at.csv``), named ``at_customize``
with type 0x40, as a region. ``at_customize.bin`` (an ordinary partition table binary) is
flashed at the start of that region and the user partitions it lists live in the rest of
it, from region + 0x1000 to the region end. The firmware finds them by exact name through
``esp_at_custom_partition_find()`` and ``AT+SYSFLASH``. esp-at's own build runs plain
gen_esp32part on the file and checks none of this, so a bad secondary table only shows up
at runtime. This module holds those rules; the codec does the encoding.

Over 500 lines on purpose: a fifth of it is esp-at's stock row list (names, types and the
releases that added them), and the rules read that list; split, each half would need the
other.
"""

from __future__ import annotations

import difflib

from partkit.common.chips import find_chip
from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error, warning
from partkit.common.numbers import NumberError, parse_int
from partkit.common.record import Record
from partkit.table.codec import encode, load_table
from partkit.table.csvparse import decode_text, parse_csv
from partkit.table.names import (
    APP,
    BOOTLOADER,
    DATA,
    NAME_BYTES,
    PARTITION_TABLE,
    name_overflow,
    type_name,
)
from partkit.table.options import TableOptions
from partkit.table.verify import LONG_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from partkit.table.codec import Loaded
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "KCONFIG_OFFSET",
    "REGION_NAME",
    "REGION_TYPE",
    "STOCK_PARTITIONS",
    "AtCustomize",
    "build",
    "check_secondary",
    "documented_addresses",
    "find_region",
    "kconfig_offset",
]

REGION_NAME = "at_customize"
REGION_TYPE = 0x40
TABLE_SECTOR = 0x1000  # at_customize.bin occupies the region's first sector
CUSTOM_TYPE_MIN = 0x40
CUSTOM_TYPE_MAX = 0xFE  # 0xff is ESP_PARTITION_TYPE_ANY
KCONFIG_OFFSET = "CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET"
V3 = "v3"  # esp-at v3.0 and later: certificates and parameters live in mfg_nvs
V2 = "v2"  # esp-at v2.x: one 0x40 partition per certificate

# Predefined user partitions: name -> (type, stock subtype, esp-at generation).
# Their names and types must not change (esp-at docs, How_to_customize_partitions: "Do not
# change the Name and Type ... SubType, Offset, and Size can be changed").
# Source: the esp-at stock at_customize.csv files, espressif/esp-at at b49e4b98
# (module_config/*/at_customize.csv: mfg_nvs, fs_storage) and the v2.x layout
# (legacy module_esp32_default from commit cf229685: ble_data .. wpa2_ca, fatfs; the mqtt_*
# rows come from the v2.x module_esp32_qcloud and module_esp8266_default files). The qcloud_*
# rows of the qcloud modules are module-specific and left out.
STOCK_PARTITIONS: dict[str, tuple[int, int, str]] = {
    "mfg_nvs": (DATA, 0x02, V3),
    "fs_storage": (DATA, 0xFF, V3),
    "ble_data": (REGION_TYPE, 1, V2),
    "server_cert": (REGION_TYPE, 2, V2),
    "server_key": (REGION_TYPE, 3, V2),
    "server_ca": (REGION_TYPE, 4, V2),
    "client_cert": (REGION_TYPE, 5, V2),
    "client_key": (REGION_TYPE, 6, V2),
    "client_ca": (REGION_TYPE, 7, V2),
    "factory_param": (REGION_TYPE, 8, V2),
    "wpa2_cert": (REGION_TYPE, 9, V2),
    "wpa2_key": (REGION_TYPE, 10, V2),
    "wpa2_ca": (REGION_TYPE, 11, V2),
    "mqtt_cert": (REGION_TYPE, 12, V2),
    "mqtt_key": (REGION_TYPE, 13, V2),
    "mqtt_ca": (REGION_TYPE, 14, V2),
    "fatfs": (DATA, 0x81, V2),
}

def _hex_range(start: int, end: int) -> str:
    return f"0x{start:x}-0x{end - 1:x}" if end > start else f"0x{start:x} (empty)"


def _type_text(ptype: int) -> str:
    name = type_name(ptype)
    return f"{name} (0x{ptype:02x})" if not name.isdigit() else f"0x{ptype:02x}"


def _where(p: Partition, path: str) -> SourceLocation:
    return p.loc if p.loc is not None else SourceLocation(path)


def find_region(primary: PartitionTable, path: str) -> Partition:
    """The ``at_customize`` row of the primary table; PartkitError if it is missing."""
    region = primary.find_by_name(REGION_NAME)
    if region is not None:
        return region
    custom = [p for p in primary if p.type == REGION_TYPE]
    hint = (
        f"esp-at's partitions_at.csv reserves the region with a row like "
        f"'{REGION_NAME}, 0x40, 0, 0x1E000, 0x42000'"
    )
    if custom:
        names = ", ".join(f"'{p.name}'" for p in custom)
        hint = f"type-0x40 rows found: {names}; the parent region must be named '{REGION_NAME}'"
    raise PartkitError(
        error(
            f"the primary table has no '{REGION_NAME}' partition to hold the secondary table",
            SourceLocation(path),
            hint=hint,
        )
    )


def _region_diagnostics(region: Partition, path: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    loc = _where(region, path)
    if region.size <= TABLE_SECTOR:
        out.append(
            error(
                f"the '{REGION_NAME}' region is 0x{region.size:x} bytes: no room for user "
                f"partitions after the 0x{TABLE_SECTOR:x}-byte secondary table",
                loc,
                hint="make the region larger than 0x1000 bytes",
            )
        )
    if region.type != REGION_TYPE:
        out.append(
            warning(
                f"the '{REGION_NAME}' row has type {_type_text(region.type)}; esp-at's stock "
                f"tables use type 0x40",
                loc,
            )
        )
    return out


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _renamed_stock(p: Partition, missing: Iterable[str]) -> str | None:
    """The predefined partition ``p`` most likely is, renamed (absent names only)."""

    candidates = list(missing)
    for stock in candidates:
        if _norm(stock) == _norm(p.name):
            return stock
    # Typo-level similarity only: 'ble_dat' is ble_data, but 'my_cert' (0.75 to 'mqtt_cert')
    # is a plausible new partition.
    close = difflib.get_close_matches(p.name.lower(), candidates, n=1, cutoff=0.85)
    if close:
        return close[0]
    # Same data type and stock subtype as exactly one absent predefined partition. (Not for
    # the 0x40 ones: their numbered subtypes are what a new partition naturally picks.)
    same = [
        s
        for s in candidates
        if STOCK_PARTITIONS[s][0] == DATA and STOCK_PARTITIONS[s][:2] == (p.type, p.subtype)
    ]
    return same[0] if len(same) == 1 else None


def _containment(
    p: Partition, region: Partition, primary: PartitionTable | None, loc: SourceLocation,
    region_note: tuple[tuple[SourceLocation | None, str], ...], auto_offset: bool,
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    first = region.offset + TABLE_SECTOR
    what = f"partition '{p.name}' ({_hex_range(p.offset, p.end)})"
    auto = (
        f" Its offset field is empty, so gen_esp32part (which esp-at runs with the default "
        f"table offset 0x8000) put it at 0x{p.offset:x}; give an explicit offset."
        if auto_offset
        else ""
    )
    if region.offset <= p.offset < first:
        out.append(
            error(
                f"{what} overlaps the secondary table's own sector "
                f"{_hex_range(region.offset, first)}, where at_customize.bin is written",
                loc,
                hint=f"user partitions start at 0x{first:x} ('{REGION_NAME}' offset + 0x1000)",
                notes=region_note,
            )
        )
    elif p.offset < region.offset or p.offset >= region.end:
        collide = ""
        if primary is not None:
            hits = [q for q in primary if q.size and q.offset < p.end and p.offset < q.end]
            if hits:
                collide = "; it overlaps primary partition " + ", ".join(
                    f"'{q.name}' ({_hex_range(q.offset, q.end)})" for q in hits
                )
        out.append(
            error(
                f"{what} lies outside the '{REGION_NAME}' region "
                f"{_hex_range(region.offset, region.end)}{collide}",
                loc,
                hint=(
                    f"user partitions must lie within 0x{first:x}-0x{region.end - 1:x}.{auto}"
                ),
                notes=region_note,
            )
        )
        return out
    if p.end > region.end:
        room = region.end - max(p.offset, first)
        out.append(
            error(
                f"{what} ends 0x{p.end - region.end:x} bytes past the end of the "
                f"'{REGION_NAME}' region {_hex_range(region.offset, region.end)}",
                loc,
                hint=(
                    f"shrink it to 0x{room:x} bytes or less, or enlarge the '{REGION_NAME}' "
                    "row of the primary table (the partitions after it must then move)"
                    if room > 0
                    else f"user partitions must lie within 0x{first:x}-0x{region.end - 1:x}"
                )
                + ("." + auto if auto else ""),
                notes=region_note,
            )
        )
    return out


def _type_diagnostics(p: Partition, loc: SourceLocation) -> list[Diagnostic]:
    t = p.type
    if t in (APP, DATA) or CUSTOM_TYPE_MIN <= t <= CUSTOM_TYPE_MAX:
        if t == APP:
            return [
                warning(
                    f"partition '{p.name}' is an app partition; the bootloader only boots "
                    "apps listed in the primary table",
                    loc,
                )
            ]
        return []
    custom_hint = "user partitions use 'data' (ESP-IDF's types) or a custom type 0x40-0xfe"
    if t in (BOOTLOADER, PARTITION_TABLE):
        message = (
            f"partition '{p.name}' has type {type_name(t)}, which belongs in the primary table"
        )
    elif t == 0xFF:
        message = (
            f"partition '{p.name}' has type 0xff, which esp_partition_find() reads as "
            "'any type'"
        )
    else:
        message = f"partition '{p.name}' has type 0x{t:02x}, which ESP-IDF reserves (0x00-0x3f)"
    return [error(message, loc, hint=custom_hint)]


def _name_diagnostics(
    p: Partition, loc: SourceLocation, primary: PartitionTable | None, primary_path: str
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    # The shared name rule (table.names); an error here, not a warning: the AT firmware
    # looks partitions up by their full name, so a cut name is never found.
    size = name_overflow(p.name)
    if size:
        cut = p.name.encode("utf-8")[:NAME_BYTES].decode("utf-8", "replace")
        out.append(
            error(
                f"partition name '{p.name}' is {size} bytes; names are at most {NAME_BYTES} "
                "bytes",
                loc,
                hint=(
                    f"gen_esp32part would silently cut it to '{cut}', and the AT firmware "
                    "looks partitions up by their full name; shorten it"
                ),
                code=LONG_NAME,
            )
        )
    elif not p.name:
        out.append(warning("partition has an empty name; AT+SYSFLASH cannot address it", loc))
    if primary is not None and p.name:
        twin = primary.find_by_name(p.name)
        if twin is not None:
            out.append(
                warning(
                    f"partition '{p.name}' is also a partition of the primary table; "
                    "esp_partition_find_first() searches the primary table first and will "
                    "return that one",
                    loc,
                    notes=((twin.loc or SourceLocation(primary_path), "primary partition here"),),
                )
            )
    return out


def _stock_diagnostics(secondary: PartitionTable, path: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    present = {p.name for p in secondary}
    legacy = any(STOCK_PARTITIONS.get(n, (0, 0, V3))[0] == REGION_TYPE for n in present)
    generation = V2 if legacy else V3
    missing = [
        n for n, (_, _, gen) in STOCK_PARTITIONS.items() if gen == generation and n not in present
    ]
    renamed: set[str] = set()
    for p in secondary:
        loc = _where(p, path)
        stock = STOCK_PARTITIONS.get(p.name)
        if stock is not None:
            if p.type != stock[0]:
                out.append(
                    error(
                        f"predefined partition '{p.name}' has type {_type_text(p.type)}; "
                        f"esp-at defines it as {_type_text(stock[0])}",
                        loc,
                        hint=(
                            "keep the name and type of esp-at's predefined user partitions "
                            "(subtype, offset and size may change); for a new partition pick "
                            "a new name"
                        ),
                    )
                )
            continue
        was = _renamed_stock(p, missing)
        if was is not None and was not in renamed:
            renamed.add(was)
            out.append(
                error(
                    f"partition '{p.name}' looks like esp-at's predefined partition '{was}' "
                    "renamed; the firmware finds it by that exact name",
                    loc,
                    hint=(
                        f"name it '{was}' (esp-at allows changing its subtype, offset and "
                        "size, not its name or type)"
                    ),
                )
            )
    if generation == V3 and "mfg_nvs" not in present and "mfg_nvs" not in renamed:
        out.append(
            warning(
                "no 'mfg_nvs' partition: esp-at v3.0+ reads its factory parameters and "
                "certificates from it",
                SourceLocation(path),
            )
        )
    return out


def check_secondary(
    secondary: PartitionTable,
    region: Partition,
    path: str,
    primary: PartitionTable | None = None,
    primary_path: str = "",
    auto_offset_lines: frozenset[int] = frozenset(),
) -> list[Diagnostic]:
    """Every esp-at rule for the secondary table: errors and warnings, in table order.

    ``auto_offset_lines`` are CSV lines whose offset field was empty (only used for hints).
    """
    out = _region_diagnostics(region, primary_path)
    region_note: tuple[tuple[SourceLocation | None, str], ...] = (
        (
            region.loc or SourceLocation(primary_path),
            f"'{REGION_NAME}' region {_hex_range(region.offset, region.end)} defined here",
        ),
    )
    for p in secondary:
        loc = _where(p, path)
        auto = p.loc is not None and p.loc.line in auto_offset_lines
        out += _name_diagnostics(p, loc, primary, primary_path)
        out += _type_diagnostics(p, loc)
        out += _containment(p, region, primary, loc, region_note, auto)
    out += _stock_diagnostics(secondary, path)
    return out


def documented_addresses(chip: str, flash_size: int | None = None) -> tuple[int, ...]:
    """The esp-at docs' at_customize.bin address(es) for a chip; empty if undocumented."""
    row = find_chip(chip)
    rows = row.at_customize if row is not None else ()
    if flash_size is not None:
        exact = tuple(a for size, a in rows if size == flash_size)
        if exact:
            return exact
        return tuple(a for size, a in rows if size is None)
    return tuple(a for _, a in rows)


def kconfig_offset(text: str, path: str) -> tuple[int, SourceLocation] | None:
    """``CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET`` from sdkconfig text, if set."""
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == KCONFIG_OFFSET:
            loc = SourceLocation(path, number)
            try:
                return parse_int(value.strip().strip('"')), loc
            except NumberError:
                raise PartkitError(
                    error(f"{KCONFIG_OFFSET} value '{value.strip()}' is not a number", loc)
                ) from None
    return None


def _address_diagnostics(
    region: Partition,
    primary_path: str,
    chip: str | None,
    flash_size: int | None,
    kconfig: tuple[str, str] | None,
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    here = ((region.loc or SourceLocation(primary_path), f"'{REGION_NAME}' row here"),)
    if kconfig is not None:
        found = kconfig_offset(kconfig[1], kconfig[0])
        if found is not None and found[0] != region.offset:
            out.append(
                error(
                    f"{KCONFIG_OFFSET}=0x{found[0]:x} but the '{REGION_NAME}' region of the "
                    f"primary table starts at 0x{region.offset:x}; the firmware reads the "
                    "secondary table from the Kconfig address",
                    found[1],
                    hint=f"set {KCONFIG_OFFSET}=0x{region.offset:x}",
                    notes=here,
                )
            )
    if chip is not None:
        documented = documented_addresses(chip, flash_size)
        if documented and region.offset not in documented:
            listed = " or ".join(f"0x{a:x}" for a in documented)
            out.append(
                warning(
                    f"at_customize.bin goes to 0x{region.offset:x} (from the primary table); "
                    f"esp-at documents {listed} for {chip}",
                    region.loc or SourceLocation(primary_path),
                    hint="fine for a customised partitions_at.csv; otherwise check the "
                    "primary table matches your module",
                )
            )
    return out


class AtCustomize(Record):
    """A checked secondary table: where it goes, its binary, and any warnings."""

    __slots__ = ("address", "binary", "is_binary", "primary", "region", "table", "warnings")

    table: PartitionTable
    primary: PartitionTable
    region: Partition
    address: int
    binary: bytes
    is_binary: bool  # the secondary table was given as a binary
    warnings: tuple[Diagnostic, ...]

    def __init__(
        self,
        table: PartitionTable,
        primary: PartitionTable,
        region: Partition,
        binary: bytes,
        warnings: tuple[Diagnostic, ...],
        is_binary: bool = False,
    ) -> None:
        self._init(
            table=table,
            primary=primary,
            region=region,
            address=region.offset,
            binary=binary,
            warnings=warnings,
            is_binary=is_binary,
        )



def _auto_offset_lines(
    loaded: Loaded, data: bytes, path: str, options: TableOptions
) -> frozenset[int]:
    if loaded.is_binary:
        return frozenset()
    try:
        rows = parse_csv(decode_text(data, path), path, options)
    except PartkitError:
        return frozenset()
    return frozenset(r.loc.line for r in rows if r.offset is None and r.loc.line is not None)


def build(
    data: bytes,
    path: str,
    primary_data: bytes,
    primary_path: str,
    options: TableOptions | None = None,
    primary_options: TableOptions | None = None,
    *,
    chip: str | None = None,
    flash_size: int | None = None,
    sdkconfig: tuple[str, str] | None = None,
) -> AtCustomize:
    """Load both tables, apply every rule, and encode the secondary table.

    ``options`` is how gen_esp32part is run on the secondary table (esp-at: the defaults);
    ``primary_options`` how the primary table is read (its table offset, flash size).
    ``sdkconfig`` is ``(path, text)`` for the Kconfig offset cross-check. Raises
    PartkitError with every error found; warnings come back on the result.
    """
    if options is None:
        options = TableOptions()
    if primary_options is None:
        primary_options = TableOptions(flash_size=flash_size, chip=chip)
    primary = load_table(primary_data, primary_path, primary_options)
    region = find_region(primary.table, primary_path)

    loaded = load_table(data, path, options.replace(verify=False))
    diagnostics = check_secondary(
        loaded.table,
        region,
        path,
        primary.table,
        primary_path,
        _auto_offset_lines(loaded, data, path, options),
    )
    diagnostics += _address_diagnostics(region, primary_path, chip, flash_size, sdkconfig)
    if options.verify:
        try:
            loaded = load_table(data, path, options)
        except PartkitError as exc:
            diagnostics += [d for d in exc.diagnostics if d not in diagnostics]
    # The codec only warns about long names; our error at the same place supersedes that.
    long_names = {d.location for d in diagnostics if d.is_error and d.code == LONG_NAME}
    seen: list[Diagnostic] = []
    for d in (*primary.warnings, *loaded.warnings, *diagnostics):
        superseded = not d.is_error and d.location in long_names and d.code == LONG_NAME
        if d not in seen and not superseded:
            seen.append(d)
    errors = [d for d in seen if d.is_error]
    if errors:
        raise PartkitError(errors + [d for d in seen if not d.is_error])
    return AtCustomize(
        loaded.table, primary.table, region, encode(loaded.table, options), tuple(seen),
        loaded.is_binary,
    )
