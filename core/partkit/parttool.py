"""parttool's Python API, on a connected chip or a flash image file.

Scripts written for ESP-IDF's ``parttool`` module keep working with the import changed::

    from partkit.parttool import (PARTITION_BOOT_DEFAULT, ParttoolTarget, PartitionName,
                                  PartitionType)

    target = ParttoolTarget("/dev/ttyUSB1")          # or ParttoolTarget(image="flash.bin")
    target.erase_partition(PartitionName("storage"))
    target.read_partition(PartitionType("data", "spiffs"), "spiffs.bin")
    target.write_partition(PartitionName("factory"), "factory.bin")
    print(target.get_partition_info(PARTITION_BOOT_DEFAULT).size)

Differences that make it safer: one esptool connection for the target's lifetime (close
it with :meth:`ParttoolTarget.close` or a ``with`` block), every check (selector,
read-only flag, input size, alignment, flash encryption / secure boot) before the first
flash change, every change verified with the flash MD5, and errors are
:class:`~partkit.common.errors.PartkitError` with a clear message (``DeviceError`` when
the device failed, saying which range may have changed). docs/device.md has the details.
"""

from __future__ import annotations

import contextlib

from partkit.common.errors import PartkitError, error
from partkit.device.ops import check_fits, check_writable, load_table, read_input_file
from partkit.device.session import DEFAULT_CONNECT_ATTEMPTS, Session
from partkit.device.target import DeviceTarget, ImageTarget
from partkit.flash.partinfo import select
from partkit.table.options import int_option, table_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from partkit.device.session import Progress
    from partkit.device.target import Target
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "PARTITION_BOOT_DEFAULT",
    "PARTITION_TABLE_OFFSET",
    "PartitionName",
    "PartitionType",
    "ParttoolTarget",
    "esptool_options",
]

PARTITION_TABLE_OFFSET = 0x8000


class PartitionName:
    """Select the first partition with this exact name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"PartitionName({self.name!r})"


class PartitionType:
    """Select by type and subtype (keywords or numbers); ``part_list``: every match."""

    def __init__(self, type: str | int, subtype: str | int, part_list: bool = False) -> None:
        self.type = str(type)
        self.subtype = str(subtype)
        self.part_list = part_list

    def __repr__(self) -> str:
        return f"PartitionType({self.type!r}, {self.subtype!r})"


class _BootDefault:
    """The app the bootloader starts with blank otadata: factory, else the lowest ota_N."""

    def __repr__(self) -> str:
        return "PARTITION_BOOT_DEFAULT"


PARTITION_BOOT_DEFAULT = _BootDefault()

# esptool options parttool passes through that partkit maps to its own settings
_GLOBAL_KEYS = {"chip", "baud", "b", "before", "after", "no_stub", "no-stub",
                "connect_attempts", "connect-attempts", "port", "p"}
# write-flash options that change nothing for a partition write (flash header fields only
# matter for the bootloader; partkit always compresses and always verifies)
_HARMLESS_WRITE = {"compress", "z", "no_compress", "u", "no-compress", "no_progress",
                   "no-progress", "verify", "flash_mode", "flash-mode", "fm",
                   "flash_freq", "flash-freq", "ff", "flash_size", "flash-size", "fs"}


def esptool_options(tokens: Sequence[str], kind: str) -> dict[str, str]:
    """parttool's ``--esptool-*-args`` tokens (``key=value`` or ``flag``) as a dict.

    ``kind`` is ``global``, ``write``, ``read`` or ``erase``. ``force`` (write/erase) is
    the one that matters: it allows changing flash with encryption / secure boot on.
    Options partkit cannot honour are an error rather than silently ignored.
    """
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.lstrip("-").partition("=")
        if kind == "global" and key in _GLOBAL_KEYS:
            out[key.replace("-", "_")] = value if sep else ""
        elif kind in ("write", "erase") and key == "force":
            out["force"] = ""
        elif kind == "write" and key in _HARMLESS_WRITE:
            continue
        else:
            supported = {
                "global": "chip, baud, before, after, no_stub, connect_attempts",
                "write": "force (and the ignored compress/flash_mode/flash_freq/flash_size)",
                "read": "none",
                "erase": "force",
            }[kind]
            raise PartkitError(error(
                f"--esptool-{kind}-args: '{token}' is not supported by partkit",
                hint=f"supported: {supported}" if kind != "global" else
                f"supported: {supported} (the esptool session is partkit's own)"))
    return out


class ParttoolTarget:
    """A device on ``port`` (anything esptool accepts) or a flash image file (``image``).

    The partition table comes from ``partition_table_file`` (CSV or binary) when given,
    else from the target at ``partition_table_offset``; it is read once, here.
    """

    def __init__(
        self,
        port: str | None = None,
        partition_table_offset: int = PARTITION_TABLE_OFFSET,
        partition_table_file: str | None = None,
        esptool_args: Sequence[str] = (),
        esptool_write_args: Sequence[str] = (),
        esptool_read_args: Sequence[str] = (),
        esptool_erase_args: Sequence[str] = (),
        baud: int | None = None,
        primary_bootloader_offset: int | None = None,
        recovery_bootloader_offset: int | None = None,
        extra_partition_subtypes: Sequence[str] | None = None,
        *,
        image: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        if port is not None and image is not None:
            raise PartkitError(error("give a port or an image file, not both"))
        if port is None and image is None and partition_table_file is None:
            raise PartkitError(error("no target: give a port or an image file",
                                     hint="ParttoolTarget('/dev/ttyUSB0') or "
                                     "ParttoolTarget(image='flash.bin'); with only "
                                     "partition_table_file, get_partition_info works"))
        opts = esptool_options(esptool_args, "global")
        self._write_force = "force" in esptool_options(esptool_write_args, "write")
        self._erase_force = "force" in esptool_options(esptool_erase_args, "erase")
        esptool_options(esptool_read_args, "read")
        self.progress = progress
        self.options: TableOptions = table_options(
            offset=hex(partition_table_offset),
            primary_bootloader_offset=None if primary_bootloader_offset is None
            else hex(primary_bootloader_offset),
            recovery_bootloader_offset=None if recovery_bootloader_offset is None
            else hex(recovery_bootloader_offset),
            verify=False, extra_subtypes=tuple(extra_partition_subtypes or ()))
        self._target: Target | None = None
        if port is not None or image is not None:
            self._target = self._open(port, image, baud, opts)
        try:
            table, self.warnings = load_table(self._target, self.options, partition_table_file)
        except BaseException:
            self.close()
            raise
        self.partition_table: PartitionTable = table

    @staticmethod
    def _open(port: str | None, image: str | None, baud: int | None,
              opts: dict[str, str]) -> Target:
        if image is not None:
            return ImageTarget(image)
        port = opts.get("port") or opts.get("p") or port
        assert port is not None
        rate = opts.get("baud") or opts.get("b")
        session = Session(
            port,
            baud=int_option("baud", rate) if rate else baud,
            chip=opts.get("chip") or None,
            before=opts.get("before") or "default-reset",
            after=opts.get("after") or "hard-reset",
            stub="no_stub" not in opts,
            connect_attempts=int_option("connect_attempts", opts["connect_attempts"])
            if opts.get("connect_attempts") else DEFAULT_CONNECT_ATTEMPTS,
        )
        session.open()
        return DeviceTarget(session)

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Reset the chip and close the port (no-op for images and when closed)."""
        target = getattr(self, "_target", None)
        self._target = None
        self._closed = True
        if target is not None:
            target.close()

    def __enter__(self) -> ParttoolTarget:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _live(self) -> Target:
        if self._target is None:
            if getattr(self, "_closed", False):
                raise PartkitError(error("this ParttoolTarget is closed"))
            raise PartkitError(error("no device or image to operate on (only a table file)",
                                     hint="give a port (--port) or an image (--image)"))
        return self._target

    # --- operations ---------------------------------------------------------------------

    def _find(self, partition_id: object) -> list[Partition]:
        table = self.partition_table
        if isinstance(partition_id, PartitionName):
            found = select(table, name=partition_id.name)
        elif isinstance(partition_id, PartitionType):
            found = select(table, type=partition_id.type, subtype=partition_id.subtype,
                           part_list=partition_id.part_list, subtypes=self.options.subtypes)
        elif isinstance(partition_id, _BootDefault):
            found = select(table, boot_default=True)
        else:
            raise PartkitError(error(
                f"not a partition selector: {partition_id!r}",
                hint="use PartitionName(name), PartitionType(type, subtype) or "
                "PARTITION_BOOT_DEFAULT"))
        if not found:
            names = ", ".join(p.name for p in table) or "(none)"
            raise PartkitError(error(f"partition does not exist: {partition_id!r}",
                                     hint=f"partitions: {names}"))
        return list(found)

    def get_partition_info(self, partition_id: object) -> Partition | list[Partition]:
        """The selected partition (``.name .type .subtype .offset .size .encrypted
        .readonly``); a list for ``PartitionType(..., part_list=True)``."""
        found = self._find(partition_id)
        if isinstance(partition_id, PartitionType) and partition_id.part_list:
            return found
        return found[0]

    def read_partition(self, partition_id: object, output: str) -> None:
        """Copy the partition's bytes to the file ``output`` (written atomically)."""
        part = self._find(partition_id)[0]
        self._live().read_partition(part, output, self.progress)

    def write_partition(self, partition_id: object, input: str,
                        ignore_readonly: bool = False) -> None:
        """Write the file ``input`` at the partition's start; the rest becomes 0xFF."""
        import os


        target = self._live()
        part = self._find(partition_id)[0]
        check_writable(part, ignore_readonly, self.partition_table.path or target.label,
                       hint="pass ignore_readonly=True (--ignore-readonly) to change it anyway")
        data = read_input_file(input, part.size)
        check_fits(part, os.path.getsize(input), input, target.label)
        target.write_partition(part, data, force_security=self._write_force or self._erase_force,
                               progress=self.progress)

    def erase_partition(self, partition_id: object) -> None:
        """Set every byte of the partition to 0xFF."""
        part = self._find(partition_id)[0]
        self._live().erase_partition(part, force_security=self._erase_force,
                                     progress=self.progress)
