"""``partkit check``: app-fits, bootloader-fits and table-vs-flash with CI budgets.

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 bad input.
The report goes to stdout (text or ``--json``); diagnostics go to stderr, and also as
GitHub Actions annotations when ``GITHUB_ACTIONS=true``.
"""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli.common import add_table_arguments, emit, options_from_args, report_error
from partkit.common.errors import PartkitError

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partkit check", description=(
        "Check that the real app image fits its partition slots, that the bootloader fits "
        "before the partition table, and that the table fits the flash."))
    p.add_argument("table", help="CSV or binary partition table")
    p.add_argument("--app", metavar="APP.bin", help="app image (esptool elf2image output)")
    p.add_argument("--type", default="app", help="partition type of the app slots "
                   "(name or number; default app)")
    p.add_argument("--subtype", help="only slots of this subtype (e.g. ota_1, tee_0)")
    p.add_argument("--bootloader", metavar="BL.bin", help="bootloader image")
    add_table_arguments(p)
    p.add_argument("--warn-free", metavar="PCT%|BYTES",
                   help="warn when the app slot has less free space than this")
    p.add_argument("--fail-free", metavar="PCT%|BYTES",
                   help="fail when the app slot has less free space than this")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--strict", action="store_true", help="rule warnings become errors")
    p.add_argument("--verify", action="store_true",
                   help="also validate the table (check_sizes.py does not)")
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        from partkit.check.appimage import read_image_file
        from partkit.check.checks import Budget, run_checks
        from partkit.table.codec import load_table_file

        options = options_from_args(args, verify=args.verify)
        warn = None if args.warn_free is None else Budget.parse(args.warn_free, "--warn-free")
        fail = None if args.fail_free is None else Budget.parse(args.fail_free, "--fail-free")
        # Flash overflow is a check result here (exit 1), not a load error (exit 2).
        loaded = load_table_file(args.table, options.replace(flash_size=None))
        app = None if args.app is None else read_image_file(args.app)
        bootloader = None if args.bootloader is None else read_image_file(args.bootloader)
        report = run_checks(
            loaded.table, options.replace(strict=args.strict), app=app,
            app_type=args.type, app_subtype=args.subtype, bootloader=bootloader,
            warn_free=warn, fail_free=fail, table_warnings=loaded.warnings)
    except PartkitError as exc:
        return report_error(exc)
    if args.json:
        from partkit.check.report import to_json

        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
    else:
        from partkit.check.report import to_text

        sys.stdout.write(to_text(report))
    sys.stdout.flush()
    emit(f.diagnostic for f in report.findings)
    return report.exit_code
