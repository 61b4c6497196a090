"""Partition lookup as parttool's ``get_partition_info`` does it.

Source: ESP-IDF ``components/partition_table/parttool.py``.

Build scripts ask "where does the boot app start?" or "how big is otadata?" at configure
time. The selectors and the output format follow parttool exactly, so a CMake function
built on this returns the same string ESP-IDF's ``partition_table_get_partition_info``
would: fields joined by single spaces, and an empty string when nothing matches.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.flash.tablearea import load_table_file
from partkit.table.names import BUILTIN_SUBTYPES, TYPES, lookup
from partkit.table.options import parse_extra_subtypes, table_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from partkit.table.model import Partition, PartitionTable
    from partkit.table.names import SubtypeRegistry

__all__ = ["DEFAULT_FIELDS", "FIELDS", "format_info", "query_tokens", "select"]

FIELDS = ("name", "type", "subtype", "offset", "size", "encrypted", "readonly")
DEFAULT_FIELDS = ("offset", "size")


def select(
    table: PartitionTable,
    name: str | None = None,
    type: str | None = None,
    subtype: str | None = None,
    boot_default: bool = False,
    part_list: bool = False,
    subtypes: SubtypeRegistry = BUILTIN_SUBTYPES,
) -> tuple[Partition, ...]:
    """The partitions one parttool selector picks; empty when none (never an error).

    Exactly one of ``name``, ``type`` and ``boot_default`` must be given. ``part_list``
    returns every type/subtype match instead of the first. Unlike parttool, a type
    without a subtype is allowed and matches every subtype of that type.
    """
    if (name is not None) + (type is not None) + boot_default != 1:
        msg = "select a partition by exactly one of: name, type [+ subtype], boot default"
        raise PartkitError(error(msg))
    if name is not None:
        found = table.find_by_name(name)
        return (found,) if found is not None else ()
    if boot_default:
        found = table.boot_default()
        return (found,) if found is not None else ()
    assert type is not None
    try:
        ptype = lookup(type, TYPES)
        psubtype = None if subtype is None else lookup(subtype, subtypes.keywords(ptype))
    except ValueError:
        return ()  # parttool swallows lookup errors and prints nothing
    matches = table.find(ptype, psubtype)
    return matches if part_list else matches[:1]


def _field(partition: Partition, field: str) -> str:
    if field == "name":
        return partition.name
    if field in ("type", "subtype"):
        return str(getattr(partition, field))
    if field in ("offset", "size"):
        return f"0x{getattr(partition, field):x}"
    return str(bool(getattr(partition, field)))  # encrypted / readonly: True / False


def format_info(partitions: Iterable[Partition], fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """Fields of each partition, all joined by single spaces (parttool's output line)."""
    fields = tuple(fields) or DEFAULT_FIELDS
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        msg = f"unknown partition info field '{unknown[0]}'"
        raise PartkitError(error(msg, hint=f"valid fields: {' '.join(FIELDS)}"))
    return " ".join(_field(p, f) for p in partitions for f in fields)


def query_tokens(tokens: Sequence[str]) -> str:
    """Answer one lookup described by ``key=value`` tokens (the CMake module's protocol).

    Keys: ``table`` (CSV or binary path, required), ``offset``, ``bootloader_offset``,
    ``chip`` (gives the bootloader offset when that is absent),
    ``recovery_bootloader_offset``, ``extra`` (repeatable), ``name``, ``type``, ``subtype``,
    ``boot_default``, ``part_list`` and ``info`` (repeatable). The table is read as
    parttool reads ``--partition-table-file``: laid out, not verified.
    """
    single: dict[str, str] = {}
    infos: list[str] = []
    subtypes = BUILTIN_SUBTYPES
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            raise PartkitError(error(f"malformed lookup token '{token}' (expected key=value)"))
        if key == "info":
            infos.append(value)
        elif key == "extra":
            subtypes = parse_extra_subtypes((value,), subtypes)
        else:
            single[key] = value

    if not single.get("table"):
        raise PartkitError(error("no table given for the partition lookup"))
    options = table_options(
        offset=single.get("offset") or None,
        chip=single.get("chip") or None,
        primary_bootloader_offset=single.get("bootloader_offset") or None,
        recovery_bootloader_offset=single.get("recovery_bootloader_offset") or None,
        verify=False,
    ).replace(subtypes=subtypes)
    table = load_table_file(single["table"], options).table
    chosen = select(
        table,
        name=single.get("name"),
        type=single.get("type"),
        subtype=single.get("subtype"),
        boot_default=single.get("boot_default", "") not in ("", "0"),
        part_list=single.get("part_list", "") not in ("", "0"),
        subtypes=subtypes,
    )
    return format_info(chosen, infos or DEFAULT_FIELDS)
