"""``partkit at gen|check``: ESP-AT's secondary table (at_customize.csv) against its region."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from partkit.cli.common import emit, size_option, table_options
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.cli.parser import EXIT_PLAIN
from partkit.cli.reporting import Reporting, set_reporting
from partkit.common.chips import chip_names
from partkit.common.errors import Diagnostic
from partkit.common.fileio import read_input, write_atomic
from partkit.common.numbers import format_size
from partkit.esp_at.customize import TABLE_SECTOR, build
from partkit.table.names import BUILTIN_SUBTYPES, type_name
from partkit.table.options import TableOptions
from partkit.table.source import read_table_input

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.esp_at.customize import AtCustomize

__all__ = ["run"]

_DESCRIPTION = """\
ESP-AT keeps user partitions in a second table, at_customize.bin, flashed at the start of the
'at_customize' row of the primary table (partitions_at.csv); the partitions it lists must lie
in the rest of that region. 'gen' checks at_customize.csv against the primary table and writes
at_customize.bin (byte-identical to 'gen_esp32part.py -q at_customize.csv at_customize.bin');
'check' only checks. Both print the flash address and the esptool command; every problem
is listed."""


def _add_options(action: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("table", metavar="AT_CUSTOMIZE",
                       help="the secondary table: at_customize.csv (or .bin for 'check')")
        p.add_argument("--primary", required=True, metavar="PARTITIONS_AT",
                       help="the primary table (partitions_at.csv or its binary) holding the "
                            "'at_customize' row")
        if action == "gen":
            p.add_argument("-o", "--output", metavar="BIN",
                           help="where to write the binary (default: AT_CUSTOMIZE with .bin)")
        p.add_argument("--chip", metavar="CHIP",
                       help="target chip: esptool command line and a cross-check against the "
                       f"esp-at documented address (one of: {', '.join(chip_names())})")
        p.add_argument("--flash-size", metavar="SIZE",
                       help="flash size (4MB, 0x400000): checks the primary table fits and "
                            "picks the documented address on chips that have two")
        p.add_argument("--primary-offset", metavar="N",
                       help="table offset of the primary table (default 0x8000)")
        p.add_argument("--sdkconfig", metavar="PATH",
                       help="sdkconfig whose CONFIG_AT_CUSTOMIZED_PARTITION_TABLE_OFFSET must "
                            "equal the region offset")
        p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
        p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    return add


def _default_output(path: str) -> str:
    root, ext = os.path.splitext(path)
    return root + ".bin" if ext.lower() != ".bin" else root + ".out.bin"


def _esptool_argv(chip: str | None, address: int, output: str) -> list[str]:
    chip_args = ["--chip", chip] if chip else []
    return ["esptool", *chip_args, "write-flash", f"0x{address:x}", output]


def _target(result: AtCustomize, args: argparse.Namespace, output: str | None) -> str:
    """The file to flash: what gen wrote, the binary checked, or the conventional name."""
    if output is not None:
        return output
    return str(args.table) if result.is_binary else "at_customize.bin"


def _report_json(
    result: AtCustomize | None, args: argparse.Namespace, output: str | None,
    problems: tuple[object, ...],
) -> str:


    def diag(d: Diagnostic) -> dict[str, object]:
        loc = d.location
        return {
            "severity": d.severity, "message": d.message, "hint": d.hint,
            "path": loc.path if loc else None, "line": loc.line if loc else None,
            "entry": loc.entry if loc else None, "text": d.format(),
        }

    doc: dict[str, object] = {
        "ok": result is not None, "secondary": args.table, "primary": args.primary,
        "chip": args.chip,
        "diagnostics": [diag(d) for d in problems if isinstance(d, Diagnostic)],
    }
    if result is not None:
        region = result.region
        argv = _esptool_argv(args.chip, result.address, _target(result, args, output))
        doc.update({
            "address": result.address,
            "region": {"name": region.name, "offset": region.offset, "size": region.size,
                       "end": region.end, "type": region.type, "subtype": region.subtype},
            "output": output,
            "size": len(result.binary),
            "free": _free(result),
            "esptool": argv,
            "esptool_command": " ".join(shlex.quote(a) for a in argv),
            "partitions": [
                {"name": p.name, "type": p.type, "subtype": p.subtype, "offset": p.offset,
                 "size": p.size, "end": p.end, "encrypted": p.encrypted,
                 "readonly": p.readonly}
                for p in result.table
            ],
        })
    return json.dumps(doc, indent=2)


def _free(result: AtCustomize) -> int:
    used = sum(p.size for p in result.table)
    return result.region.size - TABLE_SECTOR - used


def _report_text(result: AtCustomize, args: argparse.Namespace, output: str | None) -> str:


    region = result.region
    lines = [
        f"{args.table}: {len(result.table)} user partition(s) in '{region.name}' "
        f"0x{region.offset:x}-0x{region.end - 1:x} of {args.primary}",
        f"  {'Name':<16} {'Type':<6} {'SubType':<8} {'Offset':>9} {'Size':>9} {'End':>9}",
    ]
    for p in result.table:
        lines.append(
            f"  {p.name:<16} {type_name(p.type) if p.type < 4 else hex(p.type):<6} "
            f"{BUILTIN_SUBTYPES.render(p.type, p.subtype):<8} {p.offset:>#9x} {p.size:>#9x} "
            f"{p.end:>#9x}"
        )
    free = _free(result)
    lines.append(f"  free in region: 0x{free:x} ({format_size(free)})")
    if output is not None:
        lines.append(f"wrote {output} ({len(result.binary)} bytes)")
    target = _target(result, args, output)
    argv = _esptool_argv(args.chip, result.address, target)
    lines.append(f"flash {target} at 0x{result.address:x}:")
    lines.append("  " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> int:
    return Subcommands("partkit at", _DESCRIPTION, tuple(
        Subcommand(action, summary, _add_options(action), _run, EXIT_PLAIN)
        for action, summary in (
            ("gen", "check at_customize.csv and write at_customize.bin"),
            ("check", "check a secondary table (CSV or binary) without writing anything"),
        )), usage="usage: partkit at {gen,check} AT_CUSTOMIZE --primary PARTITIONS_AT "
        "[options]", epilog=EXIT_PLAIN).run(argv)


def _run(args: argparse.Namespace) -> int:
    if args.json:  # an error is the JSON answer too (ok false, its diagnostics), then its code
        set_reporting(Reporting(as_json=lambda problems: _report_json(None, args, None,
                                                                      problems)))
    flash_size = None if args.flash_size is None else size_option("--flash-size",
                                                                   args.flash_size)
    primary_options = table_options(offset=args.primary_offset, chip=args.chip,
                                    flash_size=flash_size)
    chip = args.chip = primary_options.chip
    sdkconfig = None
    if args.sdkconfig is not None:
        raw = read_input(args.sdkconfig)
        sdkconfig = (args.sdkconfig, raw.decode("utf-8", "replace"))
    data = read_input(args.table)
    primary_data = read_table_input(args.primary)  # a file or builtin:NAME
    # esp-at runs plain 'gen_esp32part.py -q at_customize.csv at_customize.bin': defaults.
    result = build(data, args.table, primary_data, args.primary, TableOptions(),
                   primary_options, chip=chip, flash_size=flash_size, sdkconfig=sdkconfig)
    output = None
    if args.command == "gen":
        output = args.output or _default_output(args.table)
        write_atomic(output, result.binary)
    emit(result.warnings)
    if args.json:
        sys.stdout.write(_report_json(result, args, output, result.warnings) + "\n")
    elif not args.quiet:
        sys.stdout.write(_report_text(result, args, output))
    return 0
