"""Codec options as a value: every entry point maps its own knobs onto one TableOptions."""

from __future__ import annotations

from partkit.common.errors import PartkitError, closest, error
from partkit.common.record import Record
from partkit.table.names import BUILTIN_SUBTYPES, TYPES, SubtypeRegistry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEFAULT_TABLE_OFFSET",
    "FLASH_SIZES",
    "TableOptions",
    "int_option",
    "parse_extra_subtypes",
    "size_option",
    "table_options",
    "usage_error",
]

DEFAULT_TABLE_OFFSET = 0x8000  # CONFIG_PARTITION_TABLE_OFFSET default, every chip
FLASH_SIZES = ("1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB")


class TableOptions(Record):
    """How to lay out, check and encode a table. Immutable; use :meth:`replace`.

    ``primary_bootloader_offset`` is None unless given (gen_esp32part semantics); when a
    ``chip`` is known the CLI fills it in from :mod:`partkit.common.chips`.
    ``flash_size`` is in bytes. ``secure`` is None, "v1" or "v2".
    """

    __slots__ = (
        "chip",
        "flash_size",
        "md5",
        "primary_bootloader_offset",
        "recovery_bootloader_offset",
        "secure",
        "strict",
        "subtypes",
        "table_offset",
        "verify",
    )

    table_offset: int
    primary_bootloader_offset: int | None
    recovery_bootloader_offset: int | None
    md5: bool
    verify: bool
    secure: str | None
    flash_size: int | None
    subtypes: SubtypeRegistry
    chip: str | None
    strict: bool

    def __init__(
        self,
        table_offset: int = DEFAULT_TABLE_OFFSET,
        primary_bootloader_offset: int | None = None,
        recovery_bootloader_offset: int | None = None,
        md5: bool = True,
        verify: bool = True,
        secure: str | None = None,
        flash_size: int | None = None,
        subtypes: SubtypeRegistry = BUILTIN_SUBTYPES,
        chip: str | None = None,
        strict: bool = False,
    ) -> None:
        self._init(
            table_offset=table_offset,
            primary_bootloader_offset=primary_bootloader_offset,
            recovery_bootloader_offset=recovery_bootloader_offset,
            md5=md5,
            verify=verify,
            secure=secure,
            flash_size=flash_size,
            subtypes=subtypes,
            chip=chip,
            strict=strict,
        )



    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__ if k != "subtypes")
        return f"TableOptions({inner})"


def _extra_error(message: str, hint: str | None = None) -> PartkitError:
    return PartkitError(error(f"--extra-partition-subtypes: {message}", None, hint))


def parse_extra_subtypes(entries: Sequence[str], base: SubtypeRegistry) -> SubtypeRegistry:
    """``type,name,value`` entries (value always hex, as ESP-IDF's CMake writes it)."""
    registry = base
    for entry in entries:
        parts = [p.strip() for p in entry.split(",")]
        if len(parts) != 3:
            raise _extra_error(f"'{entry}' is not 'type,name,value'",
                               "example: data,my_subtype,0x40")
        tname, name, text = parts
        if tname not in TYPES:
            raise _extra_error(f"unknown partition type '{tname}' in '{entry}'",
                               f"the type must be one of: {', '.join(TYPES)}")
        try:
            value = int(text, 16)
        except ValueError:
            raise _extra_error(f"value '{text}' is not hexadecimal",
                               "values are hex with or without 0x, e.g. 40 or 0x40") from None
        if not 0 <= value <= 0xFF:
            raise _extra_error(f"value 0x{value:x} is out of 0..0xff")
        ptype = TYPES[tname]
        clash = registry.name(ptype, value)
        if clash is not None and clash != name:
            raise _extra_error(f"'{entry}' reuses value 0x{value:x} of {tname} subtype "
                               f"'{clash}'", "each subtype value of a type must be unique")
        registry = registry.with_extra(ptype, name, value)
    return registry


def usage_error(message: str, hint: str | None = None) -> PartkitError:
    """Bad option text: an error with no source location."""
    return PartkitError(error(message, None, hint))


def int_option(name: str, value: str) -> int:
    """An address option: any Python int literal (0x8000, 32768), as gen_esp32part takes."""
    try:
        return int(value, 0)
    except ValueError:
        raise usage_error(f"{name}: '{value}' is not an integer",
                          "use a number such as 0x8000 or 32768 (no K/M suffix)") from None


def size_option(name: str, value: str) -> int:
    from partkit.common.numbers import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise usage_error(f"{name}: {exc}") from None


def table_options(
    *,
    offset: str | None = None,
    chip: str | None = None,
    primary_bootloader_offset: str | None = None,
    recovery_bootloader_offset: str | None = None,
    flash_size: int | None = None,
    secure: str | None = None,
    md5: bool = True,
    verify: bool = True,
    strict: bool = False,
    extra_subtypes: Sequence[str] = (),
) -> TableOptions:
    """Build TableOptions from option texts; ``chip`` supplies the bootloader offset default."""
    bl_offset: int | None = None
    if chip is not None:
        from partkit.common.chips import BOOTLOADER_OFFSET, chip_names

        if chip.lower() not in BOOTLOADER_OFFSET:
            guess = closest(chip, chip_names())
            raise usage_error(f"--chip: unknown chip '{chip}'",
                              (f"did you mean '{guess}'? " if guess else "")
                              + f"known chips: {', '.join(chip_names())}")
        bl_offset = BOOTLOADER_OFFSET[chip.lower()]
        chip = chip.lower()
    if primary_bootloader_offset is not None:
        bl_offset = int_option("--primary-bootloader-offset", primary_bootloader_offset)
    return TableOptions(
        table_offset=DEFAULT_TABLE_OFFSET if offset is None else int_option("--offset", offset),
        primary_bootloader_offset=bl_offset,
        recovery_bootloader_offset=None if recovery_bootloader_offset is None else int_option(
            "--recovery-bootloader-offset", recovery_bootloader_offset),
        md5=md5,
        verify=verify,
        secure=secure,
        flash_size=flash_size,
        subtypes=parse_extra_subtypes(extra_subtypes, BUILTIN_SUBTYPES),
        chip=chip,
        strict=strict,
    )
