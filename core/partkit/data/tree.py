"""The files a LittleFS or FAT image is built from: one walk, checked before anything is read.

A symlinked directory is followed (``www -> ../web`` puts web's files under ``www/``),
never dropped; a link that leads back into the directories above it is an error, as are
dangling links, link loops and anything that is not a regular file or a directory (a
FIFO would hang the build, ``/dev/zero`` would never end). Sizes come from ``stat``: a
file, or all files together, larger than the partition cannot fit, so the build stops
before reading a byte. Files are then copied in bounded chunks (:func:`chunks`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import threading

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.fileio import note_input
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CHUNK", "Entry", "check_interrupt", "check_root", "chunks", "deferred_interrupt",
           "walk"]

CHUNK = 1 << 16
# ESP-IDF's VFS path limit is 64 bytes with the mount point, so real trees are shallow;
# the bound stops a pathological tree (and its recursion) early with a clear message
MAX_DEPTH = 32
_SMALLER = "make the partition bigger (partkit resize --set NAME=SIZE) or store less"


class Entry(Record):
    """A directory or file of the source tree: where it is, where it goes, its size."""

    __slots__ = ("inside", "is_dir", "path", "size")

    path: str
    inside: str  # "/"-separated, relative to the image root
    is_dir: bool
    size: int

    def __init__(self, path: str, inside: str, is_dir: bool, size: int) -> None:
        self._init(path=path, inside=inside, is_dir=is_dir, size=size)


def _fail(path: str, message: str, hint: str | None = None) -> PartkitError:
    return PartkitError(error(message, SourceLocation(path), hint=hint))


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise _fail(path, f"dangling symbolic link (to '{os.readlink(path)}', which does "
                        "not exist)", "fix or remove the link") from None
        raise _fail(path, "no such file or directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _fail(path, "symbolic link loop", "a link in this path points back at "
                        "itself; fix or remove it") from None
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None


def check_root(source: str, what: str) -> os.stat_result:
    """``source`` is a directory (missing, dangling, looping or a file: a diagnostic)."""
    root = _stat(source)
    if not stat.S_ISDIR(root.st_mode):
        raise _fail(source, f"{what} is built from a directory",
                    "give the directory whose files go into the image")
    return root


def walk(source: str, size: int, fs: str) -> list[Entry]:
    """Every directory and file under ``source`` (sorted, parents first), checked.

    ``size`` is the partition's; ``fs`` names the file system for messages ("LittleFS").
    Raises a diagnostic for anything that cannot go into the image.
    """
    what = f"a {fs} image"

    entries: list[Entry] = []
    total = 0

    def visit(directory: str, inside: str, above: tuple[tuple[int, int], ...]) -> None:
        nonlocal total
        if len(above) > MAX_DEPTH:
            raise _fail(directory, f"directories nested more than {MAX_DEPTH} deep",
                        "flatten the tree (paths on the device are short)")
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise _fail(directory, f"cannot list: {exc.strerror or exc}") from None
        for name in names:
            path = os.path.join(directory, name)
            to = f"{inside}/{name}" if inside else name
            st = _stat(path)
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in above:
                    raise _fail(path, "symbolic link loop: this directory leads back to one "
                                "that contains it", "point the link somewhere outside the "
                                "tree, or remove it")
                entries.append(Entry(path, to, True, 0))
                visit(path, to, (*above, key))
                continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else (
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "a device")
                raise _fail(path, f"{kind}, not a regular file: only files and directories go "
                            f"into {what}", "copy the data into a file, or move it out of "
                            "the tree")
            if not os.access(path, os.R_OK):
                raise _fail(path, "cannot read: Permission denied")
            total += st.st_size
            if st.st_size > size:
                raise _fail(path, f"the files do not fit a {size // 1024} KiB {fs} partition: this "
                            f"file alone has {st.st_size} bytes", _SMALLER)
            if total > size:
                raise _fail(path, f"the files do not fit a {size // 1024} KiB {fs} partition: with "
                            f"this one they have {total} bytes", _SMALLER)
            note_input(path)
            entries.append(Entry(path, to, False, st.st_size))

    root = check_root(source, what)
    visit(source, "", ((root.st_dev, root.st_ino),))
    return entries


# Ctrl-C while a file-system library runs one of its Python callbacks (littlefs-python's
# block device) would be raised inside the callback, where the library swallows it and the
# build goes on to "succeed". During a build SIGINT only sets this flag; partkit's own
# loop (chunks) and the end of the build turn it into KeyboardInterrupt.
_interrupted = [False]


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while a data image is built; raise it at the next safe point."""

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(_signum: int, _frame: object) -> None:
        _interrupted[0] = True

    _interrupted[0] = False
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
        check_interrupt()
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted[0] = False


def check_interrupt() -> None:
    if _interrupted[0]:
        _interrupted[0] = False
        raise KeyboardInterrupt("the data image was not written")


def chunks(entry: Entry) -> Iterator[bytes]:
    """The file's bytes in pieces of at most CHUNK; exactly ``entry.size`` of them."""
    try:
        with open(entry.path, "rb") as f:
            left = entry.size
            while left > 0:
                check_interrupt()
                data = f.read(min(CHUNK, left))
                if not data:
                    raise _fail(entry.path, "file got shorter while the image was built")
                left -= len(data)
                yield data
    except OSError as exc:
        raise _fail(entry.path, f"cannot read: {exc.strerror or exc}") from None
