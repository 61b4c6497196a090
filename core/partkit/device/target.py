"""Flash behind one small interface: a connected chip or a flash image file.

:class:`DeviceTarget` runs over a :class:`~partkit.device.session.Session`;
:class:`ImageTarget` delegates to :mod:`partkit.flash.imagefile` (undo journal, locks,
read-back). The checks that do not depend on the medium (selection, read-only flag, size)
live in :mod:`partkit.device.ops` and run before either is asked to change anything.

Padding rule for both: the data goes to the start of the partition and the rest of the
partition becomes 0xFF, which is what parttool leaves on a device (erase, then write).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.fileio import write_atomic
from partkit.device.session import SECTOR, DeviceError
from partkit.flash import imagefile
from partkit.flash.tablearea import read_table_area
from partkit.table.binary import MAGIC, MAX_TABLE_BYTES, MD5_MARKER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.device.session import Progress, Session
    from partkit.table.model import Partition

__all__ = ["DeviceTarget", "ImageTarget", "Target", "is_blank"]


def is_blank(data: bytes) -> bool:
    """Erased flash: parttool (gen_esp32part) reads a blank table area as an empty table."""
    return data.count(0xFF) == len(data)


class Target(ABC):
    """Where partitions live. ``label`` names it in messages (a port or a path)."""

    label = ""

    @abstractmethod
    def read(self, offset: int, length: int, progress: Progress | None = None) -> bytes:
        ...

    def read_table_area(self, offset: int, blank_ok: bool = False) -> bytes:
        """The table area at ``offset``; an error when it holds no partition table
        (a blank area too, unless ``blank_ok``: parttool reads it as an empty table)."""
        data = self.read(offset, MAX_TABLE_BYTES)
        if data[:2] != MAGIC and data[:16] != MD5_MARKER and not (blank_ok and is_blank(data)):
            # (gen's empty table is the MD5 row alone; a blank area, an empty table)
            raise PartkitError(error(
                f"no partition table at 0x{offset:x} (found bytes {data[:4].hex(' ')}, "
                "expected aa 50)", SourceLocation(f"{self.label}@0x{offset:x}"),
                "is the right firmware flashed? give the table offset (--offset) or the "
                "table file (--table)"))
        return data

    @abstractmethod
    def read_partition(self, part: Partition, output: str,
                       progress: Progress | None = None) -> None:
        ...

    @abstractmethod
    def write_partition(self, part: Partition, data: bytes, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:
        """``data`` (at most ``part.size`` bytes, checked by the caller), rest 0xFF; verified."""
        ...

    @abstractmethod
    def erase_partition(self, part: Partition, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:
        ...

    def check_change(self, part: Partition, verb: str, force_security: bool) -> None:  # noqa: B027
        """Refuse (before anything changes) what :meth:`write_partition` or
        :meth:`erase_partition` would refuse; nothing to refuse by default."""

    def close(self) -> None:  # noqa: B027  (optional: nothing to release by default)
        """Release the target (for a device: reset the chip and close the port)."""


class ImageTarget(Target):
    """A flash image file; ``output`` writes changes to a copy, ``sync`` flushes each step."""

    def __init__(self, path: str, *, output: str | None = None, sync: bool = False) -> None:
        self.label = path
        self.path = path
        self.output = output
        self.sync = sync

    def read_table_area(self, offset: int, blank_ok: bool = False) -> bytes:
        if blank_ok and imagefile.image_size(self.path) >= offset + MAX_TABLE_BYTES:
            data = imagefile.read_region(self.path, offset, MAX_TABLE_BYTES)
            if is_blank(data):
                return data  # an empty table, as parttool reads it
        return read_table_area(self.path, offset, "--partition-table-offset N or "
                               "--partition-table-file FILE")

    def read(self, offset: int, length: int, progress: Progress | None = None) -> bytes:
        size = imagefile.image_size(self.path)
        if offset + length > size:
            raise PartkitError(error(
                f"0x{offset:x}..0x{offset + length:x} lies beyond the end of the image "
                f"({size} bytes = 0x{size:x})", SourceLocation(self.path),
                "is this a complete flash image?"))
        return imagefile.read_region(self.path, offset, length)

    def read_partition(self, part: Partition, output: str,
                       progress: Progress | None = None) -> None:
        imagefile.read_partition(self.path, part, output)

    def write_partition(self, part: Partition, data: bytes, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:


        directory = os.path.dirname(os.path.abspath(self.output or self.path))
        fd, tmp = tempfile.mkstemp(prefix=".partkit-data-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            imagefile.write_partition(self.path, part, tmp, output=self.output, sync=self.sync)
        finally:
            os.unlink(tmp)

    def erase_partition(self, part: Partition, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:
        imagefile.erase_partition(self.path, part, output=self.output, sync=self.sync)


class DeviceTarget(Target):
    """A chip over an open session. Refuses, before touching flash, to change a partition
    that is not sector-aligned, lies beyond the flash, or sits on a device with flash
    encryption or secure boot enabled (unless ``force_security``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.label = session.port

    def close(self) -> None:
        self.session.close()

    def read(self, offset: int, length: int, progress: Progress | None = None) -> bytes:
        size = self.session.flash_size
        if size is not None and offset + length > size:
            raise PartkitError(error(
                f"0x{offset:x}..0x{offset + length:x} lies beyond the end of the "
                f"{size >> 20} MB flash of the device on {self.label}"))
        return self.session.read(offset, length, progress)

    def read_partition(self, part: Partition, output: str,
                       progress: Progress | None = None) -> None:
        self._inside(part)
        write_atomic(output, self.read(part.offset, part.size, progress))

    def _inside(self, part: Partition) -> None:
        size = self.session.flash_size
        if size is not None and part.end > size:
            raise PartkitError(error(
                f"partition '{part.name}' (0x{part.offset:x}..0x{part.end:x}) lies beyond the "
                f"end of the device's flash ({size} bytes = 0x{size:x})",
                hint="the table belongs to a device with a larger flash"))

    def check_change(self, part: Partition, verb: str, force_security: bool) -> None:
        self._inside(part)
        if part.offset % SECTOR or part.size % SECTOR:
            raise PartkitError(error(
                f"partition '{part.name}' (0x{part.offset:x}, size 0x{part.size:x}) is not "
                f"aligned to the 4 KiB flash sector; refusing to {verb} it, the erase would "
                "also hit its neighbours", hint="fix the table (partkit show checks alignment)"))
        active = self.session.security.active
        if active and not force_security:
            raise PartkitError(error(
                f"the device on {self.label} has {' and '.join(active)} enabled; refusing "
                f"to {verb} partition '{part.name}': plaintext written to encrypted flash, or "
                "an erased region secure boot depends on, can leave a device that no longer "
                "boots",
                hint="if you know the data is right for this device, force it "
                "(partkit device: --force-security; parttool: --esptool-erase-args=force)"))

    def write_partition(self, part: Partition, data: bytes, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:
        if len(data) > part.size:  # the last guard: nothing is ever written past a partition
            raise PartkitError(error(
                f"{len(data)} bytes do not fit partition '{part.name}' of {part.size} bytes; "
                f"refusing to write past it", hint=f"{self.label} was not changed"))
        self.check_change(part, "write", force_security)
        padded = data + b"\xff" * (-len(data) % SECTOR)
        expected = hashlib.md5(data + b"\xff" * (part.size - len(data))).hexdigest()
        self._change(part, padded, expected, progress)

    def erase_partition(self, part: Partition, *, force_security: bool = False,
                        progress: Progress | None = None) -> None:
        self.check_change(part, "erase", force_security)
        expected = hashlib.md5(b"\xff" * part.size).hexdigest()
        self._change(part, b"", expected, progress)

    def _change(self, part: Partition, head: bytes, expected: str,
                progress: Progress | None) -> None:
        """Write ``head`` at the partition start, erase the rest, check the flash MD5."""
        session = self.session
        session.written = 0
        step = "writing"
        try:
            if head:
                session.write(part.offset, head, progress)
            step = "erasing"
            session.erase(part.offset + len(head), part.size - len(head))
            step = "verifying"
            got = session.md5(part.offset, part.size)
        except DeviceError as exc:
            raise _interrupted(part, step, len(head), session, self.label, exc) from None
        except KeyboardInterrupt:
            # Ctrl-C half way stays a KeyboardInterrupt (exit 130; not a device failure a
            # script's `except` would swallow), carrying the same report of what may
            # have changed
            stop = DeviceError(error("interrupted (Ctrl-C)"))
            report = _interrupted(part, step, len(head), session, self.label, stop)
            raise KeyboardInterrupt(
                report.diagnostics[0].message.replace(" failed: ", " was cut short: ", 1)
                + "; nothing outside the partition was touched; run the same command again "
                "to rewrite the whole partition") from None
        if got != expected:
            raise DeviceError(error(
                f"verification failed: partition '{part.name}' (0x{part.offset:x}..0x"
                f"{part.end:x}) on {self.label} has flash MD5 {got}, expected {expected}",
                hint="the partition holds unknown data now; write it again, and if that "
                "fails too, the flash may be worn or write-protected"))
        if progress is not None:
            progress(part.size, part.size)


def _acknowledged(session: Session) -> str:
    """What the device confirmed of a write, in the units it confirms: compressed blocks.
    How many flash bytes those hold is not known exactly (the stub inflates them)."""
    (done, total), (blocks, count) = session.acked, session.acked_blocks
    return (f"the device had acknowledged {done} of {total} bytes of compressed data, "
            f"{blocks} of {count} blocks")


def _interrupted(part: Partition, step: str, head: int, session: Session, label: str,
                 cause: DeviceError) -> DeviceError:
    """What may have changed when the link failed half way through changing a partition."""
    span = f"0x{part.offset:x}..0x{part.end:x}"
    rest = (f"; 0x{part.offset + head:x}..0x{part.end:x} was not touched yet"
            if part.offset + head < part.end else "")
    if step == "verifying":
        state = (f"the new contents were sent completely but could not be verified; "
                 f"partition '{part.name}' ({span}) probably holds them")
    elif step == "erasing" and not head:
        state = f"{span} may be partly erased"
    elif step == "erasing":
        state = (f"0x{part.offset:x}..0x{part.offset + head:x} was written; "
                 f"0x{part.offset + head:x}..0x{part.end:x} may be partly erased")
    else:
        state = (f"0x{part.offset:x}..0x{part.offset + head:x} may be erased or partially "
                 f"written ({_acknowledged(session)}){rest}")
    notes = ((None, "nothing outside the partition was touched"),
             *((None, d.message) for d in cause.diagnostics),
             *(n for d in cause.diagnostics for n in d.notes))
    return DeviceError(error(
        f"{step} partition '{part.name}' on {label} failed: {state}", None,
        "reconnect and run the same command again: it rewrites the whole partition",
        notes))
