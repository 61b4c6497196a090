"""``--idf-build-dir``: the commands that read a table take an ESP-IDF build directory instead.

The target, table offset, bootloader offsets, MD5 row, flash size and secure-boot mode
come from the build (see :mod:`partkit.idf.builddir`), so nothing is retyped; the table is
the binary the build generated, and messages point at the CSV it came from.
"""

from __future__ import annotations

import json
import os
import sys

from partkit.check.findings import Budget
from partkit.cli.common import emit, refuse_table_options, verdict_only
from partkit.common.errors import CheckFailed, PartkitError
from partkit.common.fileio import write_atomic
from partkit.flash import imagefile
from partkit.flash.imagefile import Piece
from partkit.idf.buildcheck import check_build, load_build_table, to_json, to_text
from partkit.idf.builddir import config_location, read_build_dir
from partkit.table.options import size_option, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from partkit.check.checks import Budget
    from partkit.idf.builddir import IdfBuild
    from partkit.table.codec import Loaded

__all__ = ["add_argument", "add_table_or_build", "create_image", "load",
           "require_table_or_build", "run_check"]

HELP = ("an ESP-IDF build directory (after 'idf.py build'): the table, the images and every "
        "option are read from it (project_description.json, config/sdkconfig.json, "
        "flasher_args.json) instead of the command line")


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idf-build-dir", metavar="DIR", help=HELP)


def add_table_or_build(parser: argparse.ArgumentParser, table_help: str) -> None:
    """The optional TABLE positional and ``--idf-build-dir``: the command reads one of them."""
    parser.add_argument("table", nargs="?", metavar="TABLE", help=table_help)
    add_argument(parser)


def require_table_or_build(parser: argparse.ArgumentParser, args: argparse.Namespace,
                           keep: tuple[str, ...] = ()) -> None:
    """Exit 2 (argparse's usage error) unless exactly one of TABLE and the build is given;
    with the build, table options other than ``keep`` are refused (the build says them)."""
    if (args.table is None) == (args.idf_build_dir is None):
        parser.error("give a TABLE or --idf-build-dir DIR (one of them)")
    if args.idf_build_dir is not None:
        refuse_table_options(parser, args, "--idf-build-dir", keep)


def load(args: argparse.Namespace, *, verify: bool = True) -> tuple[IdfBuild, Loaded]:
    """The build and its table (raises PartkitError, exit 2, naming the bad file)."""
    build = read_build_dir(args.idf_build_dir)
    return build, load_build_table(build, verify=verify)


def run_check(args: argparse.Namespace, report_path: str | None) -> int:
    """``partkit check --idf-build-dir DIR``; raises PartkitError for bad input."""

    build = read_build_dir(args.idf_build_dir)
    # The command line wins over the project's partkit Kconfig (CONFIG_PARTKIT_*).
    warn_text = args.warn_free if args.warn_free is not None else build.warn_free
    fail_text = args.fail_free if args.fail_free is not None else build.fail_free
    # A budget from sdkconfig is named as the project spells it, in errors and findings.
    names = {option: f"CONFIG_PARTKIT_{option[2:].upper().replace('-', '_')}"
             for option, given in (("--warn-free", args.warn_free),
                                   ("--fail-free", args.fail_free)) if given is None}
    warn = None if warn_text is None else _budget(build, warn_text, "--warn-free", names)
    fail = None if fail_text is None else _budget(build, fail_text, "--fail-free", names)
    _check_order(build, warn, fail, names)
    result = check_build(build, warn_free=warn, fail_free=fail, verify=args.verify,
                         strict=args.strict or build.strict, budget_names=names)
    if report_path is not None:
        write_atomic(report_path, (json.dumps(to_json(result), indent=2) + "\n").encode())
    if args.json:
        sys.stdout.write(json.dumps(to_json(result), indent=2) + "\n")
    else:
        text = to_text(result)
        sys.stdout.write(verdict_only(text) if args.quiet else text)
    sys.stdout.flush()
    emit(f.diagnostic for f in result.findings)
    return result.exit_code


def _budget(build: IdfBuild, text: str, option: str, names: dict[str, str]) -> Budget:
    """The budget; one from sdkconfig that does not parse is reported at its sdkconfig line."""

    name = names.get(option)
    try:
        return Budget.parse(text, name or option)
    except PartkitError as exc:  # not reporting: the error moves to its sdkconfig line
        if name is None:
            raise
        where = config_location(build, name)
        raise PartkitError(exc.diagnostics[0].replace(location=where)) from None


def _check_order(build: IdfBuild, warn: Budget | None, fail: Budget | None,
                 names: dict[str, str]) -> None:
    """Budget.check_order, with budgets from sdkconfig named (and located) as set there."""

    try:
        Budget.check_order(warn, fail)
    except PartkitError as exc:  # not reporting: renamed and moved to the sdkconfig line
        if not names:
            raise
        first = exc.diagnostics[0]
        message = first.message
        for option, name in names.items():
            message = message.replace(option, name)
        where = config_location(build, names.get("--warn-free") or names["--fail-free"])
        raise PartkitError(first.replace(message=message, location=where)) from None


def create_image(args: argparse.Namespace, output: str) -> int:
    """``partkit image create --idf-build-dir DIR -o flash.img``: every file the build
    flashes, at its offset, in one image. The build is checked first: an image that does
    not fit is refused (exit 1) before anything is written."""
    build = read_build_dir(args.idf_build_dir)
    if not build.images:
        raise usage_error(f"{build.build_dir} lists no images to flash (no flasher_args.json "
                          "or flash_args)", "the linux target flashes nothing")
    flash_size = build.flash_size
    if args.flash_size is not None:
        flash_size = size_option("--flash-size", args.flash_size)
    if flash_size is None:
        raise usage_error(f"the build's flash size is '{build.flash_size_text}'",
                          "give --flash-size (e.g. 4MB) for the image")
    result = check_build(build)
    errors = [f.diagnostic for f in result.findings if f.is_error]
    if errors:
        raise CheckFailed(errors)
    emit(f.diagnostic for f in result.findings)
    pieces = [Piece(i.offset, i.name or os.path.basename(i.path), path=i.path)
              for i in build.images]
    imagefile.create_image(output, flash_size, pieces)
    sys.stderr.write(f"Created '{output}' (0x{flash_size:x} bytes) from {build.build_dir}: "
                     + ", ".join(f"{p.label} @ 0x{p.offset:x}"
                                 for p in sorted(pieces, key=lambda p: p.offset)) + "\n")
    return 0
