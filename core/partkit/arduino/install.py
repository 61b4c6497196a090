"""``partkit arduino install/uninstall/status``: partkit's block in esp32 cores.

Each change is atomic (temporary file + rename) and keeps what the user had: the first time
partkit changes a ``platform.local.txt`` that already existed, a copy is kept as
``platform.local.txt.partkit-backup``. Running install again changes nothing unless the
block would differ (another interpreter, a core whose hooks changed).
"""

from __future__ import annotations

import os

from partkit.arduino import localtxt
from partkit.arduino.properties import parse_properties, read_properties
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.fileio import write_atomic
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.arduino.cores import CoreInstall

__all__ = ["BACKUP_SUFFIX", "CoreState", "core_state", "install", "uninstall"]

BACKUP_SUFFIX = ".partkit-backup"


class CoreState(Record):
    """What install/uninstall did, or status found, for one core."""

    __slots__ = ("backup", "core", "state")

    core: CoreInstall
    state: str  # installed, updated, unchanged, removed, absent, outdated, current
    backup: str | None  # the backup written by this run

    def __init__(self, core: CoreInstall, state: str, backup: str | None = None) -> None:
        self._init(core=core, state=state, backup=backup)


def _wanted(core: CoreInstall, python: str, current: str) -> str:
    props = read_properties(os.path.join(core.path, "platform.txt"))
    props.update(parse_properties(localtxt.remove_block(current, localtxt.core_file(core.path))))
    return localtxt.block_text(python, props)


def _write(path: str, text: str | None) -> None:
    """Replace the file atomically (None: delete it); a failure is bad input naming it."""
    try:
        if text is None:
            os.remove(path)
        else:
            write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise PartkitError(error(f"cannot write: {exc.strerror}", SourceLocation(path),
                                 hint="run as a user who may change the core's folder, or "
                                      "give --core-dir")) from None


def _backup(path: str, current: str) -> str | None:
    backup = path + BACKUP_SUFFIX
    if not current or os.path.exists(backup):
        return None
    _write(backup, current)
    return backup


def install(core: CoreInstall, python: str) -> CoreState:
    path = localtxt.core_file(core.path)
    current = localtxt.read_text(path)
    old = localtxt.installed_block(current, path)
    block = _wanted(core, python, current)
    if old == block:
        return CoreState(core, "unchanged")
    backup = _backup(path, current) if localtxt.remove_block(current, path).strip() else None
    _write(path, localtxt.with_block(current, block, path))
    return CoreState(core, "installed" if old is None else "updated", backup)


def uninstall(core: CoreInstall) -> CoreState:
    path = localtxt.core_file(core.path)
    current = localtxt.read_text(path)
    if localtxt.installed_block(current, path) is None:
        return CoreState(core, "absent")
    rest = localtxt.remove_block(current, path)
    # nothing of the user's left: partkit created the file, so the core is left as it was
    _write(path, rest if rest.strip() else None)
    return CoreState(core, "removed")


def core_state(core: CoreInstall, python: str) -> CoreState:
    path = localtxt.core_file(core.path)
    current = localtxt.read_text(path)
    old = localtxt.installed_block(current, path)
    if old is None:
        return CoreState(core, "absent")
    return CoreState(core, "current" if old == _wanted(core, python, current) else "outdated")
