"""A mock ESP32-C3 in its ROM bootloader (esp32-mock-bootloader) for the device tests.

The mock runs as our own child process (``esp32-mock-bootloader run``) on a free loopback
port with a private state directory, so a test can kill exactly that process. Its flash
lives in that process and survives reconnects. :meth:`MockDevice.read` and
:meth:`MockDevice.write` go through a separate ``python -m esptool`` process (ROM mode),
independent of partkit. :class:`Proxy` sits between a client and the mock to change one
answer or to cut the link at a chosen moment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.tools import missing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"esp32-mock-bootloader exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"esp32-mock-bootloader did not listen on {port} in {timeout} s")


class MockDevice:
    """One mock bootloader process on ``socket://127.0.0.1:PORT``."""

    def __init__(self, state_dir: Path, chip: str = "esp32c3") -> None:
        exe = shutil.which("esp32-mock-bootloader", path=str(Path(sys.executable).parent)) \
            or shutil.which("esp32-mock-bootloader")
        if exe is None:
            missing("esp32-mock-bootloader is not installed (it is in the test extra)")
        assert exe is not None
        try:
            import esptool  # noqa: F401
        except ImportError:
            missing("esptool is not installed (it is in the test and device extras)")
        self.exe = exe
        self.chip = chip
        self.state_dir = state_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (again, after :meth:`kill`: with a blank flash) on a new free port."""
        self.port = free_port()
        env = dict(os.environ, ESP32_MOCK_BOOTLOADER_STATE_DIR=str(self.state_dir))
        self.proc = subprocess.Popen(
            [self.exe, "run", "--chip", self.chip, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _wait_listening(self.port, self.proc)

    def kill(self) -> None:
        """SIGKILL our mock process (the link drops at once, as when a cable is pulled)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def _esptool(self, *args: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "esptool", "--chip", self.chip, "-p", self.url, "--no-stub",
             *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def read(self, tmp: Path, offset: int, size: int) -> bytes:
        """Flash contents, read by a separate esptool process in ROM mode."""
        out = tmp / f"esptool-read-{offset:x}-{size:x}.bin"
        self._esptool("read-flash", hex(offset), hex(size), str(out))
        data = out.read_bytes()
        out.unlink()
        return data

    def write(self, tmp: Path, offset: int, data: bytes) -> None:
        src = tmp / f"esptool-write-{offset:x}.bin"
        src.write_bytes(data)
        self._esptool("write-flash", hex(offset), str(src))
        src.unlink()


class Proxy:
    """TCP relay ``socket://127.0.0.1:PORT`` -> the mock, one client at a time.

    ``on_client(frame)`` sees each SLIP frame the client sends (decoded); returning False
    drops the link there (after the hook ran). ``on_device(frame)`` may rewrite each
    frame the device sends.
    """

    def __init__(self, target_port: int,
                 on_client: Callable[[bytes], bool] | None = None,
                 on_device: Callable[[bytes], bytes] | None = None) -> None:
        self.target_port = target_port
        self.on_client = on_client
        self.on_device = on_device
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.closed = False
        self.connections = 0  # clients accepted so far
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.closed = True
        self.srv.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            try:
                device = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for src, dst, hook in ((client, device, "client"), (device, client, "device")):
                threading.Thread(target=self._pump, args=(src, dst, hook, client, device),
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, side: str,
              client: socket.socket, device: socket.socket) -> None:
        buf = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                buf += chunk
                out = b""
                while True:  # complete SLIP frames: C0 ... C0
                    start = buf.find(b"\xc0")
                    if start < 0:
                        break
                    end = buf.find(b"\xc0", start + 1)
                    if end < 0:
                        break
                    raw = buf[start + 1:end]
                    if raw == b"":  # "C0 C0": the second one starts the next frame
                        buf = buf[end:]
                        continue
                    buf = buf[end + 1:]
                    frame = raw.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
                    if (side == "client" and self.on_client is not None and frame
                            and not self.on_client(frame)):
                        dst.sendall(out)
                        raise ConnectionAbortedError
                    if side == "device" and self.on_device is not None and frame:
                        frame = self.on_device(frame)
                    out += b"\xc0" + frame.replace(b"\xdb", b"\xdb\xdd").replace(
                        b"\xc0", b"\xdb\xdc") + b"\xc0"
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (client, device):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


class SilentPort:
    """A TCP port that accepts connections and never answers (a device that is off)."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.srv.close()
