"""NVS CSVs (``key,type,encoding,value``) checked before the generator sees them.

Every problem is reported at ``file:line:col``, all of them in one run, in the terms of the
CSV rather than of the generator's internals. The rules are the generator's
(esp-idf-nvs-partition-gen): integers are read in base 10 and must fit their width,
``hex2bin`` is an even number of hex digits, ``base64`` is strict base64, strings are at
most 4000 bytes with their terminating NUL, keys at most 15 bytes, entries follow a
namespace, ``file`` values name readable files (relative to the CSV).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re

from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error
from partkit.common.fileio import read_limited
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["NvsRow", "read_rows"]

HEADER = ("key", "type", "encoding", "value")
MAX_KEY = 15
MAX_NAMESPACES = 254  # index 0 is the namespace table's own, 255 means any
MAX_STRING = 4000  # bytes, NUL included (page format version 2)
INT_RANGES = {
    "u8": (0, 0xFF), "i8": (-0x80, 0x7F), "u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFFFFFF), "i32": (-0x80000000, 0x7FFFFFFF),
    "u64": (0, (1 << 64) - 1), "i64": (-(1 << 63), (1 << 63) - 1),
}
DATA_ENCODINGS = (*INT_RANGES, "string", "hex2bin", "base64")
FILE_ENCODINGS = ("string", "hex2bin", "base64", "binary")
_DIGITS = frozenset("0123456789")
_FILL = re.compile(r"(blob_fill|blob_sz_fill)\((\d+);(0x[0-9a-fA-F]{2})\)")


class NvsRow(Record):
    """One checked row; ``value`` of a ``file`` row is the resolved path."""

    __slots__ = ("encoding", "key", "kind", "loc", "value")

    key: str
    kind: str
    encoding: str
    value: str
    loc: SourceLocation

    def __init__(self, key: str, kind: str, encoding: str, value: str,
                 loc: SourceLocation) -> None:
        self._init(key=key, kind=kind, encoding=encoding, value=value, loc=loc)


Field = tuple[str, "tuple[int, int]"]  # text, (line, column) where it starts


def _records(text: str) -> Iterator[list[Field]]:
    """The records of the CSV as Python's csv module (the generator's reader) splits them:
    only LF, CR and CR LF end a line; a quote opens quoting only at a field's start (elsewhere
    it is a character); a quoted field may span lines, "" in it is a quote, and text after
    its closing quote continues the field. Blank lines and lines starting with '#' (the
    generator drops those) are skipped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if '"' not in line:  # the common case, and 8 MB lines, without a character loop
            fields: list[Field] = []
            column = 1
            for part in line.split(","):
                fields.append((part, (number, column)))
                column += len(part) + 1
            yield fields
            continue
        fields, number = _quoted_record(lines, number - 1)
        yield fields


def _quoted_record(lines: list[str], index: int) -> tuple[list[Field], int]:
    """One record starting at ``lines[index]`` that holds quotes; returns its fields and
    the index of the line after it."""
    fields: list[Field] = []
    text: list[str] = []
    line = lines[index]
    start, at_start, quoted, i = (index + 1, 1), True, False, 0
    while True:
        if i == len(line):
            if quoted and index + 1 < len(lines):  # the quoted field goes on
                text.append("\n")
                index, i = index + 1, 0
                line = lines[index]
                continue
            fields.append(("".join(text), start))
            return fields, index + 1
        c = line[i]
        if quoted:
            if c == '"' and line[i + 1:i + 2] == '"':
                text.append('"')
                i += 1
            elif c == '"':
                quoted = False
            else:
                text.append(c)
        elif c == '"' and at_start:
            quoted = True
        elif c == ",":
            fields.append(("".join(text), start))
            text, start = [], (index + 1, i + 2)
            at_start = True
            i += 1
            continue
        else:
            text.append(c)
        at_start = False
        i += 1


def _decode(data: bytes, path: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        order = "FF FE" if data[:2] == b"\xff\xfe" else "FE FF"
        raise PartkitError(error(
            f"the file is UTF-16 (it starts with the byte order mark {order}); NVS CSVs are "
            "UTF-8", SourceLocation(path, 1, 1), "save it as UTF-8 (without a BOM)"))
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PartkitError(error(
            f"byte 0x{data[exc.start]:02x} is not UTF-8", SourceLocation(path, line, column),
            "save the file as UTF-8")) from None


def _int_problem(text: str, encoding: str) -> str | None:
    body = text.strip()
    digits = body[1:] if body[:1] in "+-" else body
    if not digits or not set(digits) <= _DIGITS:
        hint = ""
        if digits.lower().startswith("0x"):
            with contextlib.suppress(ValueError):
                hint = f" (write {int(body, 16)})"
        return f"{encoding} value '{text}' is not a decimal integer{hint}"
    value = int(body)
    low, high = INT_RANGES[encoding]
    if not low <= value <= high:
        return f"{encoding} value {value} is out of range ({low} to {high})"
    return None


def _hex_problem(text: str) -> tuple[str, int] | None:
    """(message, 0-based index in ``text``) for a hex2bin value the generator rejects."""
    body = text.strip()
    lead = len(text) - len(text.lstrip())
    for i, c in enumerate(body):
        if c not in "0123456789abcdefABCDEF":
            return f"'{c}' is not a hex digit (hex2bin)", lead + i
    if len(body) % 2:
        return f"hex2bin value has {len(body)} hex digits, not an even number", lead
    return None


def _base64_problem(text: bytes) -> str | None:
    try:  # whitespace (a wrapped value) is skipped, as the generator's a2b_base64 does
        base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"not valid base64 ({exc})"
    return None


def _content_problem(encoding: str, content: bytes) -> str | None:
    """For a ``file`` row: the file's bytes against the encoding."""
    if encoding == "string":
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return "the file is not UTF-8 text (encoding string)"
        if len(text.encode()) + 1 > MAX_STRING:
            return (f"the file's string is {len(text.encode()) + 1} bytes with its NUL; "
                    f"an NVS string holds at most {MAX_STRING}")
    elif encoding == "hex2bin":
        try:
            found = _hex_problem(content.decode("ascii"))
        except UnicodeDecodeError:
            return "the file is not hex text (encoding hex2bin)"
        return None if found is None else f"the file: {found[0]}"
    elif encoding == "base64":
        found64 = _base64_problem(content)
        return None if found64 is None else f"the file is {found64}"
    return None


def read_rows(data: bytes, path: str, max_bytes: int | None = None) -> list[NvsRow]:
    """The checked rows of an NVS CSV; raises PartkitError listing every problem.
    ``max_bytes``: the room for entries (a blob_fill longer than that cannot fit)."""
    text = _decode(data, path)
    base = os.path.dirname(os.path.abspath(path))
    problems: list[Diagnostic] = []
    rows: list[NvsRow] = []
    columns: dict[str, int] | None = None
    namespace_seen = False
    namespaces: set[str] = set()
    for fields in _records(text):
        number = fields[0][1][0]
        if columns is None:
            names = [f.strip().lower() for f, _ in fields]
            missing = [h for h in HEADER if h not in names]
            if missing:
                raise PartkitError(error(
                    f"the NVS CSV header lacks {', '.join(missing)}",
                    SourceLocation(path, number, 1), "the first row is: key,type,encoding,value"))
            columns = {h: names.index(h) for h in HEADER}
            continue
        last, (line, column) = fields[-1]
        end = (line, column + len(last))
        cells = {name: fields[i] if i < len(fields) else ("", end)
                 for name, i in columns.items()}
        row, found = _check_row(cells, base, namespace_seen, max_bytes)
        namespace_seen = namespace_seen or (row is not None and row.kind == "namespace")
        if row is not None and row.kind == "namespace" and row.key not in namespaces:
            namespaces.add(row.key)
            if len(namespaces) == MAX_NAMESPACES + 1:  # reported once, at the first too many
                found.append((f"namespace '{row.key}' is the {MAX_NAMESPACES + 1}th; NVS "
                              f"numbers namespaces 1 to {MAX_NAMESPACES}",
                              cells["key"][1], "group the entries into fewer namespaces"))
        for message, (line, column), hint in found:
            problems.append(error(message, SourceLocation(path, line, column), hint))
        if row is not None:
            rows.append(row.replace(loc=SourceLocation(path, number, 1)))
    if columns is None:
        raise PartkitError(error("the NVS CSV is empty", SourceLocation(path),
                                 "the first row is: key,type,encoding,value"))
    if problems:
        raise PartkitError(problems)
    return rows


Problem = tuple[str, "tuple[int, int]", "str | None"]  # message, (line, column), hint


def _check_row(cells: dict[str, Field], base: str, namespace_seen: bool,
               max_bytes: int | None) -> tuple[NvsRow | None, list[Problem]]:
    """One data row: the row (None when it has problems) and its problems."""
    key, key_col = cells["key"]
    kind_text, kind_col = cells["type"]
    encoding_text, enc_col = cells["encoding"]
    value, value_col = cells["value"]
    key, kind, encoding = key.strip(), kind_text.strip().lower(), encoding_text.strip().lower()
    found: list[Problem] = []
    if not key:
        found.append(("empty key", key_col, None))
    elif len(key.encode()) > MAX_KEY:
        found.append((f"NVS key '{key}' is {len(key.encode())} bytes; keys are at most "
                      f"{MAX_KEY}", key_col, None))
    if kind in ("data", "file"):
        if not namespace_seen:
            found.append((f"entry '{key}' comes before any namespace row", kind_col,
                          "start with a row like: storage,namespace,,"))
        allowed = DATA_ENCODINGS if kind == "data" else FILE_ENCODINGS
        fill = kind == "data" and encoding.startswith(("blob_fill(", "blob_sz_fill("))
        if encoding not in allowed and not fill:
            found.append((f"unknown encoding '{encoding_text.strip()}' for a {kind} row",
                          enc_col, "one of: " + ", ".join(allowed)))
        elif fill:
            found += _fill_problems(encoding, value, enc_col, value_col, max_bytes)
        elif kind == "data":
            problem = _data_problem(encoding, value)
            if problem is not None:
                found.append((problem[0], (value_col[0], value_col[1] + problem[1]), None))
        else:
            value = _file_value(value, value_col, encoding, base, found)
    elif kind != "namespace":
        found.append((f"unknown type '{kind_text.strip()}'", kind_col,
                      "one of: namespace, data, file"))
    if found:
        return None, found
    return NvsRow(key, kind, encoding, value, SourceLocation("")), found


# The largest NVS value (a format-2 blob: 126 chunks of 4000 bytes); a file over it
# cannot be stored, so it is not read.
MAX_BLOB = 508000


def _fill_problems(encoding: str, value: str, enc_col: tuple[int, int],
                   value_col: tuple[int, int], max_bytes: int | None) -> list[Problem]:
    """A ``blob_fill(LENGTH;0xBB)`` / ``blob_sz_fill(...)`` encoding, checked before the
    generator allocates LENGTH bytes (a huge one would exhaust memory)."""
    match = _FILL.fullmatch(encoding)
    if match is None:
        return [(f"encoding '{encoding}' is not {encoding.split('(')[0]}(LENGTH;0xBB)",
                 enc_col, "LENGTH in decimal, the padding byte as two hex digits, e.g. "
                 "blob_fill(32;0xff)")]
    length = int(match.group(2))
    if max_bytes is not None and length > max_bytes:
        return [(f"{match.group(1)} length {length} bytes does not fit the partition "
                 f"({max_bytes} bytes for entries)", enc_col, None)]
    size = len(value.encode())
    if size > length:
        return [(f"the value is {size} bytes, longer than the fill length {length}",
                 value_col, None)]
    return []


def _file_value(value: str, column: tuple[int, int], encoding: str, base: str,
                found: list[Problem]) -> str:
    """The resolved path of a ``file`` row, its problems added to ``found``."""

    resolved = value.strip()
    if resolved and not os.path.isabs(resolved):
        resolved = os.path.join(base, resolved)
    try:  # a regular file, sized before it is read (a link to /dev/zero never ends)
        content, size = read_limited(resolved, MAX_BLOB, regular=True,
                                     what="an NVS file value")
    except PartkitError as exc:
        found.append((f"cannot read '{value.strip()}': {exc.diagnostics[0].message}", column,
                      "file values are relative to the CSV's directory"))
        return resolved
    if size is None or size > MAX_BLOB:
        found.append((f"'{value.strip()}': {size} bytes, more than an NVS value holds "
                      f"({MAX_BLOB} bytes)", column, None))
        return resolved
    problem = _content_problem(encoding, content)
    if problem is not None:
        found.append((f"'{value.strip()}': {problem}", column, None))
    return resolved


def _data_problem(encoding: str, value: str) -> tuple[str, int] | None:
    """(message, column offset within the value) for a ``data`` row's value."""
    if encoding in INT_RANGES:
        message = _int_problem(value, encoding)
        return None if message is None else (message, 0)
    if encoding == "hex2bin":
        return _hex_problem(value)
    if encoding == "base64":
        message = _base64_problem(value.encode("utf-8", "replace"))
        return None if message is None else (message, 0)
    if encoding == "string" and len(value.encode()) + 1 > MAX_STRING:
        return (f"the string is {len(value.encode()) + 1} bytes with its NUL; an NVS string "
                f"holds at most {MAX_STRING}", 0)
    return None
