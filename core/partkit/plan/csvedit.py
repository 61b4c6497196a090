"""Write an edited table back into the user's CSV text, touching only what changed.

Comments, blank lines, column alignment, flags and the number style of each field stay as
they were; only the offset and size fields of changed rows are rewritten. A row whose
offset was left empty keeps it empty while the layout still puts it where it belongs.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.table import csvparse, layout
from partkit.table.render import csv_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["rewrite"]

OFFSET, SIZE = 3, 4


def _number(value: int, old: str) -> str:
    """``value`` written in the style of the field it replaces."""
    text = old.strip().lower()
    if text.endswith(("k", "m")):
        return csv_size(value)
    if text.isdigit():
        return str(value)
    return f"0x{value:x}"


def _set_field(line: str, index: int, value: str) -> str:
    pieces = line.split(",")
    while len(pieces) <= index:
        pieces.append("")
    old = pieces[index]
    lead = old[:len(old) - len(old.lstrip())]
    body = old.strip()
    trail = old[len(lead) + len(body):]
    new = lead + value + trail
    delta = len(new) - len(old)
    if index + 1 < len(pieces):
        # Keep the next column where it was: take from or give to its leading blanks.
        nxt = pieces[index + 1]
        blanks = len(nxt) - len(nxt.lstrip())
        if delta > 0 and blanks > 1:
            pieces[index + 1] = nxt[min(delta, blanks - 1):]
        elif delta < 0 and blanks > 0:
            pieces[index + 1] = " " * -delta + nxt
        elif delta < 0 and trail:
            new += " " * -delta
    pieces[index] = new
    return ",".join(pieces)


def _resolve(text: str, path: str, options: TableOptions) -> PartitionTable:
    rows = csvparse.parse_csv(text, path, options)
    return layout.resolve(rows, path, options)


def rewrite(text: str, old: PartitionTable, new: PartitionTable, path: str,
            options: TableOptions) -> str:
    """``text`` (which laid out gives ``old``) edited so it lays out to ``new``."""
    lines = text.splitlines(keepends=True)

    def edit(p: Partition, index: int, value: int) -> None:
        assert p.loc is not None and p.loc.line is not None
        n = p.loc.line - 1
        raw = lines[n]
        body = raw.rstrip("\r\n")
        field = (body.split(",") + [""] * 6)[index]
        lines[n] = _set_field(body, index, _number(value, field or "0x0")) + raw[len(body):]

    for before, after in zip(old, new):
        if before.size != after.size:
            edit(before, SIZE, after.size)
        if before.offset != after.offset and _explicit_offset(lines, before):
            edit(before, OFFSET, after.offset)
    # Empty offsets follow the rows above them; pin those that would now land elsewhere.
    for _ in range(2):
        laid = _resolve("".join(lines), path, options)
        wrong = [(b, a) for b, got, a in zip(old, laid, new) if got.offset != a.offset]
        if not wrong:
            return "".join(lines)
        for before, after in wrong:
            edit(before, OFFSET, after.offset)
    raise PartkitError(error("cannot express the edited layout in this CSV", None,
                             "write the table with 'partkit show --csv' first"))


def _explicit_offset(lines: list[str], p: Partition) -> bool:
    assert p.loc is not None and p.loc.line is not None
    fields = lines[p.loc.line - 1].split(",")
    return len(fields) > OFFSET and bool(fields[OFFSET].strip())
