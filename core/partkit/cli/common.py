"""Pieces every command shares: option values -> TableOptions, diagnostics -> stderr."""

from __future__ import annotations

import os
import sys

from partkit.errors import Diagnostic, PartkitError, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence

    from partkit.options import TableOptions

__all__ = [
    "add_table_arguments",
    "emit",
    "int_option",
    "options_from_args",
    "report_error",
    "table_options",
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


def usage_error(message: str, hint: str | None = None) -> PartkitError:
    return PartkitError(error(message, None, hint))


def int_option(name: str, value: str) -> int:
    """An address option: any Python int literal (0x8000, 32768), as gen_esp32part takes."""
    try:
        return int(value, 0)
    except ValueError:
        raise usage_error(f"{name}: '{value}' is not an integer",
                          "use a number such as 0x8000 or 32768 (no K/M suffix)") from None


def size_option(name: str, value: str) -> int:
    from partkit.numbers import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise usage_error(f"{name}: {exc}") from None


def table_options(
    *,
    offset: str | None = None,
    chip: str | None = None,
    primary_bootloader_offset: str | None = None,
    recovery_bootloader_offset: str | None = None,
    flash_size: int | None = None,
    secure: str | None = None,
    md5: bool = True,
    verify: bool = True,
    strict: bool = False,
    extra_subtypes: Sequence[str] = (),
) -> TableOptions:
    """Build TableOptions from option texts; ``chip`` supplies the bootloader offset default."""
    from partkit.options import DEFAULT_TABLE_OFFSET, TableOptions, parse_extra_subtypes
    from partkit.tables import BUILTIN_SUBTYPES

    bl_offset: int | None = None
    if chip is not None:
        from partkit.chips import BOOTLOADER_OFFSET, chip_names

        if chip.lower() not in BOOTLOADER_OFFSET:
            from partkit.errors import closest

            guess = closest(chip, chip_names())
            raise usage_error(f"--chip: unknown chip '{chip}'",
                              (f"did you mean '{guess}'? " if guess else "")
                              + f"known chips: {', '.join(chip_names())}")
        bl_offset = BOOTLOADER_OFFSET[chip.lower()]
        chip = chip.lower()
    if primary_bootloader_offset is not None:
        bl_offset = int_option("--primary-bootloader-offset", primary_bootloader_offset)
    return TableOptions(
        table_offset=DEFAULT_TABLE_OFFSET if offset is None else int_option("--offset", offset),
        primary_bootloader_offset=bl_offset,
        recovery_bootloader_offset=None if recovery_bootloader_offset is None else int_option(
            "--recovery-bootloader-offset", recovery_bootloader_offset),
        md5=md5,
        verify=verify,
        secure=secure,
        flash_size=flash_size,
        subtypes=parse_extra_subtypes(extra_subtypes, BUILTIN_SUBTYPES),
        chip=chip,
        strict=strict,
    )


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
