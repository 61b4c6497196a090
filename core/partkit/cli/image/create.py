"""``partkit image create IMAGE``: assemble a full flash image from a table, a bootloader,
apps and data (:func:`partkit.flash.assemble.plan_image`), plus the flash_args and
flasher_args.json esptool flashes it with; or what an ESP-IDF build flashes
(``--idf-build-dir``, :mod:`partkit.cli.idf_build`).
"""

from __future__ import annotations

import os
import shlex
import sys

from partkit.cli import idf_build
from partkit.cli.common import add_extra_subtypes, emit, size_option, table_options, usage_error
from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import chip_list
from partkit.common.errors import PartkitError, SourceLocation, error, warning
from partkit.common.fileio import check_outputs, read_input
from partkit.common.numbers import format_size
from partkit.data.check import contents_warning
from partkit.flash import flashargs
from partkit.flash.appimage import read_image
from partkit.flash.assemble import (
    check_image_chips,
    chip_from_images,
    plan_image,
    relative_path,
    write_flash_args,
    write_image,
)
from partkit.flash.bootheader import FLASH_MODES, patch_flash_params
from partkit.flash.tablearea import load_table_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

__all__ = ["CREATE"]


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", metavar="IMAGE", help="image file to write (or -o IMAGE)")
    p.add_argument("-o", "--output", metavar="IMAGE", help="image file to write")
    p.add_argument("--idf-build-dir", metavar="DIR",
                   help="assemble what an ESP-IDF build flashes (flasher_args.json), at the "
                        "build's flash size, after checking that every file fits; no --table")
    p.add_argument("--table", "-f", metavar="FILE",
                   help="CSV or binary table (required without --idf-build-dir)")
    p.add_argument("--offset", metavar="N", help="table offset (default 0x8000)")
    p.add_argument("--flash-size",
                   help="flash size, e.g. 4MB (required without --idf-build-dir)")
    p.add_argument("--chip", metavar="CHIP",
                   help="the chip the image is for: places the bootloader, picks the flash "
                   "frequency, goes into flasher_args.json; the bootloader and app images must "
                   "be built for it (default: from their headers). One of: " + chip_list())
    p.add_argument("--force", action="store_true",
                   help="place bootloader/app images built for another chip than --chip "
                   "(a warning instead of an error)")
    p.add_argument("--bootloader", metavar="FILE", help="2nd-stage bootloader image")
    p.add_argument("--primary-bootloader-offset", "--bootloader-offset", metavar="N",
                   dest="bootloader_offset", help="bootloader offset (default: the chip's)")
    p.add_argument("--app", action="append", default=[], metavar="NAME=FILE",
                   help="app image for the named app partition (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=FILE",
                   help="contents of the named partition (repeatable)")
    p.add_argument("--ota-slot", type=int, metavar="N",
                   help="initial otadata selecting ota_N (default: erased, boots factory/ota_0)")
    p.add_argument("--flash-mode", default="dio",
                   help="for flash_args and the bootloader header (default dio)")
    p.add_argument("--flash-freq",
                   help="for flash_args and the bootloader header (default: the chip's, "
                        "e.g. 80m)")
    p.add_argument("--args-dir", metavar="DIR",
                   help="where flash_args, flasher_args.json and generated pieces go "
                   "(default: the image's directory)")
    p.add_argument("--no-flash-args", action="store_true", help="write only the image")
    add_extra_subtypes(p, "IMAGE")


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise usage_error(f"{option}: '{value}' is not NAME=FILE",
                              f"example: {option} factory=build/app.bin")
        earlier = dict(out).get(name)
        if earlier is not None:
            raise usage_error(f"{option}: partition '{name}' is given twice ('{earlier}' and "
                              f"'{path}')", "give each partition one file")
        out.append((name, path))
    return out


def _create(args: argparse.Namespace) -> int:
    if args.image is not None and args.output is not None:
        raise usage_error("give the image once: IMAGE or -o IMAGE")
    args.image = args.image or args.output
    if args.image is None:
        raise usage_error("no image to write", "give IMAGE or -o IMAGE")
    if args.idf_build_dir is not None:
        return idf_build.create_image(args, args.image)
    for option, value in (("--table", args.table), ("--flash-size", args.flash_size)):
        if value is None:
            raise usage_error(f"image create needs {option} (or --idf-build-dir)")
    flash_size = size_option("--flash-size", args.flash_size)
    apps = _pairs(args.app, "--app")
    datas = _pairs(args.data, "--data")
    chip = args.chip or chip_from_images(
        ([args.bootloader] if args.bootloader else []) + [p for _, p in apps])
    options = table_options(offset=args.offset, chip=chip, flash_size=flash_size,
                            primary_bootloader_offset=args.bootloader_offset,
                            extra_subtypes=args.extra_partition_subtypes)
    emit(check_image_chips(options.chip, args.chip is not None, args.force,
                           ([("bootloader", args.bootloader)] if args.bootloader else [])
                           + [(f"app '{name}'", path) for name, path in apps]))
    loaded = load_table_file(args.table, options)
    emit(loaded.warnings)
    bootloader_data = None
    if args.bootloader and options.primary_bootloader_offset is not None:
        bootloader_data = _bootloader_for_flash(
            args.bootloader, options.chip, args.flash_mode,
            args.flash_freq or flashargs.default_flash_freq(chip), flash_size)
    plan = plan_image(loaded.table, options, flash_size, table_path=args.table,
                      bootloader=args.bootloader, bootloader_data=bootloader_data,
                      apps=apps, datas=datas, ota_slot=args.ota_slot, chip=chip)
    for name, path in (*apps, *datas):  # a file that is not what its partition holds
        part = loaded.table.find_by_name(name)
        mismatch = None if part is None else contents_warning(path, part, loaded.table)
        if mismatch is not None:
            emit([mismatch])
    # before any write: an output that is an input, an --args-dir that is a file
    _check_create_outputs(args, [args.bootloader, *(path for _, path in (*apps, *datas))])
    write_image(args.image, plan)
    sys.stderr.write(plan.summary(args.image) + "\n")
    if args.no_flash_args:
        return 0
    # an image written into a device or pipe (/dev/stdout, a FIFO): pieces go to the cwd
    args_dir = args.args_dir or (os.path.dirname(os.path.abspath(args.image))
                                 if os.path.isfile(args.image) else os.getcwd())
    # the image is in place by now: a failure here must say so, and that the argument files
    # may still describe an earlier run
    state = (f"{args.image} was written whole; flash_args and flasher_args.json in {args_dir} "
             "may still describe an earlier run (each file is complete or as it was)")
    try:
        generated = write_flash_args(plan, args_dir, mode=args.flash_mode,
                                     freq=args.flash_freq)
    except PartkitError as exc:  # not reported here: re-raised with the image's state
        raise PartkitError((*exc.diagnostics, warning(
            state, SourceLocation(args.image), "run the same command again"))) from None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(state) from None
    _report_flash_files(args_dir, list(generated), chip)
    return 0


def _check_create_outputs(args: argparse.Namespace, inputs: list[str | None]) -> None:
    """Everything ``create`` will write is checked before the image is: an --args-dir
    that is a file, or an output that is an input, must not fail after the image."""
    outputs: list[str | None] = [args.image]
    if not args.no_flash_args and args.args_dir:
        if os.path.exists(args.args_dir) and not os.path.isdir(args.args_dir):
            raise PartkitError(error("--args-dir: not a directory", SourceLocation(
                args.args_dir), "flash_args and flasher_args.json go into a directory"))
        outputs += [os.path.join(args.args_dir, "flash_args"),
                    os.path.join(args.args_dir, "flasher_args.json")]
    check_outputs(outputs, [args.table, *inputs])


def _bootloader_for_flash(path: str, chip: str | None, mode: str, freq: str,
                          flash_size: int) -> bytes:
    """The bootloader with the header's flash settings set as ``esptool merge-bin
    --flash-mode --flash-freq --flash-size`` sets them, saying so when they change."""
    if mode.lower() not in FLASH_MODES:
        raise usage_error(f"--flash-mode {mode}: not a flash mode",
                          "one of: " + ", ".join(FLASH_MODES))
    data = read_input(path)
    if data[:1] != b"\xe9":  # esptool leaves such files alone too
        emit([warning("not an ESP image: the bootloader's flash settings are not set",
                      SourceLocation(path), "pass the bootloader .bin the build wrote")])
        return data
    if chip is None:
        chip = read_image(data, path).chip or ""
    try:
        patch = patch_flash_params(data, path, chip, mode, freq, flash_size)
    except ValueError as exc:
        raise usage_error(f"cannot set the bootloader's flash settings: {exc}") from None
    if patch.changed:
        sys.stderr.write(
            f"partkit: bootloader header flash settings set to {mode} {freq} "
            f"{format_size(flash_size, 'esptool')} (bytes 2-3 0x{patch.old.hex()} -> "
            f"0x{patch.new.hex()}{', SHA-256 recomputed' if patch.sha_updated else ''}), "
            "as esptool write-flash/merge-bin do\n")
    return patch.data


def _report_flash_files(args_dir: str, generated: list[str], chip: str | None) -> None:
    """Say where every written file is, and how to flash from where the user is: esptool
    reads the paths inside @flash_args relative to the current directory."""
    written = ["flash_args", "flasher_args.json", *generated]
    shown = relative_path(args_dir, os.getcwd())
    where = "the current directory" if shown == "." else f"'{shown}'"
    sys.stderr.write(f"Wrote in {where}: {', '.join(written)}\n")
    command = ("python -m esptool" + (f" --chip {chip}" if chip else "")
               + " write-flash @flash_args")
    if shown != ".":
        command = f"cd {shlex.quote(shown)} && {command}"
    sys.stderr.write(f"Flash with: {command}\n")


CREATE = Subcommand("create", "assemble a full flash image (+ flash_args)", _options, _create)
