"""Pieces every command shares: option values -> TableOptions, diagnostics -> stderr."""

from __future__ import annotations

import os
import sys

from partkit.common.errors import Diagnostic, PartkitError
from partkit.table.options import int_option, size_option, table_options, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from partkit.table.options import TableOptions

__all__ = [
    "add_table_arguments",
    "emit",
    "int_option",
    "options_from_args",
    "report_error",
    "size_option",
    "table_options",
    "usage_error",
]


def emit(diagnostics: Iterable[Diagnostic]) -> None:
    """Print diagnostics to stderr; as GitHub annotations too when running in Actions."""
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    for d in diagnostics:
        sys.stderr.write(d.format() + "\n")
        if github:
            sys.stderr.write(github_annotation(d) + "\n")


def github_annotation(d: Diagnostic) -> str:
    kind = "error" if d.is_error else "warning"
    props = []
    loc = d.location
    if loc is not None:
        props.append(f"file={loc.path}")
        if loc.line is not None:
            props.append(f"line={loc.line}")
        if loc.column is not None:
            props.append(f"col={loc.column}")
    message = d.message + (f" (hint: {d.hint})" if d.hint else "")
    message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{kind} {','.join(props)}::{message}" if props else f"::{kind}::{message}"


def report_error(exc: PartkitError) -> int:
    emit(exc.diagnostics)
    return exc.exit_code


def add_table_arguments(parser: argparse.ArgumentParser, *, short_offset: bool = True) -> None:
    """The options that say how to read a table, shared by show, check and map.

    ``short_offset`` False leaves ``-o`` free for commands whose ``-o`` is the output.
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--chip", help="chip name; sets the bootloader offset")
    where.add_argument("--primary-bootloader-offset", "--bootloader-offset", metavar="N",
                       dest="bootloader_offset", help="bootloader flash offset (instead of --chip)")
    parser.add_argument(*(("-o", "--offset") if short_offset else ("--offset",)), metavar="N",
                        help="partition table offset (default 0x8000)")
    parser.add_argument("--recovery-bootloader-offset", metavar="N")
    parser.add_argument("--flash-size", metavar="S", help="flash size (4MB, 4M, 0x400000)")
    parser.add_argument("--disable-md5sum", action="store_true",
                        help="the binary table has no MD5 row")
    parser.add_argument("--extra-partition-subtypes", nargs="*", default=[], metavar="E",
                        help="extra subtypes as type,name,hexvalue")


def options_from_args(args: argparse.Namespace, *, verify: bool,
                      strict: bool = False) -> TableOptions:
    """TableOptions from the options added by :func:`add_table_arguments`."""
    return table_options(
        offset=args.offset, chip=args.chip,
        primary_bootloader_offset=args.bootloader_offset,
        recovery_bootloader_offset=args.recovery_bootloader_offset,
        flash_size=None if args.flash_size is None else size_option("--flash-size",
                                                                    args.flash_size),
        md5=not args.disable_md5sum, verify=verify, strict=strict,
        extra_subtypes=args.extra_partition_subtypes)
