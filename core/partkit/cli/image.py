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
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from partkit.cli.common import (
    EXIT_CHECK,
    EXIT_PLAIN,
    add_info_options,
    add_selector,
    check_input_path,
    command_parser,
    emit,
    report_error,
    size_option,
    table_options,
    usage_error,
)
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, closest, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from partkit.flash.imagefile import ImageReader
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["run"]

TABLE_BYTES = 0xC00
COMMANDS = ("info", "read", "write", "erase", "create", "inspect", "check", "set-boot", "otadata",
            "apply")


# --- argument parsing ---------------------------------------------------------------------


def _table_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("partition table")
    g.add_argument("--table", "--partition-table-file", "-f", metavar="FILE",
                   help="read the table from this CSV or binary instead of the image")
    g.add_argument("--offset", "--partition-table-offset", metavar="N",
                   help="table offset in the image (default 0x8000)")
    g.add_argument("--chip", metavar="CHIP",
                   help="only to read a --table CSV with 'bootloader' rows: the chip sets "
                   f"their offset ({_chips()})")
    g.add_argument("--extra-partition-subtypes", nargs="*", default=[], metavar="E",
                   help="subtype names of your own, as type,name,value (value in hex); end "
                   "the list with -- when IMAGE follows")


def _chips() -> str:
    from partkit.common.chips import chip_names

    return ", ".join(chip_names())


def _write_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", "--ignore-readonly", action="store_true",
                   help="allow changing a partition flagged readonly")
    p.add_argument("-o", "--output", metavar="COPY",
                   help="write the result to COPY and leave IMAGE untouched")
    p.add_argument("--sync", action="store_true",
                   help="flush to the device at each step (survives power loss, ~2x slower)")


DESCRIPTION = ("Read, write and erase partitions of flash image files, assemble images, and "
               "inspect raw flash dumps.")


class _Commands:
    """One independent parser per command, so options and files may come in any order."""

    def __init__(self) -> None:
        self.parsers: dict[str, argparse.ArgumentParser] = {}
        self.helps: dict[str, str] = {}

    def add_parser(self, name: str, help: str, exit_codes: str = EXIT_CHECK,
                   ) -> argparse.ArgumentParser:
        p = command_parser(f"partkit image {name}", help, exit_codes)
        self.parsers[name] = p
        self.helps[name] = help
        return p

    def usage(self) -> str:
        lines = ["usage: partkit image COMMAND [options]", "", DESCRIPTION, "", "commands:"]
        lines += [f"  {n:<8} {h}" for n, h in self.helps.items()]
        return "\n".join(lines) + "\n"


def _parser() -> _Commands:
    sub = _Commands()

    p = sub.add_parser("info", help="list partitions, or fields of the selected one",
                       exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file (e.g. a flash dump)")
    add_selector(p)
    add_info_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _table_source(p)

    p = sub.add_parser("read", help="copy a partition's bytes to a file", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file to read from")
    add_selector(p)
    p.add_argument("output_pos", nargs="?", metavar="OUTPUT",
                   help="file to write the partition's bytes to (or -o OUTPUT)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="file to write the partition's bytes to (or OUTPUT)")
    _table_source(p)

    p = sub.add_parser("write", help="write a file into a partition (rest becomes 0xFF)")
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    p.add_argument("input", nargs="?", metavar="INPUT", help="file with the data to write")
    p.add_argument("--input", dest="input_opt", metavar="FILE", help=argparse.SUPPRESS)
    add_selector(p)
    _write_opts(p)
    _table_source(p)

    p = sub.add_parser("erase", help="set a partition to 0xFF", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="flash image file to change")
    add_selector(p)
    _write_opts(p)
    _table_source(p)

    p = sub.add_parser("inspect", help="find the table in a raw dump and tell what each "
                       "partition holds", exit_codes=EXIT_PLAIN)
    p.add_argument("image", metavar="IMAGE", help="raw flash dump or flash image file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _table_source(p)

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
                   "be built for it (default: from their headers). One of: " + _chips())
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
    p.add_argument("--extra-partition-subtypes", nargs="*", default=[], metavar="E",
                   help="subtype names of your own, as type,name,value (value in hex); end "
                   "the list with -- when IMAGE follows")

    from partkit.cli import image_check  # check, set-boot, otadata

    image_check.add_parsers(sub)
    from partkit.cli import apply  # apply: partkit diff's plan, run on the image

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
    args = _parse_args(parser, argv[1:])
    args.command = argv[0]
    from partkit.flash import imagefile

    imagefile.set_notice_handler(lambda notice: emit([notice]))  # recoveries go to stderr
    try:
        if args.command != "create" and isinstance(getattr(args, "image", None), str):
            check_input_path(args.image)  # one clear line for a directory, missing file, ...
        handler = {
            "info": _info, "read": _read, "write": _write, "erase": _erase,
            "inspect": _inspect, "create": _create,
        }.get(args.command) or _image_check_handler(args.command)
        return handler(args)
    except PartkitError as exc:
        return report_error(exc)


def _parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_intermixed_args, except that everything after ``--`` is positional.

    argparse's intermixed parsing drops positionals after ``--`` (``image info -- -a.bin``
    fails): they are swapped for placeholders that cannot look like options, then back.
    """
    if "--" not in argv:
        return parser.parse_intermixed_args(argv)
    cut = argv.index("--")
    after = argv[cut + 1:]
    marks = {f"\0{i}": value for i, value in enumerate(after)}
    args = parser.parse_intermixed_args(argv[:cut] + list(marks))
    for key, value in vars(args).items():
        if isinstance(value, str) and value in marks:
            setattr(args, key, marks[value])
        elif isinstance(value, list):
            setattr(args, key, [marks.get(v, v) if isinstance(v, str) else v for v in value])
    return args


def _image_check_handler(command: str) -> Callable[[argparse.Namespace], int]:
    from partkit.cli.image_check import HANDLERS

    if command == "apply":
        from partkit.cli.apply import run_image

        return run_image
    return HANDLERS[command]


# --- table and selection ------------------------------------------------------------------


def _options(args: argparse.Namespace) -> TableOptions:
    return table_options(offset=args.offset, chip=args.chip, verify=False,
                         extra_subtypes=args.extra_partition_subtypes)


def _load(args: argparse.Namespace) -> tuple[PartitionTable, TableOptions]:
    from partkit.flash.tablearea import read_table_area
    from partkit.table.codec import load_table, load_table_file

    options = _options(args)
    if args.table:
        loaded = load_table_file(args.table, options)
        emit(loaded.warnings)
        return loaded.table, options
    image, offset = args.image, options.table_offset
    data = read_table_area(image, offset, "--offset N or --table FILE")
    loaded = load_table(data, f"{image}@0x{offset:x}", options)
    emit(loaded.warnings)
    return loaded.table, options


def _select(args: argparse.Namespace, table: PartitionTable, options: TableOptions, *,
            single: bool) -> list[Partition]:
    from partkit.flash.partinfo import select

    if args.name is None and args.type is None and not args.boot_default:
        raise usage_error("no partition selected",
                          "use --name NAME, --type T --subtype S, or --boot-default")
    if args.subtype is not None and args.type is None:
        raise usage_error("--subtype needs --type")
    if single and args.type is not None and args.subtype is None:
        raise usage_error("--subtype is required with --type",
                          "e.g. --type data --subtype nvs (as parttool requires)")
    part_list = bool(getattr(args, "part_list", False)) or (args.type is not None
                                                              and args.subtype is None)
    found = list(select(table, name=args.name, type=args.type, subtype=args.subtype,
                        boot_default=args.boot_default, part_list=part_list,
                        subtypes=options.subtypes))
    if not found:
        if args.name is not None:
            guess = closest(args.name, [p.name for p in table])
            what = f"no partition named '{args.name}'"
            hint = (f"did you mean '{guess}'? " if guess else "") + "partitions: " + (
                ", ".join(p.name for p in table) or "(none)")
        elif args.boot_default:
            what, hint = "no boot-default app (no factory or ota_N app partition)", None
        else:
            what = f"no partition of type '{args.type}'" + (
                f" subtype '{args.subtype}'" if args.subtype is not None else "")
            hint = "partitions: " + (", ".join(p.name for p in table) or "(none)")
        raise PartkitError(error(what, SourceLocation(table.path or args.image), hint))
    return found[:1] if single else found


# --- commands -----------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from partkit.flash.partinfo import format_info
    from partkit.table.names import type_name
    from partkit.table.render import flags_text

    table, options = _load(args)
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
            sys.stdout.write(_columns(rows))
            return 0
    else:
        chosen = _select(args, table, options, single=False)
    fields = args.info or ["offset", "size"]
    if args.json:
        from partkit.table.render import partition_json

        sys.stdout.write(json.dumps([partition_json(p, options) for p in chosen], indent=2)
                         + "\n")
        return 0
    sys.stdout.write(format_info(chosen, fields) + "\n")
    return 0


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n"
                   for r in rows)


def _read(args: argparse.Namespace) -> int:
    from partkit.flash import imagefile

    if args.output is not None and args.output_pos is not None:
        raise usage_error("give the output once: OUTPUT or -o OUTPUT")
    args.output = args.output or args.output_pos
    if args.output is None:
        raise usage_error("no output file", "partkit image read IMAGE -n NAME OUTPUT "
                          "(or -o OUTPUT)")
    table, options = _load(args)
    part = _select(args, table, options, single=True)[0]
    imagefile.read_partition(args.image, part, args.output)
    sys.stderr.write(f"Read partition '{part.name}' (0x{part.size:x} bytes at 0x{part.offset:x}) "
                     f"to '{args.output}'\n")
    return 0


def _guard(args: argparse.Namespace, part: Partition, verb: str) -> None:
    if part.readonly and not args.force:
        raise PartkitError(error(
            f"partition '{part.name}' is read-only; refusing to {verb} it",
            SourceLocation(args.image), "pass --force to change it anyway"))


def _write(args: argparse.Namespace) -> int:
    from partkit.flash import imagefile

    source = args.input or args.input_opt
    if source is None:
        raise usage_error("no input file", "usage: partkit image write IMAGE -n NAME FILE")
    table, options = _load(args)
    part = _select(args, table, options, single=True)[0]
    _guard(args, part, "write")
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
    from partkit.flash import imagefile

    table, options = _load(args)
    part = _select(args, table, options, single=True)[0]
    _guard(args, part, "erase")
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
        table, options = _load(args)
        return table, options, options.table_offset, []
    from partkit.table.codec import load_table

    options = _options(args)

    def candidates() -> Iterator[int]:
        yield 0x8000
        for at in image.sectors_starting_with(b"\xaa\x50", 0x1000):
            if at != 0x8000:
                yield at

    first: tuple[int, PartitionTable] | None = None
    others: list[int] = []
    for offset in candidates():
        if offset + TABLE_BYTES > image.size:
            continue
        data = image.read(offset, TABLE_BYTES)
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
    from partkit.flash import imagefile
    from partkit.flash.contents import Finding, describe
    from partkit.table.names import type_name

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
    sys.stdout.write("\n".join(out) + "\n" + _columns(rows))
    return 0


def _hexlify(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _bootloader(image: ImageReader, table_offset: int) -> dict[str, object] | None:
    """An ESP image at one of the known bootloader offsets below the table."""
    from partkit.check.appimage import ImageBytes, read_image

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
    out = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise usage_error(f"{option}: '{value}' is not NAME=FILE",
                              f"example: {option} factory=build/app.bin")
        out.append((name, path))
    return out


def _chip_from_images(paths: list[str]) -> str | None:
    """The chip named in the first readable ESP image header among ``paths``."""
    from partkit.check.appimage import read_image_file

    for path in paths:
        try:
            chip = read_image_file(path).chip
        except PartkitError:
            continue  # reported when the file is placed
        if chip:
            return chip
    return None


def _check_image_chips(chip: str | None, explicit: bool, force: bool,
                       images: list[tuple[str, str]]) -> None:
    """Bootloader and app images must be built for the image's chip (``--chip``, or the
    first image's header): another chip's image does not boot. ``--force`` only warns."""
    from partkit.check.appimage import read_image_file

    found: list[tuple[str, str, str]] = []  # what, path, chip
    for what, path in images:
        try:
            image_chip = read_image_file(path).chip
        except PartkitError:
            continue  # not an ESP image: placing it reports what is wrong
        if image_chip:
            found.append((what, path, image_chip))
    if chip is None:
        return
    source = "--chip" if explicit else f"the chip of the {found[0][0]} image" if found else ""
    problems = [error(f"{what} image is built for {image_chip}, but the flash image is for "
                      f"{chip} "
                      f"({source})", SourceLocation(path),
                      f"build it for {chip}" + (", or give the right --chip" if explicit else "")
                      + "; --force places it anyway")
                for what, path, image_chip in found if image_chip != chip]
    if not problems:
        return
    if force:
        emit(p.replace(severity="warning", hint=None) for p in problems)
        return
    raise PartkitError(problems)


def _size_text(size: int) -> str:
    if size % 0x100000 == 0:
        return f"{size // 0x100000}MB"
    if size % 0x400 == 0:
        return f"{size // 0x400}KB"
    return str(size)


def _create(args: argparse.Namespace) -> int:
    from partkit.common.chips import BOOTLOADER_OFFSET
    from partkit.common.fileio import write_atomic
    from partkit.flash import flashargs, imagefile, otadata
    from partkit.flash.imagefile import Piece
    from partkit.table.codec import encode, load_table_file
    from partkit.table.names import APP, DATA, SUBTYPE_DATA_OTA

    if args.image is not None and args.output is not None:
        raise usage_error("give the image once: IMAGE or -o IMAGE")
    args.image = args.image or args.output
    if args.image is None:
        raise usage_error("no image to write", "give IMAGE or -o IMAGE")
    if args.idf_build_dir is not None:
        from partkit.cli import idf_build

        return idf_build.create_image(args, args.image)
    for option, value in (("--table", args.table), ("--flash-size", args.flash_size)):
        if value is None:
            raise usage_error(f"image create needs {option} (or --idf-build-dir)")
    flash_size = size_option("--flash-size", args.flash_size)
    apps = _pairs(args.app, "--app")
    datas = _pairs(args.data, "--data")
    chip = args.chip or _chip_from_images(
        ([args.bootloader] if args.bootloader else []) + [p for _, p in apps])
    options = table_options(offset=args.offset, chip=chip, flash_size=flash_size,
                            primary_bootloader_offset=args.bootloader_offset,
                            extra_subtypes=args.extra_partition_subtypes)
    _check_image_chips(options.chip, args.chip is not None, args.force,
                       ([("bootloader", args.bootloader)] if args.bootloader else [])
                       + [(f"app '{name}'", path) for name, path in apps])
    loaded = load_table_file(args.table, options)
    emit(loaded.warnings)
    table = loaded.table
    table_bin = encode(table, options)

    pieces: list[Piece] = [Piece(options.table_offset, "partition table", data=table_bin)]
    files: list[tuple[str, int, str | None, bytes | None]] = []  # name, offset, path, data
    if args.bootloader:
        bl_offset = options.primary_bootloader_offset
        if bl_offset is None:
            raise usage_error("cannot place the bootloader: chip unknown",
                              f"give --chip ({', '.join(sorted(BOOTLOADER_OFFSET))}) or "
                              "--bootloader-offset")
        bl = Piece(bl_offset, "bootloader", data=_bootloader_for_flash(
            args.bootloader, options.chip, args.flash_mode,
            args.flash_freq or flashargs.default_flash_freq(chip), flash_size))
        if bl.end > options.table_offset:
            raise CheckFailed(error(
                f"bootloader of {bl.size} bytes (0x{bl.size:x}) at 0x{bl_offset:x} runs into the "
                f"partition table at 0x{options.table_offset:x}", SourceLocation(args.bootloader),
                f"it can be at most 0x{options.table_offset - bl_offset:x} bytes"))
        pieces.append(bl)
        files.append(("bootloader", bl_offset, args.bootloader, None))
    files.append(("partition-table", options.table_offset, None, table_bin))

    otadata_parts = table.find(DATA, SUBTYPE_DATA_OTA)
    ota_apps = [p for p in table if p.type == APP and 0x10 <= p.subtype < 0x20]
    if args.ota_slot is not None and not otadata_parts:
        raise usage_error("--ota-slot needs an otadata (data, ota) partition in the table")
    if otadata_parts:
        part = otadata_parts[0]
        try:
            blob = otadata.encode_for_slot(args.ota_slot, len(ota_apps), part.size)
        except ValueError as exc:
            raise usage_error(f"--ota-slot: {exc}") from None
        pieces.append(Piece(part.offset, f"otadata '{part.name}'", data=blob))
        files.append(("otadata", part.offset, None, blob))

    boot = table.boot_default()
    for option, pairs in (("--app", apps), ("--data", datas)):
        for name, path in pairs:
            part_or_none = table.find_by_name(name)
            if part_or_none is None:
                guess = closest(name, [p.name for p in table])
                raise usage_error(f"{option}: no partition named '{name}' in {args.table}",
                                  (f"did you mean '{guess}'? " if guess else "")
                                  + "partitions: " + ", ".join(p.name for p in table))
            part = part_or_none
            if option == "--app" and part.type != APP:
                raise usage_error(f"--app: partition '{name}' is not an app partition",
                                  "use --data for data partitions")
            piece = Piece(part.offset, f"partition '{name}'", path=path)
            if piece.size > part.size:
                raise CheckFailed(error(
                    f"{piece.size} bytes (0x{piece.size:x}) do not fit partition '{name}' of "
                    f"{part.size} bytes (0x{part.size:x}): {piece.size - part.size} bytes too "
                    "many", SourceLocation(path)))
            from partkit.data.check import contents_warning

            mismatch = contents_warning(path, part, table)
            if mismatch is not None:
                emit([mismatch])
            pieces.append(piece)
            key = "app" if part == boot else name
            files.append((key, part.offset, path, None))
    imagefile.create_image(args.image, flash_size, pieces)
    sys.stderr.write(f"Created '{args.image}' ({_size_text(flash_size)}): "
                     + ", ".join(f"{name} @ 0x{off:x}" for name, off, _, _ in
                                 sorted(files, key=lambda f: f[1])) + "\n")
    if args.no_flash_args:
        return 0

    # an image written into a device or pipe (/dev/stdout, a FIFO): pieces go to the cwd
    args_dir = args.args_dir or (os.path.dirname(os.path.abspath(args.image))
                                 if os.path.isfile(args.image) else os.getcwd())
    generated = {"partition-table": os.path.join("partition_table", "partition-table.bin"),
                 "otadata": "ota_data_initial.bin"}
    entries: list[flashargs.FlashFile] = []
    for name, off, src, blob_or_none in sorted(files, key=lambda f: f[1]):
        rel: str
        if blob_or_none is not None:
            rel = generated[name]
            write_atomic(os.path.join(args_dir, rel), blob_or_none)
        else:
            rel = _relative(src or "", args_dir)
        encrypted = any(p.encrypted for p in table if p.offset == off)
        entries.append(flashargs.FlashFile(name, off, rel, encrypted))
    mode = args.flash_mode
    freq = args.flash_freq or flashargs.default_flash_freq(chip)
    size_text = _size_text(flash_size)
    write_atomic(os.path.join(args_dir, "flash_args"),
                 # surrogateescape: a path that is not UTF-8 keeps its real bytes
                 flashargs.flash_args(entries, mode, freq, size_text).encode(
                     "utf-8", "surrogateescape"))
    write_atomic(os.path.join(args_dir, "flasher_args.json"),
                 flashargs.flasher_args_json(entries, mode, freq, size_text,
                                             chip or "auto").encode())
    _report_flash_files(args_dir, [generated[name] for name, _, _, blob
                                   in sorted(files, key=lambda f: f[1]) if blob is not None],
                        chip)
    return 0


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
        from partkit.check.appimage import read_image

        chip = read_image(data, path).chip or ""
    try:
        patch = patch_flash_params(data, path, chip, mode, freq, flash_size)
    except ValueError as exc:
        raise usage_error(f"cannot set the bootloader's flash settings: {exc}") from None
    if patch.changed:
        sys.stderr.write(
            f"partkit: bootloader header flash settings set to {mode} {freq} "
            f"{_size_text(flash_size)} (bytes 2-3 0x{patch.old.hex()} -> "
            f"0x{patch.new.hex()}{', SHA-256 recomputed' if patch.sha_updated else ''}), "
            "as esptool write-flash/merge-bin do\n")
    return patch.data


def _report_flash_files(args_dir: str, generated: list[str], chip: str | None) -> None:
    """Say where every written file is, and how to flash from where the user is: esptool
    reads the paths inside @flash_args relative to the current directory."""
    written = ["flash_args", "flasher_args.json", *generated]
    shown = _relative(args_dir, os.getcwd())
    where = "the current directory" if shown == "." else f"'{shown}'"
    sys.stderr.write(f"Wrote in {where}: {', '.join(written)}\n")
    command = ("python -m esptool" + (f" --chip {chip}" if chip else "")
               + " write-flash @flash_args")
    if shown != ".":
        import shlex

        command = f"cd {shlex.quote(shown)} && {command}"
    sys.stderr.write(f"Flash with: {command}\n")


def _relative(path: str, start: str) -> str:
    try:
        return os.path.relpath(os.path.abspath(path), start)
    except ValueError:  # another drive on Windows
        return os.path.abspath(path)
