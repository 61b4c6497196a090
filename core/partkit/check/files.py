"""Checks on files: the table that is flashed, the CSV it came from, the images.

The entry point every front end shares (``partkit check``, the SCons tool and through it
PlatformIO; CMake runs ``partkit check``): :func:`check_files` reads the table and the
images, validates the table as ``gen`` does, and runs :func:`~partkit.check.checks.run_checks`.

A build checks the binary table it flashes, but users edit the CSV. Given the CSV the
binary was generated from (``table_source``), every partition that matches its CSV row
takes that row's location, so a failure reads ``partitions.csv:6:1: error: ...`` (IDEs
jump there) instead of ``partition-table.bin: entry 4 (byte 0x60)``. A CSV that does not
match the binary (stale, other options) is reported as a warning and the binary's own
locations stay: a mismatch never changes what is checked, only where messages point.
"""

from __future__ import annotations

from partkit.check.boot import BootCheck, check_image_boot
from partkit.check.checks import run_checks
from partkit.common.chips import BOOTLOADER_OFFSET
from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, warning
from partkit.data.check import check_data
from partkit.flash import imagefile
from partkit.flash.appimage import read_image, read_image_file
from partkit.flash.tablearea import bootloader_header_at, load_table_file, read_table_source
from partkit.table.codec import Loaded, validate
from partkit.table.names import type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.check.checks import CheckReport
    from partkit.check.findings import Budget
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions
    from partkit.table.source import FlashSize

__all__ = ["attach_source", "check_files", "load_table_for_check"]


def attach_source(table: PartitionTable, source: PartitionTable) -> tuple[PartitionTable,
                                                                          tuple[Diagnostic, ...]]:
    """``table`` with the locations of ``source``'s rows, where each entry matches its row.

    Entries are matched in order (a binary keeps the CSV's row order) and must agree in
    name, type, subtype, offset, size and flags. Returns the table and a warning when the
    two differ (the unmatched entries keep their own locations).
    """
    partitions = list(table)
    differs: int | None = None
    for index, p in enumerate(partitions):
        row = source[index] if index < len(source) else None
        if row is None or row != p or row.flags != p.flags or row.loc is None:
            if differs is None:
                differs = index
            continue
        partitions[index] = p.replace(loc=row.loc)
    if differs is None and len(source) != len(table):
        differs = len(table)
    notes: tuple[Diagnostic, ...] = ()
    if differs is not None:
        where = (f"entry {differs + 1} ('{table[differs].name}')" if differs < len(table)
                 else f"its length ({len(table)} vs {len(source)} partitions)")
        notes = (warning(
            f"{table.path or 'the table'} does not match {source.path} at {where}; messages "
            "about partitions from there on point at the binary, not the CSV",
            SourceLocation(source.path), code="source-mismatch",
            hint="regenerate the table from this CSV, with the same options"),)
    return table.replace(partitions=tuple(partitions)), notes


def load_table_for_check(path: str, options: TableOptions,
                         table_source: str | None = None) -> Loaded:
    """Read the table to check; validate it like ``gen`` when ``options.verify``.

    The flash size is left to :func:`~partkit.check.checks.check_flash` (a check result,
    exit 1, not bad input). With ``table_source`` (the CSV the binary was made from),
    partitions and validation errors point at the CSV's lines. Raises PartkitError (2).
    """
    loaded = load_table_file(path, options.replace(flash_size=None, verify=False))
    table = loaded.table
    found = list(loaded.warnings)
    if table_source is not None and table_source != path:
        try:
            source = load_table_file(table_source, options.replace(flash_size=None,
                                                                   verify=False))
        except PartkitError as exc:  # the binary is still checked, as it is
            first = exc.diagnostics[0] if exc.diagnostics else None
            found.append(warning(
                f"cannot read {table_source}, the CSV {path} came from; messages point at "
                "the binary", SourceLocation(table_source), code="source-unreadable",
                notes=((first.location, first.message),) if first is not None else ()))
        else:
            table, mismatch = attach_source(table, source.table)
            found += mismatch
    if options.verify:
        checked = validate(table, options, is_binary=loaded.is_binary)
        errors = [d for d in checked if d.is_error]
        if errors:  # with the warnings met so far, after the errors
            raise PartkitError(errors + [d for d in found + checked if not d.is_error])
        found += checked
    return Loaded(table, loaded.is_binary, tuple(found))


def check_files(
    table_path: str,
    options: TableOptions,
    *,
    table_source: str | None = None,
    app: str | None = None,
    app_type: str = "app",
    app_subtype: str | None = None,
    bootloader: str | None = None,
    warn_free: Budget | None = None,
    fail_free: Budget | None = None,
    data: tuple[tuple[str, str], ...] = (),
    flash: FlashSize | None = None,
) -> CheckReport:
    """Load the table (see :func:`load_table_for_check`) and the images, then run the checks.

    ``options.strict`` turns rule warnings into errors. Raises PartkitError (exit 2) for
    bad input; a failed check is in the report (``report.exit_code`` 1). ``data`` pairs
    (partition name, image file) are checked by :func:`partkit.data.check.check_data`.
    A flash image or dump as ``table_path`` also gets its boot predicted
    (:mod:`partkit.check.boot`); without ``app``, the app that boots is checked, in its slot.
    ``flash``: the flash size judged and where it came from (see
    :func:`~partkit.flash.tablearea.table_flash_size`); without it ``options.flash_size``.
    """

    loaded = load_table_for_check(table_path, options.replace(strict=False), table_source)
    app_image = None if app is None else read_image_file(app)
    boot = None
    if read_table_source(table_path, options.table_offset).image:
        boot = check_image_boot(table_path, loaded.table)
        if app is None and boot.app is not None and boot.running is not None:
            app_image = boot.app
            running = boot.running
            app_type = type_name(running.type)
            app_subtype = options.subtypes.render(running.type, running.subtype)
    bl_image = None if bootloader is None else read_image_file(bootloader)
    data_checks = tuple(check_data(loaded.table, name, path) for name, path in data)
    report = run_checks(loaded.table, options, app=app_image, app_type=app_type,
                        app_subtype=app_subtype, bootloader=bl_image, warn_free=warn_free,
                        fail_free=fail_free, table_warnings=loaded.warnings, data=data_checks,
                        boot=boot, flash=flash)
    if boot is None:
        return report
    return report.replace(not_checked=_image_not_checked(table_path, options, boot))


def _image_not_checked(image: str, options: TableOptions, boot: BootCheck) -> tuple[str, ...]:
    """What a check of a flash image or dump cannot know from its bytes."""
    out = []
    chip = options.chip or (boot.app.chip if boot.app is not None else None)
    offset = options.primary_bootloader_offset
    if offset is None and chip is not None and chip in BOOTLOADER_OFFSET:
        offset = BOOTLOADER_OFFSET[chip]
    if options.flash_size is None:
        where = "" if offset is None else f" at 0x{offset:x}"
        out.append(f"the partitions against the flash size: {image} has no bootloader "
                   f"header{where} and is no full dump (a power of two from 1MB); give "
                   "--flash-size")
    # where a device's ROM would find it: the one rule the flash size is read by
    header = bootloader_header_at(lambda at, n: imagefile.read_region(image, at, n),
                                  imagefile.image_size(image), options.table_offset, offset)
    alone = "(partkit image check IMAGE says what a device would do with this image alone)"
    if header is None:
        whose = (f"at 0x{offset:x}, where the {chip} ROM loads it" if chip is not None
                 and offset is not None else f"at 0x{offset:x}" if offset is not None
                 else "at any offset a ROM loads it from")
        out.append(f"the bootloader: {image} holds none {whose}; which app boots assumes "
                   f"one is flashed {alone}")
        return tuple(out)
    # a magic byte is no bootloader: the ROM refuses a corrupt one and nothing boots
    found = header[0]
    label = f"{image}@0x{found:x}"
    try:
        read_image(imagefile.read_region(image, found, options.table_offset - found), label)
    except PartkitError as exc:
        why = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        out.append(f"the bootloader: the one at {label} is broken ({why}); which app boots "
                   f"assumes a working one is flashed {alone}")
    return tuple(out)
