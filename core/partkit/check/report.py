"""Rendering a :class:`~partkit.check.checks.CheckReport`: readable text and a stable JSON document.

The JSON layout is documented in ``docs/check.md`` and pinned by
``docs/check-report.schema.json``; bump ``SCHEMA`` on incompatible changes.
"""

from __future__ import annotations

from partkit.common.numbers import format_size
from partkit.table.render import partition_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.check.checks import (
        AppCheck,
        BootloaderCheck,
        CheckReport,
        Finding,
        FlashCheck,
        SlotResult,
    )
    from partkit.flash.appimage import ImageInfo
    from partkit.table.options import TableOptions

__all__ = ["SCHEMA", "bar", "finding_json", "to_json", "to_text"]

SCHEMA = "partkit.check/1"
BAR_WIDTH = 20


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    """``[=====     ]  52.1%``: how full something is; over 100 % shows ``!`` past the end."""
    shown = min(max(percent, 0.0), 100.0)
    filled = int(shown * width / 100 + 0.5)
    if 0 < percent < 100:  # never look empty or full when it is not
        filled = min(max(filled, 1), width - 1)
    over = "!" if percent > 100 else " "
    return f"[{'=' * filled}{' ' * (width - filled)}]{over}{percent:5.1f}%"


def _overflow(n: int) -> str:
    return f"OVERFLOW by {n:#x} ({n} byte{'s' * (n != 1)})"


def _image_line(image: ImageInfo) -> str:
    if not image.is_image:
        return f"  not an ESP image: measured by file size, {image.file_size} bytes"
    parts = [f"{image.chip or f'chip id {image.chip_id}'} {image.kind} image"]
    desc = image.description
    if desc is not None and desc.kind == "app":
        parts.append(f"'{desc.project_name}' {desc.version} (IDF {desc.idf_version})")
    elif desc is not None:
        parts.append(f"(IDF {desc.idf_version})")
    line = "  " + " ".join(parts)
    measured = f"\n  image length {image.measured_size:#x} ({image.measured_size} bytes)"
    if image.signature_length:
        measured += f", including a {image.signature_scheme} Secure Boot V2 signature sector"
    if image.trailing_bytes:
        measured += (f"; file {image.file_size:#x} ({image.file_size} bytes) with "
                     f"{image.trailing_bytes} trailing bytes, all flashed and checked")
    return line + measured


def _slot_line(r: SlotResult, name_width: int) -> str:
    p = r.partition
    free = f"{r.free:#x} free" if r.fits else _overflow(-r.free)
    return (f"    {p.name:<{name_width}} @ {p.offset:#9x} size {p.size:#9x}  "
            f"{bar(r.percent_used)}  {free}")


def _app_text(app: AppCheck) -> list[str]:
    lines = [f"app {app.image.path} vs {app.label} partitions:", _image_line(app.image)]
    width = max((len(r.partition.name) for r in app.candidates), default=0)
    lines += [_slot_line(r, width) for r in app.candidates]
    if app.summary:
        lines.append(app.summary)
    return lines


def _bootloader_text(bl: BootloaderCheck) -> list[str]:
    used = 100.0 * bl.image.measured_size / bl.limit
    lines = [f"bootloader {bl.image.path} at {bl.offset:#x}, before the table at "
             f"{bl.table_offset:#x} ({bl.limit:#x} bytes):", _image_line(bl.image),
             f"    {bar(used)}  " + (f"{bl.free:#x} free" if bl.fits
                                      else _overflow(-bl.free))]
    if bl.recovery_offset is not None:
        lines.append(f"  recovery bootloader at {bl.recovery_offset:#x}")
    if bl.summary:
        lines.append(bl.summary)
    return lines


def _flash_text(flash: FlashCheck) -> list[str]:
    used = 100.0 * flash.highest_end / flash.flash_size if flash.flash_size else 100.0
    last = f" ('{flash.last.name}')" if flash.last is not None else ""
    state = (f"{flash.free:#x} ({flash.free} bytes) free at the end" if flash.fits
             else _overflow(-flash.free))
    size = f"flash {flash.flash_size:#x} bytes"
    if flash.origin is not None:  # e.g. (4MB, from the bootloader header at dump.bin@0x0, byte 3)
        size += f" ({format_size(flash.flash_size, 'esptool')}, from {flash.origin})"
    return [f"{size}: partitions end at {flash.highest_end:#x}{last}",
            f"    {bar(used)}  {state}"]


def to_text(report: CheckReport) -> str:
    """The human report (stdout). Diagnostics are printed separately, to stderr."""
    table = report.table
    count = len(table)
    lines = [f"table {table.path or '<table>'}: {count} partition{'s' * (count != 1)}, "
             f"at {report.options.table_offset:#x}"]
    if report.boot is not None:
        lines.append(f"boot: {report.boot.prediction.outcome()}")
    if report.app is not None:
        lines += _app_text(report.app)
    if report.bootloader is not None:
        lines += _bootloader_text(report.bootloader)
    if report.flash is not None:
        lines += _flash_text(report.flash)
    lines += [d.summary() for d in report.data]
    budgets = [f"{name} {b}" for name, b in (("warn below", report.warn_free),
                                              ("fail below", report.fail_free)) if b is not None]
    if budgets:
        lines.append("budgets: " + ", ".join(budgets) + " free")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "FAILED" if errors else "OK (partly)" if report.not_checked else "OK"
    lines.append(f"check {verdict}: {errors} error{'s' * (errors != 1)}, "
                 f"{warnings} warning{'s' * (warnings != 1)}")
    lines += [f"not checked: {what}" for what in report.not_checked]
    return "\n".join(lines) + "\n"


# --- JSON -------------------------------------------------------------------------------


def _image(image: ImageInfo) -> dict[str, object]:
    desc = image.description
    return {
        "path": image.path,
        "file_size": image.file_size,
        "measured_size": image.measured_size,
        "measured_by": image.measured_by,
        "flashed_size": image.flashed_size,
        "is_image": image.is_image,
        "kind": image.kind,
        "chip": image.chip,
        "chip_id": image.chip_id,
        "image_length": image.image_length,
        "hash_appended": image.hash_appended,
        "signature": image.signature_scheme,
        "trailing_bytes": image.trailing_bytes,
        "segments": [{"address": s.address, "length": s.length, "file_offset": s.file_offset}
                     for s in image.segments],
        "description": desc.as_dict() if desc is not None else None,
    }


def _slot(r: SlotResult, options: TableOptions) -> dict[str, object]:
    return {
        "partition": partition_json(r.partition, options),
        "used": r.used,
        "free": r.free,
        "percent_free": round(r.percent_free, 3),
        "fits": r.fits,
    }


def finding_json(f: Finding) -> dict[str, object]:
    d = f.diagnostic
    loc = d.location
    return {
        "code": f.code,
        "severity": d.severity,
        "message": d.message,
        "hint": d.hint,
        "file": loc.path if loc is not None else None,
        "line": loc.line if loc is not None else None,
    }


def to_json(report: CheckReport) -> dict[str, object]:
    """The ``--json`` document (schema ``partkit.check/1``)."""
    options = report.options
    doc: dict[str, object] = {
        "schema": SCHEMA,
        "ok": report.ok,
        "exit_code": report.exit_code,
        "table": {
            "path": report.table.path,
            "offset": options.table_offset,
            "partitions": [partition_json(p, options) for p in report.table],
        },
        "budgets": {
            "warn_free": report.warn_free.as_dict() if report.warn_free else None,
            "fail_free": report.fail_free.as_dict() if report.fail_free else None,
        },
        "app": None,
        "bootloader": None,
        "flash": None,
    }
    app = report.app
    if app is not None:
        smallest = app.smallest
        doc["app"] = {
            "image": _image(app.image),
            "selector": {"type": app.type, "subtype": app.subtype, "label": app.label},
            "status": app.status,
            "slots": [_slot(r, options) for r in app.candidates],
            "smallest": smallest.partition.name if smallest is not None else None,
            "summary": app.summary,
        }
    bl = report.bootloader
    if bl is not None:
        doc["bootloader"] = {
            "image": _image(bl.image),
            "offset": bl.offset,
            "table_offset": bl.table_offset,
            "limit": bl.limit,
            "free": bl.free,
            "percent_free": round(bl.percent_free, 3),
            "fits": bl.fits,
            "recovery_offset": bl.recovery_offset,
            "summary": bl.summary,
        }
    flash = report.flash
    if flash is not None:
        doc["flash"] = {
            "flash_size": flash.flash_size,
            "flash_size_origin": flash.origin,
            "highest_end": flash.highest_end,
            "last_partition": flash.last.name if flash.last is not None else None,
            "free": flash.free,
            "fits": flash.fits,
        }
    if report.data:
        doc["data"] = [d.as_dict() for d in report.data]
    if report.boot is not None:
        doc["boot"] = report.boot.as_dict()
    doc["findings"] = [finding_json(f) for f in report.findings]
    doc["not_checked"] = list(report.not_checked)  # the text's "not checked:" lines
    doc["complete"] = not report.not_checked
    return doc
