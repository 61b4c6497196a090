"""File access for the CLI, the image operations and the plugins (the codec never touches files).

Inputs are read with a bound: a partition table is at most 0xC00 bytes as a binary and a
few KiB as CSV, so ``read_input`` refuses anything past ``MAX_INPUT`` (512 KiB) instead of
reading ``/dev/zero`` until memory runs out.

Outputs go through :func:`write_output`, the one place that decides how a file is written:

* a regular file (or a new name) is replaced atomically: a temp file in the directory of
  the real target (symlinks are resolved, so the link survives and its target changes),
  fsync, rename. On Linux the temp file is created unnamed (``O_TMPFILE``) and only gets
  a name just before the rename, so a killed run leaves nothing behind; elsewhere it is
  ``.NAME.<pid>.tmp`` and the next write to the same NAME deletes temps whose process is
  gone (they hold an ``flock`` while alive);
* ``-``, character devices (``/dev/null``, a tty, ``/dev/stdout``), FIFOs and sockets are
  written directly, never replaced;
* helper names (temps, journals) stay within NAME_MAX: a long NAME is shortened with a hash.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.numbers import format_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType


class _Suppress:
    """contextlib.suppress without importing contextlib (and collections, functools): this
    module is on gen's start-up path, whose time is budgeted."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        return kind is not None and issubclass(kind, self.kinds)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_INPUT",
    "clean_stale_temps",
    "helper_name",
    "read_input",
    "read_stream",
    "real_target",
    "write_atomic",
    "write_if_changed",
    "write_output",
    "write_text",
]

# 8 MiB: a 100 000-line CSV with comments still reads (a real table has at most 95
# entries, a binary one is 0xC00 bytes); the CSV parser stops at MAX_CSV_ROWS partition
# rows, so parsing, checking and drawing stay well under 64 MB
MAX_INPUT = 8 << 20
NAME_MAX = 255
_RESERVED = 40  # room for the longest helper suffix (".partkit-journal.tmp", ".<pid>.tmp")
_TMP_SUFFIX = ".tmp"


def _no_such_file(path: str) -> PartkitError:
    return PartkitError(error("no such file", SourceLocation(path), hint="check the path "
                              f"(relative paths resolve from {os.getcwd()})"))


def read_input(path: str, limit: int = MAX_INPUT, what: str = "a partition table") -> bytes:
    """Read an input file of at most ``limit`` bytes, turning OS errors into diagnostics."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except IsADirectoryError:
        raise PartkitError(error("is a directory, expected a file", SourceLocation(path))) from None
    except FileNotFoundError:
        raise _no_such_file(path) from None
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror or exc}",
                                 SourceLocation(path))) from None
    if len(data) > limit:
        raise PartkitError(error(
            f"more than {_size_text(limit)}; too large for {what}",
            SourceLocation(path), hint="is this the right file? (a device or a stream such "
            "as /dev/zero never ends)"))
    return data


def _size_text(limit: int) -> str:
    return f"{limit} bytes ({format_size(limit)})"


def read_stream(stream: object, label: str, limit: int = MAX_INPUT,
                what: str = "a partition table") -> bytes:
    """Read a binary stream (stdin) with the same bound as :func:`read_input`."""
    read = getattr(stream, "read")  # noqa: B009 - any object with read(n)
    data: bytes = read(limit + 1)
    if len(data) > limit:
        raise PartkitError(error(f"more than {_size_text(limit)}; too large for {what}",
                                 SourceLocation(label)))
    return data


# --- helper names -------------------------------------------------------------------------


def helper_name(base: str, suffix: str) -> str:
    """``.BASE<suffix>``, with BASE shortened (prefix + hash) when the name would pass NAME_MAX.

    Every helper of one BASE shares the same shortened stem, so they can be found again.
    """
    raw = os.fsencode(base)
    if 1 + len(raw) + _RESERVED > NAME_MAX:
        import hashlib

        digest = hashlib.sha256(raw).hexdigest()[:16].encode()
        keep = NAME_MAX - _RESERVED - 1 - len(digest) - 1
        # fsdecode keeps a cut multi-byte character as surrogates: the stem stays unique
        base = os.fsdecode(raw[:keep] + b"~" + digest)
    return f".{base}{suffix}"


def real_target(path: str) -> str:
    """Absolute path with symlinks resolved: where the bytes of ``path`` really live."""
    return os.path.realpath(os.path.abspath(path))


# --- stale temps ----------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def clean_stale_temps(target: str) -> int:
    """Delete ``.NAME.<pid>.tmp`` files next to ``target`` left by dead processes.

    A temp counts as stale when its process no longer exists and nobody holds its
    ``flock`` (a live writer does, even across PID namespaces). Returns how many went.
    """
    directory, base = os.path.split(target)
    prefix = helper_name(base, ".")
    removed = 0
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        pid_text = name[len(prefix):-len(_TMP_SUFFIX)]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if not _process_gone(int(pid_text)):
            continue
        path = os.path.join(directory, name)
        if _unlocked(path):
            with _Suppress(OSError):
                os.unlink(path)
                removed += 1
    return removed


def _unlocked(path: str) -> bool:
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


# --- writing --------------------------------------------------------------------------------


def _written_directly(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode)


def _write_error(path: str, exc: OSError) -> PartkitError:
    if isinstance(exc, IsADirectoryError):
        return PartkitError(error("is a directory, expected a file", SourceLocation(path)))
    return PartkitError(error(f"cannot write: {exc.strerror or exc}", SourceLocation(path)))


def write_output(path: str, produce: Callable[[int], None]) -> None:
    """Create or replace ``path`` with what ``produce(fd)`` writes into the open file.

    ``produce`` may use positional writes when ``fd`` is a regular file; for ``-``, a
    device or a FIFO it gets that stream and must write sequentially (os.fstat tells).
    OSErrors become diagnostics naming ``path``; other exceptions pass through, and the
    target is left as it was (a direct write cannot be undone, by nature).
    """
    if path == "-":
        sys.stdout.flush()
        try:
            produce(sys.stdout.fileno())
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise _write_error("<stdout>", exc) from None
        return
    try:
        mode = os.stat(path).st_mode  # follows symlinks: /dev/stdout -> the pipe itself
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _write_error(path, exc) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise PartkitError(error("is a directory, expected a file", SourceLocation(path)))
    if mode is not None and _written_directly(mode):
        _write_direct(path, path, produce)
        return
    _replace(path, real_target(path), mode, produce)


def _write_direct(path: str, target: str, produce: Callable[[int], None]) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        produce(fd)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise _write_error(path, exc) from None
    except KeyboardInterrupt as exc:
        if exc.args:
            raise
        raise KeyboardInterrupt(f"'{path}' (a device or stream) got only part of the "
                                "output") from None
    finally:
        os.close(fd)


def _replace(path: str, target: str, mode: int | None,
             produce: Callable[[int], None]) -> None:
    directory, base = os.path.split(target)
    tmp = os.path.join(directory, helper_name(base, f".{os.getpid()}{_TMP_SUFFIX}"))
    named = False
    try:
        os.makedirs(directory, exist_ok=True)
        clean_stale_temps(target)
        fd = _open_unnamed(directory)
        if fd < 0:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                         0o666)
            named = True
            _lock(fd)
        try:
            if mode is not None:
                with _Suppress(OSError, AttributeError):
                    os.fchmod(fd, stat.S_IMODE(mode))  # keep the replaced file's permissions
            produce(fd)
            os.fsync(fd)
            if not named:
                _link_unnamed(fd, tmp)
                named = True
            os.replace(tmp, target)
            named = False
        finally:
            os.close(fd)
    except BaseException as exc:
        if named:
            with _Suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        if isinstance(exc, KeyboardInterrupt) and not exc.args:
            what = "left as it was" if mode is not None else "not created"
            raise KeyboardInterrupt(f"'{path}' {what}") from None
        raise


def _open_unnamed(directory: str) -> int:
    """An unnamed file in ``directory`` (Linux O_TMPFILE), or -1 where that cannot work."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return -1
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return -1  # filesystem without O_TMPFILE
        raise


def _link_unnamed(fd: int, name: str) -> None:
    """Give an O_TMPFILE file a name: linkat(AT_SYMLINK_FOLLOW) on its /proc/self/fd entry."""
    # os.link uses plain link() (which does not follow) unless a dir fd is given
    proc = os.open("/proc/self/fd", os.O_RDONLY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _lock(fd: int) -> None:
    """Hold an flock on a named temp while alive: tells clean_stale_temps it is in use."""
    try:
        import fcntl
    except ImportError:
        return
    with _Suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def write_text(path: str, text: str) -> None:
    """Write a text document (SVG, report) as UTF-8.

    A file name that is not UTF-8 (a surrogate escape) inside it is written as
    ``\\udcXX`` instead of failing the write.
    """
    write_atomic(path, text.encode("utf-8", "backslashreplace"))


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (see :func:`write_output`), creating parent directories."""

    def produce(fd: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    write_output(path, produce)


def write_if_changed(path: str, data: bytes) -> bool:
    """Write ``data`` unless ``path`` already holds exactly it; True when written.

    For generated inputs of a build (headers, a table's CSV): an untouched file keeps its
    timestamp, so nothing that depends on it rebuilds.
    """
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except OSError:
        pass
    write_atomic(path, data)
    return True
