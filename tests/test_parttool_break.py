"""Adversarial checks of ``partkit.parttool`` / ``partkit device`` / ``partkit parttool``.

Each test is one attack that once succeeded: an input that is not a regular file, a call
shape ESP-IDF scripts use, an exception they catch, a Ctrl-C, port scanning. Devices are
esp32-mock-bootloader processes; results are read back with a separate esptool process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from partkit.parttool import PartitionName, ParttoolTarget
from support.mock_device import MockDevice
from test_device_cli import STORAGE, TABLE, pattern

NVS_KEYS = (0x80000, 0x1000)  # right after storage


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    device.write(tmp, 0x8000, TABLE)
    yield device  # type: ignore[misc]
    device.stop()


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
