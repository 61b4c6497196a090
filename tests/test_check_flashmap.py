"""The flash map: SVG parsed back (every partition drawn, to scale) and the ASCII strip."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from partkit.check.flashmap import app_usage, ascii_map, svg_map
from partkit.flash.appimage import read_image
from partkit.table.codec import load_table
from partkit.table.options import TableOptions

SVG = "{http://www.w3.org/2000/svg}"
CSV = """\
nvs,      data, nvs,      0x9000,   0x5000
otadata,  data, ota,      0xe000,   0x2000
app0,     app,  ota_0,    0x10000,  0x140000
app1,     app,  ota_1,    0x150000, 0x140000
spiffs,   data, spiffs,   0x290000, 0x100000
coredump, data, coredump, 0x3F0000, 0x10000
"""


def load(options: TableOptions):  # type: ignore[no-untyped-def]
    return load_table(CSV.encode(), "t.csv", options).table


def rects(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}rect") if e.get("class") == cls]


def test_every_partition_drawn_to_scale() -> None:
    options = TableOptions(flash_size=0x400000, primary_bootloader_offset=0)
    table = load(options)
    root = ET.fromstring(svg_map(table, options, height=800))
    drawn = rects(root, "partition")
    assert sorted(e.get("data-name") for e in drawn) == sorted(p.name for p in table)
    flash = rects(root, "flash")[0]
    top, full = float(flash.get("y", "")), float(flash.get("height", ""))
    assert full == 800 and int(flash.get("data-size", "")) == 0x400000
    for e in drawn:
        p = table.find_by_name(e.get("data-name", ""))
        assert p is not None
        # Height and position proportional to size and offset on one linear axis.
        assert float(e.get("height", "")) == pytest.approx(p.size / 0x400000 * full)
        assert float(e.get("y", "")) == pytest.approx(top + p.offset / 0x400000 * full)
    widths = {e.get("width") for e in drawn}
    assert len(widths) == 1
    regions = {e.get("data-name"): e for e in rects(root, "region")}
    assert set(regions) == {"bootloader", "partition table"}
    assert float(regions["bootloader"].get("height", "")) == pytest.approx(0x8000 / 0x400000 * 800)
    # Unused space between spiffs (ends 0x390000) and coredump (0x3f0000) is shown.
    gaps = rects(root, "gap")
    assert [(int(g.get("data-offset", "")), int(g.get("data-size", ""))) for g in gaps] == [
        (0x390000, 0x60000)]
    labels = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert any(label.startswith("spiffs data/spiffs @ 0x290000") for label in labels)


def test_app_usage_drawn_inside_the_slot() -> None:
    options = TableOptions(flash_size=0x800000)
    table = load(options)
    image = read_image(b"\xee" * 0xA0000, "fw.bin")
    big = read_image(b"\xee" * 0x150000, "big.bin")
    usage = app_usage(table, [(None, image), ("app1", big)])
    assert usage == {"app0": image, "app1": big}
    root = ET.fromstring(svg_map(table, options, usage, height=1000))
    used = {e.get("data-name"): e for e in rects(root, "used")}
    slots = {e.get("data-name"): e for e in rects(root, "partition")}
    assert set(used) == {"app0", "app1"}
    ratio = float(used["app0"].get("height", "")) / float(slots["app0"].get("height", ""))
    assert ratio == pytest.approx(0xA0000 / 0x140000)
    assert used["app0"].get("y") == slots["app0"].get("y")
    # Overflow is capped at the slot and drawn in the warning colour.
    assert float(used["app1"].get("height", "")) == pytest.approx(
        float(slots["app1"].get("height", "")))
    assert used["app1"].get("fill") != used["app0"].get("fill")
    assert rects(root, "free")[0].get("data-offset") == str(0x400000)
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "OVERFLOW by 0x10000 bytes" in text and "50.0% used" in text


def test_names_are_escaped() -> None:
    csv = 'a<b&"c, data, nvs, 0x9000, 0x6000\n'
    table = load_table(csv.encode(), "x.csv", TableOptions(verify=False)).table
    root = ET.fromstring(svg_map(table, TableOptions()))
    assert rects(root, "partition")[0].get("data-name") == 'a<b&"c'


def test_ascii_map_to_scale() -> None:
    options = TableOptions(flash_size=0x400000, primary_bootloader_offset=0)
    table = load(options)
    text = ascii_map(table, options, width=64)
    lines = text.splitlines()
    strip = lines[1]
    assert strip.startswith("|") and strip.endswith("|") and len(strip) == 66
    cells = strip[1:-1]
    keys = {line.split()[1]: line.split()[0] for line in lines[2:] if not line.split()[1]
            .startswith("(")}
    # 0x140000 of 0x400000 at 64 columns is 20 columns (small rows may borrow a couple).
    assert abs(cells.count(keys["app0"]) - 20) <= 3
    assert cells.count(keys["spiffs"]) == 16
    assert "B" in cells and "T" in cells
    assert "." in cells  # the gap before coredump
    assert all(key in cells for key in keys.values())  # even 8K otadata is visible
    narrow = ascii_map(table, options, width=20).splitlines()[1]
    assert len(narrow) == 22


def test_show_prints_the_ascii_map(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    r = subprocess.run([sys.executable, "-m", "partkit", "show", str(path), "--flash-size",
                        "4MB"], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "flash map 0x0..0x400000" in r.stdout


def test_map_cli_writes_svg(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xee" * 0x1000)
    out = tmp_path / "out" / "flash.svg"
    r = subprocess.run([sys.executable, "-m", "partkit", "map", str(path), "--app",
                        f"app1={fw}", "--chip", "esp32c3", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    root = ET.parse(out).getroot()
    assert [e.get("data-name") for e in rects(root, "used")] == ["app1"]
    assert "not an ESP image" in r.stderr
    bad = subprocess.run([sys.executable, "-m", "partkit", "map", str(path), "--app",
                          f"nosuch={fw}", "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "no partition named 'nosuch'" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "partkit", "map", str(tmp_path / "x.csv"),
                              "-o", str(out)], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.mark.firmware
def test_map_judges_the_flashed_file_as_check_does(tmp_path: Path) -> None:
    """A real app padded to 0x150000 in a 1 MiB slot: check fails it; map drew it as a
    quarter used and exited 0."""
    from support.firmware import build_app

    table = tmp_path / "t.csv"
    table.write_text("nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 1M\n")
    app = build_app(tmp_path)
    padded = tmp_path / "padded.bin"
    padded.write_bytes(app.read_bytes().ljust(0x150000, b"\xff"))
    out = tmp_path / "flash.svg"
    check = subprocess.run([sys.executable, "-m", "partkit", "check", str(table), "--app",
                            str(padded)], capture_output=True, text=True)
    assert check.returncode == 1, check.stdout + check.stderr
    r = subprocess.run([sys.executable, "-m", "partkit", "map", str(table), "--app",
                        str(padded), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "does not fit app partition 'factory'" in r.stderr and "0x50000 bytes over" in r.stderr
    root = ET.parse(out).getroot()  # the picture is still written
    (used,) = rects(root, "used")
    assert used.get("data-used") == str(0x150000)
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "OVERFLOW by 0x50000 bytes" in text and "% used" not in text
    assert f"image {read_image(app.read_bytes(), 'a').measured_size:#x}" in text


def test_without_chip_the_bootloader_room_is_marked(tmp_path: Path) -> None:
    """Chip unknown: 0x0 up to the table is still the bootloader's (its start is 0x0,
    0x1000 or 0x2000), not unused flash or part of the table."""
    from partkit.check.flashmap import UNKNOWN_BOOTLOADER

    options = TableOptions(flash_size=0x400000)
    table = load(options)
    root = ET.fromstring(svg_map(table, options, height=800))
    regions = {e.get("data-name"): e for e in rects(root, "region")}
    assert set(regions) == {UNKNOWN_BOOTLOADER, "partition table"}
    assert regions[UNKNOWN_BOOTLOADER].get("data-offset") == "0"
    assert not any(g.get("data-offset") == "0" for g in rects(root, "gap"))
    strip = ascii_map(table, options, width=64).splitlines()
    assert strip[1].startswith("|B") and any("start depends on the chip" in s for s in strip)
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    r = subprocess.run([sys.executable, "-m", "partkit", "show", str(path), "--no-map"],
                       capture_output=True, text=True)
    rows = [line.split() for line in r.stdout.splitlines()]
    assert ["(bootloader", "room)", "0x0", "0x8000", "32", "KiB"] in rows, r.stdout
