"""``partkit image check | set-boot | otadata``: pre-flight check and boot selection.

    partkit image check    IMAGE [--chip C] [--offset N] [--flash-size S] [--json]
    partkit image set-boot IMAGE --slot SLOT [--state S] [-o COPY] [--sync] [--force]
    partkit image otadata  IMAGE [--json]

Registered in :mod:`partkit.cli.image` (``add_parsers`` / ``HANDLERS``); the table
options (``--offset``, ``--table``, ``--chip``) are the ones every image command takes.
"""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli.common import chip_help, emit, size_option, table_options, usage_error
from partkit.cli.image_shared import (
    Commands,
    add_table_source,
    add_write_options,
    columns,
    guard,
    load,
)
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, closest, error
from partkit.flash import imagefile, otadata
from partkit.flash.bootselect import select_slot
from partkit.flash.contents import describe
from partkit.flash.preflight import check_image
from partkit.table.names import (
    APP,
    BUILTIN_SUBTYPES,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_DATA_OTA,
    is_ota_app,
    type_name,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.flash.otadata import OtaEntry
    from partkit.flash.preflight import PreflightReport
    from partkit.table.model import Partition, PartitionTable

__all__ = ["HANDLERS", "add_parsers", "write_otadata_report"]

CHECK_EPILOG = """\
exit status:
  0  every check passed (warnings allowed)
  1  a check failed (each finding has a code; docs/diff.md lists them)
  2  bad input (unreadable image, bad option)
"""
SET_BOOT_EPILOG = """\
exit status:
  0  otadata written and read back
  1  the slot holds no valid app (use --force to select it anyway)
  2  bad input (unknown slot, no otadata partition, unreadable image)
"""
OTADATA_EPILOG = """\
exit status:
  0  otadata decoded (also when a sector has a bad CRC: the output says so)
  2  bad input (no otadata partition, unreadable image)
"""
# What an update writes: 'new' (bootloaders with rollback turn it into pending_verify on the
# first start), 'undefined' (no rollback), 'valid'. pending_verify is the bootloader's own.
STATES = {"undefined": 0xFFFFFFFF, "new": 0x0, "valid": 0x2}


def add_parsers(sub: Commands) -> None:
    """Add the three commands to ``partkit image``'s command set."""
    make = sub.add_parser
    p = make("check", help="pre-flight check of a whole flash image before it is flashed")
    p.epilog = CHECK_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("image", help="merged image (esptool merge-bin, image create) or flash dump")
    p.add_argument("--chip", metavar="CHIP",
                   help=chip_help("chip the image is for (default: from the bootloader header)"))
    p.add_argument("--offset", "--partition-table-offset", metavar="N",
                   help="partition table offset (default 0x8000)")
    p.add_argument("--flash-size", metavar="S",
                   help="flash size of the devices; partitions must end within it")
    p.add_argument("--extra-partition-subtypes", nargs="*", default=[], metavar="E",
                   help="extra subtypes, type,name,value (value in hex)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")

    p = make("set-boot", help="write otadata selecting an app slot (crash-safe)")
    p.epilog = SET_BOOT_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("image", help="flash image to change")
    p.add_argument("--slot", required=True, metavar="SLOT",
                   help="app partition to boot: a name, factory, ota_N, or the OTA index N")
    p.add_argument("--state", default="undefined", choices=tuple(STATES),
                   help="ota_state of the new record: undefined (default: no rollback "
                        "check), new (as ESP-IDF's esp_ota_set_boot_partition writes it with "
                        "rollback: the bootloader makes it pending_verify on the first "
                        "start), valid")
    add_write_options(p)
    add_table_source(p)

    p = make("otadata", help="decode both otadata sectors and tell which app boots")
    p.epilog = OTADATA_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("image", help="flash image or dump")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_table_source(p)


# --- check ----------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    options = table_options(offset=args.offset, chip=args.chip, verify=True,
                            extra_subtypes=args.extra_partition_subtypes)
    flash_size = None if args.flash_size is None else size_option("--flash-size",
                                                                  args.flash_size)
    report = check_image(args.image, options, flash_size=flash_size)
    if args.json:
        sys.stdout.write(json.dumps(check_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(check_text(report))
    sys.stdout.flush()
    emit(p.diagnostic for p in report.problems)
    return report.exit_code


def check_json(report: PreflightReport) -> dict[str, object]:
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


def check_text(report: PreflightReport) -> str:
    out = [f"{report.image}: {report.size} bytes (0x{report.size:x}), chip "
           f"{report.chip or 'unknown'}, partition table at 0x{report.table_offset:x}"]
    boot = report.bootloader
    if boot is not None and boot.get("valid"):
        hdr = report.header_flash_size
        out.append(f"bootloader at 0x{boot['offset']:x}: {boot['size']} bytes, header flash size "
                   + (f"{hdr >> 20}MB" if hdr is not None else "unknown"))
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


# --- otadata ----------------------------------------------------------------------------------


def _otadata_partition(args: argparse.Namespace, table: PartitionTable) -> Partition:
    found = table.find(DATA, SUBTYPE_DATA_OTA)
    if not found:
        raise PartkitError(error("the table has no otadata (data, ota) partition",
                                 SourceLocation(table.path or args.image),
                                 "without otadata the bootloader boots the factory app, else "
                                 "ota_0"))
    return found[0]


def _ota_apps(table: PartitionTable) -> list[Partition]:
    return sorted((p for p in table if is_ota_app(p.type, p.subtype)), key=lambda p: p.subtype)


def _read_otadata(args: argparse.Namespace, part: Partition) -> bytes:
    size = imagefile.image_size(args.image)
    if part.end > size:
        raise PartkitError(error(
            f"otadata '{part.name}' (0x{part.offset:x}..0x{part.end:x}) lies beyond the end of "
            f"the image ({size} bytes)", SourceLocation(args.image),
            "the image is truncated (merge-bin without --fill-flash-size?)"))
    return imagefile.read_region(args.image, part.offset, part.size)


def _entry_json(e: OtaEntry, count: int) -> dict[str, object]:
    return {"sector": e.index, "ota_seq": e.seq, "seq_label": e.label.hex(),
            "state": e.state_name, "crc": e.crc, "crc_ok": e.crc_ok, "erased": e.erased,
            "valid": e.valid, "slot": e.slot(count)}


def _otadata(args: argparse.Namespace) -> int:

    table, _ = load(args)
    part = _otadata_partition(args, table)
    write_otadata_report(table, part, _read_otadata(args, part), as_json=args.json)
    return 0


def write_otadata_report(table: PartitionTable, part: Partition, data: bytes, *,
                         as_json: bool, where: str = "") -> None:
    """Print what otadata ``part`` (its bytes ``data``) holds and which app boots (stdout).

    ``where`` follows the offset in the text report (`` on PORT`` for a device).
    """
    entries = otadata.decode(data)
    ota = _ota_apps(table)
    active = otadata.active_entry(entries)
    slot = otadata.active_slot(entries, len(ota))
    if slot is not None and active is not None:
        from partkit.flash.bootpredict import boot_choice

        chosen = boot_choice(table, active.seq, True)  # the last row of a repeated subtype
        boots = chosen.name if chosen is not None else None
    else:
        default = table.boot_default()
        boots = default.name if default is not None else None
    from partkit.flash.bootpredict import rollback_note

    rolled = rollback_note(entries, table)
    if as_json:
        sys.stdout.write(json.dumps({
            "otadata": part.name, "offset": part.offset, "ota_apps": [p.name for p in ota],
            "sectors": [_entry_json(e, len(ota)) for e in entries],
            "active_sector": None if active is None else active.index,
            "active_slot": slot, "boots": boots, "with_rollback": rolled}, indent=2) + "\n")
        return
    out = [f"otadata '{part.name}' at 0x{part.offset:x}{where}; OTA apps: "
           + (", ".join(f"ota_{p.subtype - 0x10}={p.name}" for p in ota) or "none")]
    for e in entries:
        if e.erased:
            out.append(f"  sector {e.index}: erased")
            continue
        crc = "ok" if e.crc_ok else f"BAD (expected 0x{otadata.entry_crc(e.seq):08x})"
        sel = e.slot(len(ota))
        out.append(f"  sector {e.index}: ota_seq {e.seq} -> "
                   + (f"ota_{sel}" if sel is not None else
                      "ignored" if not e.crc_ok else "no OTA slot")
                   + f", state {e.state_name}, crc 0x{e.crc:08x} {crc}"
                   + (" (active)" if e is active else ""))
    how = (f"otadata selects ota_{slot}" if slot is not None else
           "no valid record: the boot default")
    out.append(f"boots: {boots or 'nothing (no app partition)'} ({how})")
    if rolled is not None:
        out.append(f"with rollback: {rolled}")
    sys.stdout.write("\n".join(out) + "\n")


# --- set-boot ---------------------------------------------------------------------------------


def _target(args: argparse.Namespace, table: PartitionTable) -> tuple[Partition, int | None]:
    """The app partition named by --slot and its OTA index (None: factory)."""
    text = args.slot
    apps = [p for p in table if p.type == APP]
    ota = _ota_apps(table)
    found = [p for p in apps if p.name == text]
    if not found and text == "factory":
        found = [p for p in apps if p.subtype == SUBTYPE_APP_FACTORY]
    if not found and text.startswith("ota_") and text[4:].isdigit():
        found = [p for p in ota if p.subtype == 0x10 + int(text[4:])]
    if not found and text.isdigit():
        found = [p for p in ota if p.subtype == 0x10 + int(text)]
    if not found:
        guess = closest(text, [p.name for p in apps])
        raise usage_error(f"--slot: no app slot '{text}'",
                          (f"did you mean '{guess}'? " if guess else "") + "app slots: "
                          + (", ".join(p.name for p in apps) or "(none)"))
    part = found[0]
    if part.subtype == SUBTYPE_APP_FACTORY:
        return part, None
    if not is_ota_app(part.type, part.subtype):
        raise usage_error(f"--slot: '{part.name}' is neither the factory app nor an OTA slot",
                          "otadata selects only ota_N slots (blank otadata: factory)")
    return part, part.subtype - 0x10


def _set_boot(args: argparse.Namespace) -> int:
    import os
    import tempfile


    table, _ = load(args)
    part = _otadata_partition(args, table)
    target, slot = _target(args, table)
    guard(args, part, "write")
    size = imagefile.image_size(args.image)
    # esptool merge-bin writes no padding: the image may end inside the slot, after the app
    found = describe(args.image, target.replace(size=min(target.size, size - target.offset)),
                     table) if target.offset < size else None
    if not args.force and (found is None or found.kind != "app"
                           or not found.details.get("valid")):
        what = found.summary if found is not None else "beyond the end of the image"
        raise CheckFailed(error(
            f"app slot '{target.name}' holds no valid app ({what}); the device would not boot",
            SourceLocation(args.image), "write the app first, or pass --force"))
    current = _read_otadata(args, part)
    try:
        blob = select_slot(current, slot, len(_ota_apps(table)), STATES[args.state])
    except ValueError as exc:
        raise PartkitError(error(f"--slot: {exc}", SourceLocation(args.image))) from None
    # the new otadata goes through a scratch file in the system's temp directory: the
    # output itself is written by the common writer (atomic, or a stream), whatever it is
    with tempfile.TemporaryDirectory(prefix="partkit-otadata-") as scratch:
        tmp = os.path.join(scratch, "otadata.bin")
        with open(tmp, "wb") as f:
            f.write(blob)
        imagefile.write_partition(args.image, part, tmp, output=args.output, sync=args.sync)
    entries = otadata.decode(blob)
    active = otadata.active_entry(entries)
    detail = ("both sectors erased: boots the factory app" if slot is None else
              f"sector {active.index if active else 0}, ota_seq {active.seq if active else 0}")
    sys.stderr.write(f"Selected '{target.name}' in otadata '{part.name}' at 0x{part.offset:x} of "
                     f"'{args.output or args.image}' ({detail}); verified\n")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": _check,
    "set-boot": _set_boot,
    "otadata": _otadata,
}
