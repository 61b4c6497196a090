"""The PlatformIO extra script driven by real, offline ``pio run``.

The example project (examples/platformio-esp32c3, with its local platform) is copied into
tmp_path next to a copy of examples/common, and ``pio_extra_script.py``/``plugins``/``core``
are linked in, so the project's relative paths work as in the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from support.pio import offline_core, run_pio
from support.tools import require_tool

pytestmark = [pytest.mark.pio, pytest.mark.firmware]

ROOT = Path(__file__).resolve().parents[1]
SLOT = 0x30000
CSV = f"""\
# Name,   Type, SubType, Offset,  Size,    Flags
nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, {SLOT:#x},
storage,  data, spiffs,  ,        0x100000,
"""
DEFAULT_PAD = 100000


@pytest.fixture(scope="session")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("riscv64-unknown-elf-gcc")
    return offline_core(tmp_path_factory.mktemp("pio") / "core")


def make_project(root: Path, csv: str = CSV, **ini: str) -> Path:
    """A copy of the example under root/examples; ini entries replace/add [env] options."""
    for name in ("plugins", "core"):
        (root / name).symlink_to(ROOT / name, target_is_directory=True)
    (root / "pio_extra_script.py").symlink_to(ROOT / "pio_extra_script.py")
    shutil.copytree(ROOT / "examples" / "common", root / "examples" / "common")
    project = root / "examples" / "platformio-esp32c3"
    shutil.copytree(ROOT / "examples" / "platformio-esp32c3", project,
                    ignore=shutil.ignore_patterns(".pio"))
    (project / "partitions.csv").write_text(csv)
    # An absolute platform URI per project: pio caches installed platforms by their spec.
    set_options(project, platform=(project / "platform").as_uri(), **ini)
    return project


def set_options(project: Path, **ini: str) -> None:
    path = project / "platformio.ini"
    text = path.read_text()
    for key, value in ini.items():
        line = f"{key} = {value}"
        text, n = re.subn(rf"(?m)^{re.escape(key)} *=.*$", line, text)
        if not n:
            text = text.rstrip("\n") + f"\n{line}\n"
    path.write_text(text)


def build_dir(project: Path) -> Path:
    return project / ".pio" / "build" / "esp32c3"


def oracle_table(csv_text: str) -> bytes:
    defs = pytest.importorskip("esp_idf_defs.partitions")
    table = defs.PartitionTable.from_csv(csv_text)
    table.verify()
    data: bytes = table.to_binary()
    return data + b"\xff" * (0xC00 - len(data))


def pad_for_size(core: Path, project: Path, size: int) -> int:
    """PAD_BYTES giving a firmware.bin of exactly ``size`` bytes (the image grows linearly)."""
    base = (build_dir(project) / "firmware.bin")
    if not base.exists():
        result = run_pio(core, project)
        assert result.returncode == 0, result
    return DEFAULT_PAD + size - base.stat().st_size


def test_build_generates_table_checks_and_sets_maximum_size(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run_pio(core, project)
    assert result.returncode == 0, result
    out = build_dir(project)
    assert (out / "partitions.bin").read_bytes() == oracle_table(CSV)
    assert (out / "firmware.bin").read_bytes()[0] == 0xE9
    # The script says what it used.
    assert ("partkit: table partitions.csv (generated at 0x8000, flash 4MB, chip esp32c3); "
            f"app slot 'factory' {SLOT} bytes") in result.stdout
    # The real .bin and the bootloader were checked.
    assert "firmware.bin binary size" in result.stdout
    assert "Bootloader binary size 0x" in result.stdout
    # PlatformIO's own size line uses the slot, not the board's whole flash.
    assert re.search(rf"Flash: \[.*\] .*\(used \d+ bytes from {SLOT} bytes\)", result.stdout)


def test_maximum_size_in_environment_dump(core: Path, tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        CSV.replace("factory,  app,  factory", "ota_0,    app,  ota_0")
        + "ota_1,    app,  ota_1,   ,        0x40000,\n",
        custom_partkit_app_partition="ota_1")
    result = run_pio(core, project, "-t", "envdump")
    assert result.returncode == 0, result
    assert "'PARTKIT_APP_SLOT': 'ota_1'," in result.stdout
    assert f"'PARTKIT_APP_MAXIMUM_SIZE': {0x40000}," in result.stdout
    assert "'PARTKIT_APP_SUBTYPE': 'ota_1'," in result.stdout
    build = run_pio(core, project)
    assert build.returncode == 0, build
    assert f"from {0x40000} bytes)" in build.stdout


def test_noop_rebuild_then_csv_edit(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert run_pio(core, project).returncode == 0
    table = build_dir(project) / "partitions.bin"
    before = table.stat().st_mtime_ns

    again = run_pio(core, project)
    assert again.returncode == 0, again
    assert "partkit: generating" not in again.stdout
    assert "partkit: checking" not in again.stdout
    assert table.stat().st_mtime_ns == before

    edited = CSV.replace("storage,  data, spiffs,  ,        0x100000,",
                         "storage,  data, fat,     ,        0x80000,")
    (project / "partitions.csv").write_text(edited)
    result = run_pio(core, project)
    assert result.returncode == 0, result
    assert "partkit: generating .pio/build/esp32c3/partitions.bin" in result.stdout
    assert "partkit: checking app image" in result.stdout  # the table is a check input
    assert table.read_bytes() == oracle_table(edited)


def test_csv_error_fails_with_file_and_line(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, CSV.replace("phy_init, data, phy,", "phy_init, data, phyy,"))
    result = run_pio(core, project)
    assert result.returncode != 0
    assert "[.pio/build/esp32c3/partitions.bin] partitions.csv:3:" in result.output
    assert "phyy" in result.output
    assert "Traceback" not in result.output


def test_app_exactly_full_passes_and_one_step_over_fails(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    pad = pad_for_size(core, project, SLOT)
    set_options(project, build_flags=f"-DPAD_BYTES={pad}")
    fits = run_pio(core, project)
    assert fits.returncode == 0, fits
    assert (build_dir(project) / "firmware.bin").stat().st_size == SLOT
    assert "0x0 bytes (0%) free" in fits.stdout

    # 16 bytes is the smallest step of an ESP image: the smallest real overflow.
    set_options(project, build_flags=f"-DPAD_BYTES={pad + 16}")
    over = run_pio(core, project)
    assert over.returncode != 0
    assert (build_dir(project) / "firmware.bin").stat().st_size == SLOT + 16
    assert "[.pio/build/esp32c3/firmware.bin.partkit-check]" in over.output
    assert f"Part 'factory' 0/0 @ 0x10000 size {SLOT:#x} (overflow 0x10)" in over.output
    assert "[FAILED]" in over.output
    # PlatformIO's own ELF-section check passed: it counts less than the real image.
    assert re.search(rf"used \d+ bytes from {SLOT} bytes", over.stdout)


def test_partition_table_target(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, custom_partkit_offset="0x9000")
    moved = CSV.replace("nvs,      data, nvs,     0x9000,  0x6000,",
                        "nvs,      data, nvs,     0xa000,  0x5000,")
    (project / "partitions.csv").write_text(moved)
    result = run_pio(core, project, "-t", "partition-table")
    assert result.returncode == 0, result
    rows = result.stdout
    assert re.search(r"(?m)^nvs\s+data\s+nvs\s+0xa000\s+0xf000\s+20 KiB", rows)
    assert re.search(r"(?m)^factory\s+app\s+factory\s+0x10000\s+0x40000\s+192 KiB", rows)
    assert re.search(r"\(partition table\)\s+0x9000", rows)
    assert ("-m esptool --chip esp32c3 write-flash 0x9000 .pio/build/esp32c3/partitions.bin"
            in rows)
    assert "Linking" not in rows  # only the table was built
    assert (build_dir(project) / "partitions.bin").read_bytes()[:2] == b"\xaa\x50"

    drawn = run_pio(core, project, "-t", "partition-map")
    assert drawn.returncode == 0, drawn
    svg = (build_dir(project) / "partitions.svg").read_text()
    assert svg.lstrip().startswith(("<svg", "<?xml")) and "factory" in svg


ESPRESSIF32_FRAMEWORK = '''\
"""Stand-in for platform-espressif32's Arduino framework script: it owns partitions.bin."""
import os

from SCons.Script import DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
csv = os.path.abspath(board.get("build.partitions", "default.csv"))
env.Replace(PARTITIONS_TABLE_CSV=csv)
table = env.Command("$BUILD_DIR/partitions.bin", "$PARTITIONS_TABLE_CSV",
                    env.VerboseAction(
                        "$PYTHONEXE -c \\"import sys; from esp_idf_defs.partitions "
                        "import PartitionTable as T; open(sys.argv[2], 'wb').write("
                        "T.from_csv(open(sys.argv[1]).read()).to_binary()"
                        ".ljust(0xC00, b'\\\\xff'))\\" $SOURCE $TARGET",
                        "Generating partitions $TARGET"))
env.Depends("$BUILD_DIR/$PROGNAME$PROGSUFFIX", table)
'''

# platform-espressif32's builder/main.py, after env.BuildProgram(): a lazy maximum.
ESPRESSIF32_MAXIMUM = '''

def _update_max_upload_size(source, target, env):
    board.update("upload.maximum_size", 4096)  # stand-in for the first factory/ota_0 size


if env.get("PIOMAINPROG"):
    env.AddPreAction("checkprogsize", env.VerboseAction(_update_max_upload_size,
                                                        "Retrieving maximum program size"))
'''


def test_coexists_with_a_platform_that_generates_the_table(core: Path, tmp_path: Path) -> None:
    """On platform-espressif32 the framework owns partitions.bin: no second builder."""
    pytest.importorskip("esp_idf_defs.partitions")
    project = make_project(tmp_path, framework="arduino")
    platform = project / "platform"
    manifest = json.loads((platform / "platform.json").read_text())
    manifest.update(name="espressif32", frameworks={
        "arduino": {"script": "builder/frameworks/arduino.py"}})
    (platform / "platform.json").write_text(json.dumps(manifest))
    (platform / "platform.py").write_text(
        "from platformio.public import PlatformBase\n\n\n"
        "class Espressif32Platform(PlatformBase):\n    pass\n")
    with (platform / "builder" / "main.py").open("a") as main:
        main.write(ESPRESSIF32_MAXIMUM)
    (platform / "builder" / "frameworks").mkdir()
    (platform / "builder" / "frameworks" / "arduino.py").write_text(ESPRESSIF32_FRAMEWORK)
    board = json.loads((platform / "boards" / "esp32c3-partkit.json").read_text())
    board["frameworks"] = ["arduino"]
    (platform / "boards" / "esp32c3-partkit.json").write_text(json.dumps(board))

    result = run_pio(core, project)
    assert result.returncode == 0, result
    assert "Generating partitions .pio/build/esp32c3/partitions.bin" in result.stdout
    assert "partkit: generating" not in result.stdout
    assert "(from the platform at 0x8000" in result.stdout
    assert "firmware.bin binary size" in result.stdout  # still checked
    # Our maximum wins over the platform's later "Retrieving maximum program size".
    assert f"from {SLOT} bytes)" in result.stdout
    assert (build_dir(project) / "partitions.bin").read_bytes() == oracle_table(CSV)
