"""Command-line entry point: ``partkit <command> ...``.

Each command lives in its own module exposing ``run(argv) -> int`` and is imported only
when used, so ``partkit gen`` starts as fast as a bare interpreter allows.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic

__all__ = ["main"]

# command -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "gen": ("partkit.cli.gen", "CSV <-> binary partition table (drop-in for gen_esp32part.py)"),
    "show": ("partkit.cli.show", "readable summary of a CSV or binary table"),
    "check": ("partkit.cli.check", "app/bootloader/flash size checks with CI budgets"),
    "map": ("partkit.cli.map", "SVG picture of the flash layout"),
    "image": ("partkit.cli.image", "parttool-style work on flash image files"),
    "at": ("partkit.cli.at", "ESP-AT secondary table (at_customize.csv)"),
    "diff": ("partkit.cli.diff", "OTA-safety verdict and migration plan for a table change"),
    "new": ("partkit.cli.new", "write a valid table CSV from what you want on the flash"),
    "resize": ("partkit.cli.resize", "resize partitions, keeping offsets stable"),
    "data": ("partkit.cli.data", "build NVS/LittleFS/FAT images sized from the table"),
    "device": ("partkit.cli.device", "partitions on a connected chip (esptool, one connection)"),
    "parttool": ("partkit.cli.parttool", "drop-in for parttool.py's command line (port or image)"),
    "arduino": ("partkit.cli.arduino", "Arduino esp32 builds checked against their real table"),
    "buildsys": ("partkit.cli.buildsys", "lookups for build scripts (the CMake module)"),
}

USAGE = ("usage: partkit [--version] [--cmake-dir] [--scons-dir] [--pio-script] "
         "[--idf-component-dir] <command> [args...]\n")


# option -> the installed file or directory it prints (see partkit.common.resources)
_RESOURCES = {"--cmake-dir": "cmake", "--scons-dir": "scons", "--pio-script": "pio",
              "--idf-component-dir": "idf"}


def _help() -> str:
    lines = [USAGE, "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines.append("\nrun 'partkit <command> --help' for a command's options and exit codes "
                 "(0 success, 1 a check failed, 2 bad input or usage; any command: 130\n"
                 "interrupted by Ctrl-C, 141 stdout closed by its reader).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command; Ctrl-C and a closed stdout end it cleanly (130 / 141, no traceback)."""
    _reopen_closed_streams()
    for stream in (sys.stdout, sys.stderr):
        # file names that are not UTF-8 (surrogate escapes) print as \udcXX, never crash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    from partkit.cli import reporting
    from partkit.common import notices

    reporting.reset()  # not the last command's way (an in-process caller runs many)
    notices.set_handler(_print_notice)  # e.g. an interrupted image write was rolled back
    from partkit.common.fileio import command_scope

    try:
        with command_scope():  # no output of the command may replace one of its inputs
            code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt as exc:
        # the one Ctrl-C path: the operation cut short, or the command, says what state
        # its output is in (partkit.cli.reporting)
        from partkit.cli.reporting import interrupted_line

        line = interrupted_line(exc)
        if line is not None:
            import contextlib

            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line + "\n")
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. '| head'): stop quietly, like a tool killed by SIGPIPE
        _silence_stdout()
        return 141
    except OSError as exc:
        # every file error is a diagnostic already; what is left is stdout itself failing
        # ('> /dev/full', a dead terminal): say so once, and drop what is still buffered
        _silence_stdout()
        import contextlib

        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"partkit: error: cannot write to stdout: "
                             f"{exc.strerror or exc}\n")
        return 2


def _reopen_closed_streams() -> None:
    """A stream closed by the caller ('>&-', '2>&-') becomes /dev/null: the command runs
    and exits as it would have (no AttributeError, no changed exit code)."""
    import os

    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives for the process


def _print_notice(notice: Diagnostic) -> None:
    from partkit.cli.common import emit

    emit([notice])


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(_help())
        return 0 if args else 2
    first = args[0]
    if first == "--version":
        from partkit import __version__

        print(f"partkit {__version__}")
        return 0
    if first in _RESOURCES:
        from partkit.common.resources import resource_path

        print(resource_path(_RESOURCES[first]))
        return 0
    entry = COMMANDS.get(first)
    if entry is None:
        from partkit.common.errors import closest

        guess = closest(first, COMMANDS)
        hint = f" (did you mean '{guess}'?)" if guess else ""
        sys.stderr.write(f"partkit: error: unknown command '{first}'{hint}\n{USAGE}")
        return 2
    from partkit.cli import reporting
    from partkit.common.errors import PartkitError

    __import__(entry[0])  # not importlib: it pulls in warnings, and start-up is budgeted
    module = sys.modules[entry[0]]
    try:
        code: int = getattr(module, "run")(args[1:])  # noqa: B009 - Any, as import_module gave
    except PartkitError as exc:  # the one handler: bad input (2) and failed checks (1)
        from partkit.cli.common import emit

        return reporting.report(exc, sys.stdout.write, emit)
    return code
