"""``partkit check``: app-fits, bootloader-fits and table-vs-flash with CI budgets.

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 bad input
(including an invalid table, and nothing to check). The report goes to stdout (text or
``--json``); diagnostics go to stderr, and also as GitHub Actions annotations when
``GITHUB_ACTIONS=true``. The work is :func:`partkit.check.files.check_files`.
"""

from __future__ import annotations

import argparse
import json
import sys

from partkit.check.files import check_files
from partkit.check.report import to_json, to_text
from partkit.cli import arduino, idf_build
from partkit.cli.common import (
    BOARD_OVERRIDES,
    add_budget_options,
    add_table_arguments,
    budgets_from_args,
    emit,
    options_from_args,
    refuse_table_options,
    verdict_only,
)
from partkit.cli.parser import command_parser
from partkit.common.fileio import write_atomic
from partkit.flash.tablearea import table_flash_size
from partkit.table.options import usage_error

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("partkit check", (
        "Check that the real app image fits its partition slots, that the bootloader fits\n"
        "before the partition table, and that the table fits the flash. TABLE may be a\n"
        "merged flash image or a dump (table at --offset): check then says which app\n"
        "boots (otadata, and the bootloader's fallback past empty slots) and, without\n"
        "--app, checks that running app in its own slot."))
    idf_build.add_table_or_build(p, "CSV or binary partition table (not with --idf-build-dir "
                                 "or --arduino-build-dir)")
    arduino.add_build_argument(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="also write the JSON report to FILE (the text report still goes "
                        "to stdout)")
    p.add_argument("--app", metavar="APP.bin", help="app image (esptool elf2image output)")
    # default None, not 'app': a build folder refuses --type, also as '--type app'
    p.add_argument("--type", help="partition type of the app slots "
                   "(name or number; default app)")
    p.add_argument("--subtype", help="only slots of this subtype (e.g. ota_1, tee_0)")
    p.add_argument("--bootloader", metavar="BL.bin", help="bootloader image")
    p.add_argument("--data", action="append", default=[], metavar="NAME=IMG",
                   help="data image (partkit data build, pio buildfs, ...) to check against "
                        "partition NAME: the whole file must fit (repeatable)")
    add_table_arguments(p, has_output=True)
    add_budget_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="text report: only the verdict line and what was not checked (the "
                        "findings still go to stderr); for builds that check every time")
    p.add_argument("--strict", action="store_true", help="rule warnings become errors")
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="validate the table as gen does: alignment, overlaps, names "
                        "(default; --no-verify checks sizes only, as check_sizes.py)")
    p.add_argument("--table-source", metavar="CSV",
                   help="the CSV a binary TABLE was generated from: messages about a "
                        "partition point at its CSV line (file:line:col)")
    return p


def _nothing_to_check(args: argparse.Namespace, flash_size: int | None) -> bool:
    return (args.app is None and args.bootloader is None and flash_size is None
            and not args.data)


def _data_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, eq, path = value.partition("=")
        if not eq or not name or not path:
            raise usage_error(f"--data '{value}' is not NAME=IMG", "e.g. --data storage=fs.bin")
        pairs.append((name, path))
    return tuple(pairs)


def run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    given = [args.table, args.idf_build_dir, args.arduino_build_dir]
    if sum(x is not None for x in given) != 1:
        parser.error("give a TABLE, --idf-build-dir DIR or --arduino-build-dir DIR (one of them)")
    if args.arduino_build_dir is not None:
        refuse_table_options(parser, args, "--arduino-build-dir", BOARD_OVERRIDES)
        return arduino.run_check(args, args.output)
    if args.idf_build_dir is not None:
        refuse_table_options(parser, args, "--idf-build-dir")
        return idf_build.run_check(args, args.output)
    options = options_from_args(args, verify=args.verify, strict=args.strict)
    # an image's bootloader header decides the flash size (table.source.judge_flash_size)
    flash = table_flash_size(args.table, options)
    options = options.replace(flash_size=flash.size)
    warn, fail = budgets_from_args(args)
    report = check_files(
        args.table, options, table_source=args.table_source, app=args.app,
        app_type="app" if args.type is None else args.type, app_subtype=args.subtype,
        bootloader=args.bootloader,
        warn_free=warn, fail_free=fail, data=_data_pairs(args.data), flash=flash)
    # the table was read and validated (and is no flash image, with apps of its own)
    if _nothing_to_check(args, options.flash_size) and report.boot is None:
        emit(f.diagnostic for f in report.findings)
        raise usage_error(
            f"nothing to check: {args.table} is a valid table, but no --app, "
            "--bootloader, --data or --flash-size was given",
            "give at least one of them; 'partkit show' prints a table")
    if args.output is not None:
        write_atomic(args.output, (json.dumps(to_json(report), indent=2) + "\n").encode())
    if args.json:
        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
    else:
        text = to_text(report)
        sys.stdout.write(verdict_only(text) if args.quiet else text)
    sys.stdout.flush()
    emit(f.diagnostic for f in report.findings)
    return report.exit_code
