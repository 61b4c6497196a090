"""Command lines the build adapters run or print: ``partkit check/show/map`` and the
esptool command that writes only the partition table (as ``idf.py partition-table-flash``).

Every value is the text the user gave (or its default), already substituted; a value that
is empty is left out, except where a command needs it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_BAUD", "check_argv", "map_argv", "show_argv", "write_table_argv"]

DEFAULT_BAUD = "460800"


def check_argv(kind: str, image: str, table: str, *, offset: str,
               table_source: str | None = None, chip: str = "", bootloader_offset: str = "",
               flash_size: str = "", warn_free: str = "", fail_free: str = "",
               app_type: str = "", app_subtype: str = "", strict: bool = False,
               extra_subtypes: Sequence[str] = ()) -> list[str]:
    """``partkit check`` arguments checking ``image`` (``kind`` "app" or "bootloader").

    Paths are passed as ``--app=PATH`` and after ``--``, so a path starting with ``-`` is
    never read as an option. ``--chip`` and ``--bootloader-offset`` are alternatives on the
    command line: an explicit offset wins.
    """
    argv = ["check", f"--{kind}={image}", f"--offset={offset}"]
    if table_source:
        argv.append(f"--table-source={table_source}")
    options = [
        ("--bootloader-offset", bootloader_offset) if bootloader_offset else ("--chip", chip),
        ("--flash-size", flash_size),
        ("--warn-free", warn_free),
        ("--fail-free", fail_free),
    ]
    if kind == "app":
        options += [("--type", app_type), ("--subtype", app_subtype)]
    argv += [f"{flag}={value}" for flag, value in options if value]
    if strict:
        argv.append("--strict")
    if extra_subtypes:  # a list option: last, ended by the "--" before the table
        argv += ["--extra-partition-subtypes", *extra_subtypes]
    return [*argv, "--", table]


def _chip_and_flash(chip: str, flash_size: str) -> list[str]:
    argv = []
    for flag, value in (("--chip", chip), ("--flash-size", flash_size)):
        if value:
            argv += [flag, value]
    return argv


def show_argv(table: str, *, offset: str, chip: str = "", flash_size: str = "") -> list[str]:
    """``partkit show`` of a table file."""
    return ["show", table, "--offset", offset, *_chip_and_flash(chip, flash_size)]


def map_argv(table: str, output: str, *, offset: str, chip: str = "", flash_size: str = "",
             app: str | None = None) -> list[str]:
    """``partkit map`` of a table to an SVG file, with the app drawn in its slot if given."""
    argv = ["map", table, "--offset", offset, "--output", output,
            *_chip_and_flash(chip, flash_size)]
    return [*argv, "--app", app] if app else argv


def write_table_argv(esptool: Sequence[str], table: str, *, offset: str, chip: str = "",
                     port: str = "", baud: str = "", write_flash: str = "write-flash",
                     short_options: bool = False) -> list[str]:
    """``esptool`` writing only ``table`` at ``offset``.

    ``write_flash`` is that esptool's spelling: "write-flash" (esptool 5) brings the
    dashed reset modes too, "write_flash" (4.x and older) the underscored ones.
    ``short_options`` spells the port and speed ``-p``/``-b`` instead of ``--port``/``--baud``.
    """
    dashes = write_flash == "write-flash"
    argv = [*esptool, "--chip", chip or "auto"]
    if port:
        argv += ["-p" if short_options else "--port", port]
    return [*argv, "-b" if short_options else "--baud", baud or DEFAULT_BAUD,
            "--before", "default-reset" if dashes else "default_reset",
            "--after", "hard-reset" if dashes else "hard_reset",
            write_flash, offset, table]
