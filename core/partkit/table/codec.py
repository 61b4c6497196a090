"""The codec's front door: bytes in, validated table out; table in, bytes or CSV out.

Data flows one way: text -> rows -> laid-out table -> checks -> binary, and
binary -> table -> checks -> CSV or summary.
"""

from __future__ import annotations

from partkit.common.errors import Diagnostic, PartkitError, error
from partkit.common.record import Record
from partkit.table import binary, csvparse, layout, verify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["Loaded", "encode", "load_table", "parse", "to_csv", "validate"]


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


def encode(table: PartitionTable, options: TableOptions) -> bytes:
    """The 0xC00-byte binary the bootloader reads."""
    return binary.encode(table, options.md5)


def to_csv(table: PartitionTable, options: TableOptions) -> str:
    from partkit.table.render import to_csv as render_csv

    return render_csv(table, options.subtypes)
