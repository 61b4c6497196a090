"""LittleFS images with ``littlefs-python``: 4 KiB blocks, block count from the partition.

``name_max`` is 64, the esp_littlefs default (CONFIG_LITTLEFS_OBJ_NAME_LEN); an image with
a larger limit in its superblock would not mount on the device. The on-disk version is 2.1
unless asked otherwise: esp_littlefs before 1.6 (littlefs 2.5) mounts only 2.0.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.data.tree import chunks, walk

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["BLOCK_SIZE", "DISK_VERSIONS", "NAME_MAX", "build", "mount"]

BLOCK_SIZE = 4096
NAME_MAX = 64
# On-disk versions littlefs writes: "2.0" for esp_littlefs < 1.6 (littlefs <= 2.5).
DISK_VERSIONS = {"2.0": 0x00020000, "2.1": 0x00020001}


def _lib() -> ModuleType:
    import importlib

    try:
        return importlib.import_module("littlefs")
    except ImportError:
        from partkit.data.extras import missing_extra

        raise missing_extra("littlefs-python", "LittleFS") from None


def build(source: str, size: int, version: str = "2.1") -> bytes:
    littlefs = _lib()
    if size % BLOCK_SIZE or size < 2 * BLOCK_SIZE:
        raise PartkitError(error(
            f"a LittleFS partition needs at least 2 blocks of 4 KiB, not 0x{size:x} bytes"))
    try:
        fs = littlefs.LittleFS(block_size=BLOCK_SIZE, block_count=size // BLOCK_SIZE,
                               name_max=NAME_MAX, disk_version=DISK_VERSIONS[version])
    except TypeError:  # littlefs-python before disk_version existed
        raise PartkitError(error(
            f"--littlefs-version {version} needs a newer littlefs-python",
            None, "pip install -U littlefs-python")) from None
    total = 0
    for entry in walk(source, size, "LittleFS"):
        name = entry.inside.rsplit("/", 1)[-1]
        if len(name.encode()) > NAME_MAX:
            raise PartkitError(error(f"name longer than {NAME_MAX} bytes, the limit of "
                                     "esp_littlefs", SourceLocation(entry.path),
                                     "use a shorter name"))
        try:
            if entry.is_dir:
                fs.makedirs(entry.inside, exist_ok=True)
                continue
            with fs.open(entry.inside, "wb") as out:
                for data in chunks(entry):
                    out.write(data)
            total += entry.size
        except littlefs.errors.LittleFSError as exc:
            if exc.code == littlefs.errors.LittleFSError.Error.LFS_ERR_NOSPC:
                raise PartkitError(error(
                    f"the files do not fit a {size // 1024} KiB LittleFS partition "
                    f"(full at '{entry.inside}', {total} bytes of files so far)",
                    SourceLocation(source),
                    "make the partition bigger (partkit resize --set NAME=SIZE) or "
                    "store less")) from None
            raise
    image = bytes(fs.context.buffer)
    fs.unmount()
    return image


def mount(image: bytes) -> object:
    """A mounted LittleFS over ``image`` (for reading an image back)."""
    littlefs = _lib()
    fs = littlefs.LittleFS(block_size=BLOCK_SIZE, block_count=len(image) // BLOCK_SIZE,
                           name_max=NAME_MAX, mount=False)
    fs.context.buffer = bytearray(image)
    fs.mount()
    return fs
