"""`partkit diff` with OLD read off a connected chip (esptool's protocol, the mock device)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partkit.cli import main
from partkit.table.codec import encode
from partkit.flash.tablearea import load_table_file
from partkit.table.options import table_options
from support.mock_device import MockDevice

OLD = """\
nvs,      data, nvs,     0x9000,  0x5000,
otadata,  data, ota,     0xe000,  0x2000,
app0,     app,  ota_0,   0x10000, 0x140000,
app1,     app,  ota_1,   0x150000, 0x140000,
spiffs,   data, spiffs,  0x290000, 0x170000,
"""


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> MockDevice:
    tmp = tmp_path_factory.mktemp("diff-device")
    mock = MockDevice(tmp / "state")  # started by its constructor
    csv = tmp / "old.csv"
    csv.write_text(OLD)
    mock.write(tmp, 0x8000, encode(load_table_file(str(csv), table_options()).table,
                                   table_options()))
    yield mock
    mock.stop()


@pytest.mark.parametrize("how", ["url", "port:"])
def test_old_table_read_from_the_device_gives_the_file_verdicts(
        device: MockDevice, tmp_path: Path, how: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.csv"
    old.write_text(OLD)
    moved_nvs = tmp_path / "new.csv"
    moved_nvs.write_text(OLD.replace("nvs,      data, nvs,     0x9000,  0x5000,",
                                     "nvs,      data, nvs,     0xa000,  0x4000,"))
    source = device.url if how == "url" else f"port:{device.url}"
    for new, expected in ((old, 0), (moved_nvs, 1)):
        assert main(["diff", str(old), str(new), "--json"]) == expected
        from_file = json.loads(capsys.readouterr().out)
        assert main(["diff", source, str(new), "--json"]) == expected
        from_device = json.loads(capsys.readouterr().out)
        assert from_device["safe"] == from_file["safe"]
        assert [v["code"] for v in from_device["violations"]] == \
            [v["code"] for v in from_file["violations"]]
        assert [c["changes"] for c in from_device["changes"]] == \
            [c["changes"] for c in from_file["changes"]]
        assert from_device["plan"] == from_file["plan"]
        assert from_device["flash_size"] == 4 * 1024 * 1024  # the chip says how big it is
    capsys.readouterr()
    assert main(["diff", source, str(moved_nvs)]) == 1
    out = capsys.readouterr().out
    assert "nvs" in out


def test_a_port_that_does_not_answer_is_bad_input(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new.csv"
    new.write_text(OLD)
    from support.mock_device import free_port

    rc = main(["diff", f"socket://127.0.0.1:{free_port()}", str(new)])
    err = capsys.readouterr().err
    assert rc in (1, 2) and "Traceback" not in err and "127.0.0.1" in err
