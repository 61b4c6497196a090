"""Partition-level I/O on flash image files: reading, writing, erasing, assembling.

Nothing here loads a whole image: data moves in chunks (:mod:`partkit.flash.fdio`).
Every access first locks the image and settles an interrupted write; writes in place go
through the undo journal (:mod:`partkit.flash.journal`), so a kill or power cut leaves
either the old or the new partition. Writes to a copy (``-o``) and new images go through
:func:`partkit.common.fileio.write_output` (atomic replace). docs/image.md has the full
argument.
"""

from __future__ import annotations

import errno
import os

from partkit.common.fileio import check_input, write_output
from partkit.common.record import Record
from partkit.flash.fdio import (
    CHUNK,
    ERASED,
    ERASED_CHUNK,
    copy,
    fail,
    fill,
    is_regular,
    os_error,
    pread,
    pwrite,
    read_into,
)
from partkit.flash.journal import (
    JOURNAL_SUFFIX,
    Closing,
    discard_for_replace,
    journal_path,
    open_checked,
    recover,
    set_notice_handler,
    write_journaled,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from partkit.table.model import Partition

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


# --- reading ------------------------------------------------------------------------------


class ImageReader(Closing):
    """An image opened and locked once, for many reads (inspect, content sniffing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._locked = open_checked(path, writable=False)
        self.size = os.fstat(self._locked.fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (short at the end of the image)."""
        return pread(self._locked.fd, length, offset) if length > 0 else b""

    def chunks(self, offset: int, length: int) -> Iterator[bytes]:
        done = 0
        while done < length:
            data = pread(self._locked.fd, min(CHUNK, length - done), offset + done)
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
            stripped = pread(self._locked.fd, end - start, offset + start).rstrip(fill)
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
            block = pread(fd, min(CHUNK, self.size - pos) + len(prefix) - 1, pos)
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
    with open_checked(image, writable=False) as locked:
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
        raise fail(
            image,
            f"partition '{part.name}' (0x{part.offset:x}..0x{part.end:x}) lies beyond the end "
            f"of the image ({size} bytes = 0x{size:x})",
            "the image is truncated, or the table belongs to a larger flash",
        )


# --- operations ---------------------------------------------------------------------------


def read_partition(image: str, part: Partition, output: str) -> None:
    """Copy the partition's bytes to ``output`` (a file replaced atomically, or a stream)."""
    with open_checked(image, writable=False) as locked:
        _check_inside(image, os.fstat(locked.fd).st_size, part)

        def fill(fd: int) -> None:
            copy(locked.fd, part.offset, fd, 0, part.size)

        _write_new_file(output, fill)


def _write_new_file(path: str, produce: Callable[[int], None]) -> None:
    """Create or replace ``path`` (see :func:`partkit.common.fileio.write_output`)."""
    discard_for_replace(path)
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
        raise fail(
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
            raise os_error(source, exc, "read") from None
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
    verify = is_regular(fd)
    size = min(CHUNK, part.size)
    data, back = bytearray(size), bytearray(size)
    done = 0
    while done < part.size:
        n = min(CHUNK, part.size - done)
        if n < len(data):
            data, back = data[:n], back[:n]
        from_src = max(0, min(n, src_size - done))
        if from_src and read_into(src_fd, data, done) < from_src:
            raise OSError(errno.EIO, "source ended early (file changed while writing?)")
        if from_src < n:
            data[from_src:] = ERASED_CHUNK[: n - from_src]
        if log is not None:
            log(done, data)
        _write_chunk(fd, data, part.offset + done)
        if verify and (read_into(fd, back, part.offset + done) != n or back != data):
            raise fail(path, f"read-back of partition '{part.name}' at 0x{part.offset + done:x} "
                        "does not match what was written", "the disk or filesystem may be failing")
        done += n


def _write_chunk(fd: int, data: bytearray, offset: int) -> None:
    pwrite(fd, data, offset)


def _write_in_place(image: str, part: Partition, src_fd: int, src_size: int,
                    sync: bool) -> None:
    with open_checked(image, writable=True) as locked:
        _check_inside(image, os.fstat(locked.fd).st_size, part)
        write_journaled(locked, part, src_fd, src_size, sync,
                        lambda log: _put(locked.fd, part, src_fd, src_size, image, log))


def _write_copy(image: str, part: Partition, src_fd: int, src_size: int, output: str) -> None:
    with open_checked(image, writable=False) as locked:
        size = os.fstat(locked.fd).st_size
        _check_inside(image, size, part)

        def produce(fd: int) -> None:
            # front to back, so a stream output (pipe, device) gets the same bytes
            copy(locked.fd, 0, fd, 0, part.offset)
            _put(fd, part, src_fd, src_size, output)
            copy(locked.fd, part.end, fd, part.end, size - part.end)

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
            raise fail(
                piece.path or path,
                f"{piece.label} (0x{piece.offset:x}..0x{piece.end:x}) does not fit a flash of "
                f"0x{flash_size:x} bytes",
                "increase --flash-size",
            )
    for before, after in zip(ordered, ordered[1:]):
        if after.offset < before.end:
            raise fail(
                after.path or path,
                f"{after.label} at 0x{after.offset:x} overlaps {before.label} "
                f"(0x{before.offset:x}..0x{before.end:x})",
            )

    def produce(fd: int) -> None:
        cursor = 0
        for piece in ordered:
            fill(fd, cursor, piece.offset - cursor)
            if piece.data is not None:
                pwrite(fd, piece.data, piece.offset)
            else:
                assert piece.path is not None
                src = os.open(piece.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                try:
                    copy(src, 0, fd, piece.offset, piece.size)
                finally:
                    os.close(src)
            cursor = piece.end
        fill(fd, cursor, flash_size - cursor)

    _write_new_file(path, produce)

