"""CSV text -> partition rows with source locations (gen_esp32part's CSV dialect).

The dialect: lines split as ``str.splitlines``, ``$VAR`` expansion, ``#`` comments only at
the start of a line, no quoting, six comma-separated fields (extra columns ignored), K/M
suffixes and keywords in numbers. Offsets may be left empty (filled by :mod:`layout`) and
sizes may be negative (end addresses); bootloader and partition_table rows take their
offset and size from the options.
"""

from __future__ import annotations

import os

from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, closest, error
from partkit.common.numbers import NumberError, parse_int
from partkit.common.record import Record
from partkit.table.names import (
    APP,
    BOOTLOADER,
    PARTITION_TABLE,
    SUBTYPE_BOOTLOADER_RECOVERY,
    SUBTYPE_DATA_UNDEFINED,
    SUBTYPE_PRIMARY,
    TYPES,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from partkit.table.options import TableOptions

__all__ = ["PARTITION_TABLE_SIZE", "CsvRow", "decode_text", "parse_csv"]

PARTITION_TABLE_SIZE = 0x1000  # the flash sector the table occupies

_BOMS = (
    # Order as gen_esp32part checks them; UTF-32-LE therefore never wins over UTF-16 (its
    # BOM starts with the UTF-16-LE one), which the reference does too.
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
)

_FLAGS = ("encrypted", "readonly")


class CsvRow(Record):
    """One parsed CSV row. ``offset`` None means auto; a negative ``size`` is an end address."""

    __slots__ = ("encrypted", "loc", "name", "offset", "readonly", "size", "subtype", "type")

    name: str
    type: int
    subtype: int
    offset: int | None
    size: int
    encrypted: bool
    readonly: bool
    loc: SourceLocation

    def __init__(
        self,
        name: str,
        type: int,
        subtype: int,
        offset: int | None,
        size: int,
        encrypted: bool,
        readonly: bool,
        loc: SourceLocation,
    ) -> None:
        self._init(
            name=name,
            type=type,
            subtype=subtype,
            offset=offset,
            size=size,
            encrypted=encrypted,
            readonly=readonly,
            loc=loc,
        )

    def __repr__(self) -> str:
        return f"CsvRow({self.name!r}, {self.type}, {self.subtype}, {self.offset}, {self.size})"


def decode_text(data: bytes, path: str) -> str:
    """Bytes -> text, choosing the codec by BOM (UTF-8 without one)."""
    codec, skip = "utf-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            codec, skip = name, (len(bom) if name == "utf-8" else 0)
            break
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        other = _other_file_kind(data)
        if other is not None:
            raise PartkitError(_not_a_table(other, path)) from None
        bad = skip + exc.start
        line = data.count(b"\n", 0, bad) + 1
        column = bad - (data.rfind(b"\n", 0, bad) + 1) + 1
        raise PartkitError(
            error(
                f"file is not valid {codec.upper()} text (byte 0x{data[bad]:02x} at offset {bad})",
                SourceLocation(path, line, column),
                hint="save the CSV as UTF-8 (a UTF-8 or UTF-16 BOM is also accepted)",
            )
        ) from None


def _other_file_kind(data: bytes) -> str | None:
    """What a file that cannot be a partition table CSV is, judged by its magic bytes."""
    if data[:4] == b"\x7fELF":
        return "an ELF file (a compiled program, e.g. the app's .elf)"
    if data[:1] == b"\xe9":
        return "an ESP app or bootloader image (first byte 0xE9)"
    return None


def _not_a_table(kind: str, path: str) -> Diagnostic:
    return error(f"this is {kind}, not a partition table", SourceLocation(path),
                 "give the partition table: the CSV, or the binary that 'partkit gen' writes "
                 "(partition-table.bin)")


def _whole_file_problem(text: str, path: str, failed: list[int]) -> Diagnostic | None:
    """One error for a file whose every row fails for the same reason, instead of a
    confusing error per row: another kind of file, an unmarked encoding, ';' separators.
    Only called when parsing failed, so it never rejects what the reference accepts."""
    other = _other_file_kind(text[:4].encode("utf-8", "replace"))
    if other is not None:
        return _not_a_table(other, path)
    if text.count("\x00") * 4 >= len(text) > 0:
        return error(
            "the text has a NUL character between its letters: the file is UTF-16 without a "
            "byte-order mark (or UTF-32)", SourceLocation(path, failed[0], 1),
            "save the CSV as UTF-8 (UTF-16 is accepted only with its BOM)")
    lines = text.splitlines()
    semicolon = [n for n in failed if ";" in lines[n - 1] and "," not in lines[n - 1]]
    if semicolon and len(semicolon) * 2 >= len(failed):
        return error(
            "fields are separated by ';': partition tables separate them with ','",
            SourceLocation(path, semicolon[0], lines[semicolon[0] - 1].index(";") + 1),
            "save the CSV with ',' as the separator (spreadsheets in some locales write ';')")
    return None


def _fields(line: str) -> list[tuple[str, int]]:
    """Split a raw line into stripped fields with their 1-based start columns."""
    fields: list[tuple[str, int]] = []
    start = 1
    for piece in (line + ",,,,,").split(","):
        stripped = piece.lstrip()
        column = start + len(piece) - len(stripped)
        fields.append((stripped.rstrip(), column))
        start += len(piece) + 1
    return fields


class _RowParser:
    """Parses the fields of one line, in the reference's order, collecting its errors."""

    def __init__(self, options: TableOptions, loc: SourceLocation) -> None:
        self.options = options
        self.loc = loc

    def fail(self, message: str, column: int, hint: str | None = None) -> Diagnostic:
        return error(message, self.loc.with_column(column), hint)

    def number(
        self, text: str, column: int, what: str, keywords: Mapping[str, int] | None = None
    ) -> int | Diagnostic:
        try:
            return parse_int(text, keywords)
        except NumberError as exc:
            hint: str | None = None
            if exc.keywords:
                guess = closest(exc.value, exc.keywords)
                hint = (f"did you mean '{guess}'?" if guess
                        else f"{what} must be a keyword or a number")
                if what == "subtype":
                    hint += (" A subtype name of your own needs --extra-partition-subtypes "
                             f"TYPE,{exc.value},VALUE (e.g. data,{exc.value},0x40).")
            elif what == "subtype":
                hint = ("types other than app, data, bootloader and partition_table have no "
                        "subtype names: write a number (0x00-0xFE)")
            elif "\x00" in exc.value:
                hint = "the text contains NUL characters: is the file UTF-32? save it as UTF-8"
            elif "#" in exc.value:
                hint = "comments must start a line; '#' after data is part of the field"
            elif "$" in exc.value:
                hint = "environment variables are expanded only when set"
            else:
                hint = f"{what} must be a number: 0x1000, 4096, 4K or 1M"
            return self.fail(str(exc), column, hint)

    def parse(self, fields: list[tuple[str, int]]) -> CsvRow | list[Diagnostic]:
        opts = self.options
        errors: list[Diagnostic] = []
        name = fields[0][0]
        (type_text, type_col), (sub_text, sub_col) = fields[1], fields[2]
        (off_text, off_col), (size_text, size_col), (flag_text, flag_col) = fields[3:6]

        if not type_text:
            return [self.fail("Field 'type' can't be left empty.", type_col,
                              "columns are: name, type, subtype, offset, size, flags")]
        ptype = self.number(type_text, type_col, "type", TYPES)
        if isinstance(ptype, Diagnostic):
            return [ptype]
        if not 0 <= ptype <= 0xFF:
            return [self.fail(f"type {ptype} is out of range 0..255", type_col,
                              "custom types are 0x40..0xFE")]

        if not sub_text:
            if ptype == APP:
                return [self.fail("App partition cannot have an empty subtype", sub_col,
                                  "use factory, ota_0 .. ota_15, test, or a number")]
            subtype: int | Diagnostic = SUBTYPE_DATA_UNDEFINED
        else:
            subtype = self.number(sub_text, sub_col, "subtype", opts.subtypes.keywords(ptype))
        if isinstance(subtype, Diagnostic):
            return [subtype]
        if not 0 <= subtype <= 0xFF:
            return [self.fail(f"subtype {subtype} is out of range 0..255", sub_col)]

        offset = self._offset(ptype, subtype, off_text, off_col)
        size = self._size(ptype, size_text, size_col)
        for value in (offset, size):
            if isinstance(value, Diagnostic):
                errors.append(value)
        encrypted = readonly = False
        for flag in flag_text.split(":"):
            if not flag:
                continue
            if flag not in _FLAGS:
                guess = closest(flag.strip(), _FLAGS)
                errors.append(self.fail(
                    f"CSV flag column contains unknown flag '{flag}'", flag_col,
                    "flags are 'encrypted' and 'readonly', joined by ':' without spaces"
                    + (f" (did you mean '{guess}'?)" if guess else ""),
                ))
                break
            encrypted |= flag == "encrypted"
            readonly |= flag == "readonly"
        if errors:
            return errors
        assert not isinstance(offset, Diagnostic) and not isinstance(size, Diagnostic)
        return CsvRow(name, ptype, subtype, offset, size, encrypted, readonly, self.loc)

    def _offset(self, ptype: int, subtype: int, text: str, col: int) -> int | Diagnostic | None:
        opts = self.options
        if ptype == BOOTLOADER and subtype == SUBTYPE_PRIMARY:
            if opts.primary_bootloader_offset is None:
                return self._no_bootloader_offset(col)
            return opts.primary_bootloader_offset
        if ptype == BOOTLOADER and subtype == SUBTYPE_BOOTLOADER_RECOVERY:
            if opts.recovery_bootloader_offset is None:
                return self.fail(
                    "Recovery bootloader offset is not defined. Please use "
                    "--recovery-bootloader-offset", col,
                    "pass --recovery-bootloader-offset (CONFIG_BOOTLOADER_RECOVERY_OFFSET, "
                    "default 0x3F0000)")
            return opts.recovery_bootloader_offset
        if ptype == PARTITION_TABLE and subtype == SUBTYPE_PRIMARY:
            return opts.table_offset
        if not text:
            return None
        return self.number(text, col, "offset")

    def _size(self, ptype: int, text: str, col: int) -> int | Diagnostic:
        opts = self.options
        if ptype == BOOTLOADER:
            if opts.primary_bootloader_offset is None:
                return self._no_bootloader_offset(col)
            return opts.table_offset - opts.primary_bootloader_offset
        if ptype == PARTITION_TABLE:
            return PARTITION_TABLE_SIZE
        if not text:
            return self.fail("Size field can't be empty", col,
                             "give a size such as 0x6000, 24K or 1M")
        return self.number(text, col, "size")

    def _no_bootloader_offset(self, col: int) -> Diagnostic:
        return self.fail(
            "Primary bootloader offset is not defined. Please use --primary-bootloader-offset",
            col, "pass --chip (e.g. --chip esp32c3) or --primary-bootloader-offset")


# Far past the 95 entries a table can hold, so every real table (valid or not) is parsed
# and reported whole; a runaway file stops here instead of filling memory.
MAX_CSV_ROWS = 1000
# A partition row is a few dozen characters (a name is at most 16); a longer data line is
# refused before it is split, so one runaway line cannot cost memory or time.
MAX_LINE = 4096


def parse_csv(text: str, path: str, options: TableOptions) -> list[CsvRow]:
    """Parse CSV text into rows; raises PartkitError with every row's error."""
    rows: list[CsvRow] = []
    errors: list[Diagnostic] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if len(raw) > MAX_LINE and not raw.lstrip().startswith("#"):
            raise PartkitError([*errors[:MAX_CSV_ROWS], error(
                f"line of {len(raw)} characters: a partition row is short (this one is "
                f"longer than {MAX_LINE}), so this is not a partition table",
                SourceLocation(path, number, 1), "is this the right file?")])
        line = raw
        if "$" in line:
            line = os.path.expandvars(line)
            if line.startswith("$"):
                var = _leading_variable(line)
                if var:
                    errors.append(error(
                        f"unknown variable '{var}'", SourceLocation(path, number, 1),
                        f"set {var} in the environment, or write \\${var} for a literal '$'"))
                    continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # Columns refer to the raw line whenever expansion did not change it.
        fields = _fields(line)
        # The row's location is its name column; messages about a field take its column.
        parser = _RowParser(options, SourceLocation(path, number, fields[0][1]))
        result = parser.parse(fields)
        if isinstance(result, CsvRow):
            rows.append(result)
        else:
            errors.extend(result)
        if len(rows) + len(errors) > MAX_CSV_ROWS:  # bounded memory for runaway input
            raise PartkitError([*errors[:MAX_CSV_ROWS], error(
                f"more than {MAX_CSV_ROWS} partition rows: not a partition table (a table "
                "holds at most 95 entries)", SourceLocation(path, number, 1),
                "is this the right file?")])
    if errors:
        failed = sorted({d.location.line for d in errors
                         if d.location is not None and d.location.line is not None})
        whole = _whole_file_problem(text, path, failed or [1])
        raise PartkitError(whole if whole is not None else errors)
    return rows


def _leading_variable(line: str) -> str:
    end = 1
    while end < len(line) and (line[end] == "_" or (line[end].isascii() and line[end].isalnum())):
        end += 1
    name = line[1:end]
    return name if name and not name[0].isdigit() else ""
