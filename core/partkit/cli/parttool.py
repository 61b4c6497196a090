"""``partkit parttool``: a drop-in for ESP-IDF's ``parttool.py`` command line.

    partkit parttool [-q] [--port P | --image FILE] [-b N] [-o OFFSET] [-f TABLE]
                     [--esptool-args A ...] [--esptool-{write,read,erase}-args A ...]
                     {read_partition,write_partition,erase_partition,get_partition_info} ...

Same global options, subcommands, options and output as parttool (ESP-IDF
``components/partition_table/parttool.py``; status lines on stdout as in the released
v5.x/v6.0 parttool), run through :class:`partkit.parttool.ParttoolTarget`: one esptool
connection per run, every check before the first flash change, verified writes. ``-o`` is
the table offset here, as in parttool; ``--image FILE`` works on a flash image file
instead of a device. Without ``--port`` the first serial port where a chip answers is
used, as esptool does.
"""

from __future__ import annotations

import argparse
import sys

from partkit.cli.common import add_extra_subtypes, emit
from partkit.cli.device import progress_bar
from partkit.cli.reporting import Reporting, set_reporting
from partkit.common.errors import PartkitError, error
from partkit.flash.partinfo import format_info
from partkit.parttool import PARTITION_BOOT_DEFAULT, PartitionName, PartitionType, ParttoolTarget
from partkit.table.options import int_option

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.parttool import ParttoolTarget

__all__ = ["run"]

EPILOG = """\
exit status:
  0  success; also get_partition_info when nothing matches (it prints nothing, like
     parttool, so build scripts get an empty string)
  1  the device failed (no answer, connection lost: the message says which flash range
     may have changed; verification mismatch; esptool failed on a step it ran for
     options partkit does not map, e.g. --esptool-write-args encrypt) or the input does
     not fit the partition
  2  bad input or refused: options, selector, table, missing esptool (pip install
     partkit[device]), read-only partition without --ignore-readonly, flash encryption or
     secure boot enabled without --esptool-erase-args force; the device was not changed
  with -q every error is silent (the exit status still tells), as parttool's -q
"""

INFO_FIELDS = ("name", "type", "subtype", "offset", "size", "encrypted", "readonly")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="partkit parttool",
        description="Read, write and erase partitions on a device (or a flash image file) "
        "and print their info: ESP-IDF parttool.py's command line, one esptool connection.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quiet", "-q", action="store_true",
                   help="suppress status messages and error messages (exit status only)")
    for kind, what in (("", "every esptool step (chip, baud, before, after, no_stub, "
                        "connect_attempts, port)"),
                       ("write-", "writes: force allows writing with flash encryption / "
                        "secure boot on; others (e.g. encrypt) make esptool run the write"),
                       ("read-", "reads: esptool runs a read given any of these"),
                       ("erase-", "erases: force allows erasing with flash encryption / "
                        "secure boot on; others make esptool run the erase")):
        p.add_argument(f"--esptool-{kind}args", default="", metavar="ARG",
                       help=f"esptool options for {what}; one or more words up to the next "
                       "option or subcommand; key=value means --key value, a word --word; "
                       "given twice, the last one counts (as in parttool)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--port", "-p", help="port of the device (anything esptool accepts, "
                        "socket://host:port included); default: the first serial port "
                        "where a chip answers")
    target.add_argument("--image", metavar="FILE",
                        help="work on this flash image file instead of a device (partkit)")
    p.add_argument("--baud", "-b", type=int, help="baud rate after connecting")
    p.add_argument("--partition-table-offset", "-o", default="0x8000", metavar="N",
                   help="flash offset of the partition table (default 0x8000)")
    p.add_argument("--primary-bootloader-offset", metavar="N",
                   help="bootloader offset (for a --partition-table-file CSV with bootloader "
                   "rows)")
    p.add_argument("--recovery-bootloader-offset", metavar="N",
                   help="recovery bootloader offset (for a CSV with a recovery row)")
    p.add_argument("--partition-table-file", "-f", metavar="FILE",
                   help="CSV or binary table to use instead of reading it from the target")

    sub = p.add_subparsers(dest="operation", metavar="SUBCOMMAND",
                           help="the operation; 'SUBCOMMAND --help' lists its options")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    def selector(s: argparse.ArgumentParser) -> None:
        x = s.add_mutually_exclusive_group()
        x.add_argument("--partition-name", "-n", help="name of the partition")
        x.add_argument("--partition-type", "-t", help="type of the partition")
        x.add_argument("--partition-boot-default", "-d", action="store_true",
                       help="the default boot partition")
        s.add_argument("--partition-subtype", "-s", help="subtype of the partition")
        add_extra_subtypes(s)

    s = add("read_partition", "read a partition to a file")
    selector(s)
    s.add_argument("--output", required=True, help="file to dump the partition to")
    s = add("write_partition", "write a file to a partition")
    selector(s)
    s.add_argument("--input", required=True, help="file whose contents go to the partition")
    s.add_argument("--ignore-readonly", action="store_true",
                   help="write even if the partition is read-only")
    s = add("erase_partition", "erase a partition")
    selector(s)
    s = add("get_partition_info", "print a partition's info")
    selector(s)
    s.add_argument("--info", nargs="+", choices=INFO_FIELDS, default=["offset", "size"],
                   metavar="F", help=f"fields to print: {' '.join(INFO_FIELDS)} (default "
                   "offset size)")
    s.add_argument("--part_list", "--part-list", action="store_true",
                   help="all partitions of the type/subtype, not only the first")
    return p


SUBCOMMANDS = ("read_partition", "write_partition", "erase_partition", "get_partition_info")


_WORDS = "\0"  # joins one option's words into a single argparse value (argv has no NULs)


def _spread(argv: list[str]) -> list[str]:
    """``--esptool-args a b SUB`` -> ``--esptool-args=a<NUL>b SUB``: each of those options
    takes words up to the next option or subcommand name, as in parttool; a later
    occurrence replaces an earlier one, as argparse's nargs='+' does in parttool."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word.startswith("--esptool-") and word.endswith("args") and "=" not in word:
            words: list[str] = []
            while i < len(argv) and not argv[i].startswith("-") and argv[i] not in SUBCOMMANDS:
                words.append(argv[i])
                i += 1
            out.append(f"{word}={_WORDS.join(words)}" if words else word)
        else:
            out.append(word)
    return out


def _words(value: str) -> list[str]:
    return [w for w in value.split(_WORDS) if w]


def run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(_spread(argv))
    if args.operation is None:
        if not args.quiet:
            parser.print_help(sys.stdout)  # parttool prints its help on stdout
        return 2
    # -q: every error and Ctrl-C silent, the exit status only (parttool's -q); a Ctrl-C
    # outside a device step makes no claim (a device step names what may have changed)
    set_reporting(Reporting(quiet=args.quiet, interrupted=None))
    return _operate(args)


def _selector(args: argparse.Namespace) -> object:
    if args.partition_name is not None:
        return PartitionName(args.partition_name)
    if args.partition_type is not None:
        if args.partition_subtype is None:
            raise PartkitError(error(
                "--partition-subtype should be defined when --partition-type is defined",
                hint="e.g. --partition-type=data --partition-subtype=nvs"))
        return PartitionType(args.partition_type, args.partition_subtype,
                             bool(getattr(args, "part_list", False)))
    if args.partition_boot_default:
        return PARTITION_BOOT_DEFAULT
    raise PartkitError(error(
        "partition to operate on should be defined using --partition-name OR "
        "--partition-type and --partition-subtype OR --partition-boot-default"))


def _int(name: str, value: str | None) -> int | None:
    return None if value is None else int_option(name, value)


def _operate(args: argparse.Namespace) -> int:
    selector = _selector(args)
    progress = None
    if not args.quiet and args.operation in ("read_partition", "write_partition",
                                             "erase_partition"):

        progress = progress_bar(args.operation.split("_")[0], quiet=False)
    target = ParttoolTarget(
        args.port,
        partition_table_offset=_int("--partition-table-offset",
                                    args.partition_table_offset) or 0,
        partition_table_file=args.partition_table_file,
        esptool_args=_words(args.esptool_args),
        esptool_write_args=_words(args.esptool_write_args),
        esptool_read_args=_words(args.esptool_read_args),
        esptool_erase_args=_words(args.esptool_erase_args),
        baud=args.baud,
        primary_bootloader_offset=_int("--primary-bootloader-offset",
                                       args.primary_bootloader_offset),
        recovery_bootloader_offset=_int("--recovery-bootloader-offset",
                                        args.recovery_bootloader_offset),
        extra_partition_subtypes=args.extra_partition_subtypes,
        image=args.image,
        progress=progress,
    )
    with target:
        if not args.quiet:
            emit(target.warnings)
        return _dispatch(args, target, selector)


def _dispatch(args: argparse.Namespace, target: ParttoolTarget, selector: object) -> int:
    op = args.operation
    if op == "get_partition_info":
        try:
            found = target.get_partition_info(selector)
        except PartkitError as exc:
            # not reporting: parttool prints nothing and succeeds when nothing matches, and
            # CMake relies on the empty string (a warning on stderr at most)
            if not args.quiet:
                sys.stderr.write(f"warning: {exc.diagnostics[0].message}\n")
            return 0
        parts = found if isinstance(found, list) else [found]
        sys.stdout.write(format_info(parts, args.info) + "\n")
        return 0
    found = target.get_partition_info(selector)
    part = found[0] if isinstance(found, list) else found
    where = f"image '{args.image}'" if args.image is not None else "device"
    if op == "erase_partition":
        target.erase_partition(selector)
        _status(args, f"Erased partition '{part.name}' at offset 0x{part.offset:x}")
    elif op == "read_partition":
        target.read_partition(selector, args.output)
        _status(args, f"Read partition '{part.name}' contents from {where} at offset "
                f"0x{part.offset:x} to file '{args.output}'")
    else:
        target.write_partition(selector, args.input, args.ignore_readonly)
        _status(args, f"Written contents of file '{args.input}' at offset 0x{part.offset:x}")
    return 0


def _status(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stdout.write(text + "\n")  # parttool's status() prints to stdout
