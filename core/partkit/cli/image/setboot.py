"""``partkit image set-boot IMAGE --slot SLOT``: write otadata selecting an app slot, as an
OTA update does (crash-safe: the image's common writer, then read back).
"""

from __future__ import annotations

import os
import sys
import tempfile

from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import (
    STATES,
    add_slot_options,
    add_table_source,
    add_write_options,
    app_slot,
    guard,
    load,
    ota_apps,
    otadata_partition,
    read_otadata,
    reads_image,
)
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error
from partkit.flash import imagefile, otadata
from partkit.flash.bootselect import select_slot
from partkit.flash.contents import describe

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

__all__ = ["SET_BOOT"]

EXIT_CODES = """\
exit status:
  0  otadata written and read back
  1  the slot holds no valid app (use --force to select it anyway)
  2  bad input (unknown slot, no otadata partition, unreadable image)
"""


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="flash image to change")
    add_slot_options(p)
    add_write_options(p)
    add_table_source(p)


def _set_boot(args: argparse.Namespace) -> int:
    table, _ = load(args)
    part = otadata_partition(table, args.image)
    target, slot = app_slot(args.slot, table)
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
    current = read_otadata(args.image, part)
    try:
        blob = select_slot(current, slot, len(ota_apps(table)), STATES[args.state])
    except ValueError as exc:  # the slot does not fit this otadata: bad input
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


SET_BOOT = Subcommand("set-boot", "write otadata selecting an app slot (crash-safe)", _options,
                      reads_image(_set_boot), EXIT_CODES)
