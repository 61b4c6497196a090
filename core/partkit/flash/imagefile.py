"""Partition-level I/O on flash image files: streaming, bounded memory, crash-safe writes.

Nothing here loads a whole image: data moves in chunks of at most ``CHUNK`` bytes (in the
kernel with ``copy_file_range`` where the OS has it). Writes in place are protected by an
undo journal next to the image (``.<image>.partkit-journal``):

1. the partition's current bytes are copied into ``<journal>.tmp``, flushed, and the file
   is renamed to the journal name: from then on the journal is complete by construction;
2. the new bytes are written inside the partition only, flushed, and read back to verify;
3. the journal is deleted: this is the commit point.

Every operation in this module first looks for a leftover journal (a write that was killed
between 1 and 3) and copies the saved bytes back, so the image is exactly as before the
interrupted write. Writes to a copy (``output``) never touch the original at all: they go
to a temp file next to the copy that is renamed over it once verified. docs/image.md has
the full argument.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct

from partkit.common.errors import PartkitError, SourceLocation, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from partkit.table.model import Partition

__all__ = [
    "CHUNK",
    "JOURNAL_SUFFIX",
    "Piece",
    "create_image",
    "erase_partition",
    "image_size",
    "iter_region",
    "journal_path",
    "read_partition",
    "read_region",
    "recover",
    "write_partition",
]

CHUNK = 1 << 17  # 128 KiB buffers stay in CPU caches: fastest in bench/image_ops.py
ERASED = 0xFF
JOURNAL_SUFFIX = ".partkit-journal"
_JOURNAL_MAGIC = b"PKJRNL\x00\x01"
_JOURNAL_HEADER = struct.Struct("<8sQQQQ16s")  # magic, image size, offset, length, flags, boot
_JOURNAL_SYNCED = 1  # the journal was flushed to the device before the image was touched
_ERASED_CHUNK = bytes([ERASED]) * CHUNK
# copy_file_range refuses some file pairs (other filesystems, old kernels): fall back.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def _fail(path: str, message: str, hint: str | None = None) -> PartkitError:
    return PartkitError(error(message, SourceLocation(path), hint=hint))


def _os_error(path: str, exc: OSError, what: str) -> PartkitError:
    if isinstance(exc, FileNotFoundError):
        return _fail(path, "no such file", f"check the path (relative paths resolve from "
                     f"{os.getcwd()})")
    if isinstance(exc, IsADirectoryError):
        return _fail(path, "is a directory, expected a file")
    return _fail(path, f"cannot {what}: {exc.strerror or exc}")


# --- low-level chunked I/O ----------------------------------------------------------------


def _pread(fd: int, length: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    return os.read(fd, length)


def _pwrite(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            n = os.pwrite(fd, view, offset)
        else:  # Windows
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, view)
        view = view[n:]
        offset += n


def _copy_chunk(src: int, dst: int, length: int, src_off: int, dst_off: int) -> int:
    """Copy up to ``length`` (<= CHUNK) bytes; returns the count (0 = source ended)."""
    if _kernel_copy[0]:
        try:
            return os.copy_file_range(src, dst, length, src_off, dst_off)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            _kernel_copy[0] = False
    data = _pread(src, length, src_off)
    _pwrite(dst, data, dst_off)
    return len(data)


_kernel_copy = [hasattr(os, "copy_file_range")]


def _copy(src: int, src_off: int, dst: int, dst_off: int, length: int) -> None:
    done = 0
    while done < length:
        n = _copy_chunk(src, dst, min(CHUNK, length - done), src_off + done, dst_off + done)
        if n <= 0:
            raise OSError(errno.EIO, "source ended early (file changed while copying?)")
        done += n


def _fill(dst: int, offset: int, length: int, value: int = ERASED) -> None:
    chunk = _ERASED_CHUNK if value == ERASED else bytes([value]) * CHUNK
    done = 0
    while done < length:
        n = min(CHUNK, length - done)
        _pwrite(dst, memoryview(chunk)[:n], offset + done)
        done += n


def _read_into(fd: int, buf: bytearray, offset: int) -> int:
    """Fill ``buf`` from ``offset`` without allocating (preadv where available)."""
    if hasattr(os, "preadv"):
        got = 0
        view = memoryview(buf)
        while got < len(buf):
            n = os.preadv(fd, [view[got:]], offset + got)
            if n <= 0:
                break
            got += n
        return got
    data = _pread(fd, len(buf), offset)
    buf[: len(data)] = data
    return len(data)


def _sync(fd: int) -> None:
    """Flush file data (and the size) to the device."""
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _boot_id() -> bytes:
    """This boot's id (Linux), or b"": a journal from this boot survived in the page cache."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return bytes.fromhex(f.read().decode("ascii").strip().replace("-", ""))[:16]
    except (OSError, ValueError):
        return b""


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows; rename is still atomic
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- locking and recovery -----------------------------------------------------------------


class _Locked:
    """An open image with an exclusive advisory lock (POSIX ``flock``; none elsewhere)."""

    def __init__(self, path: str, writable: bool) -> None:
        self.path = path
        try:
            self.fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY)
                              | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise _os_error(path, exc, "open for writing" if writable else "read") from None
        try:
            import fcntl
        except ImportError:
            return
        # filesystems without flock (some network mounts): proceed unlocked
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __enter__(self) -> _Locked:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        os.close(self.fd)  # closing drops the flock


def journal_path(image: str) -> str:
    directory, base = os.path.split(os.path.abspath(image))
    return os.path.join(directory, f".{base}{JOURNAL_SUFFIX}")


def _has_leftovers(image: str) -> bool:
    journal = journal_path(image)
    return os.path.exists(journal) or os.path.exists(journal + ".tmp")


def recover(image: str) -> bool:
    """Undo an interrupted in-place write of ``image``; True if something was rolled back."""
    if not _has_leftovers(image):
        return False
    with _Locked(image, writable=True) as locked:
        return _recover_locked(locked, sync=True)


def _recover_locked(locked: _Locked, sync: bool) -> bool:
    journal = journal_path(locked.path)
    try:
        os.unlink(journal + ".tmp")  # killed while saving: the image was not touched yet
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _os_error(journal + ".tmp", exc, "remove stale journal") from None
    try:
        jfd = os.open(journal, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _os_error(journal, exc, "read journal") from None
    try:
        header = _pread(jfd, _JOURNAL_HEADER.size, 0)
        journal_size = os.fstat(jfd).st_size
        image_bytes = os.fstat(locked.fd).st_size
        ok = len(header) == _JOURNAL_HEADER.size
        if ok:
            magic, size, offset, length, flags, boot = _JOURNAL_HEADER.unpack(header)
            ok = (
                magic == _JOURNAL_MAGIC
                and journal_size == _JOURNAL_HEADER.size + length
                and size == image_bytes
                and offset + length <= image_bytes
            )
        if not ok:
            raise _fail(
                journal,
                f"undo journal of an interrupted write to '{locked.path}' does not match the "
                "image; refusing to touch either",
                "the image may be partially written: inspect it, then delete the journal",
            )
        if not flags & _JOURNAL_SYNCED and (not boot.strip(b"\0") or boot != _boot_id()):
            raise _fail(
                journal,
                f"undo journal of an interrupted write to '{locked.path}' was written without "
                "--sync before the machine restarted: its contents may never have reached the "
                "disk, so it is not applied",
                "if the image was not being written when the machine stopped, delete the "
                "journal; otherwise recreate the image",
            )
        _copy(jfd, _JOURNAL_HEADER.size, locked.fd, offset, length)
        if sync:
            _sync(locked.fd)
    except OSError as exc:
        raise _os_error(locked.path, exc, "roll back interrupted write") from None
    finally:
        os.close(jfd)
    os.unlink(journal)
    if sync:
        _fsync_dir(os.path.dirname(journal))
    return True


def _open_checked(image: str, writable: bool) -> _Locked:
    """Lock the image, rolling back any interrupted write first."""
    need_write = writable or _has_leftovers(image)
    locked = _Locked(image, writable=need_write)
    try:
        if need_write:
            _recover_locked(locked, sync=True)
    except BaseException:
        os.close(locked.fd)
        raise
    return locked


# --- queries ------------------------------------------------------------------------------


def image_size(image: str) -> int:
    """Size of the image in bytes (after rolling back any interrupted write)."""
    with _open_checked(image, writable=False) as locked:
        return os.fstat(locked.fd).st_size


def read_region(image: str, offset: int, length: int) -> bytes:
    """A small range of the image (tables, headers); short if the image ends first."""
    with _open_checked(image, writable=False) as locked:
        return _pread(locked.fd, length, offset) if length > 0 else b""


def iter_region(image: str, offset: int, length: int) -> Iterator[bytes]:
    """Chunks of a range of the image, CHUNK bytes at most each."""
    with _open_checked(image, writable=False) as locked:
        done = 0
        while done < length:
            data = _pread(locked.fd, min(CHUNK, length - done), offset + done)
            if not data:
                return
            yield data
            done += len(data)


def _check_inside(image: str, size: int, part: Partition) -> None:
    if part.end > size:
        raise _fail(
            image,
            f"partition '{part.name}' (0x{part.offset:x}..0x{part.end:x}) lies beyond the end "
            f"of the image ({size} bytes = 0x{size:x})",
            "the image is truncated, or the table belongs to a larger flash",
        )


# --- operations ---------------------------------------------------------------------------


def read_partition(image: str, part: Partition, output: str) -> None:
    """Copy the partition's bytes to ``output`` (written atomically)."""
    with _open_checked(image, writable=False) as locked:
        _check_inside(image, os.fstat(locked.fd).st_size, part)

        def fill(fd: int) -> None:
            _copy(locked.fd, part.offset, fd, 0, part.size)

        _write_new_file(output, fill)


def _write_new_file(path: str, produce: Callable[[int], None]) -> None:
    """Create ``path`` atomically: temp file in the same directory, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            produce(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _os_error(path, exc, "write") from None
        raise


def _source_size(source: str | None) -> int:
    if source is None:
        return 0
    try:
        st = os.stat(source)
    except OSError as exc:
        raise _os_error(source, exc, "read") from None
    import stat

    if stat.S_ISDIR(st.st_mode):
        raise _fail(source, "is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(source, "not a regular file", "write the data to a file first")
    return st.st_size


def write_partition(
    image: str,
    part: Partition,
    source: str | None,
    *,
    output: str | None = None,
    sync: bool = False,
) -> None:
    """Write ``source`` (None: erase) into ``part``; the rest of the partition becomes 0xFF.

    Every check happens before the first byte is written. With ``output`` the image is
    copied there and only the copy is modified. ``sync`` orders the steps with fsync so
    that even a power cut leaves either the old or the new image (after recovery).
    """
    src_size = _source_size(source)
    if src_size > part.size:
        raise _fail(
            source or image,
            f"{src_size} bytes (0x{src_size:x}) do not fit partition '{part.name}' of "
            f"{part.size} bytes (0x{part.size:x}), {src_size - part.size} bytes too many",
            "use a smaller file or enlarge the partition in the table",
        )
    src_fd = -1
    if source is not None:
        try:
            src_fd = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise _os_error(source, exc, "read") from None
    try:
        if output is not None and not _same_file(image, output):
            _write_copy(image, part, src_fd, src_size, output)
        else:
            _write_in_place(image, part, src_fd, src_size, sync)
    finally:
        if src_fd >= 0:
            os.close(src_fd)


def erase_partition(
    image: str, part: Partition, *, output: str | None = None, sync: bool = False
) -> None:
    """Set every byte of the partition to 0xFF, like a flash erase."""
    write_partition(image, part, None, output=output, sync=sync)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _put(fd: int, part: Partition, src_fd: int, src_size: int, path: str) -> None:
    """Write the source then 0xFF padding into the partition, checking each chunk read back.

    Each chunk goes source -> buffer -> image -> second buffer, so the data is read from
    the source once and compared with what the image file now holds.
    """
    size = min(CHUNK, part.size)
    data, back = bytearray(size), bytearray(size)
    done = 0
    while done < part.size:
        n = min(CHUNK, part.size - done)
        if n < len(data):
            data, back = data[:n], back[:n]
        from_src = max(0, min(n, src_size - done))
        if from_src and _read_into(src_fd, data, done) < from_src:
            raise OSError(errno.EIO, "source ended early (file changed while writing?)")
        if from_src < n:
            data[from_src:] = _ERASED_CHUNK[: n - from_src]
        _write_chunk(fd, data, part.offset + done)
        if _read_into(fd, back, part.offset + done) != n or back != data:
            raise _fail(path, f"read-back of partition '{part.name}' at 0x{part.offset + done:x} "
                        "does not match what was written", "the disk or filesystem may be failing")
        done += n


def _write_chunk(fd: int, data: bytearray, offset: int) -> None:
    _pwrite(fd, data, offset)


def _write_in_place(image: str, part: Partition, src_fd: int, src_size: int,
                    sync: bool) -> None:
    journal = journal_path(image)
    boot = b"" if sync else _boot_id()
    if not boot:
        sync = True  # no way to tell a kill from a power cut here: always flush
    with _open_checked(image, writable=True) as locked:
        fd = locked.fd
        size = os.fstat(fd).st_size
        _check_inside(image, size, part)
        try:
            # 1. save the old bytes; the rename makes the journal count only once complete
            tmp = journal + ".tmp"
            jfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                          0o600)
            try:
                header = _JOURNAL_HEADER.pack(_JOURNAL_MAGIC, size, part.offset, part.size,
                                              _JOURNAL_SYNCED if sync else 0, boot)
                _pwrite(jfd, header, 0)
                _copy(fd, part.offset, jfd, _JOURNAL_HEADER.size, part.size)
                if sync:
                    _sync(jfd)
            finally:
                os.close(jfd)
            os.replace(tmp, journal)
            if sync:
                _fsync_dir(os.path.dirname(journal))
        except OSError as exc:
            _discard(journal + ".tmp")
            raise _os_error(journal, exc, "write undo journal") from None
        try:
            # 2. write inside the partition only, then 3. read back
            _put(fd, part, src_fd, src_size, image)
            if sync:
                _sync(fd)
        except BaseException as exc:
            _recover_locked(locked, sync)  # put the old bytes back before reporting
            if isinstance(exc, OSError):
                raise _os_error(image, exc, "write") from None
            raise
        # 4. commit: without the journal nothing rolls back any more
        os.unlink(journal)
        if sync:
            _fsync_dir(os.path.dirname(journal))


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _write_copy(image: str, part: Partition, src_fd: int, src_size: int, output: str) -> None:
    with _open_checked(image, writable=False) as locked:
        size = os.fstat(locked.fd).st_size
        _check_inside(image, size, part)

        def produce(fd: int) -> None:
            _copy(locked.fd, 0, fd, 0, size)
            _put(fd, part, src_fd, src_size, output)

        _write_new_file(output, produce)


# --- assembly -----------------------------------------------------------------------------


class Piece:
    """Something to place in a new image: a file or bytes at a flash offset."""

    __slots__ = ("data", "label", "offset", "path", "size")

    def __init__(self, offset: int, label: str, *, path: str | None = None,
                 data: bytes | None = None) -> None:
        if (path is None) == (data is None):
            raise ValueError("give exactly one of path or data")
        self.offset = offset
        self.label = label
        self.path = path
        self.data = data
        self.size = len(data) if data is not None else _source_size(path)

    @property
    def end(self) -> int:
        return self.offset + self.size


def create_image(path: str, flash_size: int, pieces: list[Piece]) -> None:
    """Write a full ``flash_size`` image: pieces at their offsets, 0xFF everywhere else."""
    ordered = sorted(pieces, key=lambda p: p.offset)
    for piece in ordered:
        if piece.end > flash_size:
            raise _fail(
                piece.path or path,
                f"{piece.label} (0x{piece.offset:x}..0x{piece.end:x}) does not fit a flash of "
                f"0x{flash_size:x} bytes",
                "increase --flash-size",
            )
    for before, after in zip(ordered, ordered[1:]):
        if after.offset < before.end:
            raise _fail(
                after.path or path,
                f"{after.label} at 0x{after.offset:x} overlaps {before.label} "
                f"(0x{before.offset:x}..0x{before.end:x})",
            )

    def produce(fd: int) -> None:
        cursor = 0
        for piece in ordered:
            _fill(fd, cursor, piece.offset - cursor)
            if piece.data is not None:
                _pwrite(fd, piece.data, piece.offset)
            else:
                assert piece.path is not None
                src = os.open(piece.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                try:
                    _copy(src, 0, fd, piece.offset, piece.size)
                finally:
                    os.close(src)
            cursor = piece.end
        _fill(fd, cursor, flash_size - cursor)

    _write_new_file(path, produce)
