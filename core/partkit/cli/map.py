"""``partkit map``: an SVG picture of the flash layout, app slots shown used vs free."""

from __future__ import annotations

import argparse
import sys

from partkit.check.flashmap import app_usage, beyond_flash, image_overflows, svg_map
from partkit.cli import idf_build
from partkit.cli.common import add_table_arguments, emit, options_from_args
from partkit.cli.parser import EXIT_CHECK, command_parser
from partkit.common.errors import PartkitError, error
from partkit.common.fileio import write_text
from partkit.flash.appimage import read_image_file
from partkit.flash.tablearea import load_table_file, table_flash_size
from partkit.table.source import FlashSize, grow_hint

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("partkit map", (
        "Draw the flash layout to scale as SVG (open it in a browser). With --flash-size\n"
        "the end of the flash is marked, and whatever lies past it is drawn in red and\n"
        "fails the command (exit 1, after writing the picture); so does an --app file\n"
        "larger than its slot (the whole file is flashed, as 'partkit check' judges)."),
        EXIT_CHECK)
    idf_build.add_table_or_build(p, "partition table: CSV, or the binary 'partkit gen' writes")
    p.add_argument("--app", action="append", default=[], metavar="[SLOT=]APP.bin",
                   help="app image; shown in every app slot, or only in SLOT (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="SVG file to write ('-' for stdout)")
    add_table_arguments(p, has_output=True)
    p.add_argument("--title", help="heading of the picture (default: the table's path)")
    return p


def run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    idf_build.require_table_or_build(parser, args, keep=("app",))  # more apps to draw

    apps = []
    if args.idf_build_dir is not None:  # the build's app, in the slot it is flashed to
        build, loaded = idf_build.load(args, verify=False)
        options = build.options
        flash = FlashSize.given(options.flash_size, build.flash_size_origin or "the build")
        if build.app is not None:
            slot = next((p.name for p in loaded.table if p.offset == build.app.offset), "")
            apps.append((slot or None, read_image_file(build.app.path)))
    else:
        options = options_from_args(args, verify=False)
        loaded = load_table_file(args.table, options.replace(flash_size=None))
        flash = table_flash_size(args.table, options)
        options = options.replace(flash_size=flash.size)
    for spec in args.app:
        slot, sep, path = spec.partition("=")
        if not sep or (loaded.table.find_by_name(slot) is None and "/" in slot):
            slot, path = "", spec  # a plain path (may itself contain '=')
        elif loaded.table.find_by_name(slot) is None:
            raise PartkitError(f"--app {spec}: no partition named '{slot}'")
        apps.append((slot or None, read_image_file(path)))
    usage = app_usage(loaded.table, apps)
    document = svg_map(loaded.table, options, usage, title=args.title, flash_origin=flash.origin)
    if args.output == "-":
        sys.stdout.write(document)
    else:
        write_text(args.output, document)
    emit(loaded.warnings)
    emit(flash.warnings)
    for _, image in apps:
        emit(image.warnings)

    failed = False
    for p, image in image_overflows(loaded.table, usage):
        emit([error(
            f"'{image.path}' ({image.flashed_size:#x} bytes flashed) does not fit app "
            f"partition '{p.name}' ({p.size:#x} bytes): {image.flashed_size - p.size:#x} bytes "
            "over", p.loc, "the picture shows the overflow in red; see 'partkit check' for "
            "the details")])
        failed = True
    over = beyond_flash(loaded.table, options)
    if over and options.flash_size is not None:
        last = max(loaded.table, key=lambda p: p.end)
        emit([error(  # fails the command, as check's table-exceeds-flash does
            f"the table runs 0x{over:x} bytes past the end of the flash: '{last.name}' ends "
            f"at 0x{last.end:x}, the flash at 0x{options.flash_size:x} (from {flash.origin})",
            last.loc, f"{grow_hint(flash.origin)}; the picture shows the part past the end "
            "in red")])
        failed = True
    return 1 if failed else 0
