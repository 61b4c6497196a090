"""Size checks: app fits its slots, bootloader fits before the table, table fits the flash.

Numbers, verdicts and message texts follow ESP-IDF's check_sizes.py, so a build that
switches to partkit keeps its logs. "Fits" means the bytes that are flashed fit: the whole
file (esptool writes all of it), never just the image inside it. What partkit adds: the
image is read (see :mod:`partkit.flash.appimage`) so a failure caused by padding after the
image says so, CI budgets (``warn_free`` / ``fail_free``), a recovery-bootloader overlap
check, a table-vs-flash check using the highest partition end, and rule warnings users
asked for.

Nothing here prints. Each check returns a result object with ``findings`` (a stable
``code`` plus a :class:`~partkit.common.errors.Diagnostic`); :class:`CheckReport` gathers them and
decides the exit code (0 ok, 1 failed). Bad input raises PartkitError (exit 2).

About 600 lines on purpose: the app, bootloader and flash checks, their result records and
the report that decides the verdict share the check_sizes.py message texts and the finding
codes; the records are imported from here by the build adapters' reports and the tests.
"""

from __future__ import annotations

import os

from partkit.check.findings import Budget, Finding
from partkit.common.chips import bootloader_offset as chip_offset
from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, closest, error, warning
from partkit.common.numbers import align_up, format_size
from partkit.common.record import Record
from partkit.table.names import (
    APP,
    BOOTLOADER,
    BUILTIN_SUBTYPES,
    DATA,
    NAME_BYTES,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_TEE,
    SUBTYPE_DATA_OTA,
    TYPES,
    SubtypeRegistry,
    is_ota_app,
    lookup,
    name_overflow,
)
from partkit.table.source import grow_hint
from partkit.table.verify import LONG_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from partkit.check.boot import BootCheck
    from partkit.data.check import DataCheck
    from partkit.flash.appimage import ImageInfo
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions
    from partkit.table.source import FlashSize

__all__ = [
    "NEARLY_FULL",
    "AppCheck",
    "BootloaderCheck",
    "Budget",
    "CheckReport",
    "Finding",
    "FlashCheck",
    "SlotResult",
    "bootloader_summary",
    "bootloader_too_large",
    "check_app",
    "check_bootloader",
    "check_flash",
    "check_rules",
    "resolve_selector",
    "run_checks",
]

NEARLY_FULL = 0.05  # check_sizes.py warns below 5 % free in the smallest slot
MAX_APP_SIZE = 16 * 1024 * 1024  # the cache MMU maps at most 16 MiB of one app


class SlotResult(Record):
    """How one image fits one partition."""

    __slots__ = ("partition", "used")

    partition: Partition
    used: int

    def __init__(self, partition: Partition, used: int) -> None:
        self._init(partition=partition, used=used)

    @property
    def free(self) -> int:
        """Bytes left in the slot; negative: overflow."""
        return self.partition.size - self.used

    @property
    def fits(self) -> bool:
        return self.free >= 0

    @property
    def percent_free(self) -> float:
        return 100.0 * self.free / self.partition.size if self.partition.size else 0.0

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used / self.partition.size if self.partition.size else 100.0


class AppCheck(Record):
    """App image vs every candidate slot."""

    __slots__ = ("candidates", "findings", "image", "label", "status", "subtype", "summary",
                 "type")

    image: ImageInfo
    label: str
    type: int
    subtype: int | None
    candidates: tuple[SlotResult, ...]
    status: str  # "ok", "warning", "fail" or "no-match"
    summary: str | None  # check_sizes.py's OK line
    findings: tuple[Finding, ...]

    def __init__(self, image: ImageInfo, label: str, type: int, subtype: int | None, *,
                 candidates: tuple[SlotResult, ...] = (), status: str = "ok",
                 summary: str | None = None, findings: tuple[Finding, ...] = ()) -> None:
        self._init(image=image, label=label, type=type, subtype=subtype,
                   candidates=candidates, status=status, summary=summary, findings=findings)

    @property
    def smallest(self) -> SlotResult | None:
        """The smallest candidate slot (first in table order on a tie)."""
        return _smallest(self.candidates)


class BootloaderCheck(Record):
    """Bootloader image vs the space before the partition table (and a recovery copy)."""

    __slots__ = ("findings", "image", "offset", "recovery_offset", "summary", "table_offset")

    image: ImageInfo
    offset: int
    table_offset: int
    recovery_offset: int | None
    summary: str | None
    findings: tuple[Finding, ...]

    def __init__(self, image: ImageInfo, offset: int, table_offset: int,
                 recovery_offset: int | None, *, summary: str | None = None,
                 findings: tuple[Finding, ...] = ()) -> None:
        self._init(image=image, offset=offset, table_offset=table_offset,
                   recovery_offset=recovery_offset, summary=summary, findings=findings)

    @property
    def limit(self) -> int:
        """Bytes from the bootloader offset to the table."""
        return self.table_offset - self.offset

    @property
    def free(self) -> int:
        return self.limit - self.image.flashed_size

    @property
    def fits(self) -> bool:
        return self.free >= 0

    @property
    def percent_free(self) -> float:
        return 100.0 * self.free / self.limit


class FlashCheck(Record):
    """The highest partition end vs the flash size, and where that size came from."""

    __slots__ = ("findings", "flash_size", "last", "origin")

    flash_size: int
    last: Partition | None  # the partition that ends highest
    findings: tuple[Finding, ...]
    origin: str | None  # "--flash-size", "the bootloader header at ...", a build's setting

    def __init__(self, flash_size: int, last: Partition | None,
                 findings: tuple[Finding, ...] = (), origin: str | None = None) -> None:
        self._init(flash_size=flash_size, last=last, findings=findings, origin=origin)

    @property
    def highest_end(self) -> int:
        return self.last.end if self.last is not None else 0

    @property
    def free(self) -> int:
        return self.flash_size - self.highest_end

    @property
    def fits(self) -> bool:
        return self.free >= 0


def _smallest(candidates: tuple[SlotResult, ...]) -> SlotResult | None:
    if not candidates:
        return None
    return min(candidates, key=lambda r: r.partition.size)


def _where(p: Partition | None, table: PartitionTable) -> SourceLocation | None:
    if p is not None and p.loc is not None:
        return p.loc
    return SourceLocation(table.path) if table.path else None


def resolve_selector(
    type_text: str, subtype_text: str | None, subtypes: SubtypeRegistry = BUILTIN_SUBTYPES
) -> tuple[int, int | None, str]:
    """``--type``/``--subtype`` words or numbers -> (type, subtype, check_sizes label).

    Like check_sizes.py: exact keyword first, then any-base integer; the label is the
    literal text (``app``, ``app (ota_1)``, ``0x40``).
    """
    def value(text: str, kind: str, keywords: Mapping[str, int]) -> int:
        try:
            return lookup(text, keywords)
        except ValueError:
            guess = closest(text, keywords)
            hint = f"did you mean '{guess}'? " if guess else ""
            raise PartkitError(error(
                f"unknown partition {kind} '{text}'",
                hint=f"{hint}known {kind}s: {', '.join(keywords)}, or a number",
            )) from None

    ptype = value(type_text, "type", TYPES)
    label = type_text
    subtype: int | None = None
    if subtype_text is not None:
        subtype = value(subtype_text, "subtype", subtypes.keywords(ptype))
        label += f" ({subtype_text})"
    return ptype, subtype, label


def check_app(
    table: PartitionTable,
    image: ImageInfo,
    *,
    ptype: int = APP,
    subtype: int | None = None,
    label: str = "app",
    warn_free: Budget | None = None,
    fail_free: Budget | None = None,
    chip: str | None = None,
) -> AppCheck:
    """Check an app image against every matching slot, as check_sizes.py does.

    With ``chip``, an image built for another chip is an error too.
    """
    findings: list[Finding] = []
    if subtype is not None:
        slots = table.find(ptype, subtype)
    else:
        # TEE slots hold the TEE firmware, not this app: only checked when asked for.
        slots = tuple(p for p in table.find(ptype)
                      if not (ptype == APP and p.subtype in SUBTYPE_APP_TEE))
    size = image.flashed_size
    name = os.path.basename(image.path)
    candidates = tuple(SlotResult(p, size) for p in slots)
    if not slots:
        no_match = Finding("no-matching-partitions", warning(
            f"Partition table does not contain any partitions matching {label}",
            _where(None, table)))
        mismatch = _chip_findings(image, chip)
        return AppCheck(image, label, ptype, subtype, status="fail" if mismatch else "no-match",
                        findings=(no_match, *mismatch))

    smallest = _smallest(candidates)
    assert smallest is not None
    summary: str | None = None
    if smallest.fits:
        ratio = smallest.free / smallest.partition.size
        summary = (
            f"{name} binary size {size:#x} bytes. Smallest {label} partition is "
            f"{smallest.partition.size:#x} bytes. {smallest.free:#x} bytes ({ratio:.0%}) free."
        )
        if ratio < NEARLY_FULL:
            findings.append(Finding("nearly-full", warning(
                f"The smallest {label} partition is nearly full ({ratio:.0%} free space left)!",
                _where(smallest.partition, table))))
    else:
        too_small = [r for r in candidates if not r.fits]
        total = len(candidates)
        if total == 1:
            head = f"{label} partition is"
        elif len(too_small) == total:
            head = f"All {label} partitions are"
        else:
            head = f"{len(too_small)}/{total} {label} partitions are"
        message = f"{head} too small for binary {name} size {size:#x}:" + "".join(
            f"\n  - {r.partition} (overflow {-r.free:#x})" for r in too_small)
        worst = max(too_small, key=lambda r: -r.free)
        need = -worst.free
        hint = (f"'{worst.partition.name}' needs {need} more byte{'s' if need != 1 else ''}: "
                f"make it at least {align_up(size, 0x1000):#x} bytes or shrink the app")
        if len(too_small) > 1:  # OTA slots take turns: every one of them must hold the app
            names = [f"'{r.partition.name}'" for r in too_small]
            hint = (f"{', '.join(names[:-1])} and {names[-1]} must each hold the app: make "
                    f"each at least {align_up(size, 0x1000):#x} bytes ('{worst.partition.name}'"
                    f" needs {need} more) or shrink the app")
        if _padding_note(image, worst.partition.size):
            hint = (f"write the image without the {image.trailing_bytes} bytes of padding "
                    f"after it, or make '{worst.partition.name}' at least "
                    f"{align_up(size, 0x1000):#x} bytes")
        all_bad = len(too_small) == total
        make = error if all_bad else warning
        findings.append(Finding("app-too-small" if all_bad else "some-slots-too-small",
                                make(message, _where(too_small[0].partition, table), hint,
                                     _padding_note(image, worst.partition.size))))

    fitting = [r for r in candidates if r.fits]
    if fitting:
        tightest = min(fitting, key=lambda r: r.free / r.partition.size)
        for budget, code, make in ((fail_free, "budget-fail", error),
                                   (warn_free, "budget-warn", warning)):
            if budget is not None and tightest.free < budget.threshold(tightest.partition.size):
                option = "--fail-free" if code == "budget-fail" else "--warn-free"
                findings.append(Finding(code, make(
                    f"{label} partition '{tightest.partition.name}' has {tightest.free:#x} "
                    f"bytes ({tightest.percent_free:.1f}%) free for {name}, below the "
                    f"{option} budget of {budget}",
                    _where(tightest.partition, table),
                    hint="shrink the app or grow the partition before it overflows")))
                break  # a failed hard budget implies the soft one

    findings.extend(_image_findings(image, expect="app"))
    findings.extend(_chip_findings(image, chip))
    return AppCheck(image, label, ptype, subtype, candidates=candidates,
                    status=_status(findings), summary=summary, findings=tuple(findings))


def check_bootloader(
    image: ImageInfo,
    *,
    offset: int,
    table_offset: int,
    recovery_offset: int | None = None,
    table: PartitionTable | None = None,
    flash_size: int | None = None,
    chip: str | None = None,
) -> BootloaderCheck:
    """The bootloader must end at or before the table, and clear of a recovery bootloader.

    With ``chip``, an image built for another chip is an error too.
    """
    if table_offset <= offset:
        raise PartkitError(error(
            f"partition table offset {table_offset:#x} is not after the bootloader offset "
            f"{offset:#x}", hint="check --offset and --chip / --bootloader-offset"))
    size = image.flashed_size
    limit = table_offset - offset
    free = limit - size
    findings: list[Finding] = []
    summary: str | None = None
    loc = SourceLocation(image.path)
    if free < 0:
        findings.append(Finding("bootloader-too-large", error(
            bootloader_too_large(size, table_offset, limit), loc,
            hint=f"it overflows by {-free} bytes; move the table to "
                 f"{align_up(offset + size, 0x1000):#x} or later",
            notes=_padding_note(image, limit))))
    else:
        summary = bootloader_summary(size, limit)
    if recovery_offset is not None:
        findings.extend(_recovery_findings(offset, size, recovery_offset, loc, table, flash_size))
    findings.extend(_image_findings(image, expect="bootloader"))
    findings.extend(_chip_findings(image, chip))
    return BootloaderCheck(image, offset, table_offset, recovery_offset, summary=summary,
                           findings=tuple(findings))


def bootloader_too_large(size: int, table_offset: int, limit: int) -> str:
    """check_sizes.py's failure text for a bootloader of ``size`` bytes with ``limit`` room."""
    return (f"Bootloader binary size {size:#x} bytes is too large for partition table offset "
            f"{table_offset:#02x}. Bootloader binary can be maximum {limit:#x} ({limit}) bytes "
            "unless the partition table offset is increased in the Partition Table section of "
            "the project configuration menu.")


def bootloader_summary(size: int, limit: int) -> str:
    """check_sizes.py's size line (free space negative when it overflows)."""
    free = limit - size
    return (f"Bootloader binary size {size:#x} bytes. {free:#x} bytes "
            f"({round(free * 100 / limit)}%) free.")


def _recovery_findings(offset: int, size: int, recovery: int, loc: SourceLocation,
                       table: PartitionTable | None, flash_size: int | None) -> list[Finding]:
    """A recovery copy of the ``size``-byte bootloader at ``offset`` must overlap nothing."""
    out: list[Finding] = []
    if offset <= recovery < offset + size:
        out.append(Finding("bootloader-overlaps-recovery", error(
            f"bootloader at {offset:#x} ({size:#x} bytes, ends {offset + size:#x}) "
            f"overlaps the recovery bootloader at {recovery:#x}", loc,
            hint="move the recovery bootloader offset past the primary bootloader")))
    end = recovery + size
    if table is not None:
        for p in table:
            if p.type == BOOTLOADER or not (p.offset < end and recovery < p.end):
                continue
            out.append(Finding("recovery-overlaps-partition", error(
                f"recovery bootloader copy at {recovery:#x}..{end:#x} overlaps partition "
                f"'{p.name}' ({p.offset:#x}..{p.end:#x})", _where(p, table),
                hint="leave room for the recovery bootloader, e.g. with a "
                     "'bootloader, recovery' entry")))
    if flash_size is not None and end > flash_size:
        out.append(Finding("recovery-exceeds-flash", error(
            f"recovery bootloader copy at {recovery:#x}..{end:#x} is beyond the flash size "
            f"{flash_size:#x}", loc)))
    return out


def check_flash(table: PartitionTable, flash_size: int, origin: str | None = None,
                notes: tuple[Diagnostic, ...] = ()) -> FlashCheck:
    """Every partition must end within the flash (the highest end, not the last row).

    ``origin`` says where ``flash_size`` came from (messages name it); ``notes`` are the
    warnings judging the size raised (:class:`~partkit.table.source.FlashSize`)."""
    last = max(table, key=lambda p: p.end, default=None)
    # a header bigger than the chip stops the app at start-up: this check fails on it
    found = tuple(Finding(d.code or "flash-size", d.replace(severity="error")
                          if d.code == "flash-smaller-than-header" else d) for d in notes)
    if last is None or last.end <= flash_size:
        return FlashCheck(flash_size, last, found, origin)
    source = f", from {origin}" if origin is not None else ""
    return FlashCheck(flash_size, last, (*found, Finding("table-exceeds-flash", error(
        f"partition '{last.name}' ends at {last.end:#x}, {last.end - flash_size:#x} bytes "
        f"beyond the {format_size(flash_size, 'esptool')} flash ({flash_size:#x} bytes"
        f"{source})", _where(last, table),
        hint=grow_hint(origin)))),
        origin)


def check_rules(table: PartitionTable, *, strict: bool = False) -> tuple[Finding, ...]:
    """Layout rules the reference does not enforce: warnings, or errors when strict."""
    make = error if strict else warning
    out: list[Finding] = []
    ota = [p for p in table if is_ota_app(p.type, p.subtype)]
    if ota and not table.find(DATA, SUBTYPE_DATA_OTA):
        out.append(Finding("ota-without-otadata", make(
            f"OTA app partitions ({', '.join(p.name for p in ota)}) but no otadata partition; "
            "the bootloader ignores OTA slots without it", _where(ota[0], table),
            hint="add 'otadata, data, ota, , 0x2000' before the apps")))
    if len({p.size for p in ota}) > 1:
        sizes = ", ".join(f"{p.name} {p.size:#x}" for p in ota)
        out.append(Finding("ota-unequal-sizes", make(
            f"OTA app partitions differ in size ({sizes}); every update must fit the smallest",
            _where(min(ota, key=lambda p: p.size), table))))
    for p in table:
        length = name_overflow(p.name)  # the one name rule, explained in table.names
        if length:
            out.append(Finding("name-too-long", make(
                f"partition name '{p.name}' is {length} bytes; names over {NAME_BYTES} "
                f"bytes are cut to the first {NAME_BYTES} in the table",
                _where(p, table))))
        if p.type == APP and p.size > MAX_APP_SIZE:
            out.append(Finding("app-over-16mib", make(
                f"app partition '{p.name}' is {p.size:#x} bytes, over 16 MiB; the cache MMU "
                "cannot map more than 16 MiB of one app", _where(p, table))))
    factories = table.find(APP, SUBTYPE_APP_FACTORY)
    if len(factories) > 1:
        out.append(Finding("multiple-factory", make(
            f"{len(factories)} factory app partitions ({', '.join(p.name for p in factories)}); "
            "the bootloader only ever boots the first", _where(factories[1], table))))
    return tuple(out)


def _image_findings(image: ImageInfo, *, expect: str) -> list[Finding]:
    out = [Finding("not-an-image" if not image.is_image else "image", d)
           for d in image.warnings]
    kind = image.kind
    if kind not in ("unknown", expect):
        out.append(Finding("image-kind", warning(
            f"this looks like a{'n' if kind == 'app' else ''} {kind} image, checked as "
            f"a{'n' if expect == 'app' else ''} {expect}", SourceLocation(image.path))))
    return out


def _padding_note(image: ImageInfo, room: int) -> tuple[tuple[SourceLocation | None, str], ...]:
    """Why a file whose image would fit still fails: the padding after it is flashed too."""
    if not image.trailing_bytes or image.measured_size > room:
        return ()
    return ((SourceLocation(image.path),
             f"the image itself is {image.measured_size:#x} bytes and would fit; the file adds "
             f"{image.trailing_bytes} bytes after it, and esptool writes the whole file"),)


def _chip_findings(image: ImageInfo, chip: str | None) -> tuple[Finding, ...]:
    if chip is None or image.chip is None or image.chip == chip.lower():
        return ()
    return (Finding("chip-mismatch", error(
        f"image is for {image.chip} (chip id {image.chip_id}), not {chip}",
        SourceLocation(image.path), hint="build for the right target or fix --chip")),)


def _status(findings: list[Finding]) -> str:
    if any(f.is_error for f in findings):
        return "fail"
    return "warning" if findings else "ok"


class CheckReport(Record):
    """Everything one ``partkit check`` run found. ``exit_code`` is 0 (ok) or 1 (failed)."""

    __slots__ = ("app", "boot", "bootloader", "data", "fail_free", "flash", "not_checked",
                 "options", "rules", "table", "table_findings", "warn_free")

    table: PartitionTable
    options: TableOptions
    app: AppCheck | None
    bootloader: BootloaderCheck | None
    flash: FlashCheck | None
    rules: tuple[Finding, ...]
    table_findings: tuple[Finding, ...]
    warn_free: Budget | None
    fail_free: Budget | None
    data: tuple[DataCheck, ...]  # data images against their partitions (check --data)
    boot: BootCheck | None  # a flash image or dump: which app boots
    not_checked: tuple[str, ...]  # what partkit could not know, each a sentence: "OK (partly)"

    def __init__(
        self,
        table: PartitionTable,
        options: TableOptions,
        *,
        app: AppCheck | None = None,
        bootloader: BootloaderCheck | None = None,
        flash: FlashCheck | None = None,
        rules: tuple[Finding, ...] = (),
        table_findings: tuple[Finding, ...] = (),
        warn_free: Budget | None = None,
        fail_free: Budget | None = None,
        data: tuple[DataCheck, ...] = (),
        boot: BootCheck | None = None,
        not_checked: tuple[str, ...] = (),
    ) -> None:
        self._init(table=table, options=options, app=app, bootloader=bootloader, flash=flash,
                   rules=rules, table_findings=table_findings, warn_free=warn_free,
                   fail_free=fail_free, data=data, boot=boot, not_checked=not_checked)

    @property
    def findings(self) -> tuple[Finding, ...]:
        out: list[Finding] = list(self.table_findings)
        if self.boot is not None:
            out.extend(self.boot.findings)
        for part in (self.app, self.bootloader, self.flash):
            if part is not None:
                out.extend(part.findings)
        for data in self.data:
            out.extend(data.findings)
        out.extend(self.rules)
        return tuple(out)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_error)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def run_checks(
    table: PartitionTable,
    options: TableOptions,
    *,
    app: ImageInfo | None = None,
    app_type: str = "app",
    app_subtype: str | None = None,
    bootloader: ImageInfo | None = None,
    bootloader_offset: int | None = None,
    warn_free: Budget | None = None,
    fail_free: Budget | None = None,
    table_warnings: tuple[Diagnostic, ...] = (),
    data: tuple[DataCheck, ...] = (),
    boot: BootCheck | None = None,
    flash: FlashSize | None = None,
) -> CheckReport:
    """Run every check that has its inputs. Uses options.table_offset, .flash_size,
    .recovery_bootloader_offset, .chip, .strict and .subtypes. ``flash``: the flash size
    judged and where it came from (it replaces ``options.flash_size``); without it the
    report names no origin."""
    if flash is not None:
        options = options.replace(flash_size=flash.size)
    app_check: AppCheck | None = None
    if app is not None:
        ptype, subtype, label = resolve_selector(app_type, app_subtype, options.subtypes)
        app_check = check_app(table, app, ptype=ptype, subtype=subtype, label=label,
                              warn_free=warn_free, fail_free=fail_free, chip=options.chip)
    bootloader_check: BootloaderCheck | None = None
    if bootloader is not None:
        offset = bootloader_offset
        if offset is None:
            offset = options.primary_bootloader_offset
        chip = options.chip or bootloader.chip  # the image header names its chip
        if offset is None and chip is not None:
            offset = chip_offset(chip)
        if offset is None:
            raise PartkitError(error(
                "the bootloader check needs the bootloader's flash offset",
                SourceLocation(bootloader.path),
                hint="pass --chip (e.g. --chip esp32c3) or --bootloader-offset 0x0"))
        bootloader_check = check_bootloader(
            bootloader, offset=offset, table_offset=options.table_offset,
            recovery_offset=options.recovery_bootloader_offset, table=table,
            flash_size=options.flash_size, chip=options.chip or bootloader.chip)
    rules = check_rules(table, strict=options.strict)
    return CheckReport(
        table, options, app=app_check, bootloader=bootloader_check,
        flash=None if options.flash_size is None else check_flash(
            table, options.flash_size, flash.origin if flash is not None else None,
            flash.warnings if flash is not None else ()),
        rules=rules, table_findings=_table_findings(table_warnings, rules, options.strict),
        warn_free=warn_free, fail_free=fail_free, data=data, boot=boot)


def _table_findings(warnings: tuple[Diagnostic, ...], rules: tuple[Finding, ...],
                    strict: bool) -> tuple[Finding, ...]:
    """The table's own warnings, each once: a name the rules already report as too long is
    not repeated, and ``strict`` makes the rest errors, as it does the rules."""

    long_names = {f.diagnostic.location for f in rules if f.code == "name-too-long"}
    out = []
    for d in warnings:
        if d.code == LONG_NAME and d.location in long_names:
            continue
        if strict and not d.is_error:
            d = Diagnostic("error", d.message + " [--strict]", d.location, d.hint, d.notes,
                           d.code)
        out.append(Finding("table", d))
    return tuple(out)
