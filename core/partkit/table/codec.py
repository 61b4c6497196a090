"""The codec's front door: bytes in, validated table out; table in, bytes or CSV out.

Data flows one way: text -> rows -> laid-out table -> checks -> binary, and
binary -> table -> checks -> CSV or summary.
"""

from __future__ import annotations

from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error
from partkit.common.record import Record
from partkit.table import binary, csvparse, layout, verify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["Loaded", "TableInput", "encode", "load_table", "load_table_file",
           "looks_like_flash_image", "parse", "read_table_input", "read_table_source",
           "to_csv", "validate"]


class Loaded(Record):
    """A loaded table with the warnings met on the way."""

    __slots__ = ("is_binary", "table", "warnings")

    table: PartitionTable
    is_binary: bool
    warnings: tuple[Diagnostic, ...]

    def __init__(self, table: PartitionTable, is_binary: bool,
                 warnings: tuple[Diagnostic, ...]) -> None:
        self._init(table=table, is_binary=is_binary, warnings=warnings)



def check_options(options: TableOptions) -> None:
    bl = options.primary_bootloader_offset
    if bl is not None and bl >= options.table_offset:
        raise PartkitError(error(
            f"unsupported configuration: the primary bootloader (0x{bl:x}) must be below the "
            f"partition table (0x{options.table_offset:x})", None,
            "check --primary-bootloader-offset / --chip and --offset"))


def parse(data: bytes, path: str, options: TableOptions) -> tuple[PartitionTable, bool,
                                                                  list[Diagnostic]]:
    """Detect the format and build the table, without validation."""
    if binary.looks_binary(data):
        table, warnings = binary.decode(data, path, options.md5)
        return table, True, warnings
    text = csvparse.decode_text(data, path)
    rows = csvparse.parse_csv(text, path, options)
    return layout.resolve(rows, path, options), False, []


def validate(table: PartitionTable, options: TableOptions, *,
             is_binary: bool) -> list[Diagnostic]:
    """gen's validation of a laid-out table: every rule of :mod:`verify`, and for a CSV
    that the table encodes at all (a binary fits by construction)."""
    found = verify.verify(table, options)
    if not is_binary and len(table) > binary.max_entries(options.md5):
        found.append(binary.too_long(table, options.md5))
    return found


def load_table(data: bytes, path: str, options: TableOptions) -> Loaded:
    """Parse and validate; raises PartkitError with every error found."""
    check_options(options)
    table, is_binary, diagnostics = parse(data, path, options)
    if options.verify:
        diagnostics += validate(table, options, is_binary=is_binary)
    diagnostics += verify.check_ranges(table)
    if options.flash_size is not None:
        diagnostics += verify.check_flash_size(table, options.flash_size)
    errors = [d for d in diagnostics if d.is_error or options.strict]
    if errors:
        # The warnings too (after the errors): a fix for one should not hide the others.
        raise PartkitError(
            [d if d.is_error else Diagnostic("error", d.message + " [--strict]", d.location,
                                             d.hint, d.notes, d.code) for d in errors]
            + [d for d in diagnostics if not d.is_error and not options.strict])
    return Loaded(table, is_binary, tuple(diagnostics))


def read_table_input(path: str) -> bytes:
    """A table file's bytes; ``builtin:NAME`` is a built-in table's CSV text."""
    if path.startswith("builtin:"):  # builtin.PREFIX; the data is imported only when used
        from partkit.table.builtin import csv_text, lookup

        return csv_text(lookup(path[len("builtin:"):])).encode("utf-8")
    from partkit.common.fileio import read_input

    return read_input(path)


class TableInput(Record):
    """What a table argument read to: the table bytes, the label for diagnostics
    (``dump.bin@0x8000`` for an image), and whether it came out of a flash image."""

    __slots__ = ("data", "image", "label")

    data: bytes
    label: str
    image: bool

    def __init__(self, data: bytes, label: str, image: bool = False) -> None:
        self._init(data=data, label=label, image=image)


def looks_like_flash_image(head: bytes, size: int) -> bool:
    """A flash image or dump rather than a table: larger than a table, starting with an
    ESP image, erased flash or binary bytes, but not with a table entry (a signed table
    sector is 0x1000 bytes)."""
    if (size <= binary.MAX_TABLE_BYTES or head[:2] in (binary.MAGIC, b"\xff\xfe", b"\xfe\xff")
            or head[:16] == binary.MD5_MARKER):
        return False  # a table, or a UTF-16 CSV (its NULs are text)
    return head[:1] == b"\xe9" or head[:32] == b"\xff" * 32 or b"\x00" in head


def _single_esp_image(path: str, size: int) -> bool:
    """The file is one ESP app or bootloader image (not a merged flash image, which goes
    on past its bootloader)."""
    from partkit.check.appimage import ImageBytes, read_image

    with open(path, "rb") as f:
        def read(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        if read(0, 1) != b"\xe9":
            return False
        try:
            info = read_image(ImageBytes(read, size), path)
        except PartkitError:
            return False
    return info.is_image and size - info.measured_size < 0x10000  # at most padding


def read_table_source(path: str, table_offset: int) -> TableInput:
    """A table argument: a CSV or binary table, ``builtin:NAME``, ``-`` (stdin), or a flash
    image/dump, whose table is read at ``table_offset``."""
    import os

    if path == "-":
        import sys

        from partkit.common.fileio import read_stream

        return TableInput(read_stream(sys.stdin.buffer, "<stdin>"), "<stdin>")
    if path.startswith("builtin:") or not os.path.isfile(path):
        return TableInput(read_table_input(path), path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(binary.MAX_TABLE_BYTES)
    if not looks_like_flash_image(head, size):
        return TableInput(read_table_input(path), path)
    from partkit.flash.tablearea import read_table_area  # through its journal and lock

    try:
        data = read_table_area(path, table_offset, "--offset N if the table is elsewhere")
    except PartkitError:
        if not _single_esp_image(path, size):
            raise
        # No table where a flash image has it: an app or bootloader .bin given as the table.
        raise PartkitError(error(
            "this is an ESP app or bootloader image (first byte 0xE9), not a partition table",
            SourceLocation(path), "give the partition table: the CSV, or the binary 'partkit "
            f"gen' writes; for a flash image whose table is not at 0x{table_offset:x}, "
            "--offset N")) from None
    return TableInput(data, f"{path}@0x{table_offset:x}", image=True)


def load_table_file(path: str, options: TableOptions) -> Loaded:
    """Load a table argument (see :func:`read_table_source`)."""
    source = read_table_source(path, options.table_offset)
    return load_table(source.data, source.label, options)


def encode(table: PartitionTable, options: TableOptions) -> bytes:
    """The 0xC00-byte binary the bootloader reads."""
    return binary.encode(table, options.md5)


def to_csv(table: PartitionTable, options: TableOptions) -> str:
    from partkit.table.render import to_csv as render_csv

    return render_csv(table, options.subtypes)
