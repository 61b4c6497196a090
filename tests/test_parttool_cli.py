"""``partkit parttool``: every command line of ESP-IDF's parttool documentation, same meaning.

The command lines are those of the "Partition Tool" section of ESP-IDF's partition-tables
guide and of the NVS encryption guide (nvs_keys), run against esp32-mock-bootloader over
socket:// (the doc's ``/dev/ttyUSB1`` becomes the mock's URL), plus the CMake form
``-q --partition-table-offset ... --partition-table-file ... get_partition_info``. What was
written is read back by a separate esptool process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from support.mock_device import MockDevice, Proxy, SilentPort
from test_device_cli import CSV, FACTORY, STORAGE, TABLE, _security_on, pattern

NVS_KEYS = (0x80000, 0x1000)


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("mock")
    device = MockDevice(tmp / "state")
    device.write(tmp, 0x8000, TABLE)
    yield device  # type: ignore[misc]
    device.stop()


def parttool(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["parttool", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the documented command lines ---------------------------------------------------------


def test_doc_erase_partition_by_name(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    # parttool.py --port "/dev/ttyUSB1" erase_partition --partition-name=storage
    mock.write(tmp_path, STORAGE[0], pattern(0x2000, 10))
    code, out, err = parttool(capsys, "--port", mock.url, "erase_partition",
                              "--partition-name=storage")
    assert code == 0, err
    assert out == "Erased partition 'storage' at offset 0x70000\n"  # stdout, as parttool
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]


def test_doc_read_partition_by_type(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # parttool.py --port "/dev/ttyUSB1" read_partition --partition-type=data
    #     --partition-subtype=spiffs --output "spiffs.bin"
    data = pattern(STORAGE[1], 11)
    mock.write(tmp_path, STORAGE[0], data)
    monkeypatch.chdir(tmp_path)
    code, out, err = parttool(capsys, "--port", mock.url, "read_partition",
                              "--partition-type=data", "--partition-subtype=spiffs",
                              "--output", "spiffs.bin")
    assert code == 0, err
    assert "Read partition 'storage' contents from device at offset 0x70000 to file " \
        "'spiffs.bin'" in out
    assert (tmp_path / "spiffs.bin").read_bytes() == data


def test_doc_write_partition(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # parttool.py --port "/dev/ttyUSB1" write_partition --partition-name=factory
    #     --input "factory.bin"
    app = pattern(0x9000, 12)
    (tmp_path / "factory.bin").write_bytes(app)
    monkeypatch.chdir(tmp_path)
    code, out, err = parttool(capsys, "--port", mock.url, "write_partition",
                              "--partition-name=factory", "--input", "factory.bin")
    assert code == 0, err
    assert "Written contents of file 'factory.bin' at offset 0x10000" in out
    assert mock.read(tmp_path, *FACTORY) == app + b"\xff" * (FACTORY[1] - len(app))


def test_doc_boot_default_size(mock: MockDevice, capsys: pytest.CaptureFixture[str]) -> None:
    # parttool.py --port "/dev/ttyUSB1" get_partition_info --partition-boot-default --info size
    code, out, _ = parttool(capsys, "--port", mock.url, "get_partition_info",
                            "--partition-boot-default", "--info", "size")
    assert (code, out) == (0, "0x20000\n")


def test_doc_force_forms_on_a_secured_device(mock: MockDevice,
                                             capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    # parttool.py --port "/dev/ttyUSB1" --esptool-erase-args=force erase_partition
    #     --partition-name=storage
    # parttool.py --port "/dev/ttyUSB1" --esptool-erase-args=force write_partition
    #     --partition-name=factory --input "factory.bin"
    proxy = Proxy(mock.port, on_device=_security_on(0, 1))  # flash encryption on
    app = tmp_path / "factory.bin"
    app.write_bytes(pattern(0x5000, 13))
    mock.write(tmp_path, STORAGE[0], pattern(0x1000, 14))
    try:
        code, _, err = parttool(capsys, "--port", proxy.url, "erase_partition",
                                "--partition-name=storage")
        assert code == 2 and "flash encryption enabled; refusing to erase" in err
        assert "--esptool-erase-args=force" in err
        code, _, err = parttool(capsys, "--port", proxy.url, "write_partition",
                                "--partition-name=factory", "--input", str(app))
        assert code == 2 and "refusing to write" in err
        assert mock.read(tmp_path, STORAGE[0], 0x1000) == pattern(0x1000, 14)
        code, _, err = parttool(capsys, "--port", proxy.url, "--esptool-erase-args=force",
                                "erase_partition", "--partition-name=storage")
        assert code == 0, err
        code, _, err = parttool(capsys, "--port", proxy.url, "--esptool-erase-args=force",
                                "write_partition", "--partition-name=factory", "--input",
                                str(app))
        assert code == 0, err
    finally:
        proxy.close()
    assert mock.read(tmp_path, *STORAGE) == b"\xff" * STORAGE[1]
    assert mock.read(tmp_path, FACTORY[0], 0x5000) == app.read_bytes()


def test_doc_nvs_keys_erase_with_table_file(mock: MockDevice,
                                            capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    # parttool.py --port PORT --partition-table-file=PARTITION_TABLE_FILE
    #     --partition-table-offset PARTITION_TABLE_OFFSET erase_partition
    #     --partition-type=data --partition-subtype=nvs_keys
    # (and the same with --esptool-erase-args=force after --port)
    for force in ((), ("--esptool-erase-args=force",)):
        mock.write(tmp_path, NVS_KEYS[0], b"\x5a" * NVS_KEYS[1])
        code, _, err = parttool(capsys, "--port", mock.url, *force,
                                f"--partition-table-file={CSV}", "--partition-table-offset",
                                "0x8000", "erase_partition", "--partition-type=data",
                                "--partition-subtype=nvs_keys")
        assert code == 0, err
        assert mock.read(tmp_path, *NVS_KEYS) == b"\xff" * NVS_KEYS[1]


def test_doc_nvs_keys_write_with_offset(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    # parttool.py --port PORT --partition-table-offset PARTITION_TABLE_OFFSET
    #     write_partition --partition-name="name of nvs_key partition" --input FILE
    keys = tmp_path / "keys.bin"
    keys.write_bytes(pattern(64, 15))
    code, _, err = parttool(capsys, "--port", mock.url, "--partition-table-offset", "0x8000",
                            "write_partition", "--partition-name=nvs_keys", "--input", str(keys))
    assert code == 0, err
    assert mock.read(tmp_path, *NVS_KEYS) == keys.read_bytes() + b"\xff" * (NVS_KEYS[1] - 64)


def test_doc_help() -> None:
    # parttool.py --help ; parttool.py [subcommand] --help
    proc = subprocess.run([sys.executable, "-m", "partkit", "parttool", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for word in ("read_partition", "write_partition", "erase_partition", "get_partition_info",
                 "--esptool-erase-args", "--partition-table-offset", "--image", "exit status:"):
        assert word in proc.stdout
    for sub, options in (("write_partition", ("--input", "--ignore-readonly")),
                         ("read_partition", ("--output",)),
                         ("get_partition_info", ("--info", "--part_list"))):
        proc = subprocess.run([sys.executable, "-m", "partkit", "parttool", sub, "--help"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0
        assert all(o in proc.stdout for o in ("--partition-name", *options))


def test_cmake_form_needs_only_the_table_file(capsys: pytest.CaptureFixture[str]) -> None:
    # what ESP-IDF's partition_table_get_partition_info runs at configure time
    code, out, _ = parttool(capsys, "-q", "--partition-table-offset", "0x8000",
                            "--primary-bootloader-offset", "0x0", "--partition-table-file",
                            str(CSV), "get_partition_info", "--partition-type", "data",
                            "--partition-subtype", "ota", "--info", "offset", "size")
    assert (code, out) == (0, "0xd000 0x2000\n")
    code, out, _ = parttool(capsys, "-q", "--partition-table-file", str(CSV),
                            "get_partition_info", "--partition-name", "missing")
    assert (code, out) == (0, "")  # parttool prints nothing and succeeds


# --- partkit's safety on parttool's command line -------------------------------------------


def test_write_checks_before_touching_flash(mock: MockDevice,
                                            capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    before = pattern(STORAGE[1], 16)
    mock.write(tmp_path, STORAGE[0], before)
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(STORAGE[1] + 4096, 17))
    code, _, err = parttool(capsys, "--port", mock.url, "write_partition",
                            "--partition-name=storage", "--input", str(big))
    assert code == 1 and "do not fit partition 'storage'" in err
    assert mock.read(tmp_path, *STORAGE) == before  # parttool would have erased it first
    code, _, err = parttool(capsys, "--port", mock.url, "write_partition",
                            "--partition-name=calib", "--input", str(big))
    assert code == 2 and "read-only" in err and "--ignore-readonly" in err
    code, _, err = parttool(capsys, "--port", mock.url, "write_partition",
                            "--partition-name=nope", "--input", str(big))
    assert code == 2 and "partition does not exist" in err
    assert mock.read(tmp_path, *STORAGE) == before


def test_ignore_readonly(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                         tmp_path: Path) -> None:
    src = tmp_path / "c.bin"
    src.write_bytes(b"\x44" * 16)
    code, _, err = parttool(capsys, "--port", mock.url, "write_partition", "-n", "calib",
                            "--input", str(src), "--ignore-readonly")
    assert code == 0, err
    assert mock.read(tmp_path, 0x81000, 16) == b"\x44" * 16


def test_esptool_args_up_to_the_subcommand(mock: MockDevice,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = parttool(capsys, "--port", mock.url, "--esptool-args", "chip=esp32c3",
                              "after=no_reset", "get_partition_info", "-n", "nvs")
    assert (code, out) == (0, "0x9000 0x4000\n"), err
    code, _, err = parttool(capsys, "--port", mock.url, "--esptool-args", "chip=esp32",
                            "get_partition_info", "-n", "nvs")
    assert code == 2 and "is an ESP32-C3" in err
    # given twice, the last one counts (parttool's argparse keeps the last list)
    code, out, err = parttool(capsys, "--esptool-args", "bogus", "--port", mock.url,
                              "--esptool-args", "after=no_reset", "get_partition_info", "-n",
                              "nvs")
    assert (code, out) == (0, "0x9000 0x4000\n"), err
    code, _, err = parttool(capsys, "--port", mock.url, "--esptool-args", "bogus",
                            "get_partition_info", "-n", "nvs")
    assert code == 2 and "--esptool-args: 'bogus' is not supported" in err
    assert "esptool-global" not in err
    # extra subtypes with no values: accepted, as parttool's nargs='*'
    code, out, err = parttool(capsys, "--port", mock.url, "get_partition_info", "-n", "nvs",
                              "--extra-partition-subtypes")
    assert (code, out) == (0, "0x9000 0x4000\n"), err


def test_encrypted_write_is_esptool_s(mock: MockDevice, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    # the NVS encryption guide's form: esptool writes with --encrypt (this mock's chip has
    # no flash encryption key, so esptool refuses); the partition is untouched
    keys = tmp_path / "keys.bin"
    keys.write_bytes(pattern(64, 40))
    mock.write(tmp_path, *NVS_KEYS[:1], b"\x5a" * NVS_KEYS[1])
    code, out, err = parttool(capsys, "--port", mock.url, "--esptool-erase-args", "force",
                              "--esptool-write-args", "encrypt", "write_partition",
                              "--partition-name=nvs_keys", "--input", str(keys))
    assert code == 1 and out == ""
    assert "esptool failed" in err and "Can't perform encrypted flash write" in err
    assert "--encrypt" in err  # the command partkit ran, as parttool would
    assert mock.read(tmp_path, *NVS_KEYS) == b"\x5a" * NVS_KEYS[1]


def test_selector_rules(mock: MockDevice, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = parttool(capsys, "--port", mock.url, "erase_partition", "-t", "data")
    assert code == 2 and "--partition-subtype should be defined" in err
    code, _, err = parttool(capsys, "--port", mock.url, "erase_partition")
    assert code == 2 and "should be defined using --partition-name" in err
    with pytest.raises(SystemExit) as exc:
        main(["parttool", "--port", mock.url, "erase_partition", "-n", "a", "-d"])
    assert exc.value.code == 2
    code, out, _ = parttool(capsys, "--port", mock.url, "get_partition_info", "-t", "app",
                            "-s", "ota_1", "--info", "name", "offset")
    assert (code, out) == (0, "ota_1 0x50000\n")


def test_image_instead_of_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * 0x8000 + TABLE + b"\xff" * (0x100000 - 0x8000 - len(TABLE)))
    data = tmp_path / "d.bin"
    data.write_bytes(pattern(3000, 18))
    code, _, err = parttool(capsys, "--image", str(image), "write_partition", "-n", "storage",
                            "--input", str(data))
    assert code == 0, err
    raw = image.read_bytes()
    assert raw[STORAGE[0]:STORAGE[0] + 3000] == data.read_bytes()
    out = tmp_path / "out.bin"
    code, text, err = parttool(capsys, "--image", str(image), "read_partition", "-n",
                               "storage", "--output", str(out))
    assert code == 0, err
    assert "from image" in text
    assert out.read_bytes() == raw[STORAGE[0]:STORAGE[0] + STORAGE[1]]
    code, _, err = parttool(capsys, "--image", str(image), "erase_partition", "-n", "storage")
    assert code == 0, err
    assert image.read_bytes()[STORAGE[0]:STORAGE[0] + STORAGE[1]] == b"\xff" * STORAGE[1]


def test_port_that_does_not_answer_is_bounded() -> None:
    silent = SilentPort()
    try:  # esptool's default 7 connection attempts: seconds, not minutes
        proc = subprocess.run([sys.executable, "-m", "partkit", "parttool", "--port",
                               silent.url, "get_partition_info", "-n", "nvs"],
                              capture_output=True, text=True, timeout=120)
    finally:
        silent.close()
    assert proc.returncode == 1
    assert "cannot connect to a chip" in proc.stderr and "Traceback" not in proc.stderr


def test_connection_dropped_mid_write(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    device = MockDevice(tmp_path / "state")
    blocks: list[int] = []

    def kill_on_second_block(frame: bytes) -> bool:
        if frame[:2] == b"\x00\x11":  # FLASH_DEFL_DATA
            blocks.append(1)
            if len(blocks) == 2:
                device.kill()
                return False
        return True

    try:
        device.write(tmp_path, 0x8000, TABLE)
        proxy = Proxy(device.port, on_client=kill_on_second_block)
        src = tmp_path / "app.bin"
        src.write_bytes(pattern(0x10000, 19))
        code, _, err = parttool(capsys, "--port", proxy.url, "write_partition",
                                "--partition-name=factory", "--input", str(src))
        proxy.close()
    finally:
        device.stop()
    assert code == 1
    assert "writing partition 'factory'" in err
    assert "0x10000..0x20000 may be erased or partially written" in err
    assert "0x20000..0x30000 was not touched yet" in err
    assert "Traceback" not in err


HELP_COMMANDS = [["device", c] for c in ("show", "info", "read", "write", "erase", "otadata",
                                         "set-boot")] + [
    ["parttool"], *(["parttool", s] for s in ("read_partition", "write_partition",
                                              "erase_partition", "get_partition_info"))]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=["-".join(c) for c in HELP_COMMANDS])
def test_help_is_complete(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The same rules as every other command's --help (tests/test_cli_defects.py)."""
    from test_cli_defects import _options_without_help, help_text

    text = help_text(command, capsys)
    assert _options_without_help(text) == []
    assert "exit status:" in text and "\n  0  " in text and "\n  2  " in text
    if "--chip" in text:
        from partkit.common.chips import chip_names

        assert all(chip in text for chip in chip_names())


def test_image_without_a_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(b"\xff" * 0x8100)
    code, _, err = parttool(capsys, "--image", str(short), "get_partition_info", "-n", "nvs")
    # a table that cannot be read is an error even here (parttool: a traceback, exit 1)
    assert code == 2 and "truncated image" in err
    code, _, err = parttool(capsys, "--image", str(short), "erase_partition", "-n", "nvs")
    assert code == 2 and "truncated image" in err and "--partition-table-offset N" in err
    # a blank table area is an empty table, as parttool reads it
    blank = tmp_path / "blank.bin"
    blank.write_bytes(b"\xff" * 0x10000)
    code, out, err = parttool(capsys, "--image", str(blank), "get_partition_info", "-n", "nvs")
    assert (code, out) == (0, "") and "is blank (all 0xFF)" in err
    code, out, err = parttool(capsys, "--image", str(blank), "erase_partition", "-n", "nvs")
    assert code == 2 and "partition does not exist" in err and "table is empty" in err
    assert blank.read_bytes() == b"\xff" * 0x10000


def test_quiet_silences_errors_and_help_goes_to_stdout(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    code, out, err = parttool(capsys, "-q", "--partition-table-file", str(CSV),
                              "--image", str(tmp_path / "missing.bin"), "erase_partition",
                              "-n", "nvs")
    assert code == 2 and (out, err) == ("", "")
    code, out, err = parttool(capsys)  # no subcommand: the help, on stdout
    assert code == 2 and "read_partition" in out and err == ""
    code, out, err = parttool(capsys, "-q")
    assert (code, out, err) == (2, "", "")
