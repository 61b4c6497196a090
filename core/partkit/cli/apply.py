"""``partkit image apply IMAGE NEW`` and ``partkit device apply --port P NEW``: run the
``partkit diff`` migration plan on a flash image or a connected chip.

Registered in :mod:`partkit.cli.image` and :mod:`partkit.cli.device` (the options and the
handler of each); the work is :mod:`partkit.diff.apply`'s. Errors are reported by
:func:`partkit.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from partkit.cli.common import add_extra_subtypes, emit, size_option, table_options
from partkit.cli.connection import add_connection_options, session_of
from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import reads_image
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error
from partkit.device.ops import bootloader_offset
from partkit.device.target import DeviceTarget, ImageTarget
from partkit.diff import DiffOptions, diff_tables, load_side, to_json, to_text
from partkit.diff.apply import apply_plan, check_growable, check_reach, grow_image, step_text
from partkit.diff.source import TableSide, has_md5_row, read_field
from partkit.table.binary import encode
from partkit.table.codec import load_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.device.session import Session
    from partkit.device.target import Target
    from partkit.diff import DiffReport
    from partkit.diff.plan import Step
    from partkit.table.options import TableOptions

__all__ = ["DEVICE_APPLY", "EPILOG", "EXIT_APPLY", "HELP", "IMAGE_APPLY", "add_device_arguments",
           "add_image_options", "run_device", "run_image"]

HELP = "change the table to NEW by running partkit diff's migration plan"
EXIT_APPLY = """\
exit status:
  0  the plan ran to its end (or there was nothing to do); every step verified
  1  the change is UNSAFE (nothing written; --force runs it anyway), or a step failed (the
     message names the step, what it may have changed, and the steps done and left)
  2  bad input: unreadable image or NEW, invalid NEW table, unknown option
"""
EPILOG = """\
The plan is the one `partkit diff OLD NEW` prints, with the running slot read from OLD's
otadata: copies and otadata first, then the table, then erases. It is printed before it
runs. docs/diff.md describes the steps and what a power cut at each one does.

"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("new", metavar="NEW", help="the new table: CSV, binary table or flash image")
    p.add_argument("--force", action="store_true",
                   help="run the plan even though partkit diff says UNSAFE")
    p.add_argument("--running", action="append", metavar="SLOT",
                   help="the running app slot, when OLD's otadata cannot tell (as partkit diff)")
    p.add_argument("--erase", action="extend", nargs="+", default=[], metavar="NAME",
                   help="partitions the update erases on purpose (as partkit diff)")
    p.add_argument("--disable-md5sum", action="store_true",
                   help="a CSV NEW is encoded without the MD5 row")
    p.add_argument("--json", action="store_true",
                   help="print the diff report (with the plan) as JSON instead of text")


def add_image_options(p: argparse.ArgumentParser) -> None:
    """IMAGE, NEW, the plan options and where the result goes (``partkit image apply``)."""
    p.add_argument("image", metavar="IMAGE", help="flash image or dump holding OLD")
    _common(p)
    p.add_argument("--offset", metavar="N", help="table offset (default 0x8000)")
    add_extra_subtypes(p, "NEW")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the result here and leave IMAGE untouched")
    p.add_argument("--flash-size", metavar="S",
                   help="grow the image to this flash size first (0xFF fill; the bootloader "
                   "header's size byte and SHA-256 updated)")
    p.add_argument("--sync", action="store_true",
                   help="flush each step to disk before the next (power-loss safe)")


def add_device_arguments(p: argparse.ArgumentParser) -> None:
    """NEW and the plan options; the connection and table options are partkit device's."""
    _common(p)


# --- shared ---------------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> TableOptions:
    return table_options(offset=args.offset, md5=not args.disable_md5sum, verify=False,
                         extra_subtypes=args.extra_partition_subtypes)


def _report(old: TableSide, args: argparse.Namespace, options: TableOptions,
            flash_size: int | None = None) -> tuple[DiffReport, bytes]:
    new = load_side(args.new, options)
    report = diff_tables(old, new, DiffOptions(
        running=None if args.running is None else tuple(args.running),
        erase=tuple(args.erase), flash_size=flash_size, table=options))
    return report, encode(new.table, new.md5)


def _run(target: Target, report: DiffReport, table: bytes, args: argparse.Namespace) -> int:
    emit(report.warnings)
    sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n" if args.json
                     else to_text(report))
    sys.stdout.flush()
    if not report.safe and not args.force:
        raise CheckFailed(error(
            f"refusing to apply an UNSAFE change ({', '.join(report.broken_codes)}); nothing "
            "was written", SourceLocation(target.label),
            "fix NEW (see the rules above), or run it anyway with --force"))
    if not report.plan:
        return 0

    def say(number: int, step: Step) -> None:
        if not args.json:
            sys.stderr.write(f"applying {step_text(number, step)}\n")

    apply_plan(target, report, table, say)
    if not args.json:
        sys.stderr.write(f"applied: {len(report.plan)} steps, each verified\n")
    return 0


# --- image ------------------------------------------------------------------------------------


def run_image(args: argparse.Namespace) -> int:
    options = _options(args)
    grow = None
    if args.flash_size is not None:
        grow = size_option("--flash-size", args.flash_size)
    old = load_side(args.image, options)  # bad input before anything is copied or grown
    if grow is not None:
        header_at = check_growable(args.image, grow, options.table_offset)  # or raises
        _keeps_old(old, grow, args.flash_size)
        old = old.replace(field=old.field.replace(
            header_flash_size=grow, header_where=(
                f"--flash-size (written into the bootloader header at 0x{header_at:x} first)"
                if header_at is not None else
                "--flash-size (the image holds no bootloader: only the file grows)")))
    report, table = _report(old, args, options)
    if not report.safe and not args.force:  # refuse before a copy or a grow
        return _run(ImageTarget(args.image), report, table, args)
    check_reach(report.plan, max(grow or 0, old.flash_size or 0), args.image,
                "grow the image to the devices' flash first: --flash-size S")
    path = args.image
    if args.output is not None and os.path.abspath(args.output) != os.path.abspath(path):
        if os.path.isdir(args.output):
            raise PartkitError(error("-o: is a directory, expected a file path",
                                     SourceLocation(args.output), "name the output file"))
        path = _copy(args.image, args.output)
    try:
        if grow is not None:
            where = grow_image(path, grow, options.table_offset)
            if not args.json:
                sys.stderr.write(f"grew {args.output or args.image} to {grow} bytes"
                                 + (f"; bootloader header at {where} says so" if where else
                                    "; no bootloader found to update") + "\n")
        code = _run(ImageTarget(path, sync=args.sync), report, table, args)
    except BaseException:  # not reporting: the unfinished copy goes, the error goes on
        if path != args.image:
            os.unlink(path)
        raise
    if path != args.image:
        try:
            os.replace(path, args.output)
        except OSError as exc:
            os.unlink(path)
            raise PartkitError(error(f"cannot write {args.output}: {exc.strerror}",
                                     SourceLocation(args.output))) from None
    return code


def _keeps_old(old: TableSide, size: int, given: str) -> None:
    """The header's new flash size is written before the table: OLD's table must fit it
    too, or the bootloader refuses OLD's table until NEW is in place."""
    end = max((p.end for p in old.table), default=0)
    if end > size:
        raise PartkitError(error(
            f"--flash-size {given}: OLD's partitions end at 0x{end:x}, past it; the bootloader "
            "header is set before the table is written, and until then the bootloader would "
            "refuse OLD's table; nothing was written", SourceLocation(old.source),
            "give a flash size that holds OLD and NEW (--flash-size grows, it does not shrink "
            "below what the devices' table uses)"))


def _copy(image: str, output: str) -> str:
    """A temporary copy of ``image`` next to ``output`` (renamed over it when done)."""
    directory = os.path.dirname(os.path.abspath(output)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".partkit-apply-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(image, tmp)
    except OSError as exc:
        os.unlink(tmp)
        raise PartkitError(error(f"cannot write {output}: {exc.strerror}",
                                 SourceLocation(output))) from None
    return tmp


# --- device -----------------------------------------------------------------------------------


def run_device(args: argparse.Namespace, session_of: Callable[[], Session]) -> int:
    if args.table is not None:
        raise PartkitError(error("apply reads OLD off the device; --table does not apply",
                                 hint="drop --table"))
    options: TableOptions = _options(args)
    session = session_of()  # not connected yet: bad input above fails first
    with session:
        target = DeviceTarget(session)
        offset = options.table_offset
        data = target.read_table_area(offset)
        label = f"{args.port}@0x{offset:x}"
        field = read_field(target.read, session.flash_size, data, offset, args.port,
                           bootloader_offset(session, options))
        loaded = load_table(data, label, options.replace(md5=True, flash_size=None))
        old = TableSide(loaded.table, label, "device", offset, has_md5_row(data),
                        session.flash_size, loaded.warnings, field)
        report, table = _report(old, args, options)
        if session.flash_size is not None and (report.safe or args.force):
            check_reach(report.plan, session.flash_size, args.port,
                        "NEW does not fit the chip's flash")
        return _run(target, report, table, args)


def _device_options(p: argparse.ArgumentParser) -> None:
    add_device_arguments(p)
    add_connection_options(p)


def _device(args: argparse.Namespace) -> int:
    args.image = args.port  # the location selection errors name
    return run_device(args, lambda: session_of(args))


# The sub-commands as partkit image and partkit device list them (LazySubcommand): this
# module loads partkit diff, so it is imported only when apply runs.
IMAGE_APPLY = Subcommand("apply", HELP, add_image_options, reads_image(run_image),
                         EXIT_APPLY + "\n" + EPILOG)
DEVICE_APPLY = Subcommand("apply", "change the table to NEW by running partkit diff's plan, "
                          "each step verified", _device_options, _device, EXIT_APPLY)
