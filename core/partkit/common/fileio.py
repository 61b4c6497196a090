"""File access for the CLI, the image operations and the plugins (the codec never touches files).

Inputs are read with a bound: a partition table is at most 0xC00 bytes as a binary and a
few KiB as CSV, so ``read_input`` refuses anything past ``MAX_INPUT`` (8 MiB) instead of
reading ``/dev/zero`` until memory runs out. Every input goes through
:func:`check_input` / :func:`read_limited`: missing files, directories, link loops and
unreadable files are diagnostics; inputs whose size must be known (images, apps, data
images) must be regular files; streams are read once and bounded; a silent FIFO is an
error after ``FIFO_WAIT`` seconds, never a hang.

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

About 600 lines on purpose: the one input rule and the one output rule (with the
"an output is never an input" scope) are kept in one place so that no command can
read or write a file another way.
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
    from collections.abc import Callable, Sequence

__all__ = [
    "FIFO_WAIT",
    "MAX_INPUT",
    "check_input",
    "check_outputs",
    "clean_stale_temps",
    "command_scope",
    "edit_in_place",
    "helper_name",
    "note_input",
    "read_input",
    "read_limited",
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
# seconds a FIFO may stay silent (no writer yet, or no data) before reading it is an error
FIFO_WAIT = 10.0
NAME_MAX = 255
_RESERVED = 40  # room for the longest helper suffix (".partkit-journal.tmp", ".<pid>.tmp")
_TMP_SUFFIX = ".tmp"


def _no_such_file(path: str) -> PartkitError:
    return PartkitError(error("no such file", SourceLocation(path), hint="check the path "
                              f"(relative paths resolve from {os.getcwd()})"))


def _read_error(path: str, exc: OSError) -> PartkitError:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return PartkitError(error(
                f"dangling symbolic link (to '{os.readlink(path)}', which does not exist)",
                SourceLocation(path), hint="fix or remove the link"))
        return _no_such_file(path)
    if isinstance(exc, IsADirectoryError):
        return PartkitError(error("is a directory, expected a file", SourceLocation(path)))
    if exc.errno == errno.ELOOP:
        return PartkitError(error("symbolic link loop", SourceLocation(path),
                                  hint="a link in this path points back at itself"))
    return PartkitError(error(f"cannot read: {exc.strerror or exc}", SourceLocation(path)))


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO or pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input(path: str, *, regular: bool = False, what: str = "a file",
                note: bool = True) -> os.stat_result:
    """The checks every input passes before anything else happens; nothing is read.

    Missing files, directories, link loops and unreadable files are errors; with
    ``regular`` so is anything that is not a regular file (a device, FIFO or socket),
    for inputs whose size must be known up front (images, apps, data images).
    ``note``: count it as an input of the running command (see :func:`note_input`).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _read_error(path, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise PartkitError(error("is a directory, expected a file", SourceLocation(path)))
    if regular and not stat.S_ISREG(st.st_mode):
        raise PartkitError(error(f"{_kind(st.st_mode)}, not a regular file: {what} must be a "
                                 "file", SourceLocation(path),
                                 hint="write the data to a file first"))
    if not os.access(path, os.R_OK):
        raise PartkitError(error("cannot read: Permission denied", SourceLocation(path)))
    if note:
        note_input(path)
    return st


def read_limited(path: str, limit: int, *, regular: bool = False,
                 what: str = "a file") -> tuple[bytes, int | None]:
    """``(data, size)`` of an input, reading at most ``limit`` + 1 bytes, exactly once.

    A regular file's size comes from the file system and its bytes are read only when
    they fit ``limit``. A stream (pipe, FIFO, device) is read once, front to back: its
    ``size`` is how many bytes it gave, or None when it had more than ``limit`` (so a
    caller can refuse it without guessing). A FIFO that stays silent for
    ``FIFO_WAIT`` seconds is an error, not a hang.
    """
    st = check_input(path, regular=regular, what=what)
    fifo = stat.S_ISFIFO(st.st_mode)
    try:
        # a FIFO's open() waits for a writer: open it without blocking, wait in select
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0)
                     | (getattr(os, "O_NONBLOCK", 0) if fifo else 0))
    except OSError as exc:
        raise _read_error(path, exc) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            return b"", st.st_size
        data = _read_stream_fd(fd, limit + 1, path, fifo)
    except OSError as exc:
        raise _read_error(path, exc) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        return b"", None
    return data, len(data)


def _read_stream_fd(fd: int, limit: int, path: str, fifo: bool) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        if fifo and not _readable(fd, FIFO_WAIT):
            raise PartkitError(error(
                f"nothing to read for {FIFO_WAIT:g} s from this FIFO", SourceLocation(path),
                hint="start the program that writes into it first, or give a file"))
        try:
            chunk = os.read(fd, min(1 << 17, limit - got))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _readable(fd: int, timeout: float) -> bool:
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready)


def read_input(path: str, limit: int = MAX_INPUT, what: str = "a partition table", *,
               regular: bool = False) -> bytes:
    """Read an input file of at most ``limit`` bytes, turning OS errors into diagnostics."""
    data, size = read_limited(path, limit, regular=regular, what=what)
    if size is None or size > limit:
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
    # `partkit show - -o t.csv < t.csv`: stdin redirected from a file is an input too
    with _Suppress(AttributeError, OSError, ValueError):
        note_input(f"/dev/fd/{stream.fileno()}", label)  # type: ignore[attr-defined]
    data: bytes = read(limit + 1)
    if len(data) > limit:
        raise PartkitError(error(f"more than {_size_text(limit)}; too large for {what}",
                                 SourceLocation(label)))
    return data


# --- one command's inputs and outputs ------------------------------------------------------
# Inside command_scope() (the CLI runs every command in one) every regular file read as an
# input is noted by inode, and write_output refuses to replace one of them or a file this
# command already wrote: ``gen t.csv o.bin --header t.csv`` would destroy its own source.
# Outside a scope (the Python API, build plugins in one long process) nothing is noted.

_scope: list[dict[tuple[int, int], tuple[str, str]]] = []


class _CommandScope:
    def __enter__(self) -> None:
        _scope.append({})

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _scope.pop()


def command_scope() -> _CommandScope:
    """Note the inputs and outputs of one command (nested scopes share nothing); a class,
    not contextlib, which gen's start-up budget leaves out."""
    return _CommandScope()


def _key(path: str) -> tuple[int, int] | None:
    """(device, inode) of a regular file, symlinks followed; None for anything else."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def note_input(path: str, label: str | None = None) -> None:
    """``path`` is read by the running command: it may not be replaced by one of its outputs.
    ``label``: how messages name it (``<stdin>`` for ``/dev/fd/0``)."""
    key = _key(path) if _scope else None
    if key is not None:
        _scope[-1].setdefault(key, ("input", label or path))


def edit_in_place(path: str) -> None:
    """``path`` is both read and rewritten on purpose (``resize`` without ``-o``, as
    ``sed -i``): its next write may replace it. Only for the command's own TABLE."""
    key = _key(path) if _scope else None
    if key is not None and _scope[-1].get(key, ("", ""))[0] == "input":
        del _scope[-1][key]


def _note_output(path: str) -> None:
    key = _key(path) if _scope else None
    if key is not None:
        _scope[-1][key] = ("output", path)


def _refuse_clobber(path: str) -> None:
    key = _key(path) if _scope else None
    if key is None or key not in _scope[-1]:
        return
    role, other = _scope[-1][key]
    same = "" if other == path else f" ('{other}')"
    what = "an input of this command" if role == "input" else "already written by this command"
    raise PartkitError(error(
        f"output is {what}{same}; refusing to overwrite it", SourceLocation(path),
        hint="write the output to another file"))


def check_outputs(outputs: Sequence[str | None], inputs: Sequence[str | None] = ()) -> None:
    """Before writing anything: no output is an input, and no two outputs are one file.

    Files compare by inode (symlinks and hard links resolved); names not created yet
    compare by their absolute path with symlinked directories resolved.
    """
    seen: dict[object, tuple[str, str]] = {}
    for role, paths in (("input", inputs), ("output", outputs)):
        for path in paths:
            if path is None or (path == "-" and role == "output"):
                continue
            if path == "-":  # stdin: a file when redirected (`gen - t.csv < t.csv`)
                stdin_key = _key("/dev/fd/0")
                if stdin_key is not None:
                    seen.setdefault(stdin_key, (role, "<stdin>"))
                continue
            key: object = _key(path) or real_target(path)
            if role == "input":
                seen.setdefault(key, (role, path))
                continue
            if key in seen:
                other_role, other = seen[key]
                same = "" if other == path else f" ('{other}')"
                what = "an input" if other_role == "input" else "also another output"
                raise PartkitError(error(
                    f"output is {what} of this command{same}; refusing to overwrite it",
                    SourceLocation(path), hint="give each output its own file"))
            seen[key] = (role, path)


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
    _refuse_clobber(path)
    _replace(path, real_target(path), mode, produce)
    _note_output(path)


def _write_direct(path: str, target: str, produce: Callable[[int], None]) -> None:
    try:
        fd = _open_fifo_writer(path) if stat.S_ISFIFO(os.stat(target).st_mode) else os.open(
            target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
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


def _open_fifo_writer(path: str) -> int:
    """Open a FIFO for writing without hanging: wait up to FIFO_WAIT for a reader."""
    import time

    nonblock = getattr(os, "O_NONBLOCK", 0)
    deadline = time.monotonic() + FIFO_WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | nonblock)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody has it open for reading yet
                raise
            if time.monotonic() >= deadline:
                raise PartkitError(error(
                    f"nobody reads this FIFO (waited {FIFO_WAIT:g} s)", SourceLocation(path),
                    hint="start the program that reads from it first")) from None
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return fd


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
        st = os.stat(path)
        # only a regular file of the same size is compared: a FIFO or device is not read
        if stat.S_ISREG(st.st_mode) and st.st_size == len(data):
            with open(path, "rb") as f:
                if f.read(len(data) + 1) == data:
                    return False
    except OSError:
        pass
    write_atomic(path, data)
    return True
