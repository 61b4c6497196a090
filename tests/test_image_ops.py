"""imagefile and otadata on real files: streaming writes, journal recovery, otadata codec."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import pytest
from partkit.flash import imagefile, journal
from partkit.flash import otadata
from partkit.common.errors import PartkitError
from partkit.table.model import Partition, PartitionTable

MB = 1 << 20
PART = Partition("storage", 1, 0x82, 0x20000, 0x60000)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "flash.bin"
    path.write_bytes(os.urandom(MB))
    return path


def test_write_pads_with_ff_and_touches_only_the_partition(image: Path, tmp_path: Path) -> None:
    before = image.read_bytes()
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(0x12345))
    imagefile.write_partition(str(image), PART, str(src))
    after = image.read_bytes()
    assert len(after) == len(before)
    assert after[: PART.offset] == before[: PART.offset]
    assert after[PART.end:] == before[PART.end:]
    body = after[PART.offset:PART.end]
    assert body[:0x12345] == src.read_bytes()
    assert body[0x12345:] == b"\xff" * (PART.size - 0x12345)
    assert not os.path.exists(imagefile.journal_path(str(image)))


def test_erase_and_read(image: Path, tmp_path: Path) -> None:
    imagefile.erase_partition(str(image), PART, sync=True)
    out = tmp_path / "out.bin"
    imagefile.read_partition(str(image), PART, str(out))
    assert out.read_bytes() == b"\xff" * PART.size


def test_write_to_copy_leaves_original(image: Path, tmp_path: Path) -> None:
    digest = _digest(image)
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x01" * 100)
    copy = tmp_path / "sub" / "copy.bin"
    imagefile.write_partition(str(image), PART, str(src), output=str(copy))
    assert _digest(image) == digest
    data = copy.read_bytes()
    assert data[PART.offset:PART.offset + 100] == b"\x01" * 100
    assert data[:PART.offset] == image.read_bytes()[:PART.offset]


def test_too_big_and_outside_image_change_nothing(image: Path, tmp_path: Path) -> None:
    digest = _digest(image)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (PART.size + 1))
    with pytest.raises(PartkitError, match="do not fit partition 'storage'"):
        imagefile.write_partition(str(image), PART, str(big))
    beyond = Partition("far", 1, 0x82, MB - 0x1000, 0x2000)
    with pytest.raises(PartkitError, match="beyond the end of the image"):
        imagefile.erase_partition(str(image), beyond)
    assert _digest(image) == digest
    assert not list(tmp_path.glob(".*journal*"))


def _journal_after_kill(image: Path, src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a kill after the first chunk reached the image (journal left behind)."""
    calls = {"n": 0}
    real = imagefile._write_chunk

    class Killed(BaseException):
        pass

    def dying(fd: int, data: bytearray, offset: int) -> None:
        real(fd, data, offset)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    monkeypatch.setattr(imagefile, "_write_chunk", dying)
    # a real kill skips the rollback in the except handler: disable it for this simulation
    monkeypatch.setattr(journal, "_recover_locked", lambda locked, sync, ours=False: False)
    with pytest.raises(Killed):
        imagefile.write_partition(str(image), PART, str(src))
    monkeypatch.undo()


def test_leftover_journal_rolls_back_on_next_open(image: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    original = image.read_bytes()
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(PART.size))
    _journal_after_kill(image, src, monkeypatch)
    assert os.path.exists(imagefile.journal_path(str(image)))
    assert image.read_bytes() != original  # torn: the first chunks were written
    assert imagefile.image_size(str(image)) == MB  # any access recovers first
    assert image.read_bytes() == original
    assert not os.path.exists(imagefile.journal_path(str(image)))
    assert imagefile.recover(str(image)) is False


def test_damaged_journal_is_refused(image: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(PART.size))
    _journal_after_kill(image, src, monkeypatch)
    journal = Path(imagefile.journal_path(str(image)))
    journal.write_bytes(journal.read_bytes()[:-1])
    torn = _digest(image)
    with pytest.raises(PartkitError, match="is cut short"):
        imagefile.recover(str(image))
    assert _digest(image) == torn


def test_unsynced_journal_from_another_boot_is_not_applied(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not journal._boot_id():
        pytest.skip("no boot id on this OS: every write is synced")
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(PART.size))
    _journal_after_kill(image, src, monkeypatch)
    monkeypatch.setattr(journal, "_boot_id", lambda: b"\x01" * 16)
    with pytest.raises(PartkitError, match="without --sync before the machine restarted"):
        imagefile.recover(str(image))


def test_stale_tmp_journal_is_discarded(image: Path) -> None:
    digest = _digest(image)
    tmp = Path(imagefile.journal_path(str(image)) + ".tmp")
    tmp.write_bytes(b"partial")
    assert imagefile.image_size(str(image)) == MB
    assert not tmp.exists()
    assert _digest(image) == digest


def test_create_image_fills_gaps(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"\x11" * 10)
    out = tmp_path / "img.bin"
    imagefile.create_image(str(out), 0x10000, [
        imagefile.Piece(0x1000, "a", path=str(a)),
        imagefile.Piece(0x8000, "table", data=b"\x22" * 4),
    ])
    data = out.read_bytes()
    assert len(data) == 0x10000
    assert data[0x1000:0x100A] == b"\x11" * 10 and data[0x8000:0x8004] == b"\x22" * 4
    assert data.count(b"\xff") == 0x10000 - 14
    with pytest.raises(PartkitError, match="overlaps"):
        imagefile.create_image(str(out), 0x10000, [
            imagefile.Piece(0x1000, "a", path=str(a)),
            imagefile.Piece(0x1004, "b", data=b"x"),
        ])
    with pytest.raises(PartkitError, match="does not fit a flash"):
        imagefile.create_image(str(out), 0x1005, [imagefile.Piece(0x1000, "a", path=str(a))])


# --- otadata ------------------------------------------------------------------------------


def test_otadata_crc_matches_rom_convention() -> None:
    # ROM crc32_le(UINT32_MAX, &seq, 4): known value for ota_seq = 1
    assert otadata.entry_crc(1) == 0x4743989A
    for seq in (1, 2, 7, 0x12345678):
        assert otadata.entry_crc(seq) == zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)


def test_otadata_against_esp_idf_defs() -> None:
    defs = pytest.importorskip("esp_idf_defs.otadata")  # test oracle only (py>=3.10)
    for slot in range(4):
        ours = otadata.encode_for_slot(slot, 4, state=otadata.STATE_NEW)
        theirs = defs.OtaDataSelectEntry.from_ota_slot(slot).to_bytes()
        assert ours[:32] == theirs
        parsed = defs.OtaDataSelectEntry.from_bytes(ours[:32])
        assert parsed.ota_slot(4) == slot
        assert otadata.active_slot(otadata.decode(ours), 4) == slot


def _sector(entry: bytes) -> bytes:
    return entry + b"\xff" * (otadata.SECTOR_SIZE - len(entry))


def test_active_slot_rules() -> None:
    blank = otadata.encode_for_slot(None, 2)
    assert blank == b"\xff" * 0x2000
    assert otadata.active_slot(otadata.decode(blank), 2) is None
    # higher sequence wins across sectors; slot = (seq - 1) % count
    data = _sector(otadata.encode_entry(3)) + _sector(otadata.encode_entry(4))
    assert otadata.active_slot(otadata.decode(data), 2) == 1
    assert otadata.active_slot(otadata.decode(data), 3) == 0
    # a bad CRC disqualifies the entry
    bad = bytearray(otadata.encode_entry(4))
    bad[-1] ^= 1
    data = _sector(otadata.encode_entry(3)) + _sector(bytes(bad))
    entries = otadata.decode(data)
    assert not entries[1].crc_ok and otadata.active_slot(entries, 2) == 0
    # rolled-back (aborted) entries are skipped
    data = _sector(otadata.encode_entry(3)) + _sector(
        otadata.encode_entry(4, otadata.STATE_ABORTED))
    assert otadata.active_slot(otadata.decode(data), 2) == 0
    with pytest.raises(ValueError):
        otadata.encode_for_slot(2, 2)


def test_table_objects_are_enough_for_io(image: Path, tmp_path: Path) -> None:
    table = PartitionTable([PART])
    found = table.find_by_name("storage")
    assert found is not None
    out = tmp_path / "o.bin"
    imagefile.read_partition(str(image), found, str(out))
    assert out.read_bytes() == image.read_bytes()[PART.offset:PART.end]
