"""Adversarial checks of ``partkit.parttool`` / ``partkit device`` / ``partkit parttool``.

Each test is one attack that once succeeded: an input that is not a regular file, a call
shape ESP-IDF scripts use, an exception they catch, a Ctrl-C, port scanning. Devices are
esp32-mock-bootloader processes; results are read back with a separate esptool process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from partkit.common.errors import PartkitError
from partkit.parttool import PartitionName, ParttoolTarget
from support.mock_device import MockDevice, free_port
from test_device_cli import CSV, STORAGE, TABLE, pattern

NVS_KEYS = (0x80000, 0x1000)  # right after storage


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    device.write(tmp, 0x8000, TABLE)
    yield device  # type: ignore[misc]
    device.stop()


@contextlib.contextmanager
def _pipe(tmp: Path, data: bytes) -> Iterator[Path]:
    """A named pipe that gives ``data`` to its first reader and other bytes to any later
    one (so reading the input twice shows, and never hangs)."""
    fifo = tmp / "data.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        payload = data
        while not stop.is_set():
            with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:
                f.write(payload)  # the open blocks until a reader opens the pipe
            if payload is data:  # let the first reader see the end of the data
                time.sleep(1)
            payload = b"\x5a" * 0x3000  # what any later reader gets

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield fifo
    finally:
        stop.set()  # release the feeder waiting for one more reader
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        feeder.join(5)
        os.close(fd)


def test_endless_input_never_writes_past_the_partition(mock: MockDevice, tmp_path: Path
                                                        ) -> None:
    # /dev/zero has no size (getsize 0): the check must count the bytes read, or the
    # write runs a sector into nvs_keys before verification notices
    keys = pattern(NVS_KEYS[1], 40)
    mock.write(tmp_path, NVS_KEYS[0], keys)
    before = mock.read(tmp_path, *STORAGE)
    target = ParttoolTarget(mock.url)
    with pytest.raises(Exception, match="do not fit partition 'storage'") as exc:
        target.write_partition(PartitionName("storage"), "/dev/zero")
    assert not isinstance(exc.value, subprocess.CalledProcessError)  # refused, not failed
    assert "more than 65536 bytes" in str(exc.value)
    assert mock.read(tmp_path, *NVS_KEYS) == keys
    assert mock.read(tmp_path, *STORAGE) == before


def test_cli_endless_input_is_refused(mock: MockDevice, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.cli import main

    keys = pattern(NVS_KEYS[1], 41)
    mock.write(tmp_path, NVS_KEYS[0], keys)
    assert main(["device", "--port", mock.url, "-q", "write", "-n", "storage",
                 "/dev/zero"]) == 1
    assert "do not fit partition 'storage'" in capsys.readouterr().err
    assert mock.read(tmp_path, *NVS_KEYS) == keys


def test_no_device_at_construction_is_what_idf_scripts_catch() -> None:
    # ESP-IDF reads the table with esptool in the constructor: CalledProcessError
    url = f"socket://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(subprocess.CalledProcessError) as exc:
        ParttoolTarget(url, esptool_args=["connect_attempts=1"])
    assert f"cannot open {url}" in str(exc.value)


def test_missing_table_file_is_file_not_found(tmp_path: Path) -> None:
    # ESP-IDF opens partition_table_file with open(): FileNotFoundError
    with pytest.raises(FileNotFoundError, match="no such file"):
        ParttoolTarget(partition_table_file=str(tmp_path / "nope.csv"))


def test_old_positional_order_keeps_keyword_step_options() -> None:
    # pre-v5.5 call shapes: positional up to the table file, then keywords
    target = ParttoolTarget("socket://x:1", None, 0x8000, str(CSV),
                            esptool_write_args=["encrypt"], esptool_erase_args=["force"])
    assert (target.esptool_args, target.esptool_write_args, target.esptool_read_args,
            target.esptool_erase_args) == ([], ["--encrypt"], [], ["--force"])
    target = ParttoolTarget("socket://x:1", None, 0x8000, str(CSV), ["chip=esp32c3"],
                            esptool_read_args=["no-progress"], esptool_write_args=["encrypt"])
    assert (target.esptool_args, target.esptool_write_args, target.esptool_read_args,
            target.esptool_erase_args) == (["--chip", "esp32c3"], ["--encrypt"],
                                           ["--no-progress"], [])
    target = ParttoolTarget("socket://x:1", None, 0x8000, str(CSV), ["chip=esp32c3"],
                            ["compress"], esptool_read_args=["no-progress"],
                            esptool_erase_args=["force"])  # type: ignore[arg-type]
    assert (target.esptool_args, target.esptool_write_args, target.esptool_read_args,
            target.esptool_erase_args) == (["--chip", "esp32c3"], ["--compress"],
                                           ["--no-progress"], ["--force"])
    # otatool's all-positional shape
    target = ParttoolTarget("socket://x:1", 115200, 0x8000, str(CSV), ["chip=esp32c3"],
                            ["w"], ["r"], ["e"])  # type: ignore[arg-type]
    assert (target.baud, target.esptool_args, target.esptool_write_args,
            target.esptool_read_args, target.esptool_erase_args) == (
        115200, ["--chip", "esp32c3"], ["--w"], ["--r"], ["--e"])
    assert target.partition_table.table.path == str(CSV)


def test_encrypted_write_into_an_image_is_refused(tmp_path: Path) -> None:
    # an image file has no encryption engine: writing plaintext where ciphertext was
    # asked for would hand a wrong image on
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * 0x8000 + TABLE + b"\xff" * (0x100000 - 0x8000 - len(TABLE)))
    before = image.read_bytes()
    data = tmp_path / "keys.bin"
    data.write_bytes(b"\x01" * 0x1000)
    target = ParttoolTarget(image=str(image), esptool_write_args=["encrypt"])
    with pytest.raises(PartkitError, match="encrypt"):
        target.write_partition(PartitionName("nvs_keys"), str(data))
    assert image.read_bytes() == before


def _ctrl_c_after_first_block() -> object:
    def progress(done: int, total: int) -> None:
        if 0 < done < total:
            raise KeyboardInterrupt
    return progress


def test_ctrl_c_mid_write_stays_a_keyboard_interrupt(mock: MockDevice, tmp_path: Path
                                                     ) -> None:
    # a script's Ctrl-C must not turn into CalledProcessError (which `except` clauses
    # written for esptool failures would swallow); it says what may have changed
    src = tmp_path / "app.bin"
    src.write_bytes(pattern(0x18000, 42))
    target = ParttoolTarget(mock.url, progress=_ctrl_c_after_first_block())  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt) as exc:
        target.write_partition(PartitionName("factory"), str(src))
    assert "0x10000..0x28000 may be erased or partially written" in str(exc.value)
    assert "0x28000..0x30000 was not touched yet" in str(exc.value)


def test_cli_ctrl_c_mid_write_exits_130(mock: MockDevice, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.cli import main

    src = tmp_path / "app.bin"
    src.write_bytes(pattern(0x18000, 43))
    monkeypatch.setattr("partkit.cli.device.progress_bar",
                        lambda label, quiet: _ctrl_c_after_first_block())
    assert main(["device", "--port", mock.url, "write", "-n", "factory", str(src)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "may be erased or partially written" in err


def test_port_scan_skips_a_chip_of_another_kind(mock: MockDevice, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # with a chip named, esptool's scan goes on past a port where another chip answers
    other = MockDevice(tmp_path / "s3", chip="esp32s3")
    try:
        monkeypatch.setattr("partkit.device.session.serial_ports",
                            lambda: [other.url, mock.url])
        target = ParttoolTarget(esptool_args=["chip=esp32c3", "connect_attempts=1"])
        assert target.port == mock.url
    finally:
        other.stop()


def test_esptool_write_step_is_checked_like_any_write(mock: MockDevice, tmp_path: Path
                                                      ) -> None:
    from support.mock_device import Proxy
    from test_device_cli import _security_on

    # a file that fills the partition leaves no tail to erase: the checks must still run
    before = pattern(STORAGE[1], 44)
    mock.write(tmp_path, STORAGE[0], before)
    src = tmp_path / "full.bin"
    src.write_bytes(pattern(STORAGE[1], 45))
    proxy = Proxy(mock.port, on_device=_security_on(1, 0))  # secure boot on
    try:
        target = ParttoolTarget(proxy.url, esptool_write_args=["encrypt",
                                                               "ignore-flash-enc-efuse"])
        with pytest.raises(PartkitError, match="secure boot enabled"):
            target.write_partition(PartitionName("storage"), str(src))
    finally:
        proxy.close()
    assert mock.read(tmp_path, *STORAGE) == before


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes are POSIX here")
def test_esptool_write_step_writes_the_bytes_checked(mock: MockDevice, tmp_path: Path
                                                     ) -> None:
    # esptool must get the bytes partkit read and checked, not open the input again (a
    # pipe would give other bytes, or block forever)
    first = pattern(0x2000, 46)
    target = ParttoolTarget(mock.url, esptool_write_args=["encrypt", "ignore-flash-enc-efuse"])
    with _pipe(tmp_path, first) as fifo:
        target.write_partition(PartitionName("storage"), str(fifo))
    assert mock.read(tmp_path, *STORAGE) == first + b"\xff" * (STORAGE[1] - len(first))


def test_port_argument_wins_over_esptool_args_port(mock: MockDevice) -> None:
    # ESP-IDF puts --port PORT after esptool_args, and esptool takes the last one: the
    # session must talk to the same device as the steps esptool runs
    elsewhere = f"socket://127.0.0.1:{free_port()}"
    target = ParttoolTarget(mock.url, esptool_args=[f"port={elsewhere}", "connect_attempts=1"])
    assert target.get_partition_info(PartitionName("nvs")).offset == 0x9000  # type: ignore[union-attr]


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes are POSIX here")
def test_cli_write_from_a_pipe(mock: MockDevice, tmp_path: Path) -> None:
    # `partkit device write -n storage <(make-data)`: the input is read once
    from partkit.cli import main

    first = pattern(0x2000, 48)
    with _pipe(tmp_path, first) as fifo:
        assert main(["device", "--port", mock.url, "-q", "write", "-n", "storage",
                     str(fifo)]) == 0
    assert mock.read(tmp_path, *STORAGE) == first + b"\xff" * (STORAGE[1] - len(first))


def test_esptool_args_split_as_parttool_does() -> None:
    # parttool's pattern is (.+)=(.+), greedy: the last '=' followed by something splits
    target = ParttoolTarget(partition_table_file=str(CSV),
                            esptool_write_args=["a=b=c", "d=e=", "=f", "g="])
    assert target.esptool_write_args == ["--a=b", "c", "--d", "e=", "--=f", "--g="]


def test_unreadable_input_is_an_os_error(tmp_path: Path) -> None:
    # ESP-IDF open()s the input: a directory raises IsADirectoryError, an OSError
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * 0x8000 + TABLE + b"\xff" * (0x100000 - 0x8000 - len(TABLE)))
    target = ParttoolTarget(image=str(image))
    with pytest.raises(OSError, match="is a directory"):
        target.write_partition(PartitionName("nvs"), str(tmp_path))


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes are POSIX here")
def test_esptool_read_into_a_pipe_keeps_the_pipe(mock: MockDevice, tmp_path: Path) -> None:
    # a read run by esptool was renamed over its output: a pipe (or, as root, a device
    # node like /dev/null) was replaced by a regular file and its reader got nothing
    nvs = pattern(0x4000, 49)
    mock.write(tmp_path, 0x9000, nvs)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    target = ParttoolTarget(mock.url, esptool_args=["no-stub"],
                            esptool_read_args=["no-progress"])
    try:
        target.read_partition(PartitionName("nvs"), str(fifo))
    finally:
        if reader.is_alive():
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(5)
    assert fifo.is_fifo()
    assert got == [nvs]


def test_baud_as_text_works_as_in_parttool(mock: MockDevice) -> None:
    # ESP-IDF only puts str(baud) on esptool's command line: "115200" works there
    target = ParttoolTarget(mock.url, "115200")  # type: ignore[arg-type]
    assert target.baud == "115200"
    assert target.get_partition_info(PartitionName("nvs")).offset == 0x9000  # type: ignore[union-attr]


def test_table_offset_as_text_works_as_in_parttool(mock: MockDevice) -> None:
    # ESP-IDF reads the table with esptool given str(partition_table_offset)
    target = ParttoolTarget(mock.url, None, "0x8000")  # type: ignore[arg-type]
    assert target.get_partition_info(PartitionName("nvs")).offset == 0x9000  # type: ignore[union-attr]


def test_ctrl_c_while_esptool_writes_says_what_may_have_changed(mock: MockDevice,
                                                                tmp_path: Path) -> None:
    import signal

    from support.mock_device import Proxy

    sent: list[int] = []

    def interrupt_on_data(frame: bytes) -> bool:
        if frame[:1] == b"\x00" and frame[1:2] in (b"\x03", b"\x11", b"\xd4") and not sent:
            sent.append(1)  # FLASH_(DEFL_|ENCRYPT_)DATA: esptool is writing
            os.kill(os.getpid(), signal.SIGINT)
        return True

    src = tmp_path / "data.bin"
    src.write_bytes(pattern(0x8000, 50))
    proxy = Proxy(mock.port, on_client=interrupt_on_data)
    try:
        target = ParttoolTarget(proxy.url, esptool_write_args=["encrypt",
                                                               "ignore-flash-enc-efuse"])
        with pytest.raises(KeyboardInterrupt) as exc:
            target.write_partition(PartitionName("storage"), str(src))
    finally:
        proxy.close()
    assert "0x70000..0x80000 may have changed" in str(exc.value)


def test_subtype_zero_selects_subtype_zero() -> None:
    # ESP-IDF tests `type and subtype` for truth: subtype 0 falls through to the boot
    # default app; partkit selects what was asked for (docs/device.md)
    from partkit.parttool import PartitionType

    target = ParttoolTarget(partition_table_file=str(CSV))
    assert target.get_partition_info(PartitionType("data", 0)).name == "otadata"  # type: ignore[union-attr]
    assert target.get_partition_info(PartitionType(0, 0)).name == "factory"  # type: ignore[union-attr]


def test_ctrl_c_in_a_plan_step_names_the_step(tmp_path: Path) -> None:
    # a device step now ends Ctrl-C as a KeyboardInterrupt (exit 130); `device apply`
    # must still say which step stopped, what was done and what was not started
    from partkit.device.target import ImageTarget
    from partkit.diff import DiffOptions, diff_tables, side_of
    from partkit.diff.apply import apply_plan
    from partkit.table.binary import encode
    from partkit.table.codec import load_table
    from partkit.table.options import TableOptions
    from test_diff_apply import OLD

    old = load_table(OLD.encode(), "old.csv", TableOptions()).table
    new = load_table((OLD.rstrip("\n") + "\nstore, data, spiffs, 0x310000, 0x10000,\n"
                      "more, data, spiffs, 0x320000, 0x10000,\n").encode(), "new.csv",
                     TableOptions()).table
    report = diff_tables(side_of(old), side_of(new), DiffOptions(running=("ota_0",)))
    flash = tmp_path / "flash.bin"
    flash.write_bytes(b"\xff" * 0x400000)

    class Interrupted(ImageTarget):
        calls = 0

        def erase_partition(self, part, **kw):  # type: ignore[no-untyped-def]
            Interrupted.calls += 1
            if Interrupted.calls == 2:  # what DeviceTarget raises on Ctrl-C
                raise KeyboardInterrupt("erasing partition 'more' was cut short: "
                                        "0x320000..0x330000 may be partly erased")
            super().erase_partition(part, **kw)

    with pytest.raises(KeyboardInterrupt) as info:
        apply_plan(Interrupted(str(flash)), report, encode(new, True))
    text = str(info.value)
    assert "step 3" in text and "0x320000..0x330000 may be partly erased" in text
    assert "done and verified: 1." in text and "not started: nothing" in text
