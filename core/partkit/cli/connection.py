"""The options and session of a ``partkit device`` command: which port, how to connect,
which table. Shared by :mod:`partkit.cli.device` and ``partkit device apply``
(:mod:`partkit.cli.apply`), which is loaded only when it runs.
"""

from __future__ import annotations

import argparse

from partkit.cli.common import add_extra_subtypes, chip_help
from partkit.device.session import Session

__all__ = ["add_connection_options", "session_of"]


def add_connection_options(p: argparse.ArgumentParser) -> None:
    """The connection and table options every ``partkit device`` command takes."""
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




def session_of(args: argparse.Namespace) -> Session:
    """The esptool session the connection options describe (not connected yet)."""
    return Session(args.port, baud=args.baud, chip=args.chip, before=args.before,
                   after=args.after, stub=not args.no_stub,
                   connect_attempts=args.connect_attempts)
