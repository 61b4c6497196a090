"""Attacks on ``partkit diff``'s plans and ``image apply`` (adversarial review of issue 19):
each case here once made a SAFE verdict (or apply) leave a device that boots another app,
or made the simulator disagree with ESP-IDF v6.0.2's bootloader."""

from __future__ import annotations

from pathlib import Path

from partkit.diff import diff_tables, load_side, side_of
from partkit.table.binary import encode
from partkit.table.options import TableOptions
from support import fieldsim
from test_diff_sim import TWO_OTA, device, run, table

MB = 1 << 20


def test_ota0_becoming_factory_blanks_the_stale_record_first() -> None:
    """OLD has no factory app and runs ota_0 (active record seq 3 in sector 0, an older
    seq 2 selecting ota_1 in sector 1). NEW turns the running row into the factory app:
    the plan blanks otadata before the table. Erasing sector 0 first leaves seq 2 in
    charge, and under OLD it boots ota_1, the older app: the stale sector must go first."""
    new = table("""\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
app0,     app,  factory, 0x10000, 1M,
app1,     app,  ota_0,   0x110000, 1M,
app2,     app,  ota_1,   0x210000, 1M,
""")
    report, out = run(table(TWO_OTA), new, "app0", seq_base=1)
    assert report.safe, report.violations  # type: ignore[attr-defined]
    assert [s.action for s in report.plan][:2] == ["write-otadata", "write-table"]  # type: ignore[attr-defined]
    assert out.failures == [], out.failures[:3]


def test_apply_blanks_the_sector_without_the_active_record_first(tmp_path: Path) -> None:
    """``image apply`` runs a blanking write-otadata as the simulator replays it: the sector
    not holding the active record first, whichever sector that is."""
    from partkit.device.target import ImageTarget
    from partkit.diff.apply import _otadata_write
    from partkit.diff.otaswitch import OtaWrite
    from partkit.diff.plan import Step

    step = Step("write-otadata", "otadata", 0xD000, 0x2000, "", otadata=OtaWrite(True))
    for active in (0, 1):
        path = tmp_path / f"flash{active}.bin"
        data = bytearray(b"\xff" * 0x10000)
        for sector, seq in ((active, 3), (1 - active, 2)):
            data[0xD000 + sector * 0x1000:0xD000 + sector * 0x1000 + 32] = \
                fieldsim.otadata_record(seq)
        path.write_bytes(bytes(data))
        ops = _otadata_write(ImageTarget(str(path)), step)
        assert ops == [(0xD000 + (1 - active) * 0x1000, b""), (0xD000 + active * 0x1000, b"")]


THREE_OTA = """\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
app0,     app,  ota_0,   0x10000, 0x100000,
app1,     app,  ota_1,   0x110000, 0x100000,
app2,     app,  ota_2,   0x210000, 0x100000,
"""


def test_sequence_number_zero_wraps_as_the_bootloader_computes_it(tmp_path: Path) -> None:
    """``(ota_seq - 1) % app_count`` is unsigned in the bootloader: seq 0 gives 0xFFFFFFFF,
    which selects ota_0 of 3 slots (Python's (0 - 1) % 3 is 2). A dump whose record has
    seq 0 runs app0; diff must protect app0, and the simulator must boot it."""
    from test_diff_sim import _image

    old = table(THREE_OTA)
    dev = device(old, old.find_by_name("app0"))  # type: ignore[arg-type]
    dev.put(0xD000, fieldsim.otadata_record(0, fieldsim.STATE_VALID))
    dev.sectors.pop(0xE, None)
    image, _rows, why = fieldsim.boot(dev)
    assert image == 1, why  # the running app's image id in app0
    dump = tmp_path / "dump.bin"
    _image(dump, encode(old, True), 4 * MB, 4 * MB)
    with open(dump, "r+b") as f:
        f.seek(0xD000)
        f.write(fieldsim.otadata_record(0, fieldsim.STATE_VALID))
        for n, offset in enumerate((0x10000, 0x110000, 0x210000)):
            f.seek(offset)
            f.write(fieldsim.image_header(n, 4 * MB))  # every slot holds an app
    shrunk = table(THREE_OTA.replace("0x10000, 0x100000", "0x10000, 0x80000"))
    report = diff_tables(load_side(str(dump), TableOptions()), side_of(shrunk))
    assert [p.name for p in report.running] == ["app0"]
    assert "running-slot-shrunk" in report.broken_codes


def test_running_slot_is_the_one_the_bootloader_falls_back_to(tmp_path: Path) -> None:
    """otadata selects ota_1, but ota_1 is blank (erased after a failed OTA): the bootloader
    skips it and boots ota_0. diff took ota_1 for the running slot, called a change that
    shrinks ota_0 SAFE, and its plan erased the app the device runs."""
    from test_diff_sim import TWO_OTA, _image

    old = table(TWO_OTA)
    dump = tmp_path / "dump.bin"
    _image(dump, encode(old, True), 4 * MB, 4 * MB)
    with open(dump, "r+b") as f:
        f.seek(0xD000)
        f.write(fieldsim.otadata_record(2))  # (2 - 1) % 2: ota_1, which is blank
        f.seek(0x10000)
        f.write(fieldsim.image_header(1, 4 * MB))  # ota_0 holds the app
    dev = device(old, old.find_by_name("app0"))  # type: ignore[arg-type]
    dev.put(0xD000, fieldsim.otadata_record(2))
    for s in range(0x110, 0x210):
        dev.sectors.pop(s, None)
    assert fieldsim.boot(dev)[0] == 1  # the bootloader falls back to ota_0's image
    shrunk = table(TWO_OTA.replace("0x10000, 1M", "0x10000, 0x80000"))
    report = diff_tables(load_side(str(dump), TableOptions()), side_of(shrunk))
    assert [p.name for p in report.running] == ["app0"]
    assert "running-slot-shrunk" in report.broken_codes
    assert not any(s.offset < 0x110000 and s.end > 0x10000 for s in report.plan
                   if s.action != "write-table")
