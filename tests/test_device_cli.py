"""``partkit device`` against esp32-mock-bootloader over socket:// (esptool's real protocol).

Every command runs on a mock ESP32-C3 whose flash holds the table of
tests/data/device/partitions.csv. What partkit wrote is read back by a separate
``python -m esptool`` process, so the checks do not trust partkit's own reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.flash import otadata
from partkit.table.codec import encode
from partkit.flash.tablearea import load_table_file
from partkit.table.options import table_options
from support.mock_device import MockDevice, Proxy, SilentPort

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "tests" / "data" / "device" / "partitions.csv"
TABLE = encode(load_table_file(str(CSV), table_options()).table, table_options())

STORAGE = (0x70000, 0x10000)
FACTORY = (0x10000, 0x20000)


def flash_table(mock: MockDevice, tmp: Path) -> None:
    mock.write(tmp, 0x8000, TABLE)


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    flash_table(device, tmp)
    yield device  # type: ignore[misc]
    device.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pattern(size: int, seed: int) -> bytes:
    """Data that compresses poorly and differs per seed."""
    import hashlib

    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def test_show_reads_the_table_off_the_device(mock: MockDevice,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "device", "--port", mock.url, "show")
    assert code == 0
    assert "esp32c3, 4 MB flash, no flash encryption, no secure boot" in out
    assert "storage" in out and "0x70000" in out and "readonly" in out
    code, out, _ = run(capsys, "device", "show", "--port", mock.url, "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["device"]["chip"] == "esp32c3" and doc["device"]["flash_size"] == 4 << 20
    assert [p["name"] for p in doc["partitions"]][:3] == ["nvs", "otadata", "phy_init"]


def test_info_lists_and_selects_like_image_info(mock: MockDevice,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "device", "--port", mock.url, "info")
    assert code == 0 and out.splitlines()[0].split() == ["Name", "Type", "SubType", "Offset",
                                                         "Size", "Flags"]
    assert len(out.splitlines()) == 10
    code, out, _ = run(capsys, "device", "--port", mock.url, "info", "-t", "data", "-s", "nvs",
                       "--info", "name", "offset", "size", "encrypted")
    assert (code, out) == (0, "nvs 0x9000 0x4000 False\n")
    code, out, _ = run(capsys, "device", "info", "--port", mock.url, "-d", "--info", "size")
    assert (code, out) == (0, "0x20000\n")
    code, out, _ = run(capsys, "device", "--port", mock.url, "info", "-n", "storage", "--json")
    assert json.loads(out)[0]["offset"] == STORAGE[0]


def test_write_then_read_back(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    data = pattern(5000, 1)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "storage", str(src))
    assert code == 0, err
    assert "verified (flash MD5)" in err
    expected = data + b"\xff" * (STORAGE[1] - len(data))  # the rest of the partition: 0xFF
    assert mock.read(tmp_path, *STORAGE) == expected
    out = tmp_path / "out.bin"
    code, _, err = run(capsys, "device", "--port", mock.url, "read", "-n", "storage",
                       "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == expected


def test_erase(mock: MockDevice, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mock.write(tmp_path, STORAGE[0], pattern(0x3000, 2))
    code, _, err = run(capsys, "device", "--port", mock.url, "erase", "-t", "data", "-s",
                       "spiffs")
    assert code == 0, err
    assert "Erased partition 'storage'" in err
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]


def test_too_big_write_leaves_flash_unchanged(mock: MockDevice,
                                              capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    before = pattern(STORAGE[1], 3)
    mock.write(tmp_path, STORAGE[0], before)
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(STORAGE[1] + 1, 4))
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "storage", str(big))
    assert code == 1
    assert "65537 bytes (0x10001) do not fit partition 'storage'" in err
    assert "Traceback" not in err
    assert mock.read(tmp_path, *STORAGE) == before


def test_readonly_needs_force(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    mock.write(tmp_path, 0x81000, b"\x11" * 0x1000)
    src = tmp_path / "calib.bin"
    src.write_bytes(b"\x22" * 100)
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "calib", str(src))
    assert code == 2
    assert "partition 'calib' is read-only; refusing to write it" in err
    assert mock.read(tmp_path, 0x81000, 0x1000) == b"\x11" * 0x1000
    # one rule with parttool: erase does not consult the readonly flag (docs/device.md)
    code, _, err = run(capsys, "device", "--port", mock.url, "erase", "-n", "calib")
    assert code == 0, err
    assert mock.read(tmp_path, 0x81000, 0x1000) == b"\xff" * 0x1000
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "calib", str(src),
                       "--force")
    assert code == 0, err
    assert mock.read(tmp_path, 0x81000, 0x1000) == b"\x22" * 100 + b"\xff" * (0x1000 - 100)


def test_bad_selector(mock: MockDevice, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "device", "--port", mock.url, "read", "-n", "storag", "-o", "x")
    assert code == 2
    assert "no partition named 'storag'" in err and "did you mean 'storage'?" in err
    code, _, err = run(capsys, "device", "--port", mock.url, "erase", "-t", "data")
    assert code == 2 and "--subtype is required with --type" in err


def test_otadata_and_set_boot(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    mock.write(tmp_path, 0xd000, b"\xff" * 0x2000)
    mock.write(tmp_path, 0x50000, b"\xe9" + b"\x00" * 0xfff)  # an app header in ota_1
    code, out, _ = run(capsys, "device", "--port", mock.url, "otadata")
    assert code == 0
    assert "sector 0: erased" in out and "boots: factory" in out
    code, _, err = run(capsys, "device", "--port", mock.url, "set-boot", "--slot", "ota_0")
    assert code == 1 and "holds no app image" in err  # ota_0 is blank
    code, _, err = run(capsys, "device", "--port", mock.url, "set-boot", "--slot", "ota_1")
    assert code == 0, err
    entries = otadata.decode(mock.read(tmp_path, 0xd000, 0x2000))
    assert otadata.active_slot(entries, 2) == 1
    code, out, _ = run(capsys, "device", "--port", mock.url, "otadata", "--json")
    doc = json.loads(out)
    assert (doc["active_slot"], doc["boots"]) == (1, "ota_1")


def test_table_file_option(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                           tmp_path: Path) -> None:
    code, out, _ = run(capsys, "device", "--port", mock.url, "--table", str(CSV), "info", "-n",
                       "calib", "--info", "offset", "readonly")
    assert (code, out) == (0, "0x81000 True\n")


def test_no_table_on_the_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    try:
        # blank flash: an empty table (as parttool reads it), said as a warning
        code, out, err = run(capsys, "device", "--port", device.url, "info", "-n", "nvs")
        blank = (code, out, err)
        code, out, err = run(capsys, "device", "--port", device.url, "info")
        listing = (code, out)
        device.write(tmp_path, 0x8000, b"\x12\x34" * 0x600)
        code, _, err = run(capsys, "device", "--port", device.url, "info")
    finally:
        device.stop()
    assert blank[0] == 2 and "is blank (all 0xFF): an empty partition table" in blank[2]
    assert "no partition named 'nvs'" in blank[2]
    assert listing[0] == 0 and listing[1].split() == ["Name", "Type", "SubType", "Offset",
                                                      "Size", "Flags"]
    assert code == 2
    assert "no partition table at 0x8000 (found bytes 12 34 12 34" in err


def test_set_boot_states_as_image_set_boot(mock: MockDevice,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for state in ("invalid", "aborted"):
        with pytest.raises(SystemExit) as exc:  # argparse: not a choice, as in image set-boot
            run(capsys, "device", "--port", mock.url, "set-boot", "--slot", "ota_1",
                "--state", state)
        assert exc.value.code == 2
        assert f"invalid choice: '{state}'" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            run(capsys, "image", "set-boot", "x.bin", "--slot", "ota_1", "--state", state)
        assert f"invalid choice: '{state}'" in capsys.readouterr().err


def test_port_found_by_scanning(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    silent = SilentPort()
    try:  # the serial ports esptool would list: the first has no chip behind it
        monkeypatch.setattr("partkit.device.session.serial_ports",
                            lambda: [silent.url, mock.url])
        code, out, err = run(capsys, "device", "--connect-attempts", "1", "info", "-n", "nvs")
        assert (code, out) == (0, "0x9000 0x4000\n"), err
        monkeypatch.setattr("partkit.device.session.serial_ports", lambda: [silent.url])
        code, _, err = run(capsys, "device", "--connect-attempts", "1", "info")
        assert code == 1 and "no chip answered on any of the 1 serial port(s)" in err
        assert silent.url in err
    finally:
        silent.close()


def test_port_that_does_not_answer(capsys: pytest.CaptureFixture[str]) -> None:
    silent = SilentPort()
    try:
        code, _, err = run(capsys, "device", "--port", silent.url, "--connect-attempts", "2",
                           "info")
    finally:
        silent.close()
    assert code == 1
    assert f"error: cannot connect to a chip on {silent.url}" in err
    assert "Traceback" not in err


def test_nothing_listening(capsys: pytest.CaptureFixture[str]) -> None:
    from support.mock_device import free_port

    url = f"socket://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "device", "--port", url, "show")
    assert code == 1 and f"cannot open {url}" in err and "Connection refused" in err


def test_connection_dropped_mid_write(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    blocks = []

    def kill_on_third_block(frame: bytes) -> bool:
        if frame[:2] == b"\x00\x11":  # FLASH_DEFL_DATA
            blocks.append(len(frame))
            if len(blocks) == 3:
                device.kill()
                return False
        return True

    try:
        flash_table(device, tmp_path)
        proxy = Proxy(device.port, on_client=kill_on_third_block)
        src = tmp_path / "app.bin"
        src.write_bytes(pattern(0x18000, 5))
        code, _, err = run(capsys, "device", "--port", proxy.url, "write", "-n", "factory",
                           str(src))
        proxy.close()
    finally:
        device.stop()
    assert len(blocks) == 3
    assert code == 1
    assert "error: writing partition 'factory'" in err
    assert "0x10000..0x28000 may be erased or partially written" in err
    assert "0x28000..0x30000 was not touched yet" in err
    # what the device confirmed, exactly (the documented example: docs/device.md)
    assert "(the device had acknowledged 32768 of 98340 bytes of compressed data, 2 of 7 " \
        "blocks)" in err
    assert "nothing outside the partition was touched" in err
    assert "Traceback" not in err


def _security_on(flag_byte: int, crypt_cnt: int):  # type: ignore[no-untyped-def]
    def rewrite(frame: bytes) -> bytes:
        if frame[:2] == b"\x01\x14" and len(frame) >= 13:  # GET_SECURITY_INFO answer
            flags = struct.unpack_from("<I", frame, 8)[0] | flag_byte
            return frame[:8] + struct.pack("<IB", flags, crypt_cnt) + frame[13:]
        return frame
    return rewrite


@pytest.mark.parametrize(("flags", "crypt", "what"), [(1, 0, "secure boot"),
                                                      (0, 1, "flash encryption")])
def test_refuses_changes_with_security_enabled(mock: MockDevice,
                                               capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, flags: int, crypt: int,
                                               what: str) -> None:
    before = pattern(STORAGE[1], 6)
    mock.write(tmp_path, STORAGE[0], before)
    proxy = Proxy(mock.port, on_device=_security_on(flags, crypt))
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x33" * 64)
    try:
        code, out, err = run(capsys, "device", "--port", proxy.url, "show")
        assert code == 0 and what in out
        for argv in (("write", "-n", "storage", str(src)), ("erase", "-n", "storage")):
            code, _, err = run(capsys, "device", "--port", proxy.url, *argv)
            assert code == 2
            assert f"the device on {proxy.url} has {what} enabled; refusing to" in err
            assert "--force-security" in err
        assert mock.read(tmp_path, *STORAGE) == before
        code, _, err = run(capsys, "device", "--port", proxy.url, "erase", "-n", "storage",
                           "--force-security")
        assert code == 0, err
    finally:
        proxy.close()
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]


def test_cli_subprocess_help_and_missing_extra(mock: MockDevice) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "partkit", "device", "write", "--help"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0
    for option in ("--port", "--baud", "--chip", "--offset", "--table", "--force",
                   "--force-security", "--name", "exit status:"):
        assert option in proc.stdout
    code = ("import sys; sys.modules['esptool'] = None; from partkit.cli import main; "
            f"raise SystemExit(main(['device', '--port', '{mock.url}', 'info']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 2
    assert "needs esptool, which is not installed" in proc.stderr
    assert "pip install partkit[device]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rom_loader_only(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                         tmp_path: Path) -> None:
    """--no-stub: ROM reads (64 bytes a request) and erases written as 0xFF, still verified."""
    data = pattern(3000, 7)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    code, _, err = run(capsys, "device", "--port", mock.url, "--no-stub", "write", "-n",
                       "nvs", str(src))
    assert code == 0, err
    out = tmp_path / "out.bin"
    code, _, err = run(capsys, "device", "--port", mock.url, "--no-stub", "read", "-n", "nvs",
                       "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == data + b"\xff" * (0x4000 - 3000)
    code, _, err = run(capsys, "device", "--port", mock.url, "--no-stub", "erase", "-n", "nvs")
    assert code == 0, err
    assert mock.read(tmp_path, 0x9000, 0x4000) == b"\xff" * 0x4000


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from partkit.cli.device import progress_bar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = progress_bar("read storage", quiet=False)
    assert bar is not None
    for done in (0, 0x4000, 0x8000, 0x10000):
        bar(done, 0x10000)
    text = tty.getvalue()
    assert "\rread storage [" in text and " 50% 32/64 KiB" in text and text.endswith("\n")
    assert progress_bar("read storage", quiet=True) is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: no bar
    assert progress_bar("read storage", quiet=False) is None


def test_stalled_read_stream_is_resumed_and_verified(mock: MockDevice,
                                                     capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    """The mock drops a READ_FLASH stream when an acknowledgement comes later than 50 ms
    (docs/device.md); partkit resumes at the first missing byte and checks the flash MD5."""
    import time

    data = pattern(STORAGE[1], 8)
    mock.write(tmp_path, STORAGE[0], data)
    delayed: list[int] = []

    def late_ack(frame: bytes) -> bool:
        if len(frame) == 4 and frame != b"\x00\x00\x00\x00" and not delayed:
            ack = int.from_bytes(frame, "little")
            if ack == 0x2000:  # the 2nd packet's acknowledgement of the partition read
                delayed.append(ack)
                time.sleep(0.3)
        return True

    proxy = Proxy(mock.port, on_client=late_ack)
    out = tmp_path / "out.bin"
    try:
        code, _, err = run(capsys, "device", "--port", proxy.url, "read", "-n", "storage",
                           "-o", str(out))
    finally:
        proxy.close()
    assert delayed == [0x2000]
    assert code == 0, err
    assert "stalled read stream(s) were resumed" in err
    assert out.read_bytes() == data


def test_corrupted_read_is_an_error(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    mock.write(tmp_path, STORAGE[0], pattern(STORAGE[1], 9))

    def flip(frame: bytes) -> bytes:
        if len(frame) == 0x1000:  # a READ_FLASH data packet
            return bytes([frame[0] ^ 0xFF]) + frame[1:]
        return frame

    proxy = Proxy(mock.port, on_device=flip)
    out = tmp_path / "out.bin"
    try:
        code, _, err = run(capsys, "device", "--port", proxy.url, "read", "-n", "storage",
                           "-o", str(out))
    finally:
        proxy.close()
    assert code == 1
    # the stream's digest catches it (or, after a resumed stall, the flash MD5)
    assert "MD5 digest does not match" in err or "does not match the flash MD5" in err
    assert not out.exists()


# --- issue 20, items 2 and 3: inputs that are not regular files ---------------------------

NEXT = (0x80000, 0x1000)  # nvs_keys, right after storage


def _pipe_of(data: bytes) -> tuple[str, threading.Thread]:
    """A real pipe fed by a thread; its /dev/fd path (what ``<(cmd)`` gives a command)."""
    r, w = os.pipe()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):
            _write_all(w, data)
        os.close(w)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return f"/dev/fd/{r}", thread


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def test_write_from_an_endless_device_changes_nothing(mock: MockDevice,
                                                      capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    """/dev/zero has no size: before, 0x10001 bytes were written, over nvs_keys' first byte."""
    before, after = pattern(STORAGE[1], 11), pattern(NEXT[1], 12)
    mock.write(tmp_path, STORAGE[0], before + after)
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "storage",
                       "/dev/zero")
    assert code == 1, err
    assert "more than 65536 bytes (0x10000) came from it: they do not fit partition" in err
    assert mock.read(tmp_path, STORAGE[0], STORAGE[1] + NEXT[1]) == before + after


def test_write_from_a_pipe_writes_every_byte(mock: MockDevice,
                                             capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    """Before, a probe for a missing file read the pipe first: 4 KiB were lost, 'verified'."""
    data = pattern(9000, 13)
    path, feeder = _pipe_of(data)
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "storage", path)
    feeder.join()
    os.close(int(path.rsplit("/", 1)[1]))
    assert code == 0, err
    assert "(9000 bytes)" in err
    assert mock.read(tmp_path, *STORAGE) == data + b"\xff" * (STORAGE[1] - len(data))


def test_parttool_write_from_a_too_long_pipe_changes_nothing(mock: MockDevice,
                                                             tmp_path: Path) -> None:
    from partkit.common.errors import CheckFailed
    from partkit.parttool import PartitionName, ParttoolTarget

    before = pattern(STORAGE[1] + NEXT[1], 14)
    mock.write(tmp_path, STORAGE[0], before)
    path, feeder = _pipe_of(pattern(STORAGE[1] + 100, 15))
    with ParttoolTarget(mock.url) as target, pytest.raises(CheckFailed, match="more than"):
        target.write_partition(PartitionName("storage"), path)
    os.close(int(path.rsplit("/", 1)[1]))
    feeder.join()
    assert mock.read(tmp_path, STORAGE[0], len(before)) == before


def test_ctrl_c_during_a_device_write_exits_130_with_the_state(
        mock: MockDevice, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 20: before, Ctrl-C half way through a write exited 1."""
    from partkit.device.session import Session

    def interrupted(self: object, offset: int, data: bytes, progress: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Session, "write", interrupted)
    src = tmp_path / "in.bin"
    src.write_bytes(pattern(5000, 21))
    code, _, err = run(capsys, "device", "--port", mock.url, "write", "-n", "storage", str(src))
    assert code == 130, err
    assert "partkit: interrupted; writing partition 'storage'" in err, err
    assert "run the same command again" in err
