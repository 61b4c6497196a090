"""``partkit.flash.assemble``: the image plan ``image create`` writes, as a typed operation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from partkit.common.errors import CheckFailed, PartkitError
from partkit.flash import otadata
from partkit.flash.assemble import ImagePlan, plan_image, write_flash_args, write_image
from partkit.table.options import table_options
from partkit.table.source import open_table

CSV = """\
nvs,      data, nvs,     0x9000,  0x5000,
otadata,  data, ota,     0xe000,  0x2000,
ota_0,    app,  ota_0,   0x10000, 0x10000,
ota_1,    app,  ota_1,   0x20000, 0x10000,
storage,  data, spiffs,  0x30000, 0x10000,
"""


def _plan(tmp_path: Path, **kwargs: Any) -> ImagePlan:
    table_csv = tmp_path / "t.csv"
    table_csv.write_text(CSV)
    options = table_options(chip="esp32c3", flash_size=1 << 20)
    table = open_table(str(table_csv), options).table
    return plan_image(table, options, 1 << 20, table_path=str(table_csv), **kwargs)


def test_plan_places_every_piece_in_flash_order(tmp_path: Path) -> None:
    app = tmp_path / "app.bin"
    app.write_bytes(b"\xe9" + b"\x00" * 0x3FFF)
    blob = tmp_path / "fs.bin"
    blob.write_bytes(b"\x01" * 0x1000)
    plan = _plan(tmp_path, apps=[("ota_1", str(app))], datas=[("storage", str(blob))],
                 ota_slot=1)
    assert [(e.name, e.offset) for e in plan.entries] == [
        ("partition-table", 0x8000), ("otadata", 0xE000), ("ota_1", 0x20000),
        ("storage", 0x30000)]
    # otadata counts the OTA apps by table.names.is_ota_app: slot 1 of 2 is sequence 2
    data = next(e.data for e in plan.entries if e.name == "otadata")
    assert data is not None and otadata.active_slot(otadata.decode(data), 2) == 1
    image = tmp_path / "flash.img"
    write_image(str(image), plan)
    raw = image.read_bytes()
    assert len(raw) == 1 << 20 and raw[0x20000:0x24000] == app.read_bytes()
    assert write_flash_args(plan, str(tmp_path)) == (
        "partition_table/partition-table.bin", "ota_data_initial.bin")
    assert (tmp_path / "flash_args").read_text().startswith(
        "--flash-mode dio --flash-freq 80m --flash-size 1MB\n0x8000 ")


def test_a_file_that_does_not_fit_fails_before_anything_is_written(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * 0x10001)
    with pytest.raises(CheckFailed, match="1 bytes too many"):
        _plan(tmp_path, apps=[("ota_0", str(big))])
    with pytest.raises(PartkitError, match="--ota-slot: OTA slot 2 out of range"):
        _plan(tmp_path, ota_slot=2)
    with pytest.raises(PartkitError, match="did you mean 'storage'"):
        _plan(tmp_path, datas=[("storag", str(big))])
