"""``partkit image``: parttool's operations on flash image files, plus assembly and inspection.

    partkit image info    IMAGE [selector] [--info F ...] [--part-list] [--json]
    partkit image read    IMAGE selector -o OUT
    partkit image write   IMAGE selector INPUT [--force] [-o COPY] [--sync]
    partkit image erase   IMAGE selector [--force] [-o COPY] [--sync]
    partkit image inspect DUMP [--json]
    partkit image create  IMAGE --table CSV --flash-size S [--chip C] [--bootloader BL]
                          [--app NAME=FILE ...] [--data NAME=FILE ...] [--ota-slot N]
    partkit image check    IMAGE [--chip C] [--flash-size S] [--json]   (cli/image_check.py)
    partkit image set-boot IMAGE --slot SLOT [-o COPY] [--sync]
    partkit image otadata  IMAGE [--json]
    partkit image apply    IMAGE NEW [-o OUT] [--flash-size S] [--force]   (cli/apply.py)

Selectors follow parttool: ``--name/-n``, ``--type/-t`` with ``--subtype/-s``, or
``--boot-default/-d``. The table is read from the image at ``--offset`` (default 0x8000),
or from ``--table FILE`` (CSV or binary).

Just over 500 lines: the argument handling of six commands; their work is in ``flash/``
(assembly: :mod:`partkit.flash.assemble`), check/set-boot/otadata are in
:mod:`partkit.cli.image_check`, the shared options in :mod:`partkit.cli.image_shared`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from partkit.cli import apply, idf_build, image_check
from partkit.cli.common import (
    EXIT_PLAIN,
    add_extra_subtypes,
    add_info_options,
    add_selector,
    check_input_path,
    emit,
    size_option,
    table_options,
    usage_error,
)
from partkit.cli.image_check import HANDLERS
from partkit.cli.image_shared import (
    Commands,
    add_table_source,
    add_write_options,
    chip_list,
    columns,
    guard,
    image_options,
    load,
    parse_args,
    select,
)
from partkit.common.errors import (
    CheckFailed,
    PartkitError,
    SourceLocation,
    closest,
    error,
    warning,
)
from partkit.common.numbers import format_size
from partkit.data.check import contents_warning
from partkit.flash import flashargs, imagefile
from partkit.flash.appimage import ImageBytes, read_image
from partkit.flash.assemble import (
    check_image_chips,
    chip_from_images,
    plan_image,
    relative_path,
    write_flash_args,
    write_image,
)
from partkit.flash.contents import Finding, describe
from partkit.flash.partinfo import format_info
from partkit.flash.tablearea import load_table_file
from partkit.table.binary import MAX_TABLE_BYTES
from partkit.table.codec import load_table
from partkit.table.names import type_name
from partkit.table.render import flags_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from partkit.flash.imagefile import ImageReader
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["run"]

COMMANDS = ("info", "read", "write", "erase", "create", "inspect", "check", "set-boot", "otadata",
            "apply")


# --- argument parsing ---------------------------------------------------------------------


def _parser() -> Commands:
    sub = Commands()

    p = sub.add_parser("info", help="list partitions, or fields of the selected one",
                       exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file (e.g. a flash dump)")
    add_selector(p)
    add_info_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_table_source(p)

    p = sub.add_parser("read", help="copy a partition's bytes to a file", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file to read from")
    add_selector(p)
    p.add_argument("output_pos", nargs="?", metavar="OUTPUT",
                   help="file to write the partition's bytes to (or -o OUTPUT)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="file to write the partition's bytes to (or OUTPUT)")
    add_table_source(p)

    p = sub.add_parser("write", help="write a file into a partition (rest becomes 0xFF)")
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    p.add_argument("input", nargs="?", metavar="INPUT", help="file with the data to write")
    p.add_argument("--input", dest="input_opt", metavar="FILE", help=argparse.SUPPRESS)
    add_selector(p)
    add_write_options(p)
    add_table_source(p)

    p = sub.add_parser("erase", help="set a partition to 0xFF", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    add_selector(p)
    add_write_options(p)
    add_table_source(p)

    p = sub.add_parser("inspect", help="find the table in a raw dump and tell what each "
                       "partition holds", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="raw flash dump or flash image file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_table_source(p)

    p = sub.add_parser("create", help="assemble a full flash image (+ flash_args)")
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

    image_check.add_parsers(sub)
    apply.add_image_parser(sub)
    return sub


def run(argv: list[str]) -> int:
    commands = _parser()
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(commands.usage())
        return 0 if argv else 2
    parser = commands.parsers.get(argv[0])
    if parser is None:
        guess = closest(argv[0], commands.parsers)
        sys.stderr.write(f"partkit image: error: unknown command '{argv[0]}'"
                         + (f" (did you mean '{guess}'?)" if guess else "") + "\n"
                         + commands.usage())
        return 2
    args = parse_args(parser, argv[1:])
    args.command = argv[0]

    imagefile.set_notice_handler(lambda notice: emit([notice]))  # recoveries go to stderr
    if args.command != "create" and isinstance(getattr(args, "image", None), str):
        check_input_path(args.image)  # one clear line for a directory, missing file, ...
    handler = {
        "info": _info, "read": _read, "write": _write, "erase": _erase,
        "inspect": _inspect, "create": _create,
    }.get(args.command) or _image_check_handler(args.command)
    return handler(args)


def _image_check_handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "apply":
        from partkit.cli.apply import run_image

        return run_image
    return HANDLERS[command]


# --- table and selection ------------------------------------------------------------------


# --- commands -----------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    table, options = load(args)
    if args.name is None and args.type is None and not args.boot_default:
        chosen = list(table)
        if not args.info:
            if args.json:
                from partkit.table.render import to_json

                sys.stdout.write(json.dumps(to_json(table, options), indent=2) + "\n")
                return 0
            rows = [("Name", "Type", "SubType", "Offset", "Size", "Flags")]
            rows += [(p.name, type_name(p.type), options.subtypes.render(p.type, p.subtype),
                      f"0x{p.offset:x}", f"0x{p.size:x}", flags_text(p)) for p in table]
            sys.stdout.write(columns(rows))
            return 0
    else:
        chosen = select(args, table, options, single=False)
    fields = args.info or ["offset", "size"]
    if args.json:
        from partkit.table.render import partition_json

        sys.stdout.write(json.dumps([partition_json(p, options) for p in chosen], indent=2)
                         + "\n")
        return 0
    sys.stdout.write(format_info(chosen, fields) + "\n")
    return 0


def _read(args: argparse.Namespace) -> int:
    if args.output is not None and args.output_pos is not None:
        raise usage_error("give the output once: OUTPUT or -o OUTPUT")
    args.output = args.output or args.output_pos
    if args.output is None:
        raise usage_error("no output file", "partkit image read IMAGE -n NAME OUTPUT "
                          "(or -o OUTPUT)")
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    imagefile.read_partition(args.image, part, args.output)
    sys.stderr.write(f"Read partition '{part.name}' (0x{part.size:x} bytes at 0x{part.offset:x}) "
                     f"to '{args.output}'\n")
    return 0


def _write(args: argparse.Namespace) -> int:
    source = args.input or args.input_opt
    if source is None:
        raise usage_error("no input file", "usage: partkit image write IMAGE -n NAME FILE")
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    guard(args, part, "write")
    size = os.path.getsize(source) if os.path.isfile(source) else None
    if size is not None and size > part.size:
        raise CheckFailed(error(
            f"{size} bytes (0x{size:x}) do not fit partition '{part.name}' of {part.size} bytes "
            f"(0x{part.size:x}): {size - part.size} bytes too many", SourceLocation(source),
            "use a smaller file or enlarge the partition; the image was not changed"))
    from partkit.data.check import contents_warning

    mismatch = contents_warning(source, part, table)
    if mismatch is not None:
        emit([mismatch])
    imagefile.write_partition(args.image, part, source, output=args.output, sync=args.sync)
    target = args.output or args.image
    sys.stderr.write(f"Wrote '{source}' ({size} bytes) to partition '{part.name}' at "
                     f"0x{part.offset:x} of '{target}'; verified"
                     + (f", 0x{part.size - (size or 0):x} bytes after it set to 0xFF"
                        if size is not None and size < part.size else "") + "\n")
    return 0


def _erase(args: argparse.Namespace) -> int:
    table, options = load(args)
    part = select(args, table, options, single=True)[0]
    guard(args, part, "erase")
    imagefile.erase_partition(args.image, part, output=args.output, sync=args.sync)
    sys.stderr.write(f"Erased partition '{part.name}' at 0x{part.offset:x} of "
                     f"'{args.output or args.image}'\n")
    return 0


# --- inspect ------------------------------------------------------------------------------


MAX_OTHER_TABLES = 64  # a dump full of table copies still gives a bounded report


def _find_table(args: argparse.Namespace, image: ImageReader
                ) -> tuple[PartitionTable, TableOptions, int, list[int]]:
    """The table to use, its offset, and any other table-like sectors seen.

    Streams the open image once (sparse holes skipped), so a 64 GiB dump costs no memory.
    """
    if args.table or args.offset:
        table, options = load(args)
        return table, options, options.table_offset, []

    options = image_options(args)

    def candidates() -> Iterator[int]:
        yield 0x8000
        for at in image.sectors_starting_with(b"\xaa\x50", 0x1000):
            if at != 0x8000:
                yield at

    first: tuple[int, PartitionTable] | None = None
    others: list[int] = []
    for offset in candidates():
        if offset + MAX_TABLE_BYTES > image.size:
            continue
        data = image.read(offset, MAX_TABLE_BYTES)
        if data[:2] != b"\xaa\x50":
            continue
        try:
            loaded = load_table(data, f"{args.image}@0x{offset:x}",
                                options.replace(table_offset=offset))
        except PartkitError:
            continue
        if first is None:
            first = (offset, loaded.table)
        elif len(others) < MAX_OTHER_TABLES:
            others.append(offset)
    if first is None:
        raise PartkitError(error(
            f"no partition table found in {image.size} bytes (searched every 4 KiB sector for "
            "a valid table)", SourceLocation(args.image),
            "is this a raw flash dump? encrypted flash cannot be read without the key"))
    offset, table = first
    return table, options.replace(table_offset=offset), offset, others


def _inspect(args: argparse.Namespace) -> int:
    with imagefile.open_image(args.image) as image:  # opened and locked once
        table, options, offset, others = _find_table(args, image)
        size = image.size
        results: list[tuple[Partition, Finding]] = []
        for part in table:
            if part.end > size:
                results.append((part, Finding("missing", "beyond the end of the image "
                                              f"({size} bytes): truncated dump?")))
            else:
                results.append((part, describe(image, part, table)))
        boot = _bootloader(image, offset)
    if args.json:
        doc = {
            "image": args.image,
            "size": size,
            "table_offset": offset,
            "other_tables": others,
            "bootloader": boot,
            "partitions": [
                {"name": p.name, "type": p.type, "subtype": p.subtype, "offset": p.offset,
                 "size": p.size, "readonly": p.readonly, "encrypted": p.encrypted,
                 "contents": f.as_dict()} for p, f in results
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2, default=_hexlify) + "\n")
        return 0
    out = [f"{args.image}: {size} bytes (0x{size:x}); partition table at 0x{offset:x}, "
           f"{len(table)} entries"]
    if boot is not None:
        out.append(f"bootloader at 0x{boot['offset']:x}: {boot['summary']}")
    for o in others:
        out.append(f"another table at 0x{o:x} (a secondary table, e.g. ESP-AT at_customize)")
    rows = [("Name", "Type", "SubType", "Offset", "Size", "Contents")]
    rows += [(p.name, type_name(p.type), options.subtypes.render(p.type, p.subtype),
              f"0x{p.offset:x}", f"0x{p.size:x}", f.summary) for p, f in results]
    sys.stdout.write("\n".join(out) + "\n" + columns(rows))
    return 0


def _hexlify(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _bootloader(image: ImageReader, table_offset: int) -> dict[str, object] | None:
    """An ESP image at one of the known bootloader offsets below the table."""
    for offset in sorted({0x0, 0x1000, 0x2000}):
        if offset >= table_offset or image.read(offset, 1) != b"\xe9":
            continue

        def read(at: int, length: int, base: int = offset) -> bytes:
            return image.read(base + at, length)

        data = ImageBytes(read, max(0, min(table_offset, image.size) - offset))
        try:
            info = read_image(data, f"{image.path}@0x{offset:x}")
        except PartkitError as exc:
            return {"offset": offset, "summary": f"broken ESP image: {exc.diagnostics[0].message}"}
        chip = f", chip {info.chip}" if info.chip else ""
        return {"offset": offset, "size": info.measured_size, "chip": info.chip,
                "summary": f"ESP {info.kind} image, {info.measured_size} bytes{chip}"}
    return None


# --- create -------------------------------------------------------------------------------


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
    except PartkitError as exc:
        raise PartkitError((*exc.diagnostics, warning(
            state, SourceLocation(args.image), "run the same command again"))) from None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(state) from None
    _report_flash_files(args_dir, list(generated), chip)
    return 0


def _check_create_outputs(args: argparse.Namespace, inputs: list[str | None]) -> None:
    """Everything ``create`` will write is checked before the image is: an --args-dir
    that is a file, or an output that is an input, must not fail after the image."""
    from partkit.common.fileio import check_outputs

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
    from partkit.common.fileio import read_input
    from partkit.flash.bootheader import FLASH_MODES, patch_flash_params

    if mode.lower() not in FLASH_MODES:
        raise usage_error(f"--flash-mode {mode}: not a flash mode",
                          "one of: " + ", ".join(FLASH_MODES))
    data = read_input(path)
    if data[:1] != b"\xe9":  # esptool leaves such files alone too
        from partkit.common.errors import SourceLocation, warning

        emit([warning("not an ESP image: the bootloader's flash settings are not set",
                      SourceLocation(path), "pass the bootloader .bin the build wrote")])
        return data
    if chip is None:
        from partkit.flash.appimage import read_image

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
        import shlex

        command = f"cd {shlex.quote(shown)} && {command}"
    sys.stderr.write(f"Flash with: {command}\n")
