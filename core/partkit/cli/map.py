"""``partkit map``: an SVG picture of the flash layout, app slots shown used vs free."""

from __future__ import annotations

import argparse
import sys

from partkit.cli.common import add_table_arguments, emit, options_from_args, report_error
from partkit.common.errors import PartkitError

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partkit map", description=(
        "Draw the flash layout to scale as SVG (open it in a browser)."))
    p.add_argument("table", help="CSV or binary partition table")
    p.add_argument("--app", action="append", default=[], metavar="[SLOT=]APP.bin",
                   help="app image; shown in every app slot, or only in SLOT (repeatable)")
    add_table_arguments(p, short_offset=False)
    p.add_argument("--title", help="heading of the picture")
    p.add_argument("-o", "--output", required=True, help="SVG file to write ('-' for stdout)")
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        from partkit.check.appimage import read_image_file
        from partkit.check.flashmap import app_usage, svg_map
        from partkit.table.codec import load_table_file

        options = options_from_args(args, verify=False)
        loaded = load_table_file(args.table, options.replace(flash_size=None))
        apps = []
        for spec in args.app:
            slot, sep, path = spec.partition("=")
            if not sep or (loaded.table.find_by_name(slot) is None and "/" in slot):
                slot, path = "", spec  # a plain path (may itself contain '=')
            elif loaded.table.find_by_name(slot) is None:
                raise PartkitError(f"--app {spec}: no partition named '{slot}'")
            apps.append((slot or None, read_image_file(path)))
        document = svg_map(loaded.table, options, app_usage(loaded.table, apps),
                           title=args.title)
        if args.output == "-":
            sys.stdout.write(document)
        else:
            from partkit.common.fileio import write_atomic

            write_atomic(args.output, document.encode("utf-8"))
    except PartkitError as exc:
        return report_error(exc)
    emit(loaded.warnings)
    for _, image in apps:
        emit(image.warnings)
    return 0
