"""``partkit.parttool``: parttool's Python API on a device (esp32-mock-bootloader) and an image.

The calls are those of ESP-IDF's parttool documentation, with ``ParttoolTarget``'s port
being the mock's socket:// URL. Results are read back by a separate esptool process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from partkit.common.errors import CheckFailed, PartkitError
from partkit.device.session import DeviceError
from partkit.parttool import (
    PARTITION_BOOT_DEFAULT,
    PartitionName,
    PartitionType,
    ParttoolTarget,
)
from support.mock_device import MockDevice, Proxy
from test_device_cli import CSV, FACTORY, STORAGE, TABLE, pattern


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    device.write(tmp, 0x8000, TABLE)
    yield device  # type: ignore[misc]
    device.stop()


def test_documented_calls_on_a_device(mock: MockDevice, tmp_path: Path) -> None:
    spiffs = pattern(STORAGE[1], 20)
    mock.write(tmp_path, STORAGE[0], spiffs)
    app = tmp_path / "factory.bin"
    app.write_bytes(pattern(0x6000, 21))
    out = tmp_path / "spiffs.bin"
    with ParttoolTarget(mock.url) as target:
        target.read_partition(PartitionType("data", "spiffs"), str(out))
        target.erase_partition(PartitionName("storage"))
        target.write_partition(PartitionName("factory"), str(app))
        info = target.get_partition_info(PARTITION_BOOT_DEFAULT)
        assert not isinstance(info, list)
        assert (info.name, info.offset, info.size) == ("factory", FACTORY[0], FACTORY[1])
        keys = target.get_partition_info(PartitionType("data", "nvs_keys"))
        assert not isinstance(keys, list) and keys.encrypted
    assert out.read_bytes() == spiffs
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]
    assert mock.read(tmp_path, *FACTORY) == app.read_bytes() + b"\xff" * (FACTORY[1] - 0x6000)


def test_one_connection_for_many_calls(mock: MockDevice, tmp_path: Path) -> None:
    stub_starts = []

    def count(frame: bytes) -> bool:
        if frame[:2] == b"\x00\x06":  # MEM_END: the flasher stub is started
            stub_starts.append(1)
        return True

    proxy = Proxy(mock.port, on_client=count)
    try:
        with ParttoolTarget(proxy.url) as target:
            for _ in range(3):
                target.get_partition_info(PartitionName("nvs"))
                target.erase_partition(PartitionName("storage"))
                target.read_partition(PartitionName("nvs"), str(tmp_path / "nvs.bin"))
        connections = proxy.connections
    finally:
        proxy.close()
    assert connections == 1  # parttool: one esptool process (and connection) per step
    assert len(stub_starts) == 1


def test_checks_before_flash(mock: MockDevice, tmp_path: Path) -> None:
    before = pattern(STORAGE[1], 22)
    mock.write(tmp_path, STORAGE[0], before)
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(STORAGE[1] + 1, 23))
    with ParttoolTarget(mock.url) as target:
        with pytest.raises(CheckFailed, match="do not fit partition 'storage'"):
            target.write_partition(PartitionName("storage"), str(big))
        with pytest.raises(PartkitError, match="read-only"):
            target.write_partition(PartitionName("calib"), str(big))
        with pytest.raises(PartkitError, match="partition does not exist"):
            target.erase_partition(PartitionName("nope"))
        with pytest.raises(PartkitError, match="not a partition selector"):
            target.erase_partition("storage")
        small = tmp_path / "s.bin"
        small.write_bytes(b"\x01" * 10)
        target.write_partition(PartitionName("calib"), str(small), ignore_readonly=True)
    assert mock.read(tmp_path, *STORAGE) == before
    assert mock.read(tmp_path, 0x81000, 10) == b"\x01" * 10
    with pytest.raises(PartkitError, match="closed"):
        target.erase_partition(PartitionName("storage"))


def test_part_list_and_table_file(mock: MockDevice) -> None:
    target = ParttoolTarget(mock.url, partition_table_file=str(CSV),
                            esptool_args=["after=no_reset"])
    try:
        apps = target.get_partition_info(PartitionType("app", "ota_0", part_list=True))
        assert isinstance(apps, list) and [p.name for p in apps] == ["ota_0"]
    finally:
        target.close()


def test_secure_device_needs_force(mock: MockDevice, tmp_path: Path) -> None:
    from test_device_cli import _security_on

    proxy = Proxy(mock.port, on_device=_security_on(1, 0))
    try:
        with ParttoolTarget(proxy.url) as target, pytest.raises(PartkitError,
                                                               match="secure boot enabled"):
            target.erase_partition(PartitionName("storage"))
        with ParttoolTarget(proxy.url, esptool_erase_args=["force"]) as target:
            target.erase_partition(PartitionName("storage"))
    finally:
        proxy.close()


def test_link_lost_is_a_device_error(tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    device.write(tmp_path, 0x8000, TABLE)
    target = ParttoolTarget(device.url)
    device.kill()
    with pytest.raises(DeviceError) as exc:
        target.erase_partition(PartitionName("storage"))
    target.close()
    device.stop()
    text = str(exc.value)
    assert "erasing partition 'storage'" in text and "0x70000..0x80000" in text


def test_image_target(tmp_path: Path) -> None:
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * 0x8000 + TABLE + b"\xff" * (0x100000 - 0x8000 - len(TABLE)))
    data = tmp_path / "nvs.bin"
    data.write_bytes(pattern(0x1000, 24))
    with ParttoolTarget(image=str(image)) as target:
        target.write_partition(PartitionName("nvs"), str(data))
        assert target.get_partition_info(PARTITION_BOOT_DEFAULT).offset == 0x10000  # type: ignore[union-attr]
        out = tmp_path / "back.bin"
        target.read_partition(PartitionName("nvs"), str(out))
    assert out.read_bytes() == data.read_bytes() + b"\xff" * 0x3000
    with pytest.raises(PartkitError, match="no target"):
        ParttoolTarget()


def test_dropped_mid_write_and_no_answer(tmp_path: Path) -> None:
    from support.mock_device import SilentPort

    device = MockDevice(tmp_path / "state")
    seen: list[int] = []

    def kill_on_second_block(frame: bytes) -> bool:
        if frame[:2] == b"\x00\x11":  # FLASH_DEFL_DATA
            seen.append(1)
            if len(seen) == 2:
                device.kill()
                return False
        return True

    src = tmp_path / "app.bin"
    src.write_bytes(pattern(0x10000, 25))
    try:
        device.write(tmp_path, 0x8000, TABLE)
        proxy = Proxy(device.port, on_client=kill_on_second_block)
        with ParttoolTarget(proxy.url) as target, pytest.raises(DeviceError) as exc:
            target.write_partition(PartitionName("factory"), str(src))
        proxy.close()
    finally:
        device.stop()
    assert "0x10000..0x20000 may be erased or partially written" in str(exc.value)
    silent = SilentPort()
    try:
        with pytest.raises(DeviceError, match="cannot connect to a chip"):
            ParttoolTarget(silent.url, esptool_args=["connect_attempts=1"])
    finally:
        silent.close()
