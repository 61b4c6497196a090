"""One esptool connection to a chip in its serial bootloader, for a whole operation.

parttool starts ``python -m esptool`` once per step (read the table, erase, write), and
each start resets the chip, syncs, and uploads the flasher stub again. A :class:`Session`
does that once and then runs every step over the same link. esptool is used as a
library and imported only here, when a session opens (extra ``partkit[device]``).

Everything esptool prints is captured (no output outside the CLI); the tail of it is kept
for error messages. Failures become :class:`DeviceError` (exit 1) with what was going on.

Reads with the flasher stub use its streaming READ_FLASH command (4 KiB packets, each
acknowledged by the host, an MD5 digest at the end). A stream can stall: a bootloader
that stops sending after a missed acknowledgement window (esp32-mock-bootloader waits
only 50 ms for each acknowledgement, then drops the stream without its digest). partkit
then resumes at the first byte it has not received, and checks the whole range with the
device's flash MD5 once done, so a resumed read is verified end to end too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import struct
import zlib

from partkit.common.errors import PartkitError, error
from partkit.device.security import Security, from_security_info

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType, TracebackType
    from typing import Any

    Progress = Callable[[int, int], None]

__all__ = [
    "DEVICE_EXTRA_HINT",
    "SECTOR",
    "DeviceError",
    "Session",
    "chip_key",
    "flash_size_from_id",
    "require_esptool",
    "serial_ports",
]

SECTOR = 0x1000  # SPI flash erase unit
DEVICE_EXTRA_HINT = "install the device extra: pip install partkit[device]"
DEFAULT_CONNECT_ATTEMPTS = 7  # esptool's default
ROM_BAUD = 115200
_CMD_READ_FLASH = 0xD2  # the stub's streaming read (esptool < 5 has no ESP_CMDS table)
_READ_PACKET = 0x1000  # bytes per READ_FLASH packet (what esptool asks for)
_READ_IN_FLIGHT = 64  # packets the stub may send ahead of the acknowledgements
_MAX_STALLS = 8  # resumes in a row without a single new byte before giving up
_LOG_TAIL = 3  # esptool log lines quoted in an error


class DeviceError(PartkitError):
    """The device did not do what was asked (no answer, link lost, verify failed): exit 1."""

    exit_code = 1


def require_esptool() -> ModuleType:
    """The esptool package, or a clear error naming the extra to install (exit 2)."""
    import importlib

    try:  # untyped library: reached through import_module so it stays Any
        esptool = importlib.import_module("esptool")
        for part in ("cmds", "loader"):
            importlib.import_module(f"esptool.{part}")
    except ImportError:
        raise PartkitError(error(
            "talking to a device needs esptool, which is not installed",
            hint=DEVICE_EXTRA_HINT)) from None
    return esptool


def chip_key(name: str) -> str:
    """esptool's chip name (``ESP32-C3``) as partkit spells chips (``esp32c3``)."""
    return name.lower().replace("-", "").replace("_", "")


def flash_size_from_id(flash_id: int) -> int | None:
    """Flash size in bytes from the JEDEC id's capacity byte (None when unknown)."""
    code = (flash_id >> 16) & 0xFF
    if 0x12 <= code <= 0x1C:  # most vendors: 2**code bytes
        return 1 << code
    if 0x32 <= code <= 0x3A:  # some vendors offset the code by 0x20
        return 1 << (code - 0x20)
    if 0x20 <= code <= 0x22:  # 64 MB and above on some parts
        return (64 << 20) << (code - 0x20)
    return None


def _socket_port(url: str) -> Any:
    """A ``socket://`` port tuned for esptool's read protocol (None where unavailable:
    esptool then opens the URL itself).

    pyserial's socket port reports at most 1 byte waiting, so esptool's SLIP reader
    fetches one byte per system call (a 4 KiB packet costs thousands); FIONREAD gives the
    real count. TCP_NODELAY and TCP_QUICKACK keep Nagle's algorithm and delayed ACKs (on
    either side) from holding the small acknowledgements and packets back by ~40 ms each.
    """
    import importlib

    try:
        import fcntl
        import termios

        Serial: Any = importlib.import_module("serial.urlhandler.protocol_socket").Serial
    except ImportError:
        return None

    quickack = getattr(socket, "TCP_QUICKACK", None)  # Linux

    class _Socket(Serial):  # type: ignore[misc]
        @property
        def in_waiting(self) -> int:
            sock = getattr(self, "_socket", None)
            if not self.is_open or sock is None:
                return int(super().in_waiting)
            raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            return int(struct.unpack("I", raw)[0])

        def read(self, size: int = 1) -> bytes:
            sock = getattr(self, "_socket", None)
            if quickack is not None and sock is not None:
                # acknowledge at once: the peer may hold its next segment until we do
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            return bytes(super().read(size))

    port = _Socket(None)
    port.port = url
    port.open()
    # acknowledgements are 4-byte writes: without TCP_NODELAY, Nagle's algorithm holds
    # each one until the peer's delayed ACK (~40 ms on Linux) lets it go
    port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return port


def serial_ports() -> list[str]:
    """The serial ports esptool would try when no port is given, in its order."""
    import importlib

    esptool = require_esptool()
    listing = getattr(esptool, "get_port_list", None)
    if listing is not None:
        return [str(p) for p in listing()]
    comports = importlib.import_module("serial.tools.list_ports").comports
    return sorted(str(p.device) for p in comports())


class Session:
    """A connected chip: flash reads, writes, erases and MD5s over one esptool link.

    Use as a context manager; :meth:`open` connects (reset into the bootloader, sync,
    chip detection, security query, flasher stub), :meth:`close` resets the chip as
    ``after`` says and closes the port. Without a ``port``, :meth:`open` tries every
    serial port esptool lists, in its order, and keeps the first where a chip answers
    (``port`` then names it).
    """

    def __init__(
        self,
        port: str | None,
        *,
        baud: int | None = None,
        chip: str | None = None,
        before: str = "default-reset",
        after: str = "hard-reset",
        stub: bool = True,
        connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS,
        trace: bool = False,
    ) -> None:
        self.port = port or ""
        self.auto_port = not port
        self.baud = baud
        self.chip = chip
        self.before = before.replace("_", "-")
        self.after = after.replace("_", "-")
        self.stub = stub
        self.connect_attempts = connect_attempts
        self.trace = trace
        self.log = io.StringIO()  # everything esptool printed
        self.chip_name = ""
        self.flash_size: int | None = None
        self.security = Security(None, None)
        self.resumed_reads = 0  # stalled read streams that were resumed (for the report)
        self.written = 0  # bytes of the last write the device acknowledged (estimate)
        # exact progress of the last write: compressed bytes/blocks acknowledged, of total
        self.acked = (0, 0)
        self.acked_blocks = (0, 0)
        self._esp: Any = None
        self._esptool: Any = None

    # --- connection ---------------------------------------------------------------------

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()  # --after applies after a refusal or failure too, as with esptool

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        with contextlib.redirect_stdout(self.log), contextlib.redirect_stderr(self.log):
            yield

    def _log_tail(self) -> str:
        lines = [ln.strip() for ln in self.log.getvalue().splitlines()
                 if ln.strip() and "VID/PID" not in ln]  # socket:// ports have none
        return " | ".join(lines[-_LOG_TAIL:])

    def _fail(self, what: str, exc: BaseException, hint: str | None = None) -> DeviceError:
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        notes: tuple[tuple[None, str], ...] = ()
        tail = self._log_tail()
        if tail:
            notes = ((None, f"esptool said: {tail}"),)
        return DeviceError(error(f"{what}: {reason}", None, hint, notes))

    def _errors(self) -> tuple[type[BaseException], ...]:
        import importlib

        serial_error = importlib.import_module("serial").SerialException
        return (self._esptool.FatalError, serial_error, OSError, struct.error)

    def open(self) -> None:
        esptool = require_esptool()
        self._esptool = esptool
        if not self.auto_port:
            self._connect(esptool)
            return
        candidates = serial_ports()
        if not candidates:
            raise DeviceError(error(
                "no port given and no serial port found",
                hint="connect the device, or give its port (--port /dev/ttyUSB0, COM3, "
                "socket://host:port)"))
        failures: list[tuple[None, str]] = []
        for candidate in candidates:
            self.port = candidate
            try:
                self._connect(esptool)
                return
            except PartkitError as exc:  # no chip, or another kind than --chip: go on
                if self.chip is None and not isinstance(exc, DeviceError):
                    raise
                failures.append((None, f"{candidate}: {exc.diagnostics[0].message}"))
        self.port = ""
        raise DeviceError(error(
            f"no port given, and no {self.chip or 'chip'} answered on any of the "
            f"{len(candidates)} serial "
            "port(s) found", hint="give the port (--port); is the chip in its serial "
            "bootloader?", notes=tuple(failures)))

    def _connect(self, esptool: Any) -> None:
        detect_chip = esptool.cmds.detect_chip

        link: Any = self.port
        try:
            if self.port.startswith("socket://"):
                link = _socket_port(self.port) or self.port
        except Exception as exc:
            raise self._fail(f"cannot open {self.port}", exc,
                             "is the device (or the bootloader mock) running on that "
                             "address?") from None
        baud = self.baud or ROM_BAUD
        before = self.before
        if str(getattr(esptool, "__version__", "5")).split(".")[0] in ("2", "3", "4"):
            before = before.replace("-", "_")  # esptool < 5 spells modes with underscores
        try:
            with self._quiet():
                esp = detect_chip(link, min(baud, ROM_BAUD), before, self.trace,
                                  self.connect_attempts)
        except self._errors() as exc:
            if not isinstance(link, str):
                with contextlib.suppress(Exception):
                    link.close()
            raise self._fail(f"cannot connect to a chip on {self.port}", exc,
                             "check the port, that the chip is in its serial bootloader "
                             "(hold BOOT while resetting) and that no other program uses "
                             "the port") from None
        self._esp = esp
        self.chip_name = chip_key(esp.CHIP_NAME)
        try:
            if self.chip is not None and chip_key(self.chip) != self.chip_name:
                raise PartkitError(error(
                    f"--chip {self.chip}, but the device on {self.port} is an "
                    f"{esp.CHIP_NAME}", hint="give the right --chip, or leave it out"))
            with self._quiet():
                self.security = self._query_security(esp)
                if self.stub and not getattr(esp, "secure_download_mode", False):
                    esp = self._esp = esp.run_stub()
                if self.baud and self.baud != ROM_BAUD:
                    esp.change_baud(self.baud)
                esp.flash_spi_attach(0)
                self.flash_size = flash_size_from_id(esp.flash_id())
                if self.flash_size is not None:
                    esp.flash_set_parameters(self.flash_size)
        except self._errors() as exc:
            self.close(reset=False)
            raise self._fail(f"cannot prepare the {esp.CHIP_NAME} on {self.port}", exc) from None
        except BaseException:
            self.close(reset=False)
            raise

    def _query_security(self, esp: Any) -> Security:
        try:
            info = esp.get_security_info()
        except self._errors():
            info = None  # ESP32 / ESP8266 ROMs lack the command: ask the eFuses instead
        if info is not None:
            return from_security_info(int(info["flags"]), int(info["flash_crypt_cnt"]))
        try:
            return Security(bool(esp.get_flash_encryption_enabled()),
                            bool(esp.get_secure_boot_enabled()))
        except self._errors():
            return Security(None, None)

    def close(self, reset: bool = True) -> None:
        esp, self._esp = self._esp, None
        if esp is None:
            return
        with self._quiet(), contextlib.suppress(Exception):
            if reset and self.after == "hard-reset":
                esp.hard_reset()
            elif reset and self.after == "soft-reset":
                esp.soft_reset(False)
        with contextlib.suppress(Exception):
            esp._port.close()

    @property
    def is_stub(self) -> bool:
        return bool(self._esp is not None and self._esp.IS_STUB)

    def _loader(self) -> Any:
        if self._esp is None:
            raise PartkitError(error(f"not connected to {self.port}"))
        return self._esp

    # --- flash primitives ---------------------------------------------------------------

    def md5(self, offset: int, length: int) -> str:
        """The device's MD5 of a flash range, lower-case hex."""
        esp = self._loader()
        try:
            with self._quiet():
                return str(esp.flash_md5sum(offset, length)).lower()
        except self._errors() as exc:
            raise self._fail(f"flash MD5 of 0x{offset:x}..0x{offset + length:x} failed",
                             exc) from None

    def read(self, offset: int, length: int, progress: Progress | None = None) -> bytes:
        """``length`` bytes of flash from ``offset``."""
        esp = self._loader()
        if length <= 0:
            return b""
        try:
            with self._quiet():
                if not esp.IS_STUB:  # ROM loader: 64-byte request/answer reads
                    def report(done: int, *_: object) -> None:
                        if progress is not None:
                            progress(done, length)

                    return bytes(esp.read_flash(offset, length, report))
                return self._stub_read(esp, offset, length, progress)
        except self._errors() as exc:
            raise self._fail(f"reading 0x{offset:x}..0x{offset + length:x} failed", exc) from None

    def _packet_timeout(self) -> float:
        """How long one READ_FLASH packet may take before the stream counts as stalled."""
        bits = _READ_PACKET * 10  # start + 8 data + stop bits per byte
        return 0.25 + 2.0 * bits / (self.baud or ROM_BAUD)

    def _stub_read(self, esp: Any, offset: int, length: int,
                   progress: Progress | None) -> bytes:
        out = bytearray()
        stalls = 0
        resumed = False
        while True:
            before = len(out)
            if self._stream(esp, offset, length, out, progress):
                break
            # stalled: drop what is left of the stream and ask again from the first byte
            # not received; the final flash MD5 covers the pieces
            resumed = True
            self.resumed_reads += 1
            stalls = stalls + 1 if len(out) == before else 0
            if stalls >= _MAX_STALLS:
                raise self._esptool.FatalError(
                    f"the device stopped sending after {len(out)} of {length} bytes")
            esp.flush_input()
        if resumed:
            want = hashlib.md5(out).hexdigest()
            got = str(esp.flash_md5sum(offset, length)).lower()
            if got != want:
                raise self._esptool.FatalError(
                    f"read data does not match the flash MD5 (read {want}, flash {got})")
        return bytes(out)

    def _stream(self, esp: Any, offset: int, length: int, out: bytearray,
                progress: Progress | None) -> bool:
        """One READ_FLASH stream for what ``out`` still lacks; False if it stalled."""
        FatalError = self._esptool.FatalError
        start = offset + len(out)
        want = length - len(out)
        if want > 0:
            esp.check_command("read flash", _CMD_READ_FLASH,
                              struct.pack("<IIII", start, want, _READ_PACKET, _READ_IN_FLIGHT))
        got = bytearray()
        esp._port.timeout = self._packet_timeout()
        try:
            while len(got) < want:
                packet = esp.read()
                got += packet
                if len(got) > want:
                    raise FatalError("the device sent more than was asked for")
                esp.write(struct.pack("<I", len(got)))
                if len(got) < want and len(packet) < _READ_PACKET:
                    raise FatalError(f"short packet of {len(packet)} bytes")
                out += packet
                if progress is not None:
                    progress(len(out), length)
            if want <= 0:
                return True
            digest = esp.read()
        except FatalError as exc:
            if "stopped" in str(exc) or "No serial data" in str(exc):
                return False  # stall, not a protocol error: resume
            raise
        if len(digest) != 16 or digest != hashlib.md5(got).digest():
            raise FatalError("the read stream's MD5 digest does not match its data")
        return True

    def write(self, offset: int, data: bytes, progress: Progress | None = None) -> None:
        """Write ``data`` (a whole number of sectors) at ``offset`` (sector-aligned).

        The stub erases each sector just before writing it; the ROM erases the whole
        range first. Data goes compressed. Raises DeviceError; ``written`` then says how
        many bytes the device had acknowledged.
        """
        esp = self._loader()
        self.written = 0
        packed = zlib.compress(data, 9)
        block = esp.FLASH_WRITE_SIZE
        count = (len(packed) + block - 1) // block
        ratio = len(data) / max(1, len(packed))
        self.acked = (0, len(packed))
        self.acked_blocks = (0, count)
        try:
            with self._quiet():
                esp.flash_defl_begin(len(data), len(packed), offset)
                for seq in range(count):
                    chunk = packed[seq * block:(seq + 1) * block]
                    esp.flash_defl_block(chunk, seq, timeout=self._write_timeout(
                        len(chunk) * ratio))
                    self.acked = (min(len(packed), (seq + 1) * block), len(packed))
                    self.acked_blocks = (seq + 1, count)
                    self.written = min(len(data), int((seq + 1) * block * ratio))
                    if progress is not None:
                        progress(self.written, len(data))
                if esp.IS_STUB:
                    # the stub acknowledges a block before writing it: a last command
                    # returns only once the final block is in flash
                    esp.read_reg(esp.CHIP_DETECT_MAGIC_REG_ADDR,
                                 timeout=self._write_timeout(block * ratio))
                self.written = len(data)
        except self._errors() as exc:
            raise self._fail(f"writing 0x{offset:x}..0x{offset + len(data):x} failed",
                             exc) from None

    def _write_timeout(self, uncompressed: float) -> float:
        loader = self._esptool.loader
        per_mb = float(loader.ERASE_WRITE_TIMEOUT_PER_MB)
        return max(float(loader.DEFAULT_TIMEOUT), per_mb * uncompressed / 1e6)

    def erase(self, offset: int, length: int) -> None:
        """Erase whole sectors (``offset`` and ``length`` sector-aligned)."""
        esp = self._loader()
        if length <= 0:
            return
        if not esp.IS_STUB:  # the ROM has no erase-region: write 0xFF, which erases first
            self.write(offset, b"\xff" * length)
            return
        try:
            with self._quiet():
                esp.erase_region(offset, length)
        except self._errors() as exc:
            raise self._fail(f"erasing 0x{offset:x}..0x{offset + length:x} failed",
                             exc) from None
