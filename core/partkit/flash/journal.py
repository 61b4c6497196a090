"""The image lock and the undo journal that makes in-place partition writes crash-safe.

Writes in place are protected by an undo journal next to the image's real file
(``.<image>.partkit-journal``, symlinks resolved, long names shortened):

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
import struct
import zlib
from abc import ABC, abstractmethod

from partkit.common import notices
from partkit.common.errors import PartkitError, SourceLocation, warning
from partkit.common.fileio import check_input, helper_name, note_input, real_target
from partkit.flash.fdio import (
    CHUNK,
    ERASED_CHUNK,
    copy,
    fail,
    fsync_dir,
    os_error,
    pread,
    pwrite,
    sync_data,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import TypeVar

    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition

    _C = TypeVar("_C", bound="Closing")

__all__ = [
    "JOURNAL_SUFFIX",
    "Closing",
    "Locked",
    "discard_for_replace",
    "journal_path",
    "open_checked",
    "recover",
    "set_notice_handler",
    "write_journaled",
]

JOURNAL_SUFFIX = ".partkit-journal"
_JOURNAL_MAGIC = b"PKJRNL\x00\x02"
# magic, st_dev, st_ino, image size, offset, length, flags, boot id, partition name, block
_JOURNAL_HEADER = struct.Struct("<8sQQQQQQ16s16sI4x")
_JOURNAL_SYNCED = 1  # the journal was flushed to the device before the image was touched
# recovery decided to restore and may have started: the range may hold any mix of saved,
# new and half-copied blocks, so the next recovery copies the saved bytes again unasked
_JOURNAL_RESTORING = 2
_FLAGS_AT = 48  # offset of the flags field in _JOURNAL_HEADER

def set_notice_handler(handler: Callable[[Diagnostic], None] | None) -> None:
    """Where recovery reports go (:mod:`partkit.common.notices`; the CLI prints them)."""
    notices.set_handler(handler)


_notify = notices.notify

def _boot_id() -> bytes:
    """This boot's id (Linux), or b"": a journal from this boot survived in the page cache."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return bytes.fromhex(f.read().decode("ascii").strip().replace("-", ""))[:16]
    except (OSError, ValueError):
        return b""


_CRC = struct.Struct("<I")

class Closing(ABC):
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


class Locked(Closing):
    """An open image with an exclusive advisory lock (POSIX ``flock``; none elsewhere)."""

    def __init__(self, path: str, writable: bool) -> None:
        self.path = path
        self.writable = writable
        # a FIFO would block open() forever and a device has no size: images are files
        check_input(path, regular=True, what="a flash image", note=False)
        try:
            self.fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY)
                              | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise os_error(path, exc, "open for writing" if writable else "read") from None
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


def has_leftovers(image: str) -> bool:
    journal = journal_path(image)
    return os.path.exists(journal) or os.path.exists(journal + ".tmp")


def recover(image: str) -> bool:
    """Undo an interrupted in-place write of ``image``; True if bytes were restored.

    A journal that does not belong to the file as it is now is removed (and reported)
    without touching the image.
    """
    if not has_leftovers(image):
        return False
    with Locked(image, writable=True) as locked:
        return _recover_locked(locked, sync=True)


def _remove_journal(journal: str, sync: bool) -> None:
    os.unlink(journal)
    if sync:
        fsync_dir(os.path.dirname(journal))


def _recover_locked(locked: Locked, sync: bool, ours: bool = False) -> bool:
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
        raise os_error(journal + ".tmp", exc, "remove stale journal") from None
    try:
        jfd = os.open(journal, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise fail(journal, f"the undo journal's name for '{locked.path}' is taken by a "
                   "directory: partkit cannot tell whether a write was interrupted, so it "
                   "touches neither", "if the directory is not yours to keep, remove or "
                   "rename it") from None
    except OSError as exc:
        raise os_error(journal, exc, "read journal") from None
    try:
        return _apply_journal(locked, journal, jfd, sync, ours)
    except OSError as exc:
        raise fail(locked.path, f"cannot roll back the interrupted write: {exc.strerror or exc}"
                   f"; the undo journal '{journal}' is kept with the old bytes",
                   "fix the cause (free space?), then run any partkit image command on it "
                   "to finish the restore") from None
    except KeyboardInterrupt:
        if ours:
            raise
        raise KeyboardInterrupt(f"'{locked.path}' may be partly restored; its undo journal is "
                                "kept and the next partkit command on it finishes the "
                                "restore") from None
    finally:
        os.close(jfd)


def _apply_journal(locked: Locked, journal: str, jfd: int, sync: bool, ours: bool) -> bool:
    image = locked.path
    header = pread(jfd, _JOURNAL_HEADER.size, 0)
    journal_size = os.fstat(jfd).st_size
    st = os.fstat(locked.fd)
    fields = _JOURNAL_HEADER.unpack(header) if len(header) == _JOURNAL_HEADER.size else None
    if fields is None or fields[0] != _JOURNAL_MAGIC or fields[9] != CHUNK:
        raise fail(journal, f"undo journal of an interrupted write to '{image}' is damaged "
                    "or from another partkit version; refusing to touch either",
                    "the image may be partially written: inspect it, then delete the journal")
    _, dev, ino, size, offset, length, flags, boot, raw_name, _block = fields
    name = raw_name.rstrip(b"\0").decode("utf-8", "replace")
    blocks = (length + CHUNK - 1) // CHUNK
    saved_at = _JOURNAL_HEADER.size
    crc_bytes = journal_size - saved_at - length  # CRCs of the blocks the write reached
    where = f"partition '{name}' (0x{offset:x}..0x{offset + length:x})"
    if not 0 <= crc_bytes <= 4 * blocks or crc_bytes % 4:
        raise fail(journal, f"undo journal of an interrupted write to {where} of '{image}' "
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
        raise fail(
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
    crcs = [crc for (crc,) in _CRC.iter_unpack(pread(jfd, crc_bytes, saved_at + length))]
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


def _restore(locked: Locked, jfd: int, saved_at: int, offset: int, length: int,
             flags: int, sync: bool) -> None:
    """Copy the saved bytes back, first marking the journal so that a kill here is resumed.

    Once copying starts the range is no longer "new blocks, one in flight, saved blocks"
    and could not be classified again; the mark makes the decision to restore stick. With
    ``sync`` the saved bytes reach the disk before the mark does, so a power cut during the
    restore also resumes it.
    """
    if not flags & _JOURNAL_RESTORING:
        if sync:
            sync_data(jfd)
            flags |= _JOURNAL_SYNCED
        pwrite(jfd, struct.pack("<Q", flags | _JOURNAL_RESTORING), _FLAGS_AT)
        if sync:
            sync_data(jfd)
    copy(jfd, saved_at, locked.fd, offset, length)
    if sync:
        sync_data(locked.fd)


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
        now = pread(fd, n, offset + done)
        if now != pread(jfd, n, saved_at + done):
            changed += 1
            if odd is not None or index >= len(crcs):
                foreign = True  # changed after the block in flight, or never logged
            elif zlib.crc32(now) != crcs[index]:
                odd = index
        done += n
        index += 1
    return changed, foreign


def open_checked(image: str, writable: bool) -> Locked:
    """Lock the image, then roll back any interrupted write (seen only under the lock)."""
    locked = Locked(image, writable=writable)
    if not writable:
        note_input(image)  # an output of the same command may not replace it
    try:
        if has_leftovers(image):
            if not locked.writable:
                # recovery writes: trade the read lock for a writable one, then look again
                locked.close()
                locked = Locked(image, writable=True)
            _recover_locked(locked, sync=True)
    except BaseException:
        locked.close()
        raise
    return locked


def discard_for_replace(path: str) -> None:
    """``path`` is about to be replaced as a whole: its undo journal no longer matters."""
    if path == "-" or not has_leftovers(path):
        return
    journal = journal_path(path)
    locked: Locked | None = None
    try:
        if os.path.isfile(path):
            locked = Locked(path, writable=False)  # wait for a writer still at work
        for leftover in (journal + ".tmp", journal):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    except OSError as exc:
        raise os_error(journal, exc, "remove the undo journal") from None
    finally:
        if locked is not None:
            locked.close()
    _notify(warning("discarded the undo journal of an earlier interrupted write: the file is "
                    "replaced as a whole, so nothing is restored", SourceLocation(path)))


def _new_crcs(src_fd: int, src_size: int, length: int) -> bytes:
    """CRC of every CHUNK block the write will leave in the range (source, 0xFF after)."""
    out = bytearray()
    for done in range(0, length, CHUNK):
        n = min(CHUNK, length - done)
        data = pread(src_fd, min(n, src_size - done), done) if done < src_size else b""
        if len(data) < min(n, max(0, src_size - done)):
            raise OSError(errno.EIO, "source ended early (file changed while writing?)")
        crc = zlib.crc32(data)
        out += _CRC.pack(zlib.crc32(ERASED_CHUNK[:n - len(data)], crc))
    return bytes(out)


def write_journaled(locked: Locked, part: Partition, src_fd: int, src_size: int, sync: bool,
                    put: Callable[[Callable[[int, bytearray], None] | None], None]) -> None:
    """Write into ``part`` of the locked image through the undo journal (steps 1-4 above).

    ``put(log)`` writes the new bytes (from ``src_fd``, ``src_size`` of them, 0xFF after);
    ``log(done, block)``, when given, must be called before each block lands.
    """
    image = locked.path
    journal = journal_path(image)
    boot = b"" if sync else _boot_id()
    if not boot:
        sync = True  # no way to tell a kill from a power cut here: always flush
    fd = locked.fd
    st = os.fstat(fd)
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
        pwrite(jfd, header, 0)
        crc_at = _JOURNAL_HEADER.size + part.size
        copy(fd, part.offset, jfd, _JOURNAL_HEADER.size, part.size)
        if sync:
            pwrite(jfd, _new_crcs(src_fd, src_size, part.size), crc_at)
            sync_data(jfd)
        os.replace(tmp, journal)
        if sync:
            fsync_dir(os.path.dirname(journal))
    except OSError as exc:
        if jfd >= 0:
            os.close(jfd)
        _discard(journal + ".tmp")
        raise fail(journal, f"cannot write undo journal: {exc.strerror or exc}; the image "
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
        pwrite(jfd, _CRC.pack(zlib.crc32(data)), crc_at + 4 * (done // CHUNK))

    try:
        # 2. write inside the partition only, then 3. read back
        put(None if sync else log)
        if sync:
            sync_data(fd)
    except BaseException as exc:
        try:
            _recover_locked(locked, sync, ours=True)  # put the old bytes back, then report
        except (PartkitError, OSError, KeyboardInterrupt) as undo:  # a 2nd Ctrl-C too
            raise _rollback_failed(image, part, journal, exc, undo) from None
        if isinstance(exc, OSError):
            raise os_error(image, exc, "write") from None
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt(f"'{image}' is unchanged: the partial write to "
                                    f"partition '{part.name}' was rolled back") from None
        raise
    finally:
        os.close(jfd)
    # 4. commit: without the journal nothing rolls back any more
    os.unlink(journal)
    if sync:
        fsync_dir(os.path.dirname(journal))


def _rollback_failed(image: str, part: Partition, journal: str, cause: BaseException,
                     undo: BaseException) -> BaseException:
    """The write failed and so did putting the old bytes back: say both, and what is kept."""
    why = (cause.strerror or str(cause)) if isinstance(cause, OSError) else (
        "interrupted" if isinstance(cause, KeyboardInterrupt) else str(cause))
    undo_why = (undo.diagnostics[0].message if isinstance(undo, PartkitError)
                else undo.strerror or str(undo) if isinstance(undo, OSError)
                else "interrupted by a second Ctrl-C")
    state = (f"partition '{part.name}' (0x{part.offset:x}..0x{part.end:x}) of '{image}' is "
             f"partly written; the undo journal '{journal}' keeps its old bytes and the next "
             "partkit command on the image restores them")
    if isinstance(cause, KeyboardInterrupt):
        return KeyboardInterrupt(f"{state} (rolling back failed: {undo_why})")
    return fail(image, f"cannot write: {why}; rolling back failed too ({undo_why}): {state}",
                "free space (or fix the cause), then run any partkit image command on it")


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)

