"""``partkit device``: partitions on a connected chip, over one esptool connection.

    partkit device [--port PORT] [connection options] COMMAND [options]

    show      the table read off the device, with partkit's summary (--json)
    info      list partitions, or fields of the selected one (parttool's line; --json)
    read      copy a partition to a file (-o FILE)
    write     write a file into a partition (rest 0xFF), verified with the flash MD5
    erase     erase a partition, verified
    otadata   decode otadata and tell which app boots (--json)
    set-boot  write otadata selecting an app slot, verified
    apply     change the table to NEW by running partkit diff's plan (cli/apply.py)

Selectors and output formats are those of ``partkit image``. Options may come before or
after the command. Without ``--port`` the first serial port where a chip answers is used,
as esptool does. Needs the ``device`` extra (esptool).
"""

from __future__ import annotations

import argparse
import json
import sys

from partkit.cli import apply
from partkit.cli.common import (
    add_extra_subtypes,
    add_info_options,
    add_selector,
    chip_help,
    emit,
    table_options,
    usage_error,
)
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.cli.image.otadata import write_otadata_report
from partkit.cli.image.shared import (
    STATES,
    add_slot_options,
    app_slot,
    ota_apps,
    otadata_partition,
    partition_list,
)
from partkit.cli.image.shared import select as select_partitions
from partkit.cli.reporting import Reporting, set_reporting
from partkit.common.chips import BOOTLOADER_OFFSET
from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error
from partkit.device.ops import check_input_file, check_writable, load_table, read_input_file
from partkit.device.session import Session
from partkit.device.target import DeviceTarget
from partkit.flash import otadata
from partkit.flash.bootselect import select_slot
from partkit.flash.partinfo import format_info
from partkit.flash.tablearea import read_header_flash_size
from partkit.table.render import partition_json, to_json, to_summary
from partkit.table.source import Field, FlashSize, RawTable, judge_flash_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from partkit.device.session import Progress
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["SUBCOMMANDS", "progress_bar", "run"]

EXIT_DEVICE = """\
exit status:
  0  success
  1  the device failed: no answer, connection lost, verification mismatch (the message
     says which flash range may have changed); or the input does not fit the partition
  2  bad input or refused: options, selector, table, missing esptool (pip install
     partkit[device]), read-only partition without --force, flash encryption or secure
     boot enabled without --force-security; nothing on the device was changed
"""

# the options taking one value, of the connection and the table and of the sub-commands:
# they may come before the command word, and their value is never taken for it
# ('-n otadata read': the otadata partition, read)
_VALUED = frozenset({"--port", "-p", "--baud", "-b", "--chip", "--offset",
                     "--partition-table-offset", "--table", "--partition-table-file", "-f",
                     "--before", "--after", "--connect-attempts",
                     "--name", "--partition-name", "-n", "--type", "--partition-type", "-t",
                     "--subtype", "--partition-subtype", "-s", "--output", "-o", "--input",
                     "--slot", "--state", "--running"})


def _connection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--port", "-p",
                   help="serial port or any port esptool accepts, e.g. /dev/ttyUSB0, COM3, "
                   "socket://host:port, rfc2217://host:port (default: each serial port "
                   "esptool lists, in its order, until a chip answers)")
    g.add_argument("--baud", "-b", type=int, metavar="N",
                   help="baud rate after connecting (default 115200, esptool's ROM rate)")
    g.add_argument("--chip", metavar="CHIP",
                   help=chip_help("expected chip (default: detected); also sets the "
                                  "bootloader offset for a --table CSV with bootloader rows"))
    g.add_argument("--before", default="default-reset",
                   choices=("default-reset", "usb-reset", "no-reset", "no-reset-no-sync"),
                   help="how to put the chip into its bootloader (esptool --before)")
    g.add_argument("--after", default="hard-reset",
                   choices=("hard-reset", "soft-reset", "no-reset"),
                   help="what to do with the chip when done (esptool --after)")
    g.add_argument("--no-stub", action="store_true",
                   help="talk to the ROM loader only (slow 64-byte reads; no flasher stub)")
    g.add_argument("--connect-attempts", type=int, default=7, metavar="N",
                   help="connection attempts before giving up (default 7, about 1 s each)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no status lines")
    t = p.add_argument_group("partition table")
    t.add_argument("--offset", "--partition-table-offset", metavar="N",
                   help="flash offset of the table on the device (default 0x8000)")
    t.add_argument("--table", "--partition-table-file", "-f", metavar="FILE",
                   help="use this CSV or binary table instead of the one on the device")
    add_extra_subtypes(t)


def _change_opts(p: argparse.ArgumentParser, erase: bool = False) -> None:
    p.add_argument("--force", "--ignore-readonly", action="store_true",
                   help="no effect: erase does not check the readonly flag (as parttool)"
                   if erase else "allow writing a partition flagged readonly (erase does "
                   "not need it, as in parttool)")
    p.add_argument("--force-security", action="store_true",
                   help="change flash even though the device has flash encryption or secure "
                   "boot enabled (you know the data is right for it)")


def _show_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON (as partkit show)")
    _connection(p)


def _info_options(p: argparse.ArgumentParser) -> None:
    add_selector(p)
    add_info_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    _connection(p)


def _read_options(p: argparse.ArgumentParser) -> None:
    add_selector(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    _connection(p)


def _write_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", help="data to write")
    p.add_argument("--input", dest="input_opt", metavar="FILE", help="the same as INPUT")
    add_selector(p)
    _change_opts(p)
    _connection(p)


def _erase_options(p: argparse.ArgumentParser) -> None:
    add_selector(p)
    _change_opts(p, erase=True)
    _connection(p)


def _otadata_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    _connection(p)


def _set_boot_options(p: argparse.ArgumentParser) -> None:
    add_slot_options(p)
    p.add_argument("--force", "--ignore-readonly", action="store_true",
                   help="also when otadata is readonly or the slot holds no app image")
    p.add_argument("--force-security", action="store_true",
                   help="change flash even with flash encryption or secure boot enabled")
    _connection(p)


def _apply_options(p: argparse.ArgumentParser) -> None:
    apply.add_device_arguments(p)
    _connection(p)


def run(argv: Sequence[str]) -> int:
    # a Ctrl-C outside a flash write changed nothing worth naming; a write says what it
    # may have changed itself (KeyboardInterrupt(state), printed by partkit.cli.main)
    set_reporting(Reporting(interrupted=None))
    return SUBCOMMANDS.run(argv)


def _on_device(handler: Callable[[argparse.Namespace], int]
               ) -> Callable[[argparse.Namespace], int]:
    """``handler`` with ``args.image`` set to the port: the location selection errors name."""

    def named(args: argparse.Namespace) -> int:
        args.image = args.port
        return handler(args)

    return named


# --- session, table, selection ------------------------------------------------------------


def _options(args: argparse.Namespace) -> TableOptions:
    return table_options(offset=args.offset, chip=args.chip, verify=False,
                         extra_subtypes=args.extra_partition_subtypes)


def _session(args: argparse.Namespace) -> Session:
    return Session(args.port, baud=args.baud, chip=args.chip, before=args.before,
                   after=args.after, stub=not args.no_stub,
                   connect_attempts=args.connect_attempts)


def _table(args: argparse.Namespace, target: DeviceTarget
           ) -> tuple[PartitionTable, TableOptions]:
    options = _options(args)
    if options.chip is None and target.session.chip_name:
        chip = target.session.chip_name
        if chip in BOOTLOADER_OFFSET and options.primary_bootloader_offset is None:
            options = options.replace(chip=chip,
                                      primary_bootloader_offset=BOOTLOADER_OFFSET[chip])
    table, warnings = load_table(target, options, args.table)
    emit(warnings)
    return table, options.replace(flash_size=target.session.flash_size)


def progress_bar(label: str, quiet: bool) -> Progress | None:
    """A one-line bar on stderr when it is a terminal (None otherwise or when quiet)."""
    if quiet or not sys.stderr.isatty():
        return None
    state = {"last": -1}

    def show(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        if pct == state["last"]:
            return
        state["last"] = pct
        width = 30
        fill = width * pct // 100
        sys.stderr.write(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {pct:3d}% "
                         f"{done >> 10}/{total >> 10} KiB")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")


def _with_device(args: argparse.Namespace,
                 work: Callable[[DeviceTarget], int]) -> int:
    with _session(args) as session:
        args.port = args.image = session.port  # found by scanning when not given
        target = DeviceTarget(session)
        code = work(target)
        if session.resumed_reads and not args.quiet:
            sys.stderr.write(f"note: {session.resumed_reads} stalled read stream(s) were "
                             "resumed; the data was checked against the flash MD5\n")
        return code


# --- commands -----------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, options = _table(args, target)
        flash = _judged_flash_size(args, target, options)
        options = options.replace(flash_size=flash.size)
        emit(flash.warnings)
        if args.json:
            doc = to_json(table, options)
            doc["flash_size_origin"] = flash.origin  # as 'partkit show --json' names it
            doc["device"] = _device_json(target)
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return 0
        s = target.session
        security = ", ".join(s.security.active) or "no flash encryption, no secure boot"
        sys.stdout.write(f"{args.port}: {s.chip_name}, "
                         + (f"{s.flash_size >> 20} MB flash" if s.flash_size else
                            "flash size unknown")
                         + f", {security}; table at 0x{options.table_offset:x}\n"
                         + to_summary(table, options, flash.origin))
        return 0

    return _with_device(args, work)


def _judged_flash_size(args: argparse.Namespace, target: DeviceTarget,
                       options: TableOptions) -> FlashSize:
    """The size the table is judged against and where it came from: table.source's one
    rule (the bootloader header at the chip's offset, else the flash chip), as 'partkit
    diff PORT' says."""
    s = target.session
    header, where = read_header_flash_size(target.read, s.flash_size, options.table_offset,
                                           args.port, options.primary_bootloader_offset)
    raw = RawTable(b"", "device", args.port, s.flash_size, Field(header, where))
    return judge_flash_size(raw, _options(args))


def _device_json(target: DeviceTarget) -> dict[str, object]:
    s = target.session
    return {"port": s.port, "chip": s.chip_name, "flash_size": s.flash_size,
            "flash_encryption": s.security.flash_encryption,
            "secure_boot": s.security.secure_boot}


def _info(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, options = _table(args, target)
        if args.name is None and args.type is None and not args.boot_default:
            chosen = list(table)
            if not args.info and not args.json:
                sys.stdout.write(partition_list(table, options))
                return 0
        else:
            chosen = select_partitions(args, table, options, single=False)
        if args.json:
            sys.stdout.write(json.dumps([partition_json(p, options) for p in chosen],
                                        indent=2) + "\n")
            return 0
        sys.stdout.write(format_info(chosen, args.info or ["offset", "size"]) + "\n")
        return 0

    return _with_device(args, work)


def _read(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, options = _table(args, target)
        part = select_partitions(args, table, options, single=True)[0]
        target.read_partition(part, args.output, progress_bar(f"read {part.name}", args.quiet))
        _say(args, f"Read partition '{part.name}' (0x{part.size:x} bytes at 0x{part.offset:x}) "
             f"from {args.port} to '{args.output}'")
        return 0

    return _with_device(args, work)


def _write(args: argparse.Namespace) -> int:
    source = args.input or args.input_opt
    if source is None:
        raise usage_error("no input file", "usage: partkit device --port P write -n NAME FILE")
    check_input_file(source)  # a missing file fails before connecting; a pipe is not read

    def work(target: DeviceTarget) -> int:
        table, options = _table(args, target)
        part = select_partitions(args, table, options, single=True)[0]
        check_writable(part, args.force, table.path or args.port)
        data = read_input_file(part, source, f"the device on {args.port}")
        target.write_partition(part, data, force_security=args.force_security,
                               progress=progress_bar(f"write {part.name}", args.quiet))
        _say(args, f"Wrote '{source}' ({len(data)} bytes) to partition '{part.name}' at "
             f"0x{part.offset:x} on {args.port}; verified (flash MD5)"
             + (f", 0x{part.size - len(data):x} bytes after it set to 0xFF"
                if len(data) < part.size else ""))
        return 0

    return _with_device(args, work)


def _erase(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, options = _table(args, target)
        part = select_partitions(args, table, options, single=True)[0]
        # read-only partitions are erased like any other, as parttool does (docs/device.md)
        target.erase_partition(part, force_security=args.force_security,
                               progress=progress_bar(f"erase {part.name}", args.quiet))
        _say(args, f"Erased partition '{part.name}' at 0x{part.offset:x} on {args.port}; "
             "verified (flash MD5)")
        return 0

    return _with_device(args, work)


def _otadata(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, _ = _table(args, target)
        part = otadata_partition(table, args.port)
        write_otadata_report(table, part, target.read(part.offset, part.size),
                             as_json=args.json, where=f" on {args.port}")
        return 0

    return _with_device(args, work)


def _set_boot(args: argparse.Namespace) -> int:
    def work(target: DeviceTarget) -> int:
        table, _ = _table(args, target)
        part = otadata_partition(table, args.port)
        app, slot = app_slot(args.slot, table)
        check_writable(part, args.force, table.path or args.port)
        if not args.force and target.read(app.offset, 1) != b"\xe9":
            raise CheckFailed(error(
                f"app slot '{app.name}' holds no app image (no 0xE9 magic byte at "
                f"0x{app.offset:x}); the device would not boot it", SourceLocation(args.port),
                "write the app first, or pass --force"))
        current = target.read(part.offset, part.size)
        try:
            blob = select_slot(current, slot, len(ota_apps(table)), STATES[args.state])
        except ValueError as exc:
            raise PartkitError(error(f"--slot: {exc}", SourceLocation(args.port))) from None
        target.write_partition(part, blob, force_security=args.force_security)
        active = otadata.active_entry(otadata.decode(blob))
        detail = ("both sectors erased: boots the factory app" if slot is None else
                  f"sector {active.index if active else 0}, "
                  f"ota_seq {active.seq if active else 0}")
        _say(args, f"Selected '{app.name}' in otadata '{part.name}' at 0x{part.offset:x} on "
             f"{args.port} ({detail}); verified (flash MD5)")
        return 0

    return _with_device(args, work)


def _apply(args: argparse.Namespace) -> int:
    return apply.run_device(args, lambda: _session(args))


def _command(name: str, summary: str, options: Callable[[argparse.ArgumentParser], None],
             handler: Callable[[argparse.Namespace], int], exit_codes: str = EXIT_DEVICE,
             ) -> Subcommand:
    return Subcommand(name, summary, options, _on_device(handler), exit_codes)


SUBCOMMANDS = Subcommands(
    "partkit device",
    "Partitions on a connected chip (parttool's operations, one esptool connection).",
    (_command("show", "the partition table read off the device, with partkit's summary",
              _show_options, _show),
     _command("info", "list partitions, or fields of the selected one", _info_options, _info),
     _command("read", "copy a partition's bytes to a file", _read_options, _read),
     _command("write", "write a file into a partition (rest becomes 0xFF), verified",
              _write_options, _write),
     _command("erase", "erase a partition (all 0xFF), verified", _erase_options, _erase),
     _command("otadata", "decode both otadata sectors and tell which app boots",
              _otadata_options, _otadata),
     _command("set-boot", "write otadata selecting an app slot, verified", _set_boot_options,
              _set_boot),
     _command("apply", "change the table to NEW by running partkit diff's plan, each step "
              "verified", _apply_options, _apply, apply.EXIT_APPLY)),
    usage="usage: partkit device [--port PORT] [options] COMMAND [options]",
    epilog=EXIT_DEVICE, leading=_VALUED)
