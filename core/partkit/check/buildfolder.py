"""Check everything a build will flash, with the options the build itself used.

One checker for every ecosystem's build folder (ESP-IDF's in :mod:`partkit.idf.builddir`,
Arduino's in :mod:`partkit.arduino.builddir`): each reader gives a :class:`BuildFolder`.
On top of ``partkit check`` (the app against every slot it may be written to, the
bootloader against the room before the table, the table against the flash), a build
flashes more files at fixed offsets: every one must lie inside the partition at its offset
and end before that partition does, and no two flashed files may overlap. Sizes are the
files' sizes, since esptool writes whole files.
"""

from __future__ import annotations

import os

from partkit.check.checks import Finding, run_checks
from partkit.check.files import load_table_for_check
from partkit.check.report import finding_json
from partkit.check.report import to_json as report_json
from partkit.check.report import to_text as report_text
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.record import Record
from partkit.flash.appimage import read_image_file
from partkit.table.csvparse import PARTITION_TABLE_SIZE
from partkit.table.source import FlashSize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from partkit.check.checks import Budget, CheckReport, Finding
    from partkit.table.codec import Loaded
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions
else:
    Protocol = object

__all__ = ["BuildCheck", "BuildFolder", "FlashedImage", "Placement", "check_build",
           "load_build_table", "to_json", "to_text"]


class FlashedImage(Record):
    """One file the build flashes: its role (``app``, ``bootloader``, ...), offset, path."""

    __slots__ = ("encrypted", "name", "offset", "path")

    name: str  # flasher_args.json entry name; "" for an image listed only by offset
    offset: int
    path: str  # absolute
    encrypted: bool

    def __init__(self, name: str, offset: int, path: str, encrypted: bool = False) -> None:
        self._init(name=name, offset=offset, path=path, encrypted=encrypted)

    def __repr__(self) -> str:
        return f"FlashedImage({self.name!r}, 0x{self.offset:x}, {self.path!r})"


class BuildFolder(Protocol):
    """What the checker reads from a build folder; paths are absolute."""

    @property
    def kind(self) -> str: ...  # "ESP-IDF", "Arduino": the report's first words
    @property
    def json_key(self) -> str: ...  # "idf_build", "arduino_build"
    @property
    def images_listing(self) -> str: ...  # the file that lists the flashed images
    @property
    def rebuild_hint(self) -> str: ...  # how to (re)make a missing output
    @property
    def build_dir(self) -> str: ...
    @property
    def project_name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def options(self) -> TableOptions: ...
    @property
    def table(self) -> str: ...  # the binary table the build generated (may not exist)
    @property
    def table_source(self) -> str | None: ...  # the CSV it came from
    @property
    def flash_size_text(self) -> str | None: ...
    @property
    def flash_size_origin(self) -> str | None: ...  # where the build's flash size was set
    @property
    def app(self) -> FlashedImage | None: ...
    @property
    def bootloader(self) -> FlashedImage | None: ...
    @property
    def images(self) -> tuple[FlashedImage, ...]: ...



class Placement(Record):
    """Where one flashed file lands: the partition (or reserved region) it must fit."""

    __slots__ = ("end", "image", "region", "room", "size")

    image: FlashedImage
    size: int
    region: str  # partition name, "bootloader", "partition table" or "" (none)
    room: int  # bytes from the file's offset to the region's end (0 when none)
    end: int

    def __init__(self, image: FlashedImage, size: int, region: str, room: int) -> None:
        self._init(image=image, size=size, region=region, room=room, end=image.offset + size)

    @property
    def fits(self) -> bool:
        return bool(self.region) and self.size <= self.room


class BuildCheck(Record):
    """A :class:`~partkit.check.checks.CheckReport` plus the placement of every flashed file."""

    __slots__ = ("build", "placement_findings", "placements", "report")

    build: BuildFolder
    report: CheckReport
    placements: tuple[Placement, ...]
    placement_findings: tuple[Finding, ...]

    def __init__(self, build: BuildFolder, report: CheckReport,
                 placements: tuple[Placement, ...],
                 placement_findings: tuple[Finding, ...]) -> None:
        self._init(build=build, report=report, placements=placements,
                   placement_findings=placement_findings)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (*self.report.findings, *self.placement_findings)

    @property
    def exit_code(self) -> int:
        return 1 if any(f.is_error for f in self.findings) else 0


def load_build_table(build: BuildFolder, *, verify: bool = True, strict: bool = False) -> Loaded:
    """The build's table (the generated binary, else its CSV), pointing at the CSV's lines."""
    options = build.options.replace(verify=verify, strict=strict)
    source = build.table_source if build.table_source and os.path.exists(
        build.table_source) else None
    if os.path.exists(build.table):
        return load_table_for_check(build.table, options, source)
    if source is not None:
        return load_table_for_check(source, options)
    raise PartkitError(error(
        "the build has no partition table yet (and its CSV was not found)",
        SourceLocation(build.table), hint=build.rebuild_hint))


def _file_size(image: FlashedImage, listing: str, rebuild: str) -> int:
    try:
        return os.stat(image.path).st_size
    except FileNotFoundError:
        raise PartkitError(error(
            f"{image.name or 'image'} at 0x{image.offset:x} is listed in {listing} "
            "but the file is missing", SourceLocation(image.path),
            hint=f"{rebuild} to finish the build")) from None
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror}",
                                 SourceLocation(image.path))) from None


def _region(image: FlashedImage, build: BuildFolder,
            table: PartitionTable) -> tuple[str, int, Partition | None]:
    offset, options = image.offset, build.options
    if image.name == "partition-table" or offset == options.table_offset:
        return "partition table", options.table_offset + PARTITION_TABLE_SIZE - offset, None
    bl = options.primary_bootloader_offset
    if image.name == "bootloader" or (bl is not None and offset == bl):
        return "bootloader", options.table_offset - offset, None
    for p in table:
        if p.offset <= offset < p.end:
            return p.name, p.end - offset, p
    return "", 0, None


def _is_app(image: FlashedImage, build: BuildFolder) -> bool:
    return build.app is not None and os.path.samefile(image.path, build.app.path)


def _placements(build: BuildFolder, table: PartitionTable) -> tuple[list[Placement],
                                                                 list[Finding]]:
    placements: list[Placement] = []
    findings: list[Finding] = []
    for image in build.images:
        size = _file_size(image, build.images_listing, build.rebuild_hint)
        name, room, partition = _region(image, build, table)
        placement = Placement(image, size, name, room)
        placements.append(placement)
        label = os.path.basename(image.path)
        where = partition.loc if partition is not None else SourceLocation(image.path)
        if not name:
            findings.append(Finding("image-outside-partitions", error(
                f"{label} is flashed at 0x{image.offset:x}, which is in no partition",
                SourceLocation(image.path),
                hint="flash it to a partition's offset, or add a partition for it")))
        elif name in ("bootloader", "partition table"):
            continue  # the bootloader check and the table's own generation cover these
        elif size > room and not _is_app(image, build):  # the app check reports the app
            findings.append(Finding("image-overflow", error(
                f"{label} ({size:#x} bytes) flashed at 0x{image.offset:x} runs "
                f"{size - room:#x} bytes past the end of partition '{name}' "
                f"(0x{image.offset + room:x})", where,
                hint=f"grow '{name}' or make {label} smaller")))
        elif partition is not None and image.offset != partition.offset:
            findings.append(Finding("image-offset", error(
                f"{label} is flashed at 0x{image.offset:x}, inside partition '{name}' "
                f"which starts at 0x{partition.offset:x}", where,
                hint="flash images to the start of their partition")))
    ordered = sorted(placements, key=lambda p: p.image.offset)
    for a, b in zip(ordered, ordered[1:]):
        if a.end > b.image.offset:
            findings.append(Finding("images-overlap", error(
                f"{os.path.basename(a.image.path)} (0x{a.image.offset:x}..0x{a.end:x}) "
                f"overlaps {os.path.basename(b.image.path)} at 0x{b.image.offset:x}: "
                "flashing one overwrites the other", SourceLocation(a.image.path),
                hint="move one image or shrink the other")))
    return placements, findings


def check_build(build: BuildFolder, *, warn_free: Budget | None = None,
                fail_free: Budget | None = None, verify: bool = True,
                strict: bool = False) -> BuildCheck:
    """Check the table, the app and bootloader, and where every flashed file lands.

    Raises PartkitError (exit 2) for missing or malformed inputs; failed checks are in the
    result (``exit_code`` 1).
    """
    loaded = load_build_table(build, verify=verify)
    table = loaded.table
    options = build.options.replace(strict=strict)
    # Every flashed file is sized first: a missing one (the app not built yet) is reported
    # against the list that names it, with the build command that makes it.
    placements, findings = _placements(build, table)
    app = build.app
    bootloader = build.bootloader
    report = run_checks(
        table, options,
        app=None if app is None else read_image_file(app.path),
        bootloader=None if bootloader is None else read_image_file(bootloader.path),
        bootloader_offset=None if bootloader is None else bootloader.offset,
        warn_free=warn_free, fail_free=fail_free, table_warnings=loaded.warnings,
        flash=FlashSize.given(options.flash_size, build.flash_size_origin or "the build"))
    return BuildCheck(build, report, tuple(placements), tuple(findings))


def to_text(result: BuildCheck) -> str:
    """``partkit check --idf-build-dir/--arduino-build-dir``: the build, the check report,
    the flashed files."""
    build = result.build
    head = (f"{build.kind} build {build.build_dir}: project {build.project_name or '?'}, "
            f"target {build.target}, flash {build.flash_size_text or 'size unknown'}\n")
    lines = []
    if result.placements:
        lines.append("flashed files:")
        for p in sorted(result.placements, key=lambda p: p.image.offset):
            if p.region == "partition table" or p.fits:  # a bootloader that overflows
                verdict = "ok"                             # says so here too
            elif not p.region:
                verdict = "NOT IN A PARTITION"
            else:
                verdict = f"OVER by {p.size - p.room:#x}"
            rel = os.path.relpath(p.image.path, build.build_dir)
            lines.append(f"  0x{p.image.offset:08x} {rel:<40} {p.size:>9} bytes -> "
                         f"{p.region or '-'}: {verdict}")
    body = report_text(result.report)
    if result.placement_findings:
        errors = sum(f.is_error for f in result.findings)
        warnings = len(result.findings) - errors
        verdict = "FAILED" if errors else "OK"
        body = body.rsplit("check ", 1)[0] + (
            f"check {verdict}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}\n")
    return head + body if not lines else head + "\n".join(lines) + "\n" + body


def to_json(result: BuildCheck) -> dict[str, object]:
    """The check report's JSON plus ``idf_build`` / ``arduino_build`` (the build's
    ``json_key``) and ``flashed`` (see docs/esp-idf.md, docs/arduino.md)."""
    build = result.build
    doc = report_json(result.report)
    doc["ok"] = result.exit_code == 0
    doc["exit_code"] = result.exit_code
    doc["findings"] = [finding_json(f) for f in result.findings]
    doc[build.json_key] = {
        "build_dir": build.build_dir,
        "project_name": build.project_name,
        "target": build.target,
        "table": build.table,
        "table_source": build.table_source,
        "flash_size": build.flash_size_text,
    }
    doc["flashed"] = [{
        "name": p.image.name, "offset": p.image.offset, "path": p.image.path, "size": p.size,
        "region": p.region or None, "room": p.room, "fits": p.fits,
    } for p in sorted(result.placements, key=lambda p: p.image.offset)]
    return doc
