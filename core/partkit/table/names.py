"""Partition type and subtype names: the one registry of keywords.

Values and insertion order follow ESP-IDF's ``esp_partition.h`` / gen_esp32part: the order
matters for "known keywords" lists and for the first-name-wins reverse lookup used when a
binary table is rendered back to CSV.
"""

from __future__ import annotations

from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "APP",
    "BOOTLOADER",
    "DATA",
    "NAME_BYTES",
    "PARTITION_TABLE",
    "SUBTYPE_DATA_OTA",
    "SUBTYPE_DATA_TEE_OTA",
    "TYPES",
    "SubtypeRegistry",
    "type_name",
]

APP = 0x00
DATA = 0x01
BOOTLOADER = 0x02
PARTITION_TABLE = 0x03

# Name -> value, in the reference's insertion order.
TYPES: dict[str, int] = {
    "bootloader": BOOTLOADER,
    "partition_table": PARTITION_TABLE,
    "app": APP,
    "data": DATA,
}

SUBTYPE_APP_FACTORY = 0x00
SUBTYPE_APP_TEST = 0x20
SUBTYPE_APP_OTA_MIN = 0x10  # ota_0 .. ota_15 = 0x10 .. 0x1F
SUBTYPE_APP_OTA_COUNT = 16
SUBTYPE_APP_TEE = (0x30, 0x31)  # tee_0, tee_1
SUBTYPE_DATA_OTA = 0x00
SUBTYPE_DATA_PHY = 0x01
SUBTYPE_DATA_NVS = 0x02
SUBTYPE_DATA_COREDUMP = 0x03
SUBTYPE_DATA_NVS_KEYS = 0x04
SUBTYPE_DATA_EFUSE = 0x05
SUBTYPE_DATA_UNDEFINED = 0x06  # what an empty subtype means for every non-app type
SUBTYPE_DATA_FAT = 0x81
SUBTYPE_DATA_SPIFFS = 0x82
SUBTYPE_DATA_LITTLEFS = 0x83
SUBTYPE_DATA_TEE_OTA = 0x90
SUBTYPE_PRIMARY = 0x00  # bootloader/primary and partition_table/primary
SUBTYPE_BOOTLOADER_RECOVERY = 0x02

_BUILTIN_SUBTYPES: dict[int, dict[str, int]] = {
    BOOTLOADER: {"primary": 0x00, "ota": 0x01, "recovery": 0x02},
    PARTITION_TABLE: {"primary": 0x00, "ota": 0x01},
    APP: {
        "factory": SUBTYPE_APP_FACTORY,
        "test": SUBTYPE_APP_TEST,
        **{f"ota_{i}": SUBTYPE_APP_OTA_MIN + i for i in range(SUBTYPE_APP_OTA_COUNT)},
        "tee_0": SUBTYPE_APP_TEE[0],
        "tee_1": SUBTYPE_APP_TEE[1],
    },
    DATA: {
        "ota": SUBTYPE_DATA_OTA,
        "phy": SUBTYPE_DATA_PHY,
        "nvs": SUBTYPE_DATA_NVS,
        "coredump": SUBTYPE_DATA_COREDUMP,
        "nvs_keys": SUBTYPE_DATA_NVS_KEYS,
        "efuse": SUBTYPE_DATA_EFUSE,
        "undefined": SUBTYPE_DATA_UNDEFINED,
        "esphttpd": 0x80,
        "fat": SUBTYPE_DATA_FAT,
        "spiffs": SUBTYPE_DATA_SPIFFS,
        "littlefs": SUBTYPE_DATA_LITTLEFS,
        "tee_ota": SUBTYPE_DATA_TEE_OTA,
    },
}


# Partition names: the one rule every command applies (gen and check warn, at refuses).
# The binary entry stores the UTF-8 name in a 16-byte field, NUL-padded but with no room
# reserved for a terminator: a 16-byte name fills it exactly. The bootloader and
# esp_partition copy the field into `char label[17]` and terminate it there, so 16-byte
# names work on the device (ESP-IDF's docs say "16 including the terminator", which is
# stricter than the code). Longer names are cut to the first 16 bytes.
NAME_BYTES = 16


def name_overflow(name: str) -> int:
    """The UTF-8 length of ``name`` if it is too long to store whole, else 0."""
    length = len(name.encode("utf-8", "surrogatepass"))
    return length if length > NAME_BYTES else 0


def type_name(ptype: int) -> str:
    """The keyword for a type value, or its decimal number (as gen_esp32part renders it)."""
    for name, value in TYPES.items():
        if value == ptype:
            return name
    return str(ptype)


def lookup(text: str, keywords: Mapping[str, int]) -> int:
    """A selector word as parttool and check_sizes.py read it: exact (case-sensitive)
    keyword, else any-base integer; raises ValueError for anything else."""
    if text in keywords:
        return keywords[text]
    return int(text, 0)


def is_ota_app(ptype: int, subtype: int) -> bool:
    return ptype == APP and SUBTYPE_APP_OTA_MIN <= subtype < SUBTYPE_APP_OTA_MIN + 16


def is_tee_app(ptype: int, subtype: int) -> bool:
    return ptype == APP and subtype in SUBTYPE_APP_TEE


class SubtypeRegistry(Record):
    """Subtype keywords per type, built-ins plus ``--extra-partition-subtypes``.

    Immutable once built; create a new one with :meth:`with_extra` (not ``replace``).
    """

    __slots__ = ("_all_names", "_by_type")

    _by_type: dict[int, dict[str, int]]
    _all_names: frozenset[str]

    def __init__(self, by_type: Mapping[int, Mapping[str, int]] | None = None) -> None:
        src = _BUILTIN_SUBTYPES if by_type is None else by_type
        copy = {t: dict(m) for t, m in src.items()}
        self._init(_by_type=copy,
                   _all_names=frozenset(n for names in copy.values() for n in names))

    def keywords(self, ptype: int) -> Mapping[str, int]:
        """Name -> value for one type (empty for custom types)."""
        return self._by_type.get(ptype, {})

    def all_names(self) -> frozenset[str]:
        """Every subtype keyword of every type."""
        return self._all_names

    def name(self, ptype: int, subtype: int) -> str | None:
        for name, value in self.keywords(ptype).items():
            if value == subtype:
                return name
        return None

    def render(self, ptype: int, subtype: int) -> str:
        name = self.name(ptype, subtype)
        return name if name is not None else str(subtype)

    def with_extra(self, ptype: int, name: str, value: int) -> SubtypeRegistry:
        by_type = {t: dict(m) for t, m in self._by_type.items()}
        by_type.setdefault(ptype, {})[name] = value
        return SubtypeRegistry(by_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubtypeRegistry) and self._by_type == other._by_type

    def __hash__(self) -> int:
        return hash(tuple((t, tuple(m.items())) for t, m in sorted(self._by_type.items())))


BUILTIN_SUBTYPES = SubtypeRegistry()
