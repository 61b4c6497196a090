"""One flash step run by esptool's own command line, for options partkit does not map.

parttool passes ``--esptool-write-args``/``--esptool-read-args``/``--esptool-erase-args``
to esptool verbatim. partkit maps the ones it understands (``force``) onto its own
session; for anything else (``encrypt`` for flash encryption, ``no-progress``,
``ignore-flash-enc-efuse``, ...) it runs that one step through ``python -m esptool``
exactly as parttool would, after its own checks, so no documented parttool use is
refused. The port must be free: callers release their session first.
"""

from __future__ import annotations

import subprocess
import sys

from partkit.common.errors import error
from partkit.device.session import DeviceError, require_esptool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["esptool_argv", "run_esptool"]

_TAIL = 4  # esptool output lines quoted in an error


def _command_name(command: str) -> str:
    """esptool >= 5 spells commands with hyphens (write-flash), older ones with
    underscores (write_flash)."""
    version = str(getattr(require_esptool(), "__version__", "5")).split(".")[0]
    return command.replace("-", "_") if version in ("2", "3", "4") else command


def esptool_argv(global_args: Sequence[str], port: str | None, baud: int | None,
                 command: str, args: Sequence[str]) -> list[str]:
    """parttool's argv: global options, ``--port``, ``--baud``, the command, its options
    (numbers in decimal, as parttool writes them)."""
    argv = [sys.executable, "-m", "esptool", *global_args]
    if port:
        argv += ["--port", port]
    if baud:
        argv += ["--baud", str(baud)]
    return [*argv, _command_name(command), *args]


def run_esptool(argv: Sequence[str], what: str) -> str:
    """Run esptool; its output (returned) is kept off the terminal. A failure is a
    DeviceError quoting the end of esptool's output."""
    try:
        proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", check=False)
    except OSError as exc:
        raise DeviceError(error(f"{what}: cannot start esptool: {exc}")) from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        tail = " | ".join(lines[-_TAIL:]) or f"exit status {proc.returncode}"
        raise DeviceError(error(f"{what}: esptool failed (exit status {proc.returncode})",
                                notes=((None, "esptool said: " + tail),
                                       (None, "command: " + " ".join(argv[2:])))))
    return proc.stdout
