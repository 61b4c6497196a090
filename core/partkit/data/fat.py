"""Raw FAT images with ``pyfatfs``: FAT12, 4 KiB sectors, no wear-levelling layer.

Such an image is what ESP-IDF mounts read-only with ``esp_vfs_fat_spiflash_mount_ro``
(raw flash access). Arduino's FFat, ``esp_vfs_fat_spiflash_mount_rw_wl`` and pioarduino's
``board_build.filesystem = fatfs`` expect ESP-IDF's wear-levelled layout:
:mod:`partkit.data.fat_wl` wraps a volume made here in it.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import tempfile

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.data.tree import Entry, chunks, walk

__all__ = ["DEFAULT_TIME", "SECTOR_SIZE", "build", "build_time", "volume_serial"]

SECTOR_SIZE = 4096
# Reproducible images: every timestamp is SOURCE_DATE_EPOCH, else this fixed time (the FAT
# epoch, 1980-01-01 00:00:00 UTC); the volume serial comes from the files, not the clock.
DEFAULT_TIME = 315532800
_LAST_FAT_TIME = 4354819199  # 2107-12-31 23:59:59 UTC, the last time FAT can store


def build_time() -> int:
    """SOURCE_DATE_EPOCH (clamped to what FAT can store), else :data:`DEFAULT_TIME`; a
    value that is not a count of seconds is bad input (the reproducible-builds
    specification: fail rather than silently use another time)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "")
    text = raw.strip()
    if not text:
        return DEFAULT_TIME
    if not (text.isascii() and text.isdigit()):
        raise PartkitError(error(
            f"'{raw}' is not a count of seconds since 1970-01-01 UTC",
            SourceLocation("SOURCE_DATE_EPOCH"),
            "set it to a whole number, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), "
            "or unset it"))
    return min(max(int(text), DEFAULT_TIME), _LAST_FAT_TIME)


def volume_serial(source: str, size: int) -> int:
    """A volume serial derived from the files (names and contents) and the size: the same
    inputs give the same serial, other inputs almost surely another."""

    digest = hashlib.sha256(str(size).encode())
    files = [e for e in walk(source, size, "FAT") if not e.is_dir]  # checked, never a FIFO

    def walk_order(entry: Entry) -> list[tuple[int, str]]:  # os.walk's: files, then subdirs
        *dirs, name = entry.inside.split("/")
        return [(1, d) for d in dirs] + [(0, name)]

    for entry in sorted(files, key=walk_order):
        digest.update(entry.inside.encode() + b"\0")
        content = hashlib.sha256()
        for data in chunks(entry):
            content.update(data)
        digest.update(content.digest())
    return int.from_bytes(digest.digest()[:4], "little") or 1  # pyfatfs takes 0 as "make one"


class _FixedClock:
    """pyfatfs stamps every entry with DosDateTime.now(): make "now" one fixed time."""

    def __init__(self, when: int) -> None:
        self.when = when

    def __enter__(self) -> None:
        import importlib

        dos = importlib.import_module("pyfatfs.DosDateTime").DosDateTime
        when = self.when
        self.saved = dos.__dict__.get("now")

        def now(cls: type, tz: datetime.tzinfo | None = None) -> object:
            return cls.fromtimestamp(when, tz=datetime.timezone.utc)  # type: ignore[attr-defined]

        dos.now = classmethod(now)
        self.dos = dos

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            del self.dos.now
        else:
            self.dos.now = self.saved


def build(source: str, size: int) -> bytes:
    import importlib

    try:  # untyped library: reached through import_module so it stays Any
        PyFat = importlib.import_module("pyfatfs.PyFat").PyFat
        PyFatFS = importlib.import_module("pyfatfs.PyFatFS").PyFatFS
    except ImportError:
        from partkit.data.extras import missing_extra

        raise missing_extra("pyfatfs", "FAT") from None
    if size % SECTOR_SIZE or size < 8 * SECTOR_SIZE:
        raise PartkitError(error(
            f"a FAT partition needs at least 8 sectors of 4 KiB, not 0x{size:x} bytes"))
    # FAT12 at every flash size: with 4 KiB sectors pyfatfs grows the cluster (1, 2, 4 ...
    # sectors) so the count stays under FAT12's limit; its FAT16 table starts at 4.1 MB of
    # 512-byte sectors and rejects partitions of 16 MB and more.
    fat_type = PyFat.FAT_TYPE_FAT12
    fd, scratch = tempfile.mkstemp(suffix=".fat")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(size))  # pyfatfs keeps a root directory it finds; start blank
        with _FixedClock(build_time()):
            fat = PyFat()
            fat.mkfs(scratch, fat_type, size=size, sector_size=SECTOR_SIZE, label="PARTKIT",
                     volume_id=volume_serial(source, size))
            fat.close()
            fs = PyFatFS(scratch, utc=True)
            try:
                _copy(fs, source, size)
            finally:
                fs.close()
        with open(scratch, "rb") as f:
            image = f.read()
    finally:
        os.unlink(scratch)
    if len(image) > size:
        # pyfatfs allocates past the end of the volume instead of failing.
        raise PartkitError(error(
            f"the files do not fit a {size // 1024} KiB FAT partition (they need at least "
            f"{len(image) - size} bytes more)", SourceLocation(source),
            "make the partition bigger (partkit resize --set NAME=SIZE) or store less"))
    return image


def _copy(fs: object, source: str, size: int) -> None:
    import importlib

    PyFATException = importlib.import_module("pyfatfs._exceptions").PyFATException

    for entry in walk(source, size, "FAT"):
        inside = "/" + entry.inside
        try:
            if entry.is_dir:
                fs.makedirs(inside, recreate=True)  # type: ignore[attr-defined]
                continue
            with fs.openbin(inside, "w") as out:  # type: ignore[attr-defined]
                for data in chunks(entry):
                    out.write(data)
        except PyFATException as exc:
            raise PartkitError(error(
                f"cannot add '{inside}' to a {size // 1024} KiB FAT image: {exc}",
                SourceLocation(entry.path), _hint(exc))) from None


def _hint(exc: Exception) -> str:
    """Room is only the answer when room ran out: a bad name needs another name."""

    if getattr(exc, "errno", None) == errno.ENOSPC:
        return "make the partition bigger (partkit resize --set NAME=SIZE) or store less"
    if getattr(exc, "errno", None) == errno.ENAMETOOLONG:
        return "FAT names hold at most 255 characters: rename the file or folder"
    return ("rename the file or folder: FAT forbids some characters and names "
            "(e.g. \\ : * ? \" < > | and trailing dots or spaces)")
