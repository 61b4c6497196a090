"""``partkit diff``: what changes between two tables and whether devices survive the change.

    side_old = load_side("old.csv", table_options)          # CSV, binary, flash image, ...
    side_new = load_side("new.bin", table_options)
    report = diff_tables(side_old, side_new, DiffOptions(running=("ota_0",)))
    print(to_text(report)); sys.exit(report.exit_code)

Data flows one way: sources -> sides -> changes -> rules -> plan -> report. Nothing here
prints; :mod:`partkit.cli.diff` does.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, closest, error
from partkit.common.record import Record
from partkit.diff.changes import Change, compute_changes
from partkit.diff.field import next_update_slot
from partkit.diff.plan import Step, make_plan
from partkit.diff.report import DiffReport, to_json, to_text
from partkit.diff.rules import RULES, DiffContext, Rule, Violation, evaluate, running_candidates
from partkit.diff.source import TableSide, load_side
from partkit.table import verify
from partkit.table.binary import encode
from partkit.table.names import DATA, SUBTYPE_DATA_COREDUMP, SUBTYPE_DATA_OTA
from partkit.table.options import TableOptions
from partkit.table.source import FlashSize, judge_flash_size, source_flash_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.flash.appimage import ImageInfo
    from partkit.table.model import PartitionTable

__all__ = [
    "RULES",
    "Change",
    "DiffOptions",
    "DiffReport",
    "Rule",
    "Step",
    "TableSide",
    "Violation",
    "diff_tables",
    "load_side",
    "side_of",
    "to_json",
    "to_text",
    "validate_new",
]


class DiffOptions(Record):
    """The user's answers: which slots run, what the update erases, what it installs.

    ``running`` None: every app slot of OLD may be running. ``table`` supplies the subtype
    names and the bootloader offset used to validate NEW.
    """

    __slots__ = ("app", "erase", "flash_size", "running", "secure", "table")

    running: tuple[str, ...] | None
    erase: tuple[str, ...]
    app: ImageInfo | None
    flash_size: int | None
    secure: str | None
    table: TableOptions

    def __init__(self, running: tuple[str, ...] | None = None, erase: tuple[str, ...] = (),
                 app: ImageInfo | None = None, flash_size: int | None = None,
                 secure: str | None = None, table: TableOptions | None = None) -> None:
        self._init(running=running, erase=tuple(erase), app=app, flash_size=flash_size,
                   secure=secure, table=table if table is not None else TableOptions())


def side_of(table: PartitionTable, table_offset: int = 0x8000, md5: bool = True,
            kind: str = "csv") -> TableSide:
    """A side from a table already in memory (e.g. one ``partkit resize`` computed)."""
    return TableSide(table, table.path or "<table>", kind, table_offset, md5)


def validate_new(side: TableSide, options: TableOptions) -> tuple[Diagnostic, ...]:
    """gen's rules on NEW; raises PartkitError (exit 2) with every error, returns warnings.

    What the diff rules report themselves (readonly otadata/coredump, Secure Boot
    alignment, the flash size) is left to them, so those come out as broken rules (exit 1).
    """
    table = side.table
    stripped = table.replace(partitions=tuple(
        p.replace(readonly=False) if p.type == DATA and p.subtype in (
            SUBTYPE_DATA_OTA, SUBTYPE_DATA_COREDUMP) else p for p in table))
    found = verify.verify(stripped, options.replace(table_offset=side.table_offset,
                                                    secure=None, flash_size=None))
    errors = [d for d in found if d.is_error]
    if errors:
        raise PartkitError(errors)
    encode(table, side.md5)  # raises when the entries do not fit the 0xC00-byte sector
    return tuple(found)


def _names(table_names: list[str], given: tuple[str, ...], option: str) -> None:
    for name in given:
        if name not in table_names:
            guess = closest(name, table_names)
            raise PartkitError(error(
                f"{option}: no partition named '{name}' in OLD or NEW",
                None, (f"did you mean '{guess}'? " if guess else "")
                + "partitions: " + ", ".join(dict.fromkeys(table_names))))


def diff_tables(old: TableSide, new: TableSide, options: DiffOptions | None = None) -> DiffReport:
    """Compare OLD (on the devices) with NEW; raises PartkitError for bad input."""
    opts = options if options is not None else DiffOptions()
    warnings = validate_new(new, opts.table)
    names = [p.name for p in old.table] + [p.name for p in new.table]
    _names(names, opts.erase, "--erase")
    booted = old.booted() if opts.running is None else None
    try:
        running = ((booted,) if booted is not None
                   else running_candidates(old.table, opts.running))
        back = old.rollback() if booted is not None else None
        if back is not None and back is not booted:  # the slot a rollback boots
            running += (back,)
    except KeyError as exc:
        apps = [p.name for p in old.table if p.type == 0]
        guess = closest(str(exc.args[0]), apps)
        raise PartkitError(error(
            f"--running: no app partition '{exc.args[0]}' in OLD", None,
            (f"did you mean '{guess}'? " if guess else "")
            + "app partitions: " + (", ".join(apps) or "(none)")
            + "; a partition name, an app subtype (factory, ota_0, ...) or the slot's "
            "offset")) from None
    flash = _flash_size(old, new, opts.flash_size)
    flash_size, flash_source = flash.size, flash.origin
    warnings = (*flash.warnings, *warnings)
    changes = compute_changes(old.table, new.table)
    ctx = DiffContext(old, new, changes, running, frozenset(opts.erase), opts.app, flash_size,
                      opts.secure, old.active_seq, flash_source)
    running_from = ("--running" if opts.running is not None else
                    "otadata" if booted is not None else None)
    next_update = (next_update_slot(new.table, ctx.new_at(running[0].offset))
                   if len(running) == 1 and ctx.new_at(running[0].offset) is not None else None)
    return DiffReport(old, new, changes, evaluate(ctx), make_plan(ctx), running,
                      opts.running is not None, opts.erase, flash_size, opts.table.subtypes,
                      (*old.warnings, *new.warnings, *warnings), running_from, flash_source,
                      next_update)


def _flash_size(old: TableSide, new: TableSide, given: int | None) -> FlashSize:
    """The size the devices' bootloader checks NEW against, and where the number came from.

    ``table.source``'s one rule applied to OLD (the devices run OLD's bootloader): its
    header decides, then --flash-size (a warning when the header overrules it). Else what
    a source itself says, a device's flash chip before a full dump's length, OLD first.
    """
    if old.field.header_flash_size is not None or given is not None:
        return judge_flash_size(old.raw, TableOptions(flash_size=given))
    answers = [(side.kind, source_flash_size(side.raw)) for side in (old, new)]
    for kind in ("device", "image"):
        for side_kind, (size, origin) in answers:
            if side_kind == kind and size is not None:
                return FlashSize(size, origin)
    return FlashSize()
