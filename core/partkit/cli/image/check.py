"""``partkit image check IMAGE``: the pre-flight check of a whole flash image before it is
flashed (:func:`partkit.flash.preflight.check_image`), as text or JSON.
"""

from __future__ import annotations

import json
import sys

from partkit.cli.common import add_extra_subtypes, chip_help, emit, size_option, table_options
from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import columns, reads_image
from partkit.flash import imagefile
from partkit.flash.appimage import size_code_note
from partkit.flash.preflight import check_image
from partkit.table.names import BUILTIN_SUBTYPES, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from partkit.flash.preflight import PreflightReport

__all__ = ["CHECK"]

EXIT_CODES = """\
exit status:
  0  every check passed (warnings allowed)
  1  a check failed (each finding has a code; docs/diff.md lists them)
  2  bad input (unreadable image, bad option)
"""


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="merged image (esptool merge-bin, image create) or flash dump")
    p.add_argument("--chip", metavar="CHIP",
                   help=chip_help("chip the image is for (default: from the bootloader header)"))
    p.add_argument("--offset", "--partition-table-offset", metavar="N",
                   help="partition table offset (default 0x8000)")
    p.add_argument("--flash-size", metavar="S",
                   help="flash size of the devices; partitions must end within it")
    add_extra_subtypes(p, "IMAGE")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def _check(args: argparse.Namespace) -> int:
    options = table_options(offset=args.offset, chip=args.chip, verify=True,
                            extra_subtypes=args.extra_partition_subtypes)
    flash_size = None if args.flash_size is None else size_option("--flash-size",
                                                                  args.flash_size)
    report = check_image(args.image, options, flash_size=flash_size)
    if args.json:
        sys.stdout.write(json.dumps(_report_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(_report_text(report))
    sys.stdout.flush()
    emit(p.diagnostic for p in report.problems)
    return report.exit_code


def _report_json(report: PreflightReport) -> dict[str, object]:
    return {
        "schema": "partkit.image-check/1",
        "image": report.image,
        "size": report.size,
        "chip": report.chip,
        "table_offset": report.table_offset,
        "bootloader": report.bootloader,
        "header_flash_size": report.header_flash_size,
        "flash_size": report.flash_size,
        "partitions": [
            {"name": s.partition.name, "type": s.partition.type,
             "subtype": s.partition.subtype, "offset": s.partition.offset,
             "size": s.partition.size, "status": s.status,
             "contents": None if s.contents is None else s.contents.as_dict()}
            for s in report.partitions],
        "findings": [
            {"code": p.code, "severity": p.diagnostic.severity, "message": p.diagnostic.message,
             "hint": p.diagnostic.hint, "partition": p.partition} for p in report.problems],
        "ok": report.ok,
    }


def _report_text(report: PreflightReport) -> str:
    out = [f"{report.image}: {report.size} bytes (0x{report.size:x}), chip "
           f"{report.chip or 'unknown'}, partition table at 0x{report.table_offset:x}"]
    boot = report.bootloader
    if boot is not None and boot.get("valid"):
        hdr = report.header_flash_size
        offset = boot["offset"]
        assert isinstance(offset, int)
        # an unknown size code is the bootloader's 2MB: said, as check's origin says it
        note = size_code_note(imagefile.read_region(report.image, offset, 4))
        out.append(f"bootloader at 0x{offset:x}: {boot['size']} bytes, header flash size "
                   + (f"{hdr >> 20}MB{note}" if hdr is not None else "unknown"))
    if report.partitions:
        rows = [("Name", "Type", "Offset", "Size", "Status", "Contents")]
        for s in report.partitions:
            p = s.partition
            contents = (s.contents.summary if s.contents is not None else
                        "beyond the end of the image" if s.status == "absent" else
                        "encrypted: not checked")
            kind = f"{type_name(p.type)}/{BUILTIN_SUBTYPES.render(p.type, p.subtype)}"
            rows.append((p.name, kind, f"0x{p.offset:x}",
                         f"0x{p.size:x}", s.status, contents))
        out.append(columns(rows).rstrip("\n"))
    errors = len(report.errors)
    warnings = len(report.problems) - errors
    for problem in report.problems:
        d = problem.diagnostic
        out.append(f"{d.severity}: [{problem.code}] {d.message}")
    out.append(f"image check {'OK' if report.ok else 'FAILED'}: {errors} "
               f"error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n".join(out) + "\n"


CHECK = Subcommand("check", "pre-flight check of a whole flash image before it is flashed",
                   _options, reads_image(_check), EXIT_CODES)
