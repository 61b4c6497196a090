"""parttool's Python API, on a connected chip or a flash image file.

Scripts written for ESP-IDF's ``parttool`` module keep working with the import changed
(or with this module importable under the name ``parttool``, as ESP-IDF's ``otatool.py``
imports it)::

    from partkit.parttool import (PARTITION_BOOT_DEFAULT, ParttoolTarget, PartitionName,
                                  PartitionType)

    target = ParttoolTarget("/dev/ttyUSB1")          # or ParttoolTarget(image="flash.bin")
    target.erase_partition(PartitionName("storage"))
    target.read_partition(PartitionType("data", "spiffs"), "spiffs.bin")
    target.write_partition(PartitionName("factory"), "factory.bin")
    print(target.get_partition_info(PARTITION_BOOT_DEFAULT).size)

The constructor takes ESP-IDF's parameters in ESP-IDF's order (v5.5 and later; the older
order without the two bootloader offsets, which ESP-IDF's own ``otatool.py`` still uses,
is recognised by the argument types). Like parttool, a target holds no connection
between calls, so several targets may share a port; inside ``with target:`` one
connection serves every call until the block ends. Every check (selector, read-only
flag, input size, alignment, flash encryption / secure boot) runs before the first flash
change, and every change partkit makes is verified with the flash MD5. The exceptions
are partkit's, each also an instance of what ESP-IDF raises in the same case (the table
in docs/device.md), so existing ``except`` clauses keep working.

About 700 lines on purpose: parttool's whole public surface (target, selectors, table
object, exception mapping, both argument orders) is one module, as scripts import it as
one; the device and image work itself is in :mod:`partkit.device` and :mod:`partkit.flash`.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile

from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error
from partkit.common.fileio import write_atomic
from partkit.device.esptool_run import esptool_argv, run_esptool
from partkit.device.ops import check_writable, load_table, read_input_file
from partkit.device.session import DEFAULT_CONNECT_ATTEMPTS, SECTOR, DeviceError, Session
from partkit.device.target import DeviceTarget, ImageTarget
from partkit.table.binary import encode_entry
from partkit.table.codec import encode
from partkit.table.model import Partition
from partkit.table.names import BUILTIN_SUBTYPES, TYPES, lookup
from partkit.table.options import int_option, table_options
from partkit.table.render import csv_row, flags_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import TracebackType

    from partkit.common.errors import Diagnostic
    from partkit.device.session import Progress
    from partkit.device.target import Target
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "PARTITION_BOOT_DEFAULT",
    "PARTITION_TABLE_OFFSET",
    "EsptoolError",
    "InputError",
    "InputTooBigError",
    "InputUnreadableError",
    "NoSuchPartitionError",
    "PartitionName",
    "PartitionType",
    "ParttoolPartition",
    "ParttoolTable",
    "ParttoolTarget",
    "ReadOnlyError",
    "esptool_options",
]

PARTITION_TABLE_OFFSET = 0x8000


# --- exceptions: partkit's, and what ESP-IDF raises in the same case ----------------------


class NoSuchPartitionError(PartkitError, IndexError):
    """No partition matches the selector. ESP-IDF raises ``Exception('Partition does not
    exist')``, or ``IndexError`` for a type/subtype without ``part_list``."""


class UnknownTypeError(PartkitError, ValueError):
    """A type or subtype word that is neither a keyword nor a number (ESP-IDF: ValueError)."""


class ReadOnlyError(PartkitError, SystemExit):
    """Writing a read-only partition without ``ignore_readonly``. ESP-IDF exits
    (``SystemExit`` with the message); uncaught, this exits the same way (status 1)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        PartkitError.__init__(self, diagnostic)
        self.code = diagnostic.message


class InputMissingError(PartkitError, FileNotFoundError):
    """The input file of a write does not exist (ESP-IDF: FileNotFoundError)."""


class InputUnreadableError(PartkitError, OSError):
    """The input of a write cannot be read (a directory, no permission). ESP-IDF's
    ``open()`` raises an ``OSError`` (IsADirectoryError, PermissionError)."""


class InputTooBigError(CheckFailed):
    """The input is larger than the partition (ESP-IDF: ``Exception``); unlike
    ESP-IDF, nothing was erased."""


class InputError(PartkitError, RuntimeError):
    """The partition table could not be read or parsed (ESP-IDF: gen_esp32part's
    InputError, a RuntimeError)."""


class EsptoolError(DeviceError, subprocess.CalledProcessError):
    """The device failed (no answer, link lost, verification mismatch). ESP-IDF raises
    ``subprocess.CalledProcessError`` from its esptool run; ``returncode`` is 1 and
    ``cmd`` names the operation."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...], cmd: str) -> None:
        # not CalledProcessError.__init__: its arguments are the process's
        self.diagnostics = tuple(diagnostics)
        Exception.__init__(self, "\n".join(d.format() for d in self.diagnostics))
        self.returncode = 1
        self.cmd = cmd
        self.output = self.stdout = None
        self.stderr = None

    def __str__(self) -> str:
        return PartkitError.__str__(self)


# --- selectors ----------------------------------------------------------------------------


class PartitionName:
    """Select the first partition with this exact name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.type: str | int | None = None
        self.subtype: str | int | None = None
        self.part_list: bool | None = None

    def __repr__(self) -> str:
        return f"PartitionName({self.name!r})"


class PartitionType:
    """Select by type and subtype (keywords or numbers); ``part_list``: every match."""

    def __init__(self, p_type: str | int, subtype: str | int,
                 part_list: bool | None = None) -> None:
        self.name: str | None = None
        self.type = p_type
        self.subtype = subtype
        self.part_list = part_list

    def __repr__(self) -> str:
        return f"PartitionType({self.type!r}, {self.subtype!r})"


class _BootDefault:
    """The app the bootloader starts with blank otadata: factory, else the lowest ota_N."""

    name = type = subtype = part_list = None

    def __repr__(self) -> str:
        return "PARTITION_BOOT_DEFAULT"


PARTITION_BOOT_DEFAULT = _BootDefault()


# --- the table as gen_esp32part's objects present it --------------------------------------


class ParttoolPartition(Partition):
    """A partition with gen_esp32part's ``to_csv`` and ``to_binary``."""

    __slots__ = ()

    def to_csv(self, simple_formatting: bool = False) -> str:
        """The CSV row (keywords and K/M sizes; numbers only with ``simple_formatting``)."""

        if simple_formatting:
            return (f"{self.name},{self.type},{self.subtype},0x{self.offset:x},"
                    f"0x{self.size:x},{flags_text(self)}")
        return csv_row(self, BUILTIN_SUBTYPES)

    def to_binary(self) -> bytes:
        """The 32-byte table entry."""

        return encode_entry(self)


class ParttoolTable:
    """``target.partition_table``: the table with gen_esp32part's ``PartitionTable``
    methods (iteration, ``len``, ``[index]`` and ``['name']``, ``find_by_name``,
    ``find_by_type``, ``to_csv``, ``to_binary``). ``table`` is partkit's record."""

    def __init__(self, table: PartitionTable, options: TableOptions) -> None:
        self.table = table
        self.options = options
        self._parts = [ParttoolPartition(p.name, p.type, p.subtype, p.offset, p.size,
                                         p.encrypted, p.readonly, p.loc) for p in table]

    def __iter__(self) -> Iterator[ParttoolPartition]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __getitem__(self, item: int | str) -> ParttoolPartition:
        if isinstance(item, str):
            found = self.find_by_name(item)
            if found is None:
                raise UnknownTypeError(error(f"No partition entry named '{item}'"))
            return found
        return self._parts[item]

    def __repr__(self) -> str:
        return f"ParttoolTable({self._parts!r})"

    def find_by_name(self, name: str) -> ParttoolPartition | None:
        """The first partition with exactly this name, else None."""
        return next((p for p in self._parts if p.name == name), None)

    def find_by_type(self, ptype: str | int, subtype: str | int
                     ) -> Iterator[ParttoolPartition]:
        """Every partition of this type and subtype, in table order (a generator). Words
        are exact keywords, else any-base numbers; anything else raises ValueError."""
        type_value = self._lookup(ptype, None)
        subtype_value = self._lookup(subtype, type_value)
        for p in self._parts:
            if p.type == type_value and p.subtype == subtype_value:
                yield p

    def _lookup(self, word: str | int, ptype: int | None) -> int:
        if isinstance(word, int):
            return word
        keywords = TYPES if ptype is None else self.options.subtypes.keywords(ptype)
        try:
            return lookup(word, keywords)
        except ValueError:
            what = "type" if ptype is None else "subtype"
            raise UnknownTypeError(error(
                f"unknown partition {what} '{word}'",
                hint="known: " + ", ".join(keywords) + " (or a number)")) from None

    def to_csv(self, simple_formatting: bool = False) -> str:
        rows = ["# ESP-IDF Partition Table", "# Name, Type, SubType, Offset, Size, Flags"]
        rows += [p.to_csv(simple_formatting) for p in self._parts]
        return "\n".join(rows) + "\n"

    def to_binary(self) -> bytes:
        """The 0xC00-byte binary (entries, MD5 row, 0xFF padding)."""

        return encode(self.table, self.options)


# --- esptool options ----------------------------------------------------------------------

# global esptool options partkit maps onto its own session
_GLOBAL_KEYS = {"chip", "c", "baud", "b", "before", "after", "a", "no_stub", "no-stub",
                "connect_attempts", "connect-attempts", "port", "p"}
# write-flash options that change nothing for a partition write (flash header fields only
# matter for the bootloader; partkit always compresses and always verifies)
_HARMLESS_WRITE = {"compress", "z", "no_compress", "u", "no-compress", "no_progress",
                   "no-progress", "p", "verify", "flash_mode", "flash-mode", "fm",
                   "flash_freq", "flash-freq", "ff", "flash_size", "flash-size", "fs"}


def _idf_args(tokens: Sequence[str]) -> list[str]:
    """parttool's spelling: ``key=value`` -> ``--key value``, ``word`` -> ``--word``."""

    out: list[str] = []
    for token in tokens:
        # parttool's split: the last '=' that has text on both sides (greedy key)
        pair = re.match(r"(.+)=(.+)", token)
        out += [f"--{pair.group(1)}", pair.group(2)] if pair else [f"--{token}"]
    return out


def esptool_options(tokens: Sequence[str], kind: str) -> dict[str, str] | None:
    """parttool's ``--esptool-*-args`` tokens as a dict partkit applies itself, or None
    when some token needs esptool's own command line for that step.

    ``kind`` is ``global``, ``write``, ``read`` or ``erase``. ``force`` (write/erase)
    allows changing flash with encryption / secure boot on. Global options partkit does
    not map are an error (the session is partkit's own).
    """
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.lstrip("-").partition("=")
        if kind == "global":
            if key not in _GLOBAL_KEYS:
                raise PartkitError(error(
                    f"--esptool-args: '{token}' is not supported by partkit",
                    hint="supported: chip, baud, before, after, no_stub, connect_attempts, "
                    "port (partkit runs its own esptool session)"))
            out[key.replace("-", "_")] = value if sep else ""
        elif kind in ("write", "erase") and key == "force":
            out["force"] = ""
        elif kind == "write" and key in _HARMLESS_WRITE:
            continue
        else:
            return None  # e.g. encrypt: esptool runs that step
    return out


def _parse_global(opts: dict[str, str]) -> dict[str, object]:
    rate = opts.get("baud") or opts.get("b")
    return {
        "port": opts.get("port") or opts.get("p") or None,
        "baud": int_option("baud", rate) if rate else None,
        "chip": opts.get("chip") or opts.get("c") or None,
        "before": opts.get("before") or "default-reset",
        "after": opts.get("after") or opts.get("a") or "hard-reset",
        "stub": "no_stub" not in opts,
        "connect_attempts": int_option("connect_attempts", opts["connect_attempts"])
        if opts.get("connect_attempts") else None,
    }


def _baud(value: object) -> int | None:
    """parttool only puts ``str(baud)`` on esptool's command line, so text works too."""

    if value is None or value == "":
        return None
    return value if isinstance(value, int) else int_option("baud", str(value))


def _legacy_order(primary: object, recovery: object) -> bool:
    """ESP-IDF before v5.5 (and its otatool.py, still) passes ``partition_table_file``
    and ``esptool_args`` where v5.5 put the two bootloader offsets: a path or a list in
    those places says which order the caller used."""
    return (primary is not None and not isinstance(primary, int)) or isinstance(
        recovery, (list, tuple))


# --- the target ---------------------------------------------------------------------------


class ParttoolTarget:
    """A device on ``port`` (anything esptool accepts; None: the first serial port where
    a chip answers, as esptool finds it) or a flash image file (``image``).

    The partition table comes from ``partition_table_file`` (CSV or binary) when given,
    else from the target at ``partition_table_offset``; it is read once, here.
    """

    def __init__(
        self,
        port: str | None = None,
        baud: int | None = None,
        partition_table_offset: int = PARTITION_TABLE_OFFSET,
        primary_bootloader_offset: int | None = None,
        recovery_bootloader_offset: int | None = None,
        partition_table_file: str | None = None,
        esptool_args: Sequence[str] = (),
        esptool_write_args: Sequence[str] = (),
        esptool_read_args: Sequence[str] = (),
        esptool_erase_args: Sequence[str] = (),
        *,
        extra_partition_subtypes: Sequence[str] | None = None,
        image: str | None = None,
        progress: Progress | None = None,
    ) -> None:

        self._hold = False
        self._target: Target | None = None
        if _legacy_order(primary_bootloader_offset, recovery_bootloader_offset):
            # the old order: (..., partition_table_file, esptool_args, write, read, erase).
            # Values given positionally sit two places late; keywords (the same names in
            # both orders) are already where they belong. A list where the table file is
            # means the write args came positionally, and then read and erase args given
            # positionally sit in esptool_args and esptool_write_args (a keyword for the
            # same thing would be a duplicate argument in ESP-IDF).
            given_args = recovery_bootloader_offset
            if isinstance(partition_table_file, (list, tuple)):
                esptool_write_args, esptool_read_args, esptool_erase_args = (
                    partition_table_file, esptool_args or esptool_read_args,
                    esptool_write_args or esptool_erase_args)
            partition_table_file = primary_bootloader_offset  # type: ignore[assignment]
            if given_args is not None:
                esptool_args = given_args  # type: ignore[assignment]
            primary_bootloader_offset = recovery_bootloader_offset = None
        if port is not None and image is not None:
            raise PartkitError(error("give a port or an image file, not both"))
        self.port = port
        self.baud = baud
        self.image = image
        self.progress = progress
        # parttool's attributes: the options as esptool receives them
        self.esptool_args = _idf_args(esptool_args or ())
        self.esptool_write_args = _idf_args(esptool_write_args or ())
        self.esptool_read_args = _idf_args(esptool_read_args or ())
        self.esptool_erase_args = _idf_args(esptool_erase_args or ())
        self._connection = _parse_global(esptool_options(esptool_args or (), "global") or {})
        self._write = esptool_options(esptool_write_args or (), "write")
        self._read = esptool_options(esptool_read_args or (), "read")
        self._erase = esptool_options(esptool_erase_args or (), "erase")
        self.options: TableOptions = table_options(
            # numbers, or text as parttool passes it on to esptool (str(offset))
            offset=str(partition_table_offset),
            primary_bootloader_offset=None if primary_bootloader_offset is None
            else str(primary_bootloader_offset),
            recovery_bootloader_offset=None if recovery_bootloader_offset is None
            else str(recovery_bootloader_offset),
            verify=False, extra_subtypes=tuple(extra_partition_subtypes or ()))
        table, self.warnings = self._load_table(partition_table_file or None)
        self.partition_table = ParttoolTable(table, self.options)

    def _load_table(self, table_file: str | None
                    ) -> tuple[PartitionTable, tuple[Diagnostic, ...]]:

        if table_file is not None and not os.path.exists(table_file):
            raise InputMissingError(error(  # ESP-IDF open()s it: FileNotFoundError
                "no such file", SourceLocation(str(table_file)),
                f"check the partition table path (relative paths resolve from {os.getcwd()})"))
        try:
            if table_file is not None:
                return load_table(None, self.options, table_file)
            with self._connect() as target:
                return load_table(target, self.options)
        except DeviceError as exc:  # ESP-IDF's esptool run: CalledProcessError
            raise EsptoolError(exc.diagnostics, "read the partition table") from None
        except PartkitError as exc:
            raise InputError(exc.diagnostics) from None

    # --- connection -------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Target]:
        """The target for one operation: the held connection inside ``with``, else a
        fresh one released afterwards (so other targets may use the port)."""
        if self._target is not None:
            yield self._target
            return
        target = self._open()
        if self._hold:
            self._target = target
            yield target
            return
        try:
            yield target
        finally:
            target.close()

    def _open(self) -> Target:
        if self.image is not None:
            return ImageTarget(self.image)

        c = self._connection
        session = Session(  # port and baud as esptool sees parttool's argv: the last wins
            str(self.port or c["port"] or "") or None,
            baud=_baud(self.baud) or c["baud"],  # type: ignore[arg-type]
            chip=c["chip"],  # type: ignore[arg-type]
            before=str(c["before"]), after=str(c["after"]), stub=bool(c["stub"]),
            connect_attempts=c["connect_attempts"] or DEFAULT_CONNECT_ATTEMPTS,  # type: ignore[arg-type]
        )
        session.open()
        if self.port is None and session.auto_port:
            self.port = session.port  # found by scanning, as esptool does: keep it
        return DeviceTarget(session)

    def _release(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            target.close()

    def close(self) -> None:
        """Release a held connection (reset the chip, close the port). The target stays
        usable: a later call connects again."""
        self._hold = False
        self._release()

    def __enter__(self) -> ParttoolTarget:
        self._hold = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- operations -------------------------------------------------------------------

    @staticmethod
    def _wants_list(partition_id: object) -> bool:
        return (not getattr(partition_id, "name", None)
                and getattr(partition_id, "type", None) not in (None, "")
                and getattr(partition_id, "subtype", None) not in (None, "")
                and bool(getattr(partition_id, "part_list", None)))

    def _find(self, partition_id: object) -> list[ParttoolPartition]:
        """parttool's selection: by name, else by type and subtype (both given), else the
        boot default. Any object with those attributes selects (ESP-IDF's too)."""
        if not all(hasattr(partition_id, a) for a in ("name", "type", "subtype")):
            raise PartkitError(error(
                f"not a partition selector: {partition_id!r}",
                hint="use PartitionName(name), PartitionType(type, subtype) or "
                "PARTITION_BOOT_DEFAULT"))
        table = self.partition_table
        name = getattr(partition_id, "name", None)
        ptype = getattr(partition_id, "type", None)
        subtype = getattr(partition_id, "subtype", None)
        if name:
            found = [p for p in [table.find_by_name(name)] if p is not None]
        elif ptype not in (None, "") and subtype not in (None, ""):
            found = list(table.find_by_type(ptype, subtype))
            found = found if self._wants_list(partition_id) else found[:1]
        else:
            boot = table.table.boot_default()
            found = [] if boot is None else [table[list(table.table).index(boot)]]
        if not found:
            names = ", ".join(p.name for p in table) or "(none: the table is empty)"
            raise NoSuchPartitionError(error(f"partition does not exist: {partition_id!r}",
                                             hint=f"partitions: {names}"))
        return found

    def get_partition_info(self, partition_id: object
                           ) -> ParttoolPartition | list[ParttoolPartition]:
        """The selected partition (``.name .type .subtype .offset .size .encrypted
        .readonly``); a list for ``PartitionType(..., part_list=True)``."""
        found = self._find(partition_id)
        return found if self._wants_list(partition_id) else found[0]

    def read_partition(self, partition_id: object, output: str) -> None:
        """Copy the partition's bytes to the file ``output`` (written atomically)."""
        part = self._find(partition_id)[0]
        if self._read is None:
            self._esptool_read(part, output)
            return
        with self._device_step("read", part) as target:
            target.read_partition(part, output, self.progress)

    def write_partition(self, partition_id: object, input: str,
                        ignore_readonly: bool = False) -> None:
        """Write the file ``input`` at the partition's start; the rest becomes 0xFF."""

        part = self._find(partition_id)[0]
        where = self.image or self.port or "the device"
        try:
            check_writable(part, ignore_readonly, self.partition_table.table.path or where,
                           hint="pass ignore_readonly=True (--ignore-readonly) to change it "
                           "anyway")
        except PartkitError as exc:
            raise ReadOnlyError(exc.diagnostics[0]) from None
        if not os.path.exists(input):
            raise InputMissingError(error("no such file", SourceLocation(input),
                                          "check the path (relative paths resolve from "
                                          f"{os.getcwd()})"))
        try:  # read once (a pipe cannot be read twice), bounded by the partition
            data = read_input_file(part, input, where)
        except CheckFailed as exc:
            raise InputTooBigError(exc.diagnostics) from None
        except PartkitError as exc:
            raise InputUnreadableError(exc.diagnostics) from None
        if self._write is None and self.image is not None:  # checked before any change
            raise PartkitError(error(
                "--esptool-write-args " + " ".join(self.esptool_write_args) + " apply to a "
                "device, not an image (an image file has no encryption engine)",
                hint="write the image with encryption on the device (esptool --encrypt), "
                "or leave the write options out"))
        force = "force" in (self._write or {}) or "force" in (self._erase or {})
        if self._write is None and self.image is None:
            self._esptool_write(part, data)
            return
        with self._device_step("write", part) as target:
            target.write_partition(part, data, force_security=force, progress=self.progress)

    def erase_partition(self, partition_id: object) -> None:
        """Set every byte of the partition to 0xFF (read-only ones too, as parttool)."""
        part = self._find(partition_id)[0]
        if self._erase is None and self.image is None:
            self._esptool_erase(part)
            return
        with self._device_step("erase", part) as target:
            target.erase_partition(part, force_security="force" in (self._erase or {}),
                                   progress=self.progress)

    @contextlib.contextmanager
    def _device_step(self, verb: str, part: Partition) -> Iterator[Target]:
        """Connect for one step; a device failure becomes :class:`EsptoolError`."""
        try:
            with self._connect() as target:
                yield target
        except EsptoolError:
            raise
        except KeyboardInterrupt:  # the link is mid-command: connect afresh next time
            with contextlib.suppress(Exception):
                self._release()
            raise
        except DeviceError as exc:
            if self._target is not None:  # the link is gone: connect afresh next time
                with contextlib.suppress(Exception):
                    self._release()
            raise EsptoolError(exc.diagnostics, f"{verb} partition '{part.name}'") from None

    # --- steps esptool runs (options partkit does not map, e.g. encrypt) ----------------

    def _esptool(self, command: str, args: Sequence[str], what: str, part: Partition) -> None:
        self._release()  # esptool needs the port
        c = self._connection
        argv = esptool_argv(self.esptool_args, str(self.port or c["port"] or "") or None,
                            self.baud, command, args)
        try:
            run_esptool(argv, what)
        except DeviceError as exc:
            raise EsptoolError(exc.diagnostics, " ".join(argv)) from None
        except KeyboardInterrupt:  # esptool is stopped with us: say what it may have left
            state = ("nothing on the device was changed" if command == "read-flash" else
                     f"0x{part.offset:x}..0x{part.end:x} may have changed (erased or partly "
                     "written); nothing outside the partition was touched; run the same "
                     "command again to rewrite the whole partition")
            raise KeyboardInterrupt(f"{what} (esptool) was cut short: {state}") from None

    def _esptool_read(self, part: Partition, output: str) -> None:
        """esptool reads into a private file; partkit then writes ``output`` the way it
        writes every output (atomically for files; a pipe or device is written to, never
        renamed over)."""


        if self.image is not None:
            raise PartkitError(error("--esptool-read-args apply to a device, not an image"))
        fd, tmp = tempfile.mkstemp(prefix=".partkit-read-", suffix=".bin")
        os.close(fd)
        try:
            self._esptool("read-flash", [str(part.offset), str(part.size), tmp,
                                         *self.esptool_read_args],
                          f"reading partition '{part.name}'", part)
            with open(tmp, "rb") as f:
                data = f.read()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        write_atomic(output, data)

    def _check_change(self, part: Partition, verb: str, force: bool) -> None:
        """partkit's device checks (inside the flash, sector-aligned, security) before
        esptool runs a step: esptool would not make them all."""
        with self._device_step(verb, part) as target:
            target.check_change(part, verb, force)

    def _esptool_erase(self, part: Partition) -> None:
        self._check_change(part, "erase", "force" in (self._erase or {}))
        self._esptool("erase-region", [str(part.offset), str(part.size),
                                       *self.esptool_erase_args],
                      f"erasing partition '{part.name}'", part)

    def _esptool_write(self, part: Partition, data: bytes) -> None:
        """esptool writes the data (with the user's write options, e.g. ``encrypt``);
        partkit erases the rest of the partition, and verifies the erased tail. The
        checks come first, so a refusal comes before any change; esptool gets the bytes
        partkit read and checked (a copy: the input may be a pipe, or change)."""


        head = -(-len(data) // SECTOR) * SECTOR
        tail = Partition(part.name, part.type, part.subtype, part.offset + head,
                         part.size - head, part.encrypted, part.readonly, part.loc)
        force = "force" in (self._erase or {}) or "--force" in self.esptool_write_args
        self._check_change(part, "write", force)
        fd, copy = tempfile.mkstemp(prefix=".partkit-write-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._esptool("write-flash", [str(part.offset), copy, *self.esptool_write_args],
                          f"writing partition '{part.name}'", part)
        finally:
            os.unlink(copy)
        if tail.size:
            with self._device_step("erase", tail) as target:
                target.erase_partition(tail, force_security=force)
