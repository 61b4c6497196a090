"""Partition-level I/O on flash image files: streaming, bounded memory, crash-safe writes.

Nothing here loads a whole image: data moves in chunks of at most ``CHUNK`` bytes (in the
kernel with ``copy_file_range`` where the OS has it). Writes in place are protected by an
undo journal next to the image's real file (``.<image>.partkit-journal``, symlinks
resolved, long names shortened):

1. the partition's current bytes are copied into ``<journal>.tmp`` behind a header that
   names the image (device, inode, size) and the range; the file is flushed and renamed
   to the journal name: from then on the journal is complete by construction;
2. the new bytes are written inside the partition only, in CHUNK blocks, each one's CRC
   appended to the journal before it lands (with ``sync``: all of them before step 2),
   then flushed, and read back to verify;
3. the journal is deleted: this is the commit point.

Every operation first takes the image's lock and then looks for a leftover journal (a
write killed between 1 and 3). It is applied only to the file it belongs to, and only
while the range looks like that write was cut short: blocks holding the new bytes, one
block in flight, then the saved bytes. Otherwise it is stale (the file was replaced,
resized or rewritten since) and is removed without touching the image. Before restoring,
recovery marks the journal (after flushing it): a recovery killed while copying is simply
resumed by the next one, however often that happens. Each outcome is reported through
:mod:`partkit.common.notices`.
Commands that replace a whole file (create, ``-o`` copies) discard its journal first.
docs/image.md has the full argument.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
import zlib
from abc import ABC, abstractmethod

from partkit.common import notices
from partkit.common.errors import PartkitError, SourceLocation, error, warning
from partkit.common.fileio import (
    check_input,
    helper_name,
    note_input,
    real_target,
    write_output,
)
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType
    from typing import TypeVar

    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition

    _C = TypeVar("_C", bound="_Closing")

__all__ = [
    "CHUNK",
    "JOURNAL_SUFFIX",
    "ImageReader",
    "Piece",
    "create_image",
    "erase_partition",
    "image_size",
    "iter_region",
    "journal_path",
    "open_image",
    "read_partition",
    "read_region",
    "recover",
    "set_notice_handler",
    "write_partition",
]

CHUNK = 1 << 17  # 128 KiB buffers stay in CPU caches: fastest in bench/image_ops.py
ERASED = 0xFF
JOURNAL_SUFFIX = ".partkit-journal"
_JOURNAL_MAGIC = b"PKJRNL\x00\x02"
# magic, st_dev, st_ino, image size, offset, length, flags, boot id, partition name, block
_JOURNAL_HEADER = struct.Struct("<8sQQQQQQ16s16sI4x")
_JOURNAL_SYNCED = 1  # the journal was flushed to the device before the image was touched
# recovery decided to restore and may have started: the range may hold any mix of saved,
# new and half-copied blocks, so the next recovery copies the saved bytes again unasked
_JOURNAL_RESTORING = 2
_FLAGS_AT = 48  # offset of the flags field in _JOURNAL_HEADER
_ERASED_CHUNK = bytes([ERASED]) * CHUNK
# copy_file_range refuses some file pairs (other filesystems, pipes, old kernels): fall back.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF,
                   errno.ESPIPE}


def set_notice_handler(handler: Callable[[Diagnostic], None] | None) -> None:
    """Where recovery reports go (:mod:`partkit.common.notices`; the CLI prints them)."""
    notices.set_handler(handler)


_notify = notices.notify


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
    """Write at ``offset``; on a stream (pipe, tty) write in order instead."""
    view = memoryview(data)
    while view:
        try:
            if hasattr(os, "pwrite"):
                n = os.pwrite(fd, view, offset)
            else:  # Windows
                os.lseek(fd, offset, os.SEEK_SET)
                n = os.write(fd, view)
        except OSError as exc:
            if exc.errno != errno.ESPIPE:
                raise
            n = os.write(fd, view)  # not seekable: callers write streams front to back
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
            if exc.errno != errno.ESPIPE:
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


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


_CRC = struct.Struct("<I")


# --- locking and recovery -----------------------------------------------------------------


class _Closing(ABC):
    """``with`` closes it: the context-manager half of the open files below."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Locked(_Closing):
    """An open image with an exclusive advisory lock (POSIX ``flock``; none elsewhere)."""

    def __init__(self, path: str, writable: bool) -> None:
        self.path = path
        self.writable = writable
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

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def journal_path(image: str) -> str:
    """The undo journal of ``image``: next to the real file, whatever name reached it."""
    directory, base = os.path.split(real_target(image))
    return os.path.join(directory, helper_name(base, JOURNAL_SUFFIX))


def _has_leftovers(image: str) -> bool:
    journal = journal_path(image)
    return os.path.exists(journal) or os.path.exists(journal + ".tmp")


def recover(image: str) -> bool:
    """Undo an interrupted in-place write of ``image``; True if bytes were restored.

    A journal that does not belong to the file as it is now is removed (and reported)
    without touching the image.
    """
    if not _has_leftovers(image):
        return False
    with _Locked(image, writable=True) as locked:
        return _recover_locked(locked, sync=True)


def _remove_journal(journal: str, sync: bool) -> None:
    os.unlink(journal)
    if sync:
        _fsync_dir(os.path.dirname(journal))


def _recover_locked(locked: _Locked, sync: bool, ours: bool = False) -> bool:
    """Settle a leftover journal while holding the lock; True if bytes were restored.

    ``ours``: this process wrote the journal and failed mid-write (a short write may have
    torn a page): restore without the identity check.
    """
    journal = journal_path(locked.path)
    try:
        os.unlink(journal + ".tmp")  # killed while saving: the image was not touched yet
        _notify(warning("removed an incomplete undo journal: a write was interrupted before "
                        "it changed the image; nothing to restore", SourceLocation(locked.path)))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _os_error(journal + ".tmp", exc, "remove stale journal") from None
    try:
        jfd = os.open(journal, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _os_error(journal, exc, "read journal") from None
    try:
        return _apply_journal(locked, journal, jfd, sync, ours)
    except OSError as exc:
        raise _os_error(locked.path, exc, "roll back interrupted write") from None
    finally:
        os.close(jfd)


def _apply_journal(locked: _Locked, journal: str, jfd: int, sync: bool, ours: bool) -> bool:
    image = locked.path
    header = _pread(jfd, _JOURNAL_HEADER.size, 0)
    journal_size = os.fstat(jfd).st_size
    st = os.fstat(locked.fd)
    fields = _JOURNAL_HEADER.unpack(header) if len(header) == _JOURNAL_HEADER.size else None
    if fields is None or fields[0] != _JOURNAL_MAGIC or fields[9] != CHUNK:
        raise _fail(journal, f"undo journal of an interrupted write to '{image}' is damaged "
                    "or from another partkit version; refusing to touch either",
                    "the image may be partially written: inspect it, then delete the journal")
    _, dev, ino, size, offset, length, flags, boot, raw_name, _block = fields
    name = raw_name.rstrip(b"\0").decode("utf-8", "replace")
    blocks = (length + CHUNK - 1) // CHUNK
    saved_at = _JOURNAL_HEADER.size
    crc_bytes = journal_size - saved_at - length  # CRCs of the blocks the write reached
    where = f"partition '{name}' (0x{offset:x}..0x{offset + length:x})"
    if not 0 <= crc_bytes <= 4 * blocks or crc_bytes % 4:
        raise _fail(journal, f"undo journal of an interrupted write to {where} of '{image}' "
                    f"is cut short or damaged ({journal_size} bytes, expected "
                    f"{saved_at + length}..{saved_at + length + 4 * blocks}); "
                    "refusing to touch either",
                    "the image may be partially written there: inspect it, then delete the "
                    "journal")
    loc = SourceLocation(image)
    if (dev, ino) != (st.st_dev, st.st_ino) or size != st.st_size:
        what = ("the file was replaced since" if (dev, ino) != (st.st_dev, st.st_ino)
                else f"the file was resized since ({size} -> {st.st_size} bytes)")
        _remove_journal(journal, sync)
        _notify(warning(f"removed a stale undo journal of an interrupted write to {where}: "
                        f"{what}, so its saved bytes do not belong to it; nothing restored",
                        loc))
        return False
    rebooted = not boot.strip(b"\0") or boot != _boot_id()
    if not flags & _JOURNAL_SYNCED and rebooted:
        raise _fail(
            journal,
            f"undo journal of an interrupted write to {where} of '{image}' was written without "
            "--sync before the machine restarted: its contents may never have reached the "
            "disk, so it is not applied",
            "if the image was not being written when the machine stopped, delete the "
            "journal; otherwise recreate the image",
        )
    if flags & _JOURNAL_RESTORING:
        _restore(locked, jfd, saved_at, offset, length, flags, sync)
        _remove_journal(journal, sync)
        _notify(warning(f"restored {length} bytes (0x{length:x}) of {where} from the undo "
                        "journal: an earlier restore was interrupted, it has now finished; "
                        "the image is as it was before the interrupted write", loc))
        return True
    crcs = [crc for (crc,) in _CRC.iter_unpack(_pread(jfd, crc_bytes, saved_at + length))]
    changed, foreign = _classify(locked.fd, jfd, saved_at, offset, length, crcs)
    # a power cut may leave any block half written by a --sync write: trust that journal
    if foreign and not ours and not (flags & _JOURNAL_SYNCED and rebooted):
        _remove_journal(journal, sync)
        _notify(warning(f"removed a stale undo journal of an interrupted write to {where}: "
                        "the range holds neither the saved nor the new bytes (the image was "
                        "rewritten since); nothing restored", loc))
        return False
    if not changed:
        _remove_journal(journal, sync)
        if ours:
            return False
        _notify(warning(f"removed the undo journal of an interrupted write to {where}: it had "
                        "not changed the image yet; nothing to restore", loc))
        return False
    _restore(locked, jfd, saved_at, offset, length, flags, sync)
    _remove_journal(journal, sync)
    if ours:
        return True
    _notify(warning(f"restored {length} bytes (0x{length:x}) of {where} from the undo "
                    f"journal: a write there was interrupted after changing {changed} of "
                    f"{blocks} blocks of {CHUNK >> 10} KiB; the image is as it was before that "
                    "write", loc))
    return True


def _restore(locked: _Locked, jfd: int, saved_at: int, offset: int, length: int,
             flags: int, sync: bool) -> None:
    """Copy the saved bytes back, first marking the journal so that a kill here is resumed.

    Once copying starts the range is no longer "new blocks, one in flight, saved blocks"
    and could not be classified again; the mark makes the decision to restore stick. With
    ``sync`` the saved bytes reach the disk before the mark does, so a power cut during the
    restore also resumes it.
    """
    if not flags & _JOURNAL_RESTORING:
        if sync:
            _sync(jfd)
            flags |= _JOURNAL_SYNCED
        _pwrite(jfd, struct.pack("<Q", flags | _JOURNAL_RESTORING), _FLAGS_AT)
        if sync:
            _sync(jfd)
    _copy(jfd, saved_at, locked.fd, offset, length)
    if sync:
        _sync(locked.fd)


def _classify(fd: int, jfd: int, saved_at: int, offset: int, length: int,
              crcs: list[int]) -> tuple[int, bool]:
    """(blocks changed, foreign) for the range as it is now.

    A write cut short leaves blocks with the new bytes (their CRC logged), at most one
    block in flight (logged, partly written), and the saved bytes after it. Anything
    else (a second odd block, a change past the last logged block) was written by
    something else: ``foreign``.
    """
    changed = 0
    odd: int | None = None  # the one block that is neither saved nor new
    foreign = False
    done = index = 0
    while done < length:
        n = min(CHUNK, length - done)
        now = _pread(fd, n, offset + done)
        if now != _pread(jfd, n, saved_at + done):
            changed += 1
            if odd is not None or index >= len(crcs):
                foreign = True  # changed after the block in flight, or never logged
            elif zlib.crc32(now) != crcs[index]:
                odd = index
        done += n
        index += 1
    return changed, foreign


def _open_checked(image: str, writable: bool) -> _Locked:
    """Lock the image, then roll back any interrupted write (seen only under the lock)."""
    locked = _Locked(image, writable=writable)
    if not writable:
        note_input(image)  # an output of the same command may not replace it
    try:
        if _has_leftovers(image):
            if not locked.writable:
                # recovery writes: trade the read lock for a writable one, then look again
                locked.close()
                locked = _Locked(image, writable=True)
            _recover_locked(locked, sync=True)
    except BaseException:
        locked.close()
        raise
    return locked


def _discard_for_replace(path: str) -> None:
    """``path`` is about to be replaced as a whole: its undo journal no longer matters."""
    if path == "-" or not _has_leftovers(path):
        return
    journal = journal_path(path)
    locked: _Locked | None = None
    try:
        if os.path.isfile(path):
            locked = _Locked(path, writable=False)  # wait for a writer still at work
        for leftover in (journal + ".tmp", journal):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    except OSError as exc:
        raise _os_error(journal, exc, "remove the undo journal") from None
    finally:
        if locked is not None:
            locked.close()
    _notify(warning("discarded the undo journal of an earlier interrupted write: the file is "
                    "replaced as a whole, so nothing is restored", SourceLocation(path)))


# --- reading ------------------------------------------------------------------------------


class ImageReader(_Closing):
    """An image opened and locked once, for many reads (inspect, content sniffing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._locked = _open_checked(path, writable=False)
        self.size = os.fstat(self._locked.fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (short at the end of the image)."""
        return _pread(self._locked.fd, length, offset) if length > 0 else b""

    def chunks(self, offset: int, length: int) -> Iterator[bytes]:
        done = 0
        while done < length:
            data = _pread(self._locked.fd, min(CHUNK, length - done), offset + done)
            if not data:
                return
            yield data
            done += len(data)

    def last_not(self, offset: int, length: int, value: int = ERASED) -> int:
        """Offset (from ``offset``) just past the last byte that is not ``value``; 0 if none.

        Scans from the end: a dump with data near the end (or a sparse hole, which reads
        as zeros) answers at once.
        """
        fill = bytes([value])
        end = min(length, max(0, self.size - offset))
        while end > 0:
            start = max(0, end - CHUNK)
            stripped = _pread(self._locked.fd, end - start, offset + start).rstrip(fill)
            if stripped:
                return start + len(stripped)
            end = start
        return 0

    def sectors_starting_with(self, prefix: bytes, step: int) -> Iterator[int]:
        """Offsets ``k * step`` (ascending) where the image holds ``prefix``.

        Streams in CHUNK blocks and skips sparse holes (``SEEK_DATA``), which read as
        zeros: ``prefix`` must not be all zeros.
        """
        fd = self._locked.fd
        pos = 0
        while pos < self.size:
            pos = self._next_data(pos, step)
            if pos >= self.size:
                return
            block = _pread(fd, min(CHUNK, self.size - pos) + len(prefix) - 1, pos)
            for at in range(0, min(CHUNK, len(block)), step):
                if block.startswith(prefix, at):
                    yield pos + at
            pos += CHUNK

    def _next_data(self, pos: int, step: int) -> int:
        seek_data = getattr(os, "SEEK_DATA", None)
        if seek_data is None:
            return pos
        try:
            data = os.lseek(self._locked.fd, pos, seek_data)
        except OSError as exc:
            # ENXIO: only a hole remains; anything else: no hole support, read everything
            return self.size if exc.errno == errno.ENXIO else pos
        return max(pos, data // step * step)

    def close(self) -> None:
        self._locked.close()


def open_image(image: str) -> ImageReader:
    """Open and lock ``image`` for reading (after rolling back an interrupted write)."""
    return ImageReader(image)


def image_size(image: str) -> int:
    """Size of the image in bytes (after rolling back any interrupted write)."""
    with _open_checked(image, writable=False) as locked:
        return os.fstat(locked.fd).st_size


def read_region(image: str, offset: int, length: int) -> bytes:
    """A small range of the image (tables, headers); short if the image ends first."""
    with ImageReader(image) as reader:
        return reader.read(offset, length)


def iter_region(image: str, offset: int, length: int) -> Iterator[bytes]:
    """Chunks of a range of the image, CHUNK bytes at most each."""
    with ImageReader(image) as reader:
        yield from reader.chunks(offset, length)


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
    """Copy the partition's bytes to ``output`` (a file replaced atomically, or a stream)."""
    with _open_checked(image, writable=False) as locked:
        _check_inside(image, os.fstat(locked.fd).st_size, part)

        def fill(fd: int) -> None:
            _copy(locked.fd, part.offset, fd, 0, part.size)

        _write_new_file(output, fill)


def _write_new_file(path: str, produce: Callable[[int], None]) -> None:
    """Create or replace ``path`` (see :func:`partkit.common.fileio.write_output`)."""
    _discard_for_replace(path)
    write_output(path, produce)


def _source_size(source: str | None) -> int:
    if source is None:
        return 0
    return check_input(source, regular=True, what="data written into an image").st_size


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


def _put(fd: int, part: Partition, src_fd: int, src_size: int, path: str,
         log: Callable[[int, bytearray], None] | None = None) -> None:
    """Write the source then 0xFF padding into the partition, checking each chunk read back.

    Each chunk goes source -> buffer -> image -> second buffer, so the data is read from
    the source once and compared with what the image file now holds. ``log(done, chunk)``
    (in-place writes) records each chunk in the journal before it lands. Streams (pipes,
    devices) are written without the read-back.
    """
    verify = _is_regular(fd)
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
        if log is not None:
            log(done, data)
        _write_chunk(fd, data, part.offset + done)
        if verify and (_read_into(fd, back, part.offset + done) != n or back != data):
            raise _fail(path, f"read-back of partition '{part.name}' at 0x{part.offset + done:x} "
                        "does not match what was written", "the disk or filesystem may be failing")
        done += n


def _write_chunk(fd: int, data: bytearray, offset: int) -> None:
    _pwrite(fd, data, offset)


def _new_crcs(src_fd: int, src_size: int, length: int) -> bytes:
    """CRC of every CHUNK block the write will leave in the range (source, 0xFF after)."""
    out = bytearray()
    for done in range(0, length, CHUNK):
        n = min(CHUNK, length - done)
        data = _pread(src_fd, min(n, src_size - done), done) if done < src_size else b""
        if len(data) < min(n, max(0, src_size - done)):
            raise OSError(errno.EIO, "source ended early (file changed while writing?)")
        crc = zlib.crc32(data)
        out += _CRC.pack(zlib.crc32(_ERASED_CHUNK[:n - len(data)], crc))
    return bytes(out)


def _write_in_place(image: str, part: Partition, src_fd: int, src_size: int,
                    sync: bool) -> None:
    journal = journal_path(image)
    boot = b"" if sync else _boot_id()
    if not boot:
        sync = True  # no way to tell a kill from a power cut here: always flush
    with _open_checked(image, writable=True) as locked:
        fd = locked.fd
        st = os.fstat(fd)
        _check_inside(image, st.st_size, part)
        jfd = -1
        try:
            # 1. save the old bytes; the rename makes the journal count only once complete.
            # The CRC of each block of new bytes follows the saved ones: with --sync all of
            # them up front (flushed once), else each block's just before it lands.
            tmp = journal + ".tmp"
            jfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                          0o600)
            header = _JOURNAL_HEADER.pack(
                _JOURNAL_MAGIC, st.st_dev, st.st_ino, st.st_size, part.offset, part.size,
                _JOURNAL_SYNCED if sync else 0, boot, part.name.encode("utf-8")[:16], CHUNK)
            _pwrite(jfd, header, 0)
            crc_at = _JOURNAL_HEADER.size + part.size
            _copy(fd, part.offset, jfd, _JOURNAL_HEADER.size, part.size)
            if sync:
                _pwrite(jfd, _new_crcs(src_fd, src_size, part.size), crc_at)
                _sync(jfd)
            os.replace(tmp, journal)
            if sync:
                _fsync_dir(os.path.dirname(journal))
        except OSError as exc:
            if jfd >= 0:
                os.close(jfd)
            _discard(journal + ".tmp")
            raise _fail(journal, f"cannot write undo journal: {exc.strerror or exc}; the image "
                        "was not changed", "the journal goes next to the image, so its directory "
                        "must be writable; or write the result to a copy with -o COPY, which "
                        "leaves the image untouched") from None
        except BaseException as exc:
            if jfd >= 0:
                os.close(jfd)
            _discard(journal + ".tmp")
            if isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt(f"'{image}' is unchanged") from None
            raise

        def log(done: int, data: bytearray) -> None:
            _pwrite(jfd, _CRC.pack(zlib.crc32(data)), crc_at + 4 * (done // CHUNK))

        try:
            # 2. write inside the partition only, then 3. read back
            _put(fd, part, src_fd, src_size, image, None if sync else log)
            if sync:
                _sync(fd)
        except BaseException as exc:
            _recover_locked(locked, sync, ours=True)  # put the old bytes back, then report
            if isinstance(exc, OSError):
                raise _os_error(image, exc, "write") from None
            if isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt(f"'{image}' is unchanged: the partial write to "
                                        f"partition '{part.name}' was rolled back") from None
            raise
        finally:
            os.close(jfd)
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
            # front to back, so a stream output (pipe, device) gets the same bytes
            _copy(locked.fd, 0, fd, 0, part.offset)
            _put(fd, part, src_fd, src_size, output)
            _copy(locked.fd, part.end, fd, part.end, size - part.end)

        _write_new_file(output, produce)


# --- assembly -----------------------------------------------------------------------------


class Piece(Record):
    """Something to place in a new image: a file or bytes at a flash offset.

    ``size`` is what it puts in the image: measured (``len(data)`` or the file's size)
    unless given.
    """

    __slots__ = ("data", "label", "offset", "path", "size")

    offset: int
    label: str
    path: str | None
    data: bytes | None
    size: int

    def __init__(self, offset: int, label: str, *, path: str | None = None,
                 data: bytes | None = None, size: int | None = None) -> None:
        if (path is None) == (data is None):
            raise ValueError("give exactly one of path or data")
        if size is None:
            size = len(data) if data is not None else _source_size(path)
        self._init(offset=offset, label=label, path=path, data=data, size=size)

    def replace(self, **changes: object) -> Piece:
        """A copy with some fields changed; a new path or data is measured again."""
        if ("path" in changes or "data" in changes) and "size" not in changes:
            changes["size"] = None
        return super().replace(**changes)

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
