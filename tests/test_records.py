"""Immutable records are one idiom: every record derives from partkit.common.record.Record.

The check, image-reader and flash records are built once with their final values; changing
one afterwards raises, and ``replace`` gives a changed copy without touching the original.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import partkit
import pytest
from partkit.check.checks import (
    AppCheck,
    BootloaderCheck,
    Budget,
    CheckReport,
    Finding,
    FlashCheck,
    SlotResult,
    run_checks,
)
from partkit.common.errors import warning
from partkit.common.record import Record
from partkit.data.check import DataCheck, check_data
from partkit.flash import contents
from partkit.flash.appimage import AppDescription, ImageInfo, Segment, read_image
from partkit.flash.flashargs import FlashFile
from partkit.flash.imagefile import Piece
from partkit.flash.otadata import SECTOR_SIZE, OtaEntry, decode, encode_entry
from partkit.table.codec import load_table
from partkit.table.names import BUILTIN_SUBTYPES, SubtypeRegistry
from partkit.table.options import TableOptions
from support.firmware import build_app

# Classes with __slots__ that are not records, and why.
NOT_RECORDS = {
    "partkit.flash.appimage.ImageBytes": "a reader over a file, not a value",
}

CSV = b"""\
nvs,      data, nvs,     0x9000,  0x6000,
otadata,  data, ota,     0xf000,  0x2000,
ota_0,    app,  ota_0,   0x20000, 0x20000,
ota_1,    app,  ota_1,   0x40000, 0x20000,
"""


def _core_classes() -> list[type]:
    found = []
    for mod in pkgutil.walk_packages(partkit.__path__, "partkit."):
        if mod.name == "partkit.__main__":
            continue
        module = importlib.import_module(mod.name)
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if c.__module__ == mod.name]
    return found


def test_slotted_classes_are_records_and_only_record_guards_setattr() -> None:
    classes = _core_classes()
    hand_rolled = [f"{c.__module__}.{c.__qualname__}" for c in classes
                   if "__setattr__" in vars(c) and c is not Record]
    assert hand_rolled == []
    slotted = [f"{c.__module__}.{c.__qualname__}" for c in classes
               if vars(c).get("__slots__") and not issubclass(c, (Record, BaseException))]
    # A new slotted value class should derive from Record (self._init, replace, immutable).
    assert set(slotted) <= set(NOT_RECORDS), sorted(set(slotted) - set(NOT_RECORDS))


@pytest.fixture(scope="module")
def app_image(tmp_path_factory: pytest.TempPathFactory) -> ImageInfo:
    path: Path = build_app(tmp_path_factory.mktemp("app"), 4_000, project_name="records")
    return read_image(path.read_bytes(), str(path))


@pytest.mark.firmware
def test_check_records_are_immutable(app_image: ImageInfo) -> None:
    opts = TableOptions(flash_size=4 << 20, chip="esp32")  # the image is esp32c3: a mismatch
    table = load_table(CSV, "parts.csv", opts).table
    report = run_checks(table, opts, app=app_image, bootloader=app_image,
                        bootloader_offset=0x1000, warn_free=Budget.parse("99%"))
    assert isinstance(report, CheckReport) and report.app is not None
    app, bl, flash = report.app, report.bootloader, report.flash
    assert isinstance(app, AppCheck) and isinstance(bl, BootloaderCheck)
    assert isinstance(flash, FlashCheck)
    # Built once with the final verdict: the chip mismatch is in the findings and the status.
    assert app.status == "fail" and "chip-mismatch" in [f.code for f in app.findings]
    assert "chip-mismatch" in [f.code for f in bl.findings]
    slot = app.candidates[0]
    desc = app_image.description
    assert isinstance(desc, AppDescription)
    values: list[tuple[Record, str]] = [
        (report, "app"), (app, "status"), (app, "findings"), (bl, "summary"), (flash, "last"),
        (slot, "used"), (app.findings[0], "code"), (Budget.parse("1K"), "value"),
        (app_image, "warnings"), (app_image.segments[0], "length"), (desc, "version"),
    ]
    for record, field in values:
        with pytest.raises(AttributeError, match="immutable"):
            setattr(record, field, None)
    # Derived numbers follow the stored ones.
    assert isinstance(slot, SlotResult) and slot.free == slot.partition.size - slot.used
    assert slot.fits and bl.limit == 0x8000 - 0x1000 and flash.highest_end == 0x60000


@pytest.mark.firmware
def test_replace_copies_and_keeps_the_original(app_image: ImageInfo) -> None:
    bigger = app_image.replace(file_size=app_image.file_size + 10)
    assert bigger.flashed_size == app_image.flashed_size + 10
    assert bigger.segments == app_image.segments and bigger.path == app_image.path
    seg = app_image.segments[0]
    assert isinstance(seg, Segment) and seg.replace(length=1).length == 1 and seg.length != 1
    finding = Finding("x", warning("careful"))
    renamed = finding.replace(code="y")
    assert (renamed.code, finding.code, renamed.diagnostic) == ("y", "x", finding.diagnostic)


def test_flash_records_are_immutable() -> None:
    f = FlashFile("app", 0x10000, "sub\\app.bin")
    # a Windows separator becomes "/"; on POSIX a backslash is part of the name (issue 20)
    path = "sub/app.bin" if os.sep == "\\" else "sub\\app.bin"
    assert f.path == path
    with pytest.raises(AttributeError, match="immutable"):
        f.offset = 0
    moved = f.replace(offset=0x20000)
    assert (moved.offset, f.offset, moved.path) == (0x20000, 0x10000, path)

    data = encode_entry(3).ljust(SECTOR_SIZE, b"\xff") + b"\xff" * SECTOR_SIZE
    first, second = decode(data)
    assert isinstance(first, OtaEntry) and first.valid and not second.valid
    with pytest.raises(AttributeError, match="immutable"):
        first.seq = 4
    assert first.replace(seq=4).seq == 4 and first.seq == 3

    registry = BUILTIN_SUBTYPES.with_extra(0x40, "blob", 7)
    assert isinstance(registry, SubtypeRegistry) and registry.keywords(0x40) == {"blob": 7}
    with pytest.raises(AttributeError, match="immutable"):
        registry._by_type = {}
    assert BUILTIN_SUBTYPES.keywords(0x40) == {}


def test_contents_piece_and_data_check_records(tmp_path: Path) -> None:
    found = contents.Finding("nvs", "NVS", {"format": "2"})
    with pytest.raises(AttributeError, match="immutable"):
        found.kind = "fat"
    assert found.replace(kind="fat").as_dict() == {"kind": "fat", "summary": "NVS",
                                                   "format": "2"}

    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * 10)
    piece = Piece(0x1000, "blob", path=str(blob))
    with pytest.raises(AttributeError, match="immutable"):
        piece.offset = 0
    assert (piece.size, piece.end) == (10, 0x100A)
    # A new source is measured again; a move keeps the size.
    as_bytes = piece.replace(path=None, data=b"abc")
    assert (as_bytes.size, as_bytes.replace(offset=0).size, piece.size) == (3, 3, 10)

    table = load_table(CSV, "parts.csv", TableOptions()).table
    result = check_data(table, "nvs", str(blob))
    # Built once: the findings (the blob is 'data', which fits) come with the record.
    assert isinstance(result, DataCheck) and result.findings == () and result.fits
    with pytest.raises(AttributeError, match="immutable"):
        result.findings = ()
    blob.write_bytes(b"x" * 0x7000)
    big = check_data(table, "nvs", str(blob))
    assert [f.code for f in big.findings] == ["data-too-large"] and not big.fits
    assert big.replace(size=1).fits and big.replace(size=1).findings == big.findings
