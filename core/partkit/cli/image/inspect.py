"""``partkit image inspect DUMP``: find the partition table in a raw flash dump (any 4 KiB
sector) and tell what each partition holds (:func:`partkit.flash.contents.describe`).
"""

from __future__ import annotations

import json
import sys

from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import add_table_source, columns, image_options, load, reads_image
from partkit.cli.parser import EXIT_PLAIN
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.flash import imagefile
from partkit.flash.appimage import ImageBytes, read_image
from partkit.flash.contents import Finding, describe
from partkit.table.binary import MAX_TABLE_BYTES
from partkit.table.codec import load_table
from partkit.table.names import type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from partkit.flash.imagefile import ImageReader
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["INSPECT"]


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="raw flash dump or flash image file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_table_source(p)


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
        except PartkitError:  # probing: a sector that only looks like a table is skipped
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
        except PartkitError as exc:  # not a failure: the report says the image is broken
            return {"offset": offset, "summary": f"broken ESP image: {exc.diagnostics[0].message}"}
        chip = f", chip {info.chip}" if info.chip else ""
        return {"offset": offset, "size": info.measured_size, "chip": info.chip,
                "summary": f"ESP {info.kind} image, {info.measured_size} bytes{chip}"}
    return None


INSPECT = Subcommand("inspect", "find the table in a raw dump and tell what each partition "
                     "holds", _options, reads_image(_inspect), EXIT_PLAIN)
