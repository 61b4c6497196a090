"""Integer syntax of partition CSVs (gen_esp32part ``parse_int``) and of CLI size options."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["NumberError", "align_up", "format_size", "parse_int", "parse_size"]

_SUFFIX = {"k": 1024, "m": 1024 * 1024}


class NumberError(ValueError):
    """A field value that is neither a number nor a known keyword."""

    def __init__(self, message: str, value: str, keywords: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.value = value
        self.keywords = keywords


def parse_int(text: str, keywords: Mapping[str, int] | None = None) -> int:
    """Parse a CSV field: any Python int literal or keyword, with stackable K/M suffixes.

    ``1kk`` is 1 MiB and ``otak`` is the keyword ``ota`` times 1024, as in gen_esp32part.
    Suffixes are peeled iteratively (the reference recursed), so long suffix chains cannot
    exhaust the stack. Messages quote the innermost value, as the reference does.
    """
    multiplier = 1
    value = text
    # The reference tests ``v.lower().endswith("k")``, so any character lowering to k/m
    # (the Kelvin sign too) is a suffix; lowering only the last character keeps this linear.
    while value and value[-1].lower()[-1:] in _SUFFIX:
        multiplier *= _SUFFIX[value[-1].lower()[-1:]]
        value = value[:-1]
    try:
        return int(value, 0) * multiplier
    except ValueError:
        pass
    if not keywords:
        raise NumberError(f"Invalid field value {value}", value)
    try:
        return keywords[value.lower()] * multiplier
    except KeyError:
        names = tuple(keywords)
        raise NumberError(
            f"Value '{value}' is not valid. Known keywords: {', '.join(names)}", value, names
        ) from None


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024 * 1024,
    "mb": 1024 * 1024,
    "mib": 1024 * 1024,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_size(text: str) -> int:
    """Parse a size option: ``4MB``, ``4M``, ``4MiB``, ``64K``, ``1.5M``, ``0x400000`` or
    ``4194304``.

    Units are binary (1 MB = 1 MiB), as flash sizes are. A fraction is exact (no float)
    and truncated to whole bytes. Raises ValueError saying the text is not a size.
    """
    s = text.strip()
    bad = ValueError(f"invalid size '{text}' (examples: 4MB, 1.5M, 64K, 0x400000)")
    if s.lower().startswith(("0x", "0o", "0b")):
        digits = s[2:]
        if not digits.isascii() or not digits.isalnum() or len(digits) > 32:
            raise bad
        try:
            return int(s, 0)
        except ValueError:
            raise bad from None
    i = len(s)
    while i > 0 and s[i - 1].isalpha():
        i -= 1
    number, unit = s[:i].strip(), s[i:].lower()
    if number.startswith("-"):
        raise ValueError(f"invalid size '{text}': negative")
    whole, _, frac = number.partition(".")
    if (unit not in _SIZE_UNITS or not number.isascii() or len(number) > 32
            or not (whole + frac).isdigit()):
        raise bad
    scale = _SIZE_UNITS[unit]
    divisor: int = 10 ** len(frac)
    return int(whole or "0") * scale + int(frac or "0") * scale // divisor


def align_up(value: int, boundary: int) -> int:
    """``value`` rounded up to the next multiple of ``boundary`` (itself when aligned)."""
    return -(-value // boundary) * boundary


# How each output spells a size: its MiB and KiB units, the fallback, and whether a unit
# is written only for a size of at least one of it. "csv" as gen_esp32part writes a CSV
# size (the first unit that divides, so 0 is '0M'), "esptool" as esptool's --flash-size
# spells it (and partkit's messages name a flash), "map" for the flash map's labels.
_UNIT_SPELLINGS: dict[str, tuple[str, str, str, bool]] = {
    "csv": ("M", "K", "0x{:x}", False),
    "esptool": ("MB", "KB", "{}", True),
    "map": ("M", "K", "{}B", True),
}


def format_size(size: int, style: str = "human") -> str:
    """A size in bytes as one of partkit's outputs spells it.

    ``human`` (reports): ``1 MiB``, ``24 KiB``, ``291 B``, ``1.5 MiB``. ``csv``: ``1M``,
    ``24K``, ``0x123``, ``0M``. ``esptool``: ``4MB``, ``24KB``, ``291``. ``map``: ``1M``,
    ``24K``, ``291B``. A ValueError names an unknown style.
    """
    if style != "human":
        try:
            mib, kib, other, at_least_one = _UNIT_SPELLINGS[style]
        except KeyError:
            msg = f"unknown size style {style!r}"
            raise ValueError(msg) from None
        for unit, scale in ((mib, 1 << 20), (kib, 1 << 10)):
            if size % scale == 0 and (size >= scale or not at_least_one):
                return f"{size // scale}{unit}"
        return other.format(size)
    if size < 0:
        return "-" + format_size(-size)
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if size % scale == 0 else f"{value:.1f} {unit}"
    return f"{size} B"
