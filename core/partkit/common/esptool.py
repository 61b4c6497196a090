"""How an esptool spells its write command, and a hand-written flash command line.

esptool 4.x and older know only ``write_flash`` (underscores); 5.x prefers
``write-flash`` and still accepts the old form.
"""

from __future__ import annotations

import re
import shlex
import sys

__all__ = ["WRITE_FLASH", "installed_esptool_version", "write_command",
           "write_flash_for_version"]

WRITE_FLASH = ("write_flash", "write-flash")


def write_flash_for_version(text: str) -> str:
    """The write command of the esptool whose version is ``text`` (e.g. its ``version``
    output, or a package version)."""
    found = re.search(r"\bv?(\d+)\.\d+", text)
    if found is None:
        return "write_flash"  # every esptool version still accepts it
    return "write-flash" if int(found.group(1)) >= 5 else "write_flash"


def installed_esptool_version() -> str | None:
    """The version of the esptool package of this Python (None: not installed)."""
    from importlib import metadata

    try:
        return metadata.version("esptool")
    except metadata.PackageNotFoundError:
        return None


def write_command(offset: int, image: str, version: str | None) -> str:
    """A shell-quoted command writing ``image`` at ``offset`` with the esptool of this
    Python (``version``: :func:`installed_esptool_version`); both spellings when there
    is none."""
    where = f"0x{offset:x}"
    if version is None:
        return (f"{shlex.join(['esptool', 'write-flash', where, image])} (esptool 5) or "
                f"{shlex.join(['esptool.py', 'write_flash', where, image])} (esptool 4.x)")
    return shlex.join([sys.executable, "-m", "esptool", write_flash_for_version(version),
                       where, image])
