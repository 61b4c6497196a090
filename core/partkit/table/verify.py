"""Table validation: gen_esp32part's rules, every violation reported at once.

Errors make the table unusable; warnings (``severity == "warning"``) flag likely mistakes
and become errors under ``strict``.
"""

from __future__ import annotations

from partkit.common.errors import Diagnostic, error, warning
from partkit.common.numbers import align_up
from partkit.table.csvparse import PARTITION_TABLE_SIZE
from partkit.table.layout import alignment, is_primary_region
from partkit.table.names import (
    APP,
    DATA,
    NAME_BYTES,
    SUBTYPE_DATA_COREDUMP,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
    SUBTYPE_DATA_TEE_OTA,
    TYPES,
    name_overflow,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "LONG_NAME",
    "MAX_NAME_BYTES",
    "NVS_RW_MIN_SIZE",
    "OTADATA_SIZE",
    "check_flash_size",
    "verify",
]

NVS_RW_MIN_SIZE = 0x3000  # a read/write NVS needs at least 3 pages
OTADATA_SIZE = 0x2000  # two 4 KiB otadata sectors
MAX_NAME_BYTES = NAME_BYTES  # the rule and its reason live in table.names
MAX_U32 = 0xFFFFFFFF
LONG_NAME = "long-name"  # Diagnostic.code of the name-truncation warning


def _hex(value: int) -> str:
    return f"0x{value:x}" if value >= 0 else f"-0x{-value:x}"


def verify(table: PartitionTable, options: TableOptions) -> list[Diagnostic]:
    """All diagnostics for a laid-out table (errors and warnings), in the reference's order."""
    out: list[Diagnostic] = []
    for p in table:
        out.extend(_check_partition(p, options))
    out.extend(_check_unique_names(table))
    out.extend(_check_placement(table, options))
    out.extend(_check_single(table, SUBTYPE_DATA_OTA, "otadata"))
    out.extend(_check_single(table, SUBTYPE_DATA_TEE_OTA, "TEE otadata"))
    return out


def check_ranges(table: PartitionTable) -> list[Diagnostic]:
    """Values that cannot be encoded in the 32-byte entry (checked even without verify)."""
    out: list[Diagnostic] = []
    for p in table:
        for what, value in (("offset", p.offset), ("size", p.size)):
            if not 0 <= value <= MAX_U32:
                out.append(error(
                    f"partition '{p.name}' {what} {_hex(value)} does not fit in 32 bits",
                    p.loc, f"{what}s must lie in 0x0..0xffffffff"))
    return out


def _check_partition(p: Partition, options: TableOptions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    align = alignment(p.type)
    if p.offset % align:
        down = p.offset // align * align
        out.append(error(
            f"partition '{p.name}' offset {_hex(p.offset)} is not aligned to 0x{align:x}",
            p.loc, f"use 0x{down:x} or 0x{down + align:x}, or leave the offset empty"))
    if p.type == APP:
        size_align = 0x10000 if options.secure == "v1" else 0x1000
        if p.size % size_align:
            up = align_up(p.size, size_align)
            out.append(error(
                f"app partition '{p.name}' size {_hex(p.size)} is not aligned to "
                f"0x{size_align:x}", p.loc,
                f"use 0x{up:x}" + (" (secure boot v1 needs 64 KiB multiples)"
                                   if options.secure == "v1" else "")))
    if p.name in TYPES and TYPES[p.name] != p.type:
        out.append(warning(
            f"partition has name '{p.name}' which is a partition type, but its type is "
            f"0x{p.type:x}", p.loc, "a mistake in the table? rename it or fix the type"))
    elif _misleading_subtype_name(p, options):
        out.append(warning(
            f"partition has name '{p.name}' which is a partition subtype, but its type is "
            f"0x{p.type:x} and subtype 0x{p.subtype:x}", p.loc,
            "a mistake in the table? rename it or fix the subtype"))
    if p.readonly and p.type == DATA and p.subtype in (SUBTYPE_DATA_OTA, SUBTYPE_DATA_COREDUMP):
        out.append(error(
            f"partition '{p.name}' (type {p.type}, subtype {p.subtype}) is always read-write "
            "and cannot be read-only", p.loc, "remove the 'readonly' flag"))
    if (p.type == DATA and p.subtype == SUBTYPE_DATA_NVS and p.size < NVS_RW_MIN_SIZE
            and not p.readonly):
        out.append(error(
            f"NVS partition '{p.name}' of size 0x{p.size:x} must be flagged 'readonly' "
            f"(a read/write NVS needs at least 0x{NVS_RW_MIN_SIZE:x})", p.loc,
            f"make it 0x{NVS_RW_MIN_SIZE:x} or larger, or add the 'readonly' flag"))
    length = name_overflow(p.name)
    if length:
        out.append(warning(
            f"partition name '{p.name}' is {length} bytes; the table stores only the "
            f"first {NAME_BYTES}", p.loc, "shorten the name: lookups by name will fail",
            code=LONG_NAME))
    return out


def _misleading_subtype_name(p: Partition, options: TableOptions) -> bool:
    registry = options.subtypes
    if p.name not in registry.all_names():
        return False
    own = registry.keywords(p.type)
    return own.get(p.name) != p.subtype


def _check_unique_names(table: PartitionTable) -> list[Diagnostic]:
    seen: dict[str, Partition] = {}
    out: list[Diagnostic] = []
    for p in table:
        first = seen.setdefault(p.name, p)
        if first is not p:
            out.append(error(
                f"partition name '{p.name}' is used more than once", p.loc,
                "partition names must be unique",
                ((first.loc, f"'{p.name}' first defined here"),)))
    return out


def _check_placement(table: PartitionTable, options: TableOptions) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    table_end = options.table_offset + PARTITION_TABLE_SIZE
    prev: Partition | None = None
    for p in table.sorted_by_offset():
        if p.offset < table_end and not is_primary_region(p.type, p.subtype):
            out.append(error(
                f"partition '{p.name}' offset {_hex(p.offset)} is below 0x{table_end:x}, the "
                f"end of the partition table at 0x{options.table_offset:x}", p.loc,
                "partitions must start after the partition table sector"))
        if prev is not None and p.offset < prev.end:
            out.append(error(
                f"partition '{p.name}' at {_hex(p.offset)} overlaps '{prev.name}' "
                f"(0x{prev.offset:x}-0x{prev.end - 1:x})", p.loc, None,
                ((prev.loc, f"'{prev.name}' is defined here"),)))
        prev = p
    return out


def _check_single(table: PartitionTable, subtype: int, what: str) -> list[Diagnostic]:
    found = table.find(DATA, subtype)
    if len(found) > 1:
        return [error(
            f"found {len(found)} {what} partitions; only one may have type data and "
            f"subtype 0x{subtype:x}", p.loc) for p in found[1:]]
    if found and found[0].size != OTADATA_SIZE:
        p = found[0]
        return [error(f"{what} partition '{p.name}' must have size 0x{OTADATA_SIZE:x}, "
                      f"not 0x{p.size:x}", p.loc, f"set its size to 0x{OTADATA_SIZE:x} (8K)")]
    return []


def check_flash_size(table: PartitionTable, flash_size: int) -> list[Diagnostic]:
    """The table must fit the flash (reference semantics: the highest-offset partition)."""
    if not table.partitions:
        return []
    last = max(table.partitions, key=lambda p: p.offset)  # first of equal offsets wins
    used = last.end
    if used > flash_size:
        return [error(
            f"partitions occupy {used / 0x100000:.1f}MB of flash ({used} bytes, up to "
            f"'{last.name}' ending at 0x{used:x}), which does not fit in the flash size "
            f"{flash_size // 0x100000}MB", last.loc,
            "shrink or move partitions, or raise the flash size (--flash-size)")]
    return []
