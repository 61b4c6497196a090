"""The checks and steps shared by ``partkit device``, ``partkit parttool`` and the Python API.

Every check runs before the target is asked to change anything: the table is read and
parsed, the partition selected, its read-only flag and the input size checked. Only then
does :class:`~partkit.device.target.Target` touch flash (or the image file).
"""

from __future__ import annotations

import os

from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.device.target import Target
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "check_fits",
    "check_writable",
    "load_table",
    "read_input_file",
]

def load_table(target: Target | None, options: TableOptions, table_file: str | None = None,
               ) -> tuple[PartitionTable, tuple[Diagnostic, ...]]:
    """The table from ``table_file`` (CSV or binary), else read off the target at
    ``options.table_offset``. Parsed (MD5 checked) but not re-verified, like parttool."""
    from partkit.table.codec import load_table as decode
    from partkit.table.codec import load_table_file

    if table_file is not None:
        loaded = load_table_file(table_file, options)
        return loaded.table, loaded.warnings
    if target is None:
        raise PartkitError(error("no partition table: give a table file, a port or an image"))
    from partkit.common.errors import warning
    from partkit.device.target import is_blank

    offset = options.table_offset
    data = target.read_table_area(offset, blank_ok=True)
    where = f"{target.label}@0x{offset:x}"
    loaded = decode(data, where, options)
    if is_blank(data):  # parttool's reading too; say so, it is rarely what was meant
        note = warning(f"the table area at 0x{offset:x} is blank (all 0xFF): an empty "
                       "partition table", SourceLocation(where),
                       "is the firmware flashed? is the table elsewhere (--offset)?")
        return loaded.table, (*loaded.warnings, note)
    return loaded.table, loaded.warnings


def check_writable(part: Partition, force: bool, where: str, verb: str = "write",
                   hint: str = "pass --force to change it anyway") -> None:
    """A partition flagged readonly changes only when forced (exit 2 otherwise)."""
    if part.readonly and not force:
        raise PartkitError(error(
            f"partition '{part.name}' is read-only; refusing to {verb} it",
            SourceLocation(where), hint))


def check_fits(part: Partition, source: str, data: bytes, where: str) -> None:
    """The whole input must fit the partition; a failed check changes nothing (exit 1).

    ``data`` is what :func:`read_input_file` read (at most ``part.size + 1`` bytes). A
    regular file is measured by its size; a pipe or device (``/dev/zero``) has none, so
    the bytes read decide: one more than the partition holds is too many.
    """
    try:
        size = os.path.getsize(source) if os.path.isfile(source) else len(data)
    except OSError:
        size = len(data)
    size = max(size, len(data))
    if size <= part.size:
        return
    if os.path.isfile(source):
        amount = (f"{size} bytes (0x{size:x}) do not fit partition '{part.name}' of "
                  f"{part.size} bytes (0x{part.size:x}): {size - part.size} bytes too many")
    else:  # a stream: only what was read so far is known
        amount = (f"more than {part.size} bytes (0x{part.size:x}) came from it: they do "
                  f"not fit partition '{part.name}' of {part.size} bytes")
    raise CheckFailed(error(
        amount, SourceLocation(source),
        f"use a smaller file or enlarge the partition; {where} was not changed"))


def read_input_file(path: str, limit: int) -> bytes:
    """An input file's bytes; clear errors for missing files and directories, and no
    reading past ``limit`` + 1 bytes (enough to tell that it is too big)."""
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        raise PartkitError(error("no such file", SourceLocation(path),
                                 f"check the path (relative paths resolve from "
                                 f"{os.getcwd()})")) from None
    except IsADirectoryError:
        raise PartkitError(error("is a directory, expected a file",
                                 SourceLocation(path))) from None
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror or exc}",
                                 SourceLocation(path))) from None
