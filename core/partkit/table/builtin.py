"""Built-in partition tables: ESP-IDF's menuconfig choices and Arduino-ESP32's board schemes.

A built-in is read wherever a table path is accepted, as ``builtin:NAME``; it is rendered as
CSV text and goes through the same parser and checks as a file, so its bytes are what
gen_esp32part makes of the original CSV. ESP-IDF's tables leave offsets blank (they follow
the table offset, as in an IDF build); Arduino's give every offset.

The layouts are facts of the named origin files (ESP-IDF ``components/partition_table``,
arduino-esp32 ``tools/partitions``), written here as data.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, SourceLocation, closest, error
from partkit.common.record import Record

__all__ = ["PREFIX", "Builtin", "all_builtins", "builtin_name", "csv_text", "lookup"]

PREFIX = "builtin:"
ESP_IDF = "esp-idf"
ARDUINO = "arduino-esp32"

# name, type, subtype, offset (None: placed after the previous one), size, flags
Row = tuple[str, str, str, "int | None", int, str]


class Builtin(Record):
    """One named table: its rows and where the layout comes from."""

    __slots__ = ("description", "family", "name", "rows")

    name: str
    family: str  # ESP_IDF or ARDUINO
    description: str
    rows: tuple[Row, ...]

    def __init__(self, name: str, family: str, description: str,
                 rows: tuple[Row, ...]) -> None:
        self._init(name=name, family=family, description=description, rows=rows)

    @property
    def origin(self) -> str:
        """The file the layout is taken from, in its project."""
        if self.family == ESP_IDF:
            return f"ESP-IDF components/partition_table/partitions_{self.name}.csv"
        return f"arduino-esp32 tools/partitions/{self.name}.csv"


def _entry(name: str, family: str, description: str, *rows: Row) -> Builtin:
    return Builtin(name, family, description, rows)


_TABLES = (
    _entry("singleapp", ESP_IDF,
           "single factory app, no OTA (ESP-IDF menuconfig default)",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
    ),
    _entry("singleapp_coredump", ESP_IDF,
           "single factory app, no OTA, 64K core dump partition",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
        ("coredump", "data", "coredump", None, 0x10000, ""),
    ),
    _entry("singleapp_encr_nvs", ESP_IDF,
           "single factory app, no OTA, NVS encryption keys partition",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
        ("nvs_key", "data", "nvs_keys", None, 0x1000, "encrypted"),
    ),
    _entry("singleapp_large", ESP_IDF,
           "single factory app (1500K), no OTA",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x177000, ""),
    ),
    _entry("singleapp_large_coredump", ESP_IDF,
           "single factory app (1500K), no OTA, 64K core dump partition",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x177000, ""),
        ("coredump", "data", "coredump", None, 0x10000, ""),
    ),
    _entry("singleapp_large_encr_nvs", ESP_IDF,
           "single factory app (1500K), no OTA, NVS encryption keys partition",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x177000, ""),
        ("nvs_key", "data", "nvs_keys", None, 0x1000, "encrypted"),
    ),
    _entry("singleapp_tee", ESP_IDF,
           "TEE app, secure storage and a factory app (1536K)",
        ("tee", "app", "tee_0", None, 0x40000, ""),
        ("secure_storage", "data", "nvs", None, 0x10000, ""),
        ("factory", "app", "factory", None, 0x180000, ""),
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
    ),
    _entry("two_ota", ESP_IDF,
           "factory app and two 1M OTA slots",
        ("nvs", "data", "nvs", None, 0x4000, ""),
        ("otadata", "data", "ota", None, 0x2000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
        ("ota_0", "app", "ota_0", None, 0x100000, ""),
        ("ota_1", "app", "ota_1", None, 0x100000, ""),
    ),
    _entry("two_ota_coredump", ESP_IDF,
           "factory app, two 1M OTA slots, 64K core dump partition",
        ("nvs", "data", "nvs", None, 0x4000, ""),
        ("otadata", "data", "ota", None, 0x2000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
        ("coredump", "data", "coredump", None, 0x10000, ""),
        ("ota_0", "app", "ota_0", None, 0x100000, ""),
        ("ota_1", "app", "ota_1", None, 0x100000, ""),
    ),
    _entry("two_ota_encr_nvs", ESP_IDF,
           "factory app, two 1M OTA slots, NVS encryption keys partition",
        ("nvs", "data", "nvs", None, 0x4000, ""),
        ("otadata", "data", "ota", None, 0x2000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("factory", "app", "factory", None, 0x100000, ""),
        ("ota_0", "app", "ota_0", None, 0x100000, ""),
        ("ota_1", "app", "ota_1", None, 0x100000, ""),
        ("nvs_key", "data", "nvs_keys", None, 0x1000, "encrypted"),
    ),
    _entry("two_ota_large", ESP_IDF,
           "two 1700K OTA slots, no factory app",
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("otadata", "data", "ota", None, 0x2000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
        ("ota_0", "app", "ota_0", None, 0x1a9000, ""),
        ("ota_1", "app", "ota_1", None, 0x1a9000, ""),
    ),
    _entry("two_ota_tee", ESP_IDF,
           "two TEE slots with TEE otadata, secure storage, two 1536K OTA slots",
        ("tee_0", "app", "tee_0", None, 0x40000, ""),
        ("tee_1", "app", "tee_1", None, 0x40000, ""),
        ("tee_otadata", "data", "tee_ota", None, 0x2000, ""),
        ("secure_storage", "data", "nvs", None, 0xe000, ""),
        ("ota_0", "app", "ota_0", None, 0x180000, ""),
        ("ota_1", "app", "ota_1", None, 0x180000, ""),
        ("otadata", "data", "ota", None, 0x2000, ""),
        ("nvs", "data", "nvs", None, 0x6000, ""),
        ("phy_init", "data", "phy", None, 0x1000, ""),
    ),
    _entry("app3M_fat9M_16MB", ARDUINO,
           "16MB: two 3MB OTA slots, 9.9MB FAT, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x300000, ""),
        ("app1", "app", "ota_1", 0x310000, 0x300000, ""),
        ("ffat", "data", "fat", 0x610000, 0x9e0000, ""),
        ("coredump", "data", "coredump", 0xff0000, 0x10000, ""),
    ),
    _entry("bare_minimum_2MB", ARDUINO,
           "2MB: NVS and one 1900K factory app",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("factory", "app", "factory", 0x10000, 0x1db000, ""),
    ),
    _entry("default", ARDUINO,
           "4MB: two 1.25MB OTA slots, 1.4MB SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x140000, ""),
        ("app1", "app", "ota_1", 0x150000, 0x140000, ""),
        ("spiffs", "data", "spiffs", 0x290000, 0x160000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("default_16MB", ARDUINO,
           "16MB: two 6.25MB OTA slots, 3.4MB SPIFFS",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x640000, ""),
        ("app1", "app", "ota_1", 0x650000, 0x640000, ""),
        ("spiffs", "data", "spiffs", 0xc90000, 0x36fffc, ""),
    ),
    _entry("default_8MB", ARDUINO,
           "8MB: two 3.2MB OTA slots, 1.5MB SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x330000, ""),
        ("app1", "app", "ota_1", 0x340000, 0x330000, ""),
        ("spiffs", "data", "spiffs", 0x670000, 0x180000, ""),
        ("coredump", "data", "coredump", 0x7f0000, 0x10000, ""),
    ),
    _entry("default_ffat", ARDUINO,
           "4MB: two 1.25MB OTA slots, 1.4MB FAT, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x140000, ""),
        ("app1", "app", "ota_1", 0x150000, 0x140000, ""),
        ("ffat", "data", "fat", 0x290000, 0x160000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("ffat", ARDUINO,
           "16MB: two 2MB OTA slots, EEPROM, 11.9MB FAT",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x200000, ""),
        ("app1", "app", "ota_1", 0x210000, 0x200000, ""),
        ("ffat", "data", "fat", 0x410000, 0xbef000, ""),
    ),
    _entry("huge_app", ARDUINO,
           "4MB: one 3MB app slot (no OTA), 896K SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x300000, ""),
        ("spiffs", "data", "spiffs", 0x310000, 0xe0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("large_spiffs_16MB", ARDUINO,
           "16MB: two 4.5MB OTA slots, 6.9MB SPIFFS",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x480000, ""),
        ("app1", "app", "ota_1", 0x490000, 0x480000, ""),
        ("spiffs", "data", "spiffs", 0x910000, 0x6efffc, ""),
    ),
    _entry("large_spiffs_8MB", ARDUINO,
           "8MB: two 1.25MB OTA slots, 5.4MB SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x140000, ""),
        ("app1", "app", "ota_1", 0x150000, 0x140000, ""),
        ("spiffs", "data", "spiffs", 0x290000, 0x560000, ""),
        ("coredump", "data", "coredump", 0x7f0000, 0x10000, ""),
    ),
    _entry("max_app_4MB", ARDUINO,
           "4MB: one 3.9MB factory app, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "factory", 0x10000, 0x3e0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("max_app_8MB", ARDUINO,
           "8MB: one 7.9MB factory app, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "factory", 0x10000, 0x7e0000, ""),
        ("coredump", "data", "coredump", 0x7f0000, 0x10000, ""),
    ),
    _entry("min_spiffs", ARDUINO,
           "4MB: two 1.9MB OTA slots, 192K SPIFFS",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x1e0000, ""),
        ("app1", "app", "ota_1", 0x1f0000, 0x1e0000, ""),
        ("spiffs", "data", "spiffs", 0x3d0000, 0x30000, ""),
    ),
    _entry("minimal", ARDUINO,
           "2MB: one 1.25MB app slot, 640K SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x140000, ""),
        ("spiffs", "data", "spiffs", 0x150000, 0xa0000, ""),
        ("coredump", "data", "coredump", 0x1f0000, 0x10000, ""),
    ),
    _entry("no_fs", ARDUINO,
           "4MB: two 1.9MB OTA slots, no filesystem, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x1f0000, ""),
        ("app1", "app", "ota_1", 0x200000, 0x1f0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("no_ota", ARDUINO,
           "4MB: one 2MB app slot (no OTA), 1.9MB SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x200000, ""),
        ("spiffs", "data", "spiffs", 0x210000, 0x1e0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("noota_3g", ARDUINO,
           "4MB: one 1MB app slot (no OTA), 2.9MB SPIFFS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x100000, ""),
        ("spiffs", "data", "spiffs", 0x110000, 0x2e0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("noota_3gffat", ARDUINO,
           "4MB: one 1MB app slot (no OTA), EEPROM, 2.9MB FAT",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x100000, ""),
        ("eeprom", "data", "0x99", 0x110000, 0x1000, ""),
        ("ffat", "data", "fat", 0x111000, 0x2ef000, ""),
    ),
    _entry("noota_ffat", ARDUINO,
           "4MB: one 2MB app slot (no OTA), 1.9MB FAT, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x200000, ""),
        ("ffat", "data", "fat", 0x210000, 0x1e0000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("rainmaker", ARDUINO,
           "4MB: two 1.9MB OTA slots, RainMaker factory NVS",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("ota_0", "app", "ota_0", 0x10000, 0x1e0000, ""),
        ("ota_1", "app", "ota_1", 0x1f0000, 0x1e0000, ""),
        ("fctry", "data", "nvs", 0x3d0000, 0x6000, ""),
    ),
    _entry("rainmaker_4MB_no_ota", ARDUINO,
           "4MB: one 3.9MB app slot, RainMaker factory NVS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("ota_0", "app", "ota_0", 0x10000, 0x3da000, ""),
        ("fctry", "data", "nvs", 0x3ea000, 0x6000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("rainmaker_8MB", ARDUINO,
           "8MB: two 3.9MB OTA slots, RainMaker factory NVS, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("ota_0", "app", "ota_0", 0x10000, 0x3ea000, ""),
        ("ota_1", "app", "ota_1", 0x400000, 0x3ea000, ""),
        ("fctry", "data", "nvs", 0x7ea000, 0x6000, ""),
        ("coredump", "data", "coredump", 0x7f0000, 0x10000, ""),
    ),
    _entry("zigbee", ARDUINO,
           "4MB: two 1.25MB OTA slots, SPIFFS, Zigbee storage, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x140000, ""),
        ("app1", "app", "ota_1", 0x150000, 0x140000, ""),
        ("spiffs", "data", "spiffs", 0x290000, 0x15b000, ""),
        ("zb_storage", "data", "fat", 0x3eb000, 0x4000, ""),
        ("zb_fct", "data", "fat", 0x3ef000, 0x1000, ""),
        ("coredump", "data", "coredump", 0x3f0000, 0x10000, ""),
    ),
    _entry("zigbee_2MB", ARDUINO,
           "2MB: one 1.25MB factory app, SPIFFS, Zigbee storage, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("factory", "app", "factory", 0x10000, 0x140000, ""),
        ("spiffs", "data", "spiffs", 0x150000, 0x9b000, ""),
        ("zb_storage", "data", "fat", 0x1eb000, 0x4000, ""),
        ("zb_fct", "data", "fat", 0x1ef000, 0x1000, ""),
        ("coredump", "data", "coredump", 0x1f0000, 0x10000, ""),
    ),
    _entry("zigbee_8MB", ARDUINO,
           "8MB: two 3.25MB OTA slots, SPIFFS, Zigbee storage, core dump",
        ("nvs", "data", "nvs", 0x9000, 0x5000, ""),
        ("otadata", "data", "ota", 0xe000, 0x2000, ""),
        ("app0", "app", "ota_0", 0x10000, 0x340000, ""),
        ("app1", "app", "ota_1", 0x350000, 0x340000, ""),
        ("spiffs", "data", "spiffs", 0x690000, 0x15b000, ""),
        ("zb_storage", "data", "fat", 0x7eb000, 0x4000, ""),
        ("zb_fct", "data", "fat", 0x7ef000, 0x1000, ""),
        ("coredump", "data", "coredump", 0x7f0000, 0x10000, ""),
    ),
)

_BY_NAME = {b.name: b for b in _TABLES}


def all_builtins() -> tuple[Builtin, ...]:
    """Every built-in, ESP-IDF's first, in a stable order."""
    return _TABLES


def builtin_name(path: str) -> str | None:
    """NAME if ``path`` is ``builtin:NAME``, else None."""
    return path[len(PREFIX):] if path.startswith(PREFIX) else None


def _canonical(name: str) -> str:
    """Accept the origin's file name too: ``two_ota.csv``, ``partitions_two_ota.csv``."""
    text = name.strip()
    if text.lower().endswith(".csv"):
        text = text[:-4]
    if text not in _BY_NAME and text.startswith("partitions_") and text[11:] in _BY_NAME:
        text = text[11:]
    return text


def lookup(name: str) -> Builtin:
    """The built-in called ``name``; an unknown name is an error listing the known ones."""
    found = _BY_NAME.get(_canonical(name))
    if found is not None:
        return found
    guess = closest(_canonical(name), list(_BY_NAME))
    hint = (f"did you mean '{guess}'? " if guess else "") + "known built-in tables: " + ", ".join(
        _BY_NAME) + " ('partkit show --list-builtin' describes them)"
    raise PartkitError(error(f"unknown built-in partition table '{name}'",
                             SourceLocation(PREFIX + name), hint))


def csv_text(table: Builtin) -> str:
    """The table as partition CSV (what the parser reads for ``builtin:NAME``)."""
    lines = [f"# partkit built-in '{table.name}': {table.description}",
             f"# layout of {table.origin}",
             "# Name, Type, SubType, Offset, Size, Flags"]
    for name, ptype, subtype, offset, size, flags in table.rows:
        where = "" if offset is None else f"0x{offset:x}"
        lines.append(f"{name}, {ptype}, {subtype}, {where}, 0x{size:x}, {flags}".rstrip())
    return "\n".join(lines) + "\n"
