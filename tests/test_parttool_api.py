"""``partkit.parttool``: ESP-IDF's parttool API call shapes on a device (esp32-mock-bootloader).

The calls are those of ESP-IDF's parttool documentation and of the scripts built on it
(positional and keyword construction, several targets on one port, ``partition_table``
methods, the exceptions scripts catch), with the port being the mock's socket:// URL.
``Otatool`` below exercises otatool's logic through the same shapes; it is written here
from otatool's documented behaviour (otadata: two sectors, ``ota_seq`` at 0 and its CRC32
at 28; the higher valid sequence number wins). Results are read back by a separate
esptool process.
"""

from __future__ import annotations

import binascii
import inspect
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from partkit.common.errors import PartkitError
from partkit.device.session import DeviceError
from partkit.parttool import (
    PARTITION_BOOT_DEFAULT,
    PARTITION_TABLE_OFFSET,
    PartitionName,
    PartitionType,
    ParttoolTarget,
)
from support.mock_device import MockDevice, Proxy
from test_device_cli import CSV, FACTORY, STORAGE, TABLE, pattern

OTADATA = (0xD000, 0x2000)


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    device.write(tmp, 0x8000, TABLE)
    yield device  # type: ignore[misc]
    device.stop()


def test_signature_is_esp_idf_s() -> None:
    # ESP-IDF v5.5 .. v6.0.2 (and master): these names in this order, these defaults
    params = list(inspect.signature(ParttoolTarget).parameters.values())
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [
        "port", "baud", "partition_table_offset", "primary_bootloader_offset",
        "recovery_bootloader_offset", "partition_table_file", "esptool_args",
        "esptool_write_args", "esptool_read_args", "esptool_erase_args"]
    defaults = [p.default for p in positional]
    assert defaults[:6] == [None, None, 0x8000, None, None, None]
    assert all(list(d) == [] for d in defaults[6:])
    assert PARTITION_TABLE_OFFSET == 0x8000


def test_documented_calls_positional_and_keyword(mock: MockDevice, tmp_path: Path) -> None:
    spiffs = pattern(STORAGE[1], 20)
    mock.write(tmp_path, STORAGE[0], spiffs)
    app = tmp_path / "factory.bin"
    app.write_bytes(pattern(0x6000, 21))
    out = tmp_path / "spiffs.bin"
    # ParttoolTarget(port, baud): the table is still read at 0x8000
    target = ParttoolTarget(mock.url, 115200)
    assert (target.port, target.baud, target.esptool_args) == (mock.url, 115200, [])
    target.read_partition(PartitionType("data", "spiffs"), str(out))
    target.erase_partition(PartitionName("storage"))
    target.write_partition(PartitionName("factory"), str(app))
    info = target.get_partition_info(PARTITION_BOOT_DEFAULT)
    assert not isinstance(info, list)
    assert (info.name, info.offset, info.size) == ("factory", FACTORY[0], FACTORY[1])
    keyword = ParttoolTarget(port=mock.url, partition_table_offset=0x8000,
                             esptool_args=["after=no_reset"], esptool_erase_args=["force"])
    assert keyword.esptool_args == ["--after", "no_reset"]
    assert keyword.esptool_erase_args == ["--force"]
    keys = keyword.get_partition_info(PartitionType("data", "nvs_keys"))
    assert not isinstance(keys, list) and keys.encrypted
    apps = keyword.get_partition_info(PartitionType("app", "ota_0", part_list=True))
    assert isinstance(apps, list) and [p.name for p in apps] == ["ota_0"]
    assert out.read_bytes() == spiffs
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]
    assert mock.read(tmp_path, *FACTORY) == app.read_bytes() + b"\xff" * (FACTORY[1] - 0x6000)


def test_partition_table_like_gen_esp32part(mock: MockDevice) -> None:
    table = ParttoolTarget(mock.url).partition_table
    assert [p.name for p in table][:3] == ["nvs", "otadata", "phy_init"]
    assert len(table) == 9 and table[0].name == "nvs" and table["storage"].offset == 0x70000
    nvs = table.find_by_name("nvs")
    assert nvs is not None and (nvs.type, nvs.subtype, nvs.offset) == (1, 2, 0x9000)
    assert table.find_by_name("nope") is None
    assert [p.name for p in table.find_by_type("app", "ota_1")] == ["ota_1"]
    assert [p.name for p in table.find_by_type(1, 0x40)] == ["calib"]
    assert [p.name for p in table.find_by_type("data", "0x40")] == ["calib"]
    with pytest.raises(ValueError):
        next(table.find_by_type("nosuchtype", "nvs"))
    with pytest.raises(ValueError):
        table["nope"]
    # to_binary: the bytes on the device; to_csv: the CSV that encodes to them again
    assert table.to_binary() == TABLE
    from partkit.table.codec import encode, load_table
    from partkit.table.options import table_options

    text = table.to_csv()
    assert text.startswith("# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size")
    assert "calib,data,64,0x81000,4K,readonly\n" in text
    assert "nvs_keys,data,nvs_keys,0x80000,4K,encrypted\n" in text
    again = load_table(text.encode(), "x.csv", table_options(verify=False)).table
    assert encode(again, table_options()) == TABLE
    assert table["factory"].to_csv() == "factory,app,factory,0x10000,128K,"
    assert table["factory"].to_csv(simple_formatting=True) == "factory,0,0,0x10000,0x20000,"
    assert table["factory"].to_binary() == TABLE[3 * 32:4 * 32]


def test_several_targets_on_one_port(mock: MockDevice, tmp_path: Path) -> None:
    # scripts create several targets on one port and never close them
    first = ParttoolTarget(mock.url)
    second = ParttoolTarget(mock.url)
    first.erase_partition(PartitionName("storage"))
    second.read_partition(PartitionName("storage"), str(tmp_path / "s.bin"))
    first.read_partition(PartitionName("nvs"), str(tmp_path / "n.bin"))
    assert (tmp_path / "s.bin").read_bytes() == b"\xff" * STORAGE[1]


def test_one_connection_inside_with(mock: MockDevice, tmp_path: Path) -> None:
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
            inside = proxy.connections
        target.erase_partition(PartitionName("storage"))  # after the block: usable again
        after = proxy.connections
    finally:
        proxy.close()
    # the table read at construction, then one connection for all nine calls
    assert (inside, len(stub_starts[:2]), after) == (2, 2, 3)


def test_exceptions_are_esp_idf_s(mock: MockDevice, tmp_path: Path) -> None:
    before = pattern(STORAGE[1], 22)
    mock.write(tmp_path, STORAGE[0], before)
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(STORAGE[1] + 1, 23))
    target = ParttoolTarget(mock.url)
    with pytest.raises(Exception, match="partition does not exist"):  # IDF: Exception
        target.erase_partition(PartitionName("nope"))
    with pytest.raises(IndexError):  # IDF: [] [0] for a type/subtype that is absent
        target.get_partition_info(PartitionType("data", "fat"))
    with pytest.raises(ValueError):  # IDF: unknown type keyword
        target.get_partition_info(PartitionType("nosuch", "nvs"))
    with pytest.raises(SystemExit) as stop:  # IDF: SystemExit for a read-only partition
        target.write_partition(PartitionName("calib"), str(big))
    assert "read-only" in str(stop.value.code)
    with pytest.raises(FileNotFoundError):
        target.write_partition(PartitionName("storage"), str(tmp_path / "missing.bin"))
    with pytest.raises(Exception, match="do not fit partition 'storage'"):
        target.write_partition(PartitionName("storage"), str(big))
    bad = tmp_path / "bad.csv"
    bad.write_text("nvs, data, nvs, 0x9000, banana\n")
    with pytest.raises(RuntimeError):  # IDF: gen_esp32part.InputError
        ParttoolTarget(mock.url, partition_table_file=str(bad))
    with pytest.raises(PartkitError, match="not a partition selector"):
        target.erase_partition("storage")
    assert mock.read(tmp_path, *STORAGE) == before  # nothing was erased on the way


def test_erase_ignores_readonly_as_parttool(mock: MockDevice, tmp_path: Path) -> None:
    mock.write(tmp_path, 0x81000, b"\x11" * 0x1000)
    small = tmp_path / "s.bin"
    small.write_bytes(b"\x01" * 10)
    target = ParttoolTarget(mock.url)
    target.erase_partition(PartitionName("calib"))
    assert mock.read(tmp_path, 0x81000, 0x1000) == b"\xff" * 0x1000
    target.write_partition(PartitionName("calib"), str(small), ignore_readonly=True)
    assert mock.read(tmp_path, 0x81000, 10) == b"\x01" * 10


def test_esptool_runs_steps_with_its_own_options(mock: MockDevice, tmp_path: Path) -> None:
    plain = pattern(0x3000, 30)
    src = tmp_path / "keys.bin"
    src.write_bytes(plain)
    mock.write(tmp_path, STORAGE[0], b"\x77" * STORAGE[1])
    # encrypt on a chip without a flash encryption key: esptool refuses, nothing changed
    target = ParttoolTarget(mock.url, esptool_write_args=["encrypt"])
    with pytest.raises(subprocess.CalledProcessError) as exc:
        target.write_partition(PartitionName("storage"), str(src))
    assert "Can't perform encrypted flash write" in str(exc.value)
    assert mock.read(tmp_path, *STORAGE) == b"\x77" * STORAGE[1]
    # esptool's own override: it sends the data for encryption (the mock has no
    # encryption engine and stores it as sent); partkit erases the rest
    target = ParttoolTarget(mock.url, esptool_write_args=["encrypt", "ignore-flash-enc-efuse"])
    target.write_partition(PartitionName("storage"), str(src))
    flash = mock.read(tmp_path, *STORAGE)
    assert flash == plain + b"\xff" * (STORAGE[1] - 0x3000)
    # any read option: esptool reads (ROM loader here, the mock's stub stream is lossy)
    reader = ParttoolTarget(mock.url, esptool_args=["no-stub"],
                            esptool_read_args=["no-progress"])
    reader.read_partition(PartitionName("storage"), str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == flash


class Otatool:
    """otatool's operations, from its documented behaviour, over ParttoolTarget."""

    OTADATA = PartitionType("data", "ota")

    def __init__(self, port: str, tmp: Path) -> None:
        # otatool's positional call (the pre-v5.5 order it still uses)
        self.target = ParttoolTarget(port, None, 0x8000, None, [], [], [], [])  # type: ignore[arg-type]
        self.tmp = tmp
        self.target.read_partition(self.OTADATA, str(tmp / "otadata.bin"))
        self.otadata = (tmp / "otadata.bin").read_bytes()

    def _seq(self, sector: int) -> int | None:
        seq, = struct.unpack_from("<I", self.otadata, sector * 0x1000)
        crc, = struct.unpack_from("<I", self.otadata, sector * 0x1000 + 28)
        ok = seq != 0xFFFFFFFF and crc == binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF)
        return seq if ok else None

    def switch_ota_partition(self, slot: int) -> None:
        count = sum(1 for p in self.target.partition_table if p.type == 0 and p.subtype >= 0x10)
        seq0, seq1 = self._seq(0), self._seq(1)
        if seq0 is None and seq1 is None:
            new, sector = slot + 1, 0
        else:
            # the sector with the higher valid number is the base; write the other one
            base_sector = 0 if seq1 is None or (seq0 is not None and seq0 >= seq1) else 1
            base = seq0 if base_sector == 0 else seq1
            assert base is not None
            new = (slot + 1) % count  # seq N boots slot (N - 1) % count
            while new < base:
                new += count
            sector = 1 - base_sector
        data = bytearray(self.otadata)
        struct.pack_into("<I", data, sector * 0x1000, new)
        struct.pack_into("<I", data, sector * 0x1000 + 28,
                         binascii.crc32(struct.pack("<I", new), 0xFFFFFFFF))
        (self.tmp / "next.bin").write_bytes(data)
        self.target.write_partition(self.OTADATA, str(self.tmp / "next.bin"))
        self.otadata = bytes(data)

    def read_ota_partition(self, slot: int, output: str) -> None:
        self.target.read_partition(PartitionType("app", f"ota_{slot}"), output)

    def erase_otadata(self) -> None:
        self.target.erase_partition(self.OTADATA)


def test_otatool_shapes(mock: MockDevice, tmp_path: Path) -> None:
    from partkit.flash import otadata

    mock.write(tmp_path, OTADATA[0], b"\xff" * OTADATA[1])
    mock.write(tmp_path, 0x50000, b"\xe9" + pattern(0xfff, 31))
    tool = Otatool(mock.url, tmp_path)
    tool.switch_ota_partition(1)
    switched = mock.read(tmp_path, *OTADATA)
    assert otadata.active_slot(otadata.decode(switched), 2) == 1
    # partkit's own set-boot writes the same bytes otatool's logic does
    from partkit.cli import main

    mock.write(tmp_path, OTADATA[0], b"\xff" * OTADATA[1])
    assert main(["device", "--port", mock.url, "-q", "set-boot", "--slot", "ota_1"]) == 0
    assert mock.read(tmp_path, *OTADATA) == switched
    tool.switch_ota_partition(0)
    assert otadata.active_slot(otadata.decode(mock.read(tmp_path, *OTADATA)), 2) == 0
    tool.read_ota_partition(1, str(tmp_path / "ota1.bin"))
    assert (tmp_path / "ota1.bin").read_bytes()[:0x1000] == b"\xe9" + pattern(0xfff, 31)
    tool.erase_otadata()
    assert mock.read(tmp_path, *OTADATA) == b"\xff" * OTADATA[1]
    # older otatool order with a table file in the fourth place
    old = ParttoolTarget(mock.url, None, 0x8000, str(CSV), ["after=no_reset"], [], [], [])  # type: ignore[arg-type]
    assert old.partition_table.table.path == str(CSV)
    assert old.esptool_args == ["--after", "no_reset"]


def test_secure_device_needs_force(mock: MockDevice) -> None:
    from test_device_cli import _security_on

    proxy = Proxy(mock.port, on_device=_security_on(1, 0))
    try:
        target = ParttoolTarget(proxy.url)
        with pytest.raises(PartkitError, match="secure boot enabled"):
            target.erase_partition(PartitionName("storage"))
        ParttoolTarget(proxy.url, esptool_erase_args=["force"]).erase_partition(
            PartitionName("storage"))
    finally:
        proxy.close()


def test_port_found_by_scanning(mock: MockDevice, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.mock_device import SilentPort

    silent = SilentPort()
    try:
        # the ports esptool would list: the first has no chip behind it
        monkeypatch.setattr("partkit.device.session.serial_ports",
                            lambda: [silent.url, mock.url])
        target = ParttoolTarget(esptool_args=["connect_attempts=1"])
        assert target.port == mock.url
        assert target.get_partition_info(PartitionName("nvs")).offset == 0x9000  # type: ignore[union-attr]
        monkeypatch.setattr("partkit.device.session.serial_ports", lambda: [])
        with pytest.raises(DeviceError, match="no serial port found"):
            ParttoolTarget()
    finally:
        silent.close()


def test_link_lost_is_a_device_error(tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    device.write(tmp_path, 0x8000, TABLE)
    target = ParttoolTarget(device.url)
    device.kill()
    with pytest.raises(subprocess.CalledProcessError) as exc:  # what IDF scripts catch
        target.erase_partition(PartitionName("storage"))
    device.stop()
    assert isinstance(exc.value, DeviceError)
    assert f"cannot open {device.url}" in str(exc.value)


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
    blank = tmp_path / "blank.bin"
    blank.write_bytes(b"\xff" * 0x10000)
    empty = ParttoolTarget(image=str(blank))  # a blank table area: an empty table
    assert len(empty.partition_table) == 0 and empty.warnings
    with pytest.raises(Exception, match="partition does not exist"):
        empty.get_partition_info(PARTITION_BOOT_DEFAULT)


def test_dropped_mid_write_says_what_is_known(tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    seen: list[int] = []

    def kill_on_second_block(frame: bytes) -> bool:
        if frame[:2] == b"\x00\x11":  # FLASH_DEFL_DATA
            seen.append(1)
            if len(seen) == 2:
                device.kill()
                return False
        return True

    data = pattern(FACTORY[1], 25)  # fills the partition: nothing after it to mention
    src = tmp_path / "app.bin"
    src.write_bytes(data)
    try:
        device.write(tmp_path, 0x8000, TABLE)
        proxy = Proxy(device.port, on_client=kill_on_second_block)
        with ParttoolTarget(proxy.url) as target, pytest.raises(DeviceError) as exc:
            target.write_partition(PartitionName("factory"), str(src))
        proxy.close()
    finally:
        device.stop()
    text = str(exc.value)
    packed = len(zlib.compress(data, 9))
    assert "0x10000..0x30000 may be erased or partially written" in text
    assert "not touched yet" not in text  # no empty range 0x30000..0x30000
    blocks = -(-packed // 0x4000)  # the stub's 16 KiB write blocks
    assert f"acknowledged 16384 of {packed} bytes of compressed data, 1 of {blocks} blocks" \
        in text
