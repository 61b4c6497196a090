"""A diff's result and its two renderings: readable text and a stable JSON document.

The JSON layout is documented in docs/diff.md (schema ``partkit.diff/1``); bump
:data:`SCHEMA` on incompatible changes.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.diff.rules import rule
from partkit.table.names import type_name
from partkit.table.options import TableOptions
from partkit.table.render import partition_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.diff.changes import Change
    from partkit.diff.plan import Step
    from partkit.diff.rules import Violation
    from partkit.diff.source import TableSide
    from partkit.table.model import Partition
    from partkit.table.names import SubtypeRegistry
    from partkit.table.options import TableOptions

__all__ = ["SCHEMA", "DiffReport", "to_json", "to_text"]

SCHEMA = "partkit.diff/1"
# What no plan can protect against, said with every plan (docs/diff.md, "The field model").
NOT_COVERED = ("a power cut inside the write-table step itself (erasing and writing one 4 KiB "
               "sector): the bootloader keeps no second table; and data the running app "
               "writes after a copy step")


class DiffReport(Record):
    """Changes, broken rules and the plan. ``exit_code``: 0 safe, 1 a rule is broken."""

    __slots__ = ("changes", "erase", "flash_size", "flash_source", "new", "next_update", "old",
                 "plan", "running", "running_from", "running_given", "subtypes", "violations",
                 "warnings")

    old: TableSide
    new: TableSide
    changes: tuple[Change, ...]
    violations: tuple[Violation, ...]
    plan: tuple[Step, ...]
    running: tuple[Partition, ...]
    running_given: bool
    erase: tuple[str, ...]
    flash_size: int | None
    subtypes: SubtypeRegistry
    warnings: tuple[Diagnostic, ...]
    running_from: str | None  # "--running", "otadata", or None (every app slot)
    flash_source: str | None
    next_update: Partition | None  # the slot the next OTA writes under NEW

    def __init__(self, old: TableSide, new: TableSide, changes: tuple[Change, ...],
                 violations: tuple[Violation, ...], plan: tuple[Step, ...],
                 running: tuple[Partition, ...], running_given: bool, erase: tuple[str, ...],
                 flash_size: int | None, subtypes: SubtypeRegistry,
                 warnings: tuple[Diagnostic, ...] = (), running_from: str | None = None,
                 flash_source: str | None = None, next_update: Partition | None = None,
                 ) -> None:
        self._init(old=old, new=new, changes=changes, violations=violations, plan=plan,
                   running=running, running_given=running_given, erase=erase,
                   flash_size=flash_size, subtypes=subtypes, warnings=warnings,
                   running_from=running_from, flash_source=flash_source,
                   next_update=next_update)

    @property
    def safe(self) -> bool:
        return not self.violations

    @property
    def exit_code(self) -> int:
        return 0 if self.safe else 1

    @property
    def broken_codes(self) -> tuple[str, ...]:
        """Codes of the broken rules, each once, in rule order."""
        return tuple(dict.fromkeys(v.code for v in self.violations))


# --- JSON -----------------------------------------------------------------------------------


def _partition(p: Partition | None, options: TableOptions) -> dict[str, object] | None:
    return None if p is None else partition_json(p, options)


def _side(side: TableSide) -> dict[str, object]:
    return {"source": side.source, "kind": side.kind, "table_offset": side.table_offset,
            "md5": side.md5, "flash_size": side.flash_size, "partitions": len(side.table)}


def to_json(report: DiffReport) -> dict[str, object]:
    sub = TableOptions(subtypes=report.subtypes)
    return {
        "schema": SCHEMA,
        "safe": report.safe,
        "old": _side(report.old),
        "new": _side(report.new),
        "flash_size": report.flash_size,
        "flash_size_source": report.flash_source,
        "running": [p.name for p in report.running],
        "running_given": report.running_given,
        "running_from": report.running_from,
        "next_update": None if report.next_update is None else report.next_update.name,
        "erase": list(report.erase),
        "changes": [{"name": c.name, "changes": list(c.kinds),
                     "old": _partition(c.old, sub), "new": _partition(c.new, sub)}
                    for c in report.changes],
        "violations": [{"code": v.code, "title": rule(v.code).title, "message": v.message,
                        "partitions": list(v.partitions), "reason": rule(v.code).reason,
                        "hint": v.hint} for v in report.violations],
        "plan": [{"step": i, "action": s.action, "partition": s.partition, "offset": s.offset,
                  "size": s.size, "source": s.source, "note": s.note, "reboot": s.reboot,
                  "descending": s.descending}
                 for i, s in enumerate(report.plan, start=1)],
        "not_covered": NOT_COVERED if report.plan else None,
    }


# --- text -------------------------------------------------------------------------------------


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _where(p: Partition | None, sub: SubtypeRegistry) -> tuple[str, str, str]:
    if p is None:
        return ("-", "-", "-")
    return (f"{type_name(p.type)}/{sub.render(p.type, p.subtype)}", f"0x{p.offset:x}",
            f"0x{p.size:x}")


def to_text(report: DiffReport) -> str:
    """The human report: changes, broken rules with their reasons, the plan, the verdict."""
    sub = report.subtypes
    out = [f"OLD {report.old.source} ({report.old.kind}, table at "
           f"0x{report.old.table_offset:x}) -> NEW {report.new.source} ({report.new.kind}, "
           f"table at 0x{report.new.table_offset:x})"]
    running = ", ".join(p.name for p in report.running) or "none"
    out.append(f"running slot: {running}" if report.running_given else
               f"running slot: {running} (from OLD's otadata)"
               if report.running_from == "otadata" else
               f"running slot: not given, every app slot counts ({running})")
    if report.next_update is not None:
        p = report.next_update
        out.append(f"next OTA writes: '{p.name}' at 0x{p.offset:x} (the OTA slot after the "
                   "running one in subtype order, as esp_ota_get_next_update_partition picks)")
    if report.flash_size is not None:
        out.append(f"flash size: {report.flash_size >> 20}MB"
                   if report.flash_size >= 1 << 20 and not report.flash_size % (1 << 20) else
                   f"flash size: 0x{report.flash_size:x}")
        out[-1] += f" ({report.flash_source or 'given'})"
    else:
        out.append("flash size: unknown (not checked; give --flash-size)")
    out.append("")
    out.append("changes:")
    rows: list[tuple[str, ...]] = [("Name", "Change", "Old", "Offset", "Size", "New", "Offset",
                                    "Size")]
    for c in report.changes:
        name = c.name if c.old is None or c.new is None or c.old.name == c.new.name else \
            f"{c.old.name} -> {c.new.name}"
        rows.append((name, ",".join(c.kinds) or "unchanged", *_where(c.old, sub),
                     *_where(c.new, sub)))
    out += _columns(rows)
    out.append("")
    if report.violations:
        out.append(f"rules broken ({len(report.violations)}):")
        for v in report.violations:
            parts = f" [{', '.join(v.partitions)}]" if v.partitions else ""
            out.append(f"  {v.code}{parts}: {v.message}")
            out.append(f"    why: {rule(v.code).reason}")
            if v.hint:
                out.append(f"    fix: {v.hint}")
    else:
        out.append("rules: all hold")
    out.append("")
    if report.plan:
        out.append("migration plan:")
        for i, s in enumerate(report.plan, start=1):
            what = f"'{s.partition}' " if s.partition else ""
            span = f"0x{s.offset:x}..0x{s.offset + s.size:x} (0x{s.size:x} bytes)"
            src = f" from 0x{s.source:x}" if s.source is not None else ""
            out.append(f"  {i}. {s.action} {what}{span}{src}: {s.note}"
                       + ("; restart the app before it uses a partition again" if s.reboot else ""))
        out.append(f"  not covered: {NOT_COVERED}")
    else:
        out.append("migration plan: nothing to do (the tables are the same)")
    out.append("")
    verdict = ("SAFE" if report.safe else
               f"UNSAFE ({', '.join(report.broken_codes)})")
    out.append(f"diff {verdict}")
    return "\n".join(out) + "\n"
