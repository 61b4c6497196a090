"""FAT images with ``pyfatfs``: 4 KiB sectors, no wear-levelling layer.

Such an image is what ESP-IDF mounts read-only with ``esp_vfs_fat_spiflash_mount_ro``
(raw flash access). A writable FAT mount (``..._mount_rw_wl``) expects the
wear-levelling layout, which no maintained package on PyPI builds; use ESP-IDF's
``fatfs_create_spiflash_image`` for that.
"""

from __future__ import annotations

import os
import tempfile

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.data.tree import chunks, walk

__all__ = ["SECTOR_SIZE", "build"]

SECTOR_SIZE = 4096
FAT12_MAX_CLUSTERS = 4084


def build(source: str, size: int) -> bytes:
    import importlib

    try:  # untyped library: reached through import_module so it stays Any
        PyFat = importlib.import_module("pyfatfs.PyFat").PyFat
        PyFatFS = importlib.import_module("pyfatfs.PyFatFS").PyFatFS
    except ImportError:
        from partkit.data import missing_extra

        raise missing_extra("pyfatfs", "FAT") from None
    if size % SECTOR_SIZE or size < 8 * SECTOR_SIZE:
        raise PartkitError(error(
            f"a FAT partition needs at least 8 sectors of 4 KiB, not 0x{size:x} bytes"))
    fat_type = (PyFat.FAT_TYPE_FAT12 if size // SECTOR_SIZE <= FAT12_MAX_CLUSTERS
                else PyFat.FAT_TYPE_FAT16)
    fd, scratch = tempfile.mkstemp(suffix=".fat")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\xff" * size)
        fat = PyFat()
        fat.mkfs(scratch, fat_type, size=size, sector_size=SECTOR_SIZE, label="PARTKIT")
        fat.close()
        fs = PyFatFS(scratch)
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
                SourceLocation(entry.path),
                "make the partition bigger (partkit resize --set NAME=SIZE) or store "
                "less")) from None
