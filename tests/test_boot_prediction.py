"""Boot prediction as ESP-IDF's bootloader makes it (bootloader_utility.c,
esp_image_format.c): unsigned sequence arithmetic, rollback aborting pending_verify
records, the fallback order, and the 64 KiB MMU alignment of mapped segments. Images are
assembled by ``image create`` from real ESP32-C3 apps; otadata records are written with
partkit's encoder (the CRC the bootloader checks)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.flash import otadata
from partkit.flash.bootpredict import boot_choice, boot_order, predict_boot
from partkit.table import codec
from partkit.table.options import TableOptions

THREE = """\
nvs,      data, nvs,   0x9000,   0x4000
otadata,  data, ota,   0xd000,   0x2000
phy_init, data, phy,   0xf000,   0x1000
ota_0,    app,  ota_0, 0x10000,  1M
ota_1,    app,  ota_1, 0x110000, 1M
ota_2,    app,  ota_2, 0x210000, 1M
"""
OTADATA = 0xD000


def entries(*records: tuple[int, int] | None) -> tuple[otadata.OtaEntry, otadata.OtaEntry]:
    data = bytearray(b"\xff" * 0x2000)
    for index, record in enumerate(records):
        if record is not None:
            data[index * 0x1000:index * 0x1000 + 32] = otadata.encode_entry(*record)
    return otadata.decode(bytes(data))


def table(text: str = THREE):  # type: ignore[no-untyped-def]
    return codec.load_table(text.encode(), "t.csv", TableOptions()).table


@pytest.mark.parametrize("seq, count, slot", [(0, 3, 0), (0, 2, 1), (0, 5, 0), (0, 4, 3),
                                              (1, 3, 0), (5, 3, 1), (0xFFFFFFFE, 3, 1)])
def test_sequence_wraps_as_uint32(seq: int, count: int, slot: int) -> None:
    """(ota_seq - 1) % count in uint32_t: 0 becomes 0xFFFFFFFF, not -1 (Python's -1 % 3
    is 2, the bootloader's 0xFFFFFFFF % 3 is 0)."""
    assert otadata.slot_of_seq(seq, count) == slot == (seq - 1) % (1 << 32) % count
    assert entries((seq, otadata.STATE_UNDEFINED), None)[0].slot(count) == slot


def test_fallback_order_down_then_up_then_test() -> None:
    t = table(THREE + "test, app, test, 0x310000, 64K\n")
    names = {p.name: p for p in t}
    select_2 = entries((3, otadata.STATE_UNDEFINED), None)
    order = []
    predict_boot(t, select_2, lambda p: order.append(p.name) or False)
    assert order == ["ota_2", "ota_1", "ota_0", "test"]
    order.clear()
    predict_boot(t, entries((2, otadata.STATE_UNDEFINED), None),
                 lambda p: order.append(p.name) or False)
    assert order == ["ota_1", "ota_0", "ota_2", "test"]
    got = predict_boot(t, select_2, lambda p: p.name == "ota_0")
    assert got.start is names["ota_2"] and got.boots is names["ota_0"] and got.falls_back
    assert "falls back to 'ota_0'" in got.outcome()
    none = predict_boot(t, select_2, lambda p: False)
    assert none.boots is None and "forever" in none.outcome()


def test_rollback_aborts_pending_verify() -> None:
    t = table()
    records = entries((1, otadata.STATE_VALID), (2, otadata.STATE_PENDING_VERIFY))
    plain = predict_boot(t, records, lambda p: True)
    rolled = predict_boot(t, records, lambda p: True, rollback=True)
    assert plain.boots is not None and plain.boots.name == "ota_1"
    assert rolled.boots is not None and rolled.boots.name == "ota_0"
    assert "sector 1's pending_verify record is marked aborted" in rolled.selection
    # The only record pending: with rollback nothing is valid, so the boot default.
    alone = entries(None, (2, otadata.STATE_PENDING_VERIFY))
    assert predict_boot(t, alone, lambda p: True, rollback=True).boots.name == "ota_0"  # type: ignore[union-attr]


# --- one model for image check and diff: where the two old ones disagreed ------------------
# (ESP-IDF v6.0.2 bootloader_utility.c decides; support/fieldsim.py is written from it
# independently of partkit.)

REPEATED = THREE + "ota_1b,   app,  ota_1, 0x310000, 512K\n"  # app_count 4, two ota_1 rows
TWO_FACTORIES = """\
nvs,      data, nvs,     0x9000,   0x6000
first,    app,  factory, 0x10000,  1M
second,   app,  factory, 0x110000, 1M
"""
NO_OTADATA = """\
nvs,      data, nvs,   0x9000,   0x6000
ota_0,    app,  ota_0, 0x10000,  1M
ota_1,    app,  ota_1, 0x110000, 1M
"""


def test_a_repeated_subtype_boots_its_last_row() -> None:
    """load_partition_table overwrites ``bs->ota[N]`` / ``bs->factory`` row by row: the last
    row of a subtype is the one booted (image check used to take the first)."""
    t = table(REPEATED)
    select_1 = entries((2, otadata.STATE_UNDEFINED), None)
    got = predict_boot(t, select_1, lambda p: True)
    assert got.start is not None and got.start.name == "ota_1b" and got.boots is got.start
    assert boot_choice(t, 2, True) is got.start
    order: list[str] = []
    predict_boot(t, select_1, lambda p: order.append(p.name) or False)
    # index 3 (app_count 4) names no partition: the bootloader skips it
    assert order == ["ota_1b", "ota_0", "ota_2"]
    assert [p.name for p in boot_order(t, 2, True)] == order
    factories = table(TWO_FACTORIES)
    assert predict_boot(factories, None, lambda p: True).boots.name == "second"  # type: ignore[union-attr]
    assert boot_choice(factories, None, False).name == "second"  # type: ignore[union-attr]


def test_no_otadata_and_no_factory_starts_at_ota_0_without_a_fallback() -> None:
    """Without otadata the bootloader starts at FACTORY_INDEX; with no factory app that names
    nothing and ota_0 is the first partition it tries: not a fallback from a missing slot."""
    t = table(NO_OTADATA)
    got = predict_boot(t, None, lambda p: True)
    assert got.start is not None and got.start.name == "ota_0" and not got.falls_back
    assert got.outcome() == "no otadata partition: ota_0 first: 'ota_0' boots"
    assert boot_choice(t, None, False) is got.start


SIM_TABLES = [THREE, REPEATED, NO_OTADATA, TWO_FACTORIES,
              THREE.replace("ota_1,    app,  ota_1", "ota_3,    app,  ota_3"),  # index 3 >= 3
              "otadata, data, ota, 0xd000, 0x2000\nfactory, app, factory, 0x10000, 1M\n"
              "ota_0, app, ota_0, 0x110000, 1M\nota_2, app, ota_2, 0x210000, 1M\n"
              "test, app, test, 0x310000, 512K\n"]
SIM_RECORDS = [(None, None), ((0, 0xFFFFFFFF), None), ((1, 0xFFFFFFFF), None),
               ((5, 2), (6, 3)), ((0xFFFFFFFE, 0xFFFFFFFF), (2, 0xFFFFFFFF)), ((7, 4), None)]


@pytest.mark.parametrize("text", SIM_TABLES)
def test_prediction_matches_the_independent_bootloader_simulator(text: str) -> None:
    """Every otadata record pair and every subset of app slots holding an image: partkit's
    one model boots what support/fieldsim.py's bootloader boots."""
    import itertools

    from partkit.table.binary import encode
    from support import fieldsim

    t = table(text)
    apps = [p for p in t if p.type == 0]
    ota_part = next((p for p in t if p.type == 1 and p.subtype == 0), None)
    for records, present in itertools.product(
            SIM_RECORDS, itertools.product((False, True), repeat=len(apps))):
        dev = fieldsim.Device({}, 0x8000, 4 << 20, app_md5=False, old_bootloader=False,
                              running_image=0)
        dev.put(0x8000, encode(t))
        for image_id, (p, here) in enumerate(zip(apps, present)):
            if here:
                dev.add_image(image_id, p.offset, 0x1000)
        if ota_part is not None:
            for k, record in enumerate(records):
                if record is not None:
                    dev.put(ota_part.offset + k * 0x1000, fieldsim.otadata_record(*record))
        booted, _, _ = fieldsim.boot(dev)
        expected = None if booted is None else apps[booted]
        found = None if ota_part is None else otadata.decode(dev.read(ota_part.offset, 0x2000))
        with_image = {p.offset for p, here in zip(apps, present) if here}
        got = predict_boot(t, found, lambda p, on=with_image: p.offset in on)
        assert got.boots is expected, (records, present, got.outcome())


# --- image check on real images --------------------------------------------------------------

pytest_firmware = pytest.mark.firmware


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real ESP32-C3 app and bootloader."""
    from support.firmware import build_app, build_bootloader
    from support.tools import require_tool

    require_tool("riscv64-unknown-elf-gcc")
    root = tmp_path_factory.mktemp("fw")
    return build_app(root, 3000, name="app.bin"), build_bootloader(root, name="bl.bin")


def create(tmp_path: Path, bootloader: Path, name: str, *apps: tuple[str, Path]) -> Path:
    csv = tmp_path / "three.csv"
    csv.write_text(THREE)
    image = tmp_path / name
    argv = ["image", "create", str(image), "--table", str(csv), "--flash-size", "4MB",
            "--chip", "esp32c3", "--no-flash-args", "--bootloader", str(bootloader)]
    for slot, path in apps:
        argv += ["--app", f"{slot}={path}"]
    assert main(argv) == 0
    return image


def write_otadata(image: Path, *records: tuple[int, int] | None) -> None:
    with image.open("r+b") as f:
        for index, record in enumerate(records):
            if record is not None:
                f.seek(OTADATA + index * 0x1000)
                f.write(otadata.encode_entry(*record))


def check(capsys: pytest.CaptureFixture[str], image: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    capsys.readouterr()
    code = main(["image", "check", str(image), "--chip", "esp32c3", "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest_firmware
def test_seq_zero_with_three_slots_boots_ota_0(fw: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    image = create(tmp_path, fw[1], "seq0.img", ("ota_0", fw[0]))
    write_otadata(image, (0, otadata.STATE_UNDEFINED))
    code, report = check(capsys, image)
    # Python's % predicted ota_2 (erased) and failed the image; the bootloader boots ota_0.
    assert code == 0, report["findings"]
    (finding,) = report["findings"]
    assert finding["code"] == "otadata-sequence" and finding["severity"] == "warning"
    assert "selects ota_0" in finding["message"]
    capsys.readouterr()
    assert main(["image", "otadata", str(image), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["boots"] == "ota_0"


@pytest_firmware
def test_image_otadata_names_the_last_row_of_a_repeated_subtype(
        fw: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``image otadata`` says what ``image check`` predicts: the row the bootloader keeps."""
    csv = tmp_path / "repeated.csv"
    csv.write_text(REPEATED)
    image = tmp_path / "repeated.img"
    assert main(["image", "create", str(image), "--table", str(csv), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--no-flash-args", "--bootloader", str(fw[1]),
                 "--app", f"ota_1b={fw[0]}"]) == 0
    write_otadata(image, (2, otadata.STATE_UNDEFINED))  # ota_seq 2: slot 1 of 4
    capsys.readouterr()
    assert main(["image", "otadata", str(image), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["active_slot"], doc["boots"]) == (1, "ota_1b")
    assert check(capsys, image)[0] == 0  # image check boots it too: no otadata-target


@pytest_firmware
def test_pending_verify_is_reported_with_the_rollback_outcome(
        fw: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = create(tmp_path, fw[1], "pending.img", ("ota_0", fw[0]), ("ota_1", fw[0]))
    write_otadata(image, (1, otadata.STATE_VALID), (2, otadata.STATE_PENDING_VERIFY))
    code, report = check(capsys, image)
    assert code == 0
    (finding,) = report["findings"]
    assert finding["code"] == "otadata-pending-verify" and finding["severity"] == "warning"
    message = finding["message"]
    assert "marks it aborted at boot" in message and "'ota_0' boots" in message, message
    assert "without rollback, otadata sector 1 (ota_seq 2) selects ota_1: 'ota_1' boots" \
        in message
    capsys.readouterr()
    assert main(["image", "otadata", str(image)]) == 0
    out = capsys.readouterr().out
    assert "boots: ota_1" in out and "with rollback:" in out and "starts 'ota_0'" in out


@pytest_firmware
def test_fallback_is_named(fw: tuple[Path, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    image = create(tmp_path, fw[1], "fallback.img", ("ota_0", fw[0]))
    write_otadata(image, (3, otadata.STATE_UNDEFINED))  # selects ota_2: erased
    code, report = check(capsys, image)
    assert code == 1
    (finding,) = report["findings"]
    assert finding["code"] == "otadata-target"
    assert "the bootloader falls back to 'ota_0'" in finding["message"], finding
    empty = create(tmp_path, fw[1], "empty.img")
    code, report = check(capsys, empty)
    (finding,) = report["findings"]
    assert finding["code"] == "boot-app" and "forever" in finding["message"]


@pytest_firmware
def test_set_boot_does_not_offer_pending_verify(fw: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    image = create(tmp_path, fw[1], "setboot.img", ("ota_0", fw[0]), ("ota_1", fw[0]))
    before = image.read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # not a choice: only the bootloader writes it
        main(["image", "set-boot", str(image), "--slot", "ota_1", "--state", "pending_verify"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pending_verify'" in err and "'undefined', 'new', 'valid'" in err
    with pytest.raises(SystemExit):
        main(["image", "set-boot", "--help"])
    assert "new (as ESP-IDF's esp_ota_set_boot_partition writes it" in " ".join(
        capsys.readouterr().out.split())
    assert image.read_bytes() == before
    assert main(["image", "set-boot", str(image), "--slot", "ota_1", "--state", "new"]) == 0
    assert otadata.decode(image.read_bytes()[OTADATA:OTADATA + 0x2000])[0].state == 0


def misaligned(app: bytes) -> bytes:
    """The app with a 16-byte RAM segment put first: every later segment's data moves 24
    bytes in the file, so mapped segments no longer match their load address modulo 64 KiB
    (checksum and SHA-256 recomputed, so only the alignment is wrong)."""
    count = app[1]
    pos, segments = 24, []
    for _ in range(count):
        addr, length = struct.unpack_from("<II", app, pos)
        segments.append((addr, app[pos + 8:pos + 8 + length]))
        pos += 8 + length
    segments.insert(0, (0x3FC88000, bytes(16)))  # ESP32-C3 DRAM
    out = bytearray(app[:24])
    out[1] = len(segments)
    checksum = 0xEF
    for addr, data in segments:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            checksum ^= b
    out += b"\x00" * (15 - len(out) % 16) + bytes([checksum])
    if app[23] == 1:
        out += hashlib.sha256(out).digest()
    return bytes(out)


@pytest_firmware
def test_mapped_segments_off_the_mmu_page_are_rejected(
        fw: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.flash.appimage import read_image

    bad = tmp_path / "misaligned.bin"
    bad.write_bytes(misaligned(fw[0].read_bytes()))
    info = read_image(bad.read_bytes(), str(bad))  # a well-formed image otherwise
    assert info.is_image and any(s.flash_mapped for s in info.segments)
    image = create(tmp_path, fw[1], "mmu.img", ("ota_0", bad))
    code, report = check(capsys, image)
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["code"] == "app-invalid"]
    assert "MMU page" in finding["message"] and finding["partition"] == "ota_0"
    good = create(tmp_path, fw[1], "mmu-ok.img", ("ota_0", fw[0]))
    assert check(capsys, good)[0] == 0
