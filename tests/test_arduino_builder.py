"""The Arduino IDE 1.8 builder (Debian's arduino-builder) compiling sketches with the
simulated esp32 core in tests/data/arduino_core, partkit installed into it with
``partkit arduino install``.

Every compile is real: prebuild hooks copy the table (sketch's partitions.csv, else the
menu scheme's), riscv gcc links the sketch, ``partkit gen`` stands in for gen_esp32part,
esptool elf2image makes the images, and partkit's postobjcopy hook checks them. The
sketches are sized so that the classic size line ("Maximum is 1310720 bytes", from
boards.txt) passes while the sketch's own table has a smaller app slot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.tools import VENV_BIN, require_tool

pytestmark = pytest.mark.firmware

CORE = Path(__file__).parent / "data" / "arduino_core"
CUSTOM_CSV = """\
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     0x9000,  0x5000,
otadata,  data, ota,     0xe000,  0x2000,
app0,     app,  ota_0,   0x10000, 0x100000,
app1,     app,  ota_1,   0x110000,0x100000,
spiffs,   data, spiffs,  0x210000,0x1F0000,
"""
APP0_LINE = 4  # the app0 row of CUSTOM_CSV
SKETCH = """\
#include <Arduino.h>
SKETCH_PAD const uint8_t sketch_blob[{pad}] = {{1}};
volatile int counter;
void setup() {{ counter = sketch_blob[counter]; }}
void loop() {{ counter++; }}
"""


@pytest.fixture(scope="module")
def hardware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the simulated core with partkit installed (the repository copy stays clean)."""
    require_tool("arduino-builder")
    require_tool("riscv64-unknown-elf-gcc")
    root = tmp_path_factory.mktemp("hw") / "hardware"
    shutil.copytree(CORE / "espressif", root / "espressif", symlinks=True)
    core = root / "espressif" / "esp32"
    proc = subprocess.run([sys.executable, "-m", "partkit", "arduino", "install",
                           "--core-dir", str(core)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "installed" in proc.stdout
    return root


def _compile(hardware: Path, tmp_path: Path, pad: int, *, csv: str | None,
             scheme: str = "default", verbose: bool = False,
             ) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    sketch = tmp_path / "Sketch"
    sketch.mkdir()
    (sketch / "Sketch.ino").write_text(SKETCH.format(pad=pad))
    if csv is not None:
        (sketch / "partitions.csv").write_text(csv)
    build = tmp_path / "build"
    build.mkdir()
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    builtin = Path("/usr/share/arduino-builder")
    proc = subprocess.run(
        ["arduino-builder", "-compile", *(["-verbose"] if verbose else []),
         "-hardware", str(builtin), "-hardware", str(hardware), "-tools", "/usr/bin", "-fqbn",
         f"espressif:esp32:esp32c3:PartitionScheme={scheme},FlashSize=4M",
         "-build-path", str(build), str(sketch / "Sketch.ino")],
        capture_output=True, text=True, env=env)
    return proc, sketch, build


def test_custom_table_that_fits_passes_with_partkits_line(hardware: Path,
                                                         tmp_path: Path) -> None:
    proc, _, build = _compile(hardware, tmp_path, 600_000, csv=CUSTOM_CSV, verbose=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # partkit's hook runs after the core's last post-objcopy hook (the merged image)
    assert 0 < out.index(" merge-bin ") < out.index("-m partkit arduino check")
    size = (build / "Sketch.ino.bin").stat().st_size
    assert (f"partkit: Sketch uses {size} bytes ({size * 100 // 0x100000}%) of the 'app0' "
            "partition (1048576 bytes, from partitions.csv)") in out
    # the classic line still shows the board's number: that is what partkit corrects
    assert "Maximum is 1310720 bytes" in out


def test_custom_table_too_small_fails_the_compile(hardware: Path, tmp_path: Path) -> None:
    proc, sketch, build = _compile(hardware, tmp_path, 1_100_000, csv=CUSTOM_CSV)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    size = (build / "Sketch.ino.bin").stat().st_size
    assert 0x100000 < size < 1310720  # the board's maximum would have let it through
    assert f"{sketch / 'partitions.csv'}:{APP0_LINE}:" in out
    assert "error:" in out
    assert "partkit: the sketch does not fit the partition table the build made" in out
    # the same sketch with the core as shipped: the classic check lets it through
    plain = tmp_path / "plain"
    shutil.copytree(CORE / "espressif", plain / "hardware" / "espressif", symlinks=True)
    proc, _, _ = _compile(plain / "hardware", plain, 1_100_000, csv=CUSTOM_CSV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "partkit" not in proc.stdout + proc.stderr


def test_without_custom_table_the_menu_schemes_table_is_checked(hardware: Path,
                                                                tmp_path: Path) -> None:
    proc, _, build = _compile(hardware, tmp_path, 1_500_000, csv=None, scheme="huge_app")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    size = (build / "Sketch.ino.bin").stat().st_size
    assert (f"partkit: Sketch uses {size} bytes ({size * 100 // 3145728}%) of the 'app0' "
            "partition (3145728 bytes, from the 'huge_app' partition scheme)") in out
    # and the default scheme's 1.25 MiB slots fail the same sketch
    other = tmp_path / "default"
    other.mkdir()
    proc, _, _ = _compile(hardware, other, 1_500_000, csv=None, scheme="default")
    assert proc.returncode != 0
    assert "partkit: the sketch does not fit" in proc.stdout + proc.stderr


def test_a_removed_sketch_table_is_still_built_and_named_for_what_it_is(
        hardware: Path, tmp_path: Path) -> None:
    # the simulated core, like the real one, keeps the build folder's partitions.csv when the
    # sketch has none: the second build uses the first build's custom table
    proc, sketch, build = _compile(hardware, tmp_path, 600_000, csv=CUSTOM_CSV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (sketch / "partitions.csv").unlink()
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        ["arduino-builder", "-compile", "-hardware", "/usr/share/arduino-builder",
         "-hardware", str(hardware), "-tools", "/usr/bin", "-fqbn",
         "espressif:esp32:esp32c3:PartitionScheme=default,FlashSize=4M",
         "-build-path", str(build), str(sketch / "Sketch.ino")],
        capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert (build / "partitions.csv").read_text() == CUSTOM_CSV
    assert ("partition (1048576 bytes, from the build folder's partitions.csv, left by an "
            "earlier build") in out


def test_an_invalid_sketch_table_fails_at_its_own_file_and_line(hardware: Path,
                                                                tmp_path: Path) -> None:
    # the core's table generator fails on it without naming a line (the real
    # gen_esp32part.py prints none); partkit's prebuild hook names the sketch's own line
    bad = CUSTOM_CSV.replace("app1,     app,  ota_1,   0x110000,0x100000,",
                             "app1,     app,  ota_1,   0x100000,0x100000,")
    proc, sketch, build = _compile(hardware, tmp_path, 600_000, csv=bad)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{sketch / 'partitions.csv'}:5:1: error: partition 'app1' at 0x100000 overlaps" in out
    assert not (build / "Sketch.ino.partitions.bin").exists()  # stopped before the core's
