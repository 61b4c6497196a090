"""The PlatformIO extra script driven by real, offline ``pio run``.

The example project (examples/platformio-esp32c3, with its local platform) is copied into
tmp_path next to a copy of examples/common, and ``pio_extra_script.py``/``plugins``/``core``
are linked in, so the project's relative paths work as in the checkout.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.firmware import bootloader_of_size
from support.pio import ESPTOOL4_VERSION, esptoolpy_package, offline_core, run_pio
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
    assert "partkit-check' is up to date" not in again.output  # no stamp noise
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
    assert re.search(r"\[\.pio/build/esp32c3/firmware\.bin\.(\w+\.)?partkit-check\]", over.output)
    assert f"Part 'factory' 0/0 @ 0x10000 size {SLOT:#x} (overflow 0x10)" in over.output
    assert "[FAILED]" in over.output
    # PlatformIO's own ELF-section check passed: it counts less than the real image.
    assert re.search(rf"used \d+ bytes from {SLOT} bytes", over.stdout)


def flash_command(stdout: str) -> list[str]:
    """The command the partition-table target prints to flash the table."""
    lines = stdout.splitlines()
    intro = next(i for i, line in enumerate(lines) if line.startswith("To flash"))
    return shlex.split(lines[intro + 1])


def run_against_mock(command: list[str], tool_args: int, cwd: Path) -> str:
    """Run a printed esptool command against a mock ESP32-C3 (``--port`` added after the
    ``tool_args`` words that start esptool); returns its output, asserting success."""
    mock = pytest.importorskip("esp32_mock_bootloader")
    with mock.mock_bootloader("esp32c3") as device:
        ran = subprocess.run(
            [*command[:tool_args], "--port", device.url(), *command[tool_args:]],
            cwd=cwd, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Wrote 3072 bytes" in ran.stdout and "Hash of data verified" in ran.stdout
    return ran.stdout


def test_partition_table_target(core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, custom_partkit_offset="0x9000",
                           custom_partkit_map="$BUILD_DIR/my  map.svg")
    moved = CSV.replace("nvs,      data, nvs,     0x9000,  0x6000,",
                        "nvs,      data, nvs,     0xa000,  0x5000,")
    (project / "partitions.csv").write_text(moved)
    result = run_pio(core, project, "-t", "partition-table")
    assert result.returncode == 0, result
    rows = result.stdout
    assert re.search(r"(?m)^nvs\s+data\s+nvs\s+0xa000\s+0xf000\s+20 KiB", rows)
    assert re.search(r"(?m)^factory\s+app\s+factory\s+0x10000\s+0x40000\s+192 KiB", rows)
    assert re.search(r"\(partition table\)\s+0x9000", rows)
    # board_upload.flash_size, passed on as --flash-size
    assert "flash 4 MiB (from --flash-size): partitions end at 0x140000" in rows
    assert "Linking" not in rows  # only the table was built
    assert (build_dir(project) / "partitions.bin").read_bytes()[:2] == b"\xaa\x50"
    # No tool-esptoolpy here: PlatformIO's Python runs its esptool module, spelled as
    # that esptool spells it (5.x: dashes).
    import esptool

    write_flash = "write-flash" if int(esptool.__version__.split(".")[0]) >= 5 else "write_flash"
    command = flash_command(rows)
    assert command == [sys.executable, "-m", "esptool", "--chip", "esp32c3", write_flash,
                       "0x9000", ".pio/build/esp32c3/partitions.bin"]
    run_against_mock(command, 3, project)

    drawn = run_pio(core, project, "-t", "partition-map")
    assert drawn.returncode == 0, drawn
    svg = (build_dir(project) / "my  map.svg").read_text()  # both spaces kept
    assert svg.lstrip().startswith(("<svg", "<?xml")) and "factory" in svg
    assert not (build_dir(project) / "my map.svg").exists()


# --- platform-espressif32 fixture (tests/data/pio_platforms/espressif32-arduino2) -----------

FIXTURE = ROOT / "tests" / "data" / "pio_platforms" / "espressif32-arduino2"
BOOTLOADER_ROOM = 0x8000  # ESP32-C3: bootloader at 0x0, table at 0x8000


@pytest.fixture(scope="session")
def esptoolpy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return esptoolpy_package(tmp_path_factory.mktemp("tool-esptoolpy"))


def espressif32_project(root: Path, esptoolpy: Path, csv: str = CSV,
                        bootloader_size: int | None = 0x5000, **ini: str) -> Path:
    """The example's firmware on the espressif32 fixture: the framework owns the table."""
    pytest.importorskip("esp_idf_defs.partitions")  # the fixture generator's engine
    project = make_project(root, csv)
    platform = project / "espressif32"
    shutil.copytree(FIXTURE, platform)
    manifest = platform / "platform.json"
    manifest.write_text(manifest.read_text().replace("@TOOL_ESPTOOLPY_URI@", esptoolpy.as_uri()))
    set_options(project, platform=platform.as_uri(), board="esp32c3-arduino2",
                framework="arduino", **{"board_build.variants_dir": "variants"}, **ini)
    if bootloader_size is not None:
        set_bootloader(project, bootloader_size)
    return project


def set_bootloader(project: Path, size: int) -> Path:
    """The variant's prebuilt bootloader.bin (a real ESP32-C3 image of ``size`` bytes)."""
    return bootloader_of_size(project / "variants" / "partkit_c3", size, name="bootloader.bin")


# The platform's own maximum is the first factory/ota_0 row (ota_0, 0x40000); partkit
# checks against the smallest app slot (ota_1, 0x30000) and its maximum wins.
OTA_CSV = """\
# Name,   Type, SubType, Offset,  Size,    Flags
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
ota_0,    app,  ota_0,   0x10000, 0x40000,
ota_1,    app,  ota_1,   ,        0x30000,
"""


def test_espressif32_platform_table_is_validated_and_checked(
        core: Path, esptoolpy: Path, tmp_path: Path) -> None:
    project = espressif32_project(tmp_path, esptoolpy, OTA_CSV)
    result = run_pio(core, project)
    assert result.returncode == 0, result
    out = result.stdout
    # The platform stays the only builder of partitions.bin; partkit validates first,
    # and nothing is compiled before the table is there.
    assert (out.index("partkit: validating partitions.csv")
            < out.index("Generating partitions .pio/build/esp32c3/partitions.bin")
            < out.index("Compiling "))
    assert "partkit: generating" not in out
    assert (build_dir(project) / "partitions.bin").read_bytes() == oracle_table(OTA_CSV)
    assert ("partkit: table partitions.csv (from the platform at 0x8000, flash 4MB, chip "
            f"esp32c3); app slot 'ota_1' {0x30000} bytes") in out
    assert "firmware.bin binary size" in out
    # The prebuilt bootloader from FLASH_EXTRA_IMAGES was checked (no $BUILD_DIR one).
    assert not (build_dir(project) / "bootloader.bin").exists()
    assert "partkit: checking bootloader image variants/partkit_c3/bootloader.bin" in out
    assert "Bootloader binary size 0x5000 bytes" in out
    assert out.index("Retrieving maximum program size") < out.index("Checking size")
    assert f"from {0x30000} bytes)" in out  # our maximum wins over the platform's


@pytest.mark.parametrize(("broken", "line"), [
    (CSV.replace("phy_init, data, phy,", "phy_init, data, phyy,"), 3),
    (CSV.replace("phy_init, data, phy,     0xf000,  0x1000,",
                 "phy_init, data, phy,     0xe000,  0x1000,"), 3),
], ids=["bad-subtype", "overlap"])
def test_espressif32_broken_csv_stops_before_compiling(
        core: Path, esptoolpy: Path, tmp_path: Path, broken: str, line: int) -> None:
    project = espressif32_project(tmp_path, esptoolpy, broken)
    result = run_pio(core, project)
    assert result.returncode != 0, result
    assert re.search(rf"\[\.pio/build/esp32c3/partitions\.bin\] partitions\.csv:{line}:\d+: "
                     "error: ", result.output), result
    assert "Generating partitions" not in result.output  # stopped before the platform's step
    assert not list(build_dir(project).rglob("*.o")), "compiled despite the bad table"
    assert "Compiling" not in result.output
    assert "app slot unknown: the table is invalid" in result.stdout
    assert "Traceback" not in result.output


def test_espressif32_extra_images_bootloader_too_big_fails(
        core: Path, esptoolpy: Path, tmp_path: Path) -> None:
    project = espressif32_project(tmp_path, esptoolpy, bootloader_size=BOOTLOADER_ROOM)
    fits = run_pio(core, project)
    assert fits.returncode == 0, fits
    assert f"Bootloader binary size {BOOTLOADER_ROOM:#x} bytes" in fits.stdout

    set_bootloader(project, BOOTLOADER_ROOM + 16)
    over = run_pio(core, project)
    assert over.returncode == 1, over
    assert "variants/partkit_c3/bootloader.bin" in over.output
    assert "too large" in over.output or "overflow" in over.output, over
    assert "[FAILED]" in over.output


def test_espressif32_flash_command_uses_the_platform_esptool(
        core: Path, esptoolpy: Path, tmp_path: Path) -> None:
    project = espressif32_project(tmp_path, esptoolpy)
    result = run_pio(core, project, "-t", "partition-table")
    assert result.returncode == 0, result
    assert "flash 4 MiB" in result.stdout and "flash size unknown" not in result.stdout
    command = flash_command(result.stdout)
    installed = core / "packages" / "tool-esptoolpy" / "esptool.py"
    assert command[:2] == [sys.executable, str(installed)]
    assert command[2:] == ["--chip", "esp32c3", "write_flash", "0x8000",
                           ".pio/build/esp32c3/partitions.bin"]
    # Really runnable: the platform's esptool 4.x writes the table to a mock ESP32-C3.
    ran = run_against_mock(command, 2, project)
    assert f"esptool.py v{ESPTOOL4_VERSION}" in ran


PAD_SCRIPT = """\
# Pads firmware.bin with 0xFF up to custom_pad_to bytes, as a merge or pad step would.
import os

Import("env")


def pad(target, source, env):
    path = str(target[0])
    size = int(env.GetProjectOption("custom_pad_to"), 0)
    with open(path, "ab") as image:
        image.write(b"\\xff" * (size - os.path.getsize(path)))


env.AddPostAction("$BUILD_DIR/${PROGNAME}.bin", pad)
"""


def test_app_padded_with_ff_past_its_slot_fails(core: Path, tmp_path: Path) -> None:
    """The bytes flashed are the file's bytes: 0xFF padding past the slot is an overflow."""
    project = make_project(tmp_path)
    (project / "pad.py").write_text(PAD_SCRIPT)
    set_options(project, extra_scripts="pre:../../pio_extra_script.py, post:pad.py",
                custom_pad_to=hex(SLOT))
    fits = run_pio(core, project)
    assert fits.returncode == 0, fits
    image = build_dir(project) / "firmware.bin"
    assert image.stat().st_size == SLOT and image.read_bytes()[-16:] == b"\xff" * 16

    set_options(project, custom_pad_to=hex(SLOT + 0x1000))
    over = run_pio(core, project)
    assert over.returncode == 1, over
    assert image.stat().st_size == SLOT + 0x1000
    assert re.search(r"'factory'.*overflow 0x1000", over.output), over
    assert "partitions.csv:4:1: error: " in over.output  # at the slot's CSV line, for IDEs
    assert "[FAILED]" in over.output


NO_BUILD_PROGRAM = """
env.Replace(SIZETOOL="", SIZEPRINTCMD="true")  # no BuildProgram(): no checkprogsize
target_elf = env.Program(
    os.path.join("$BUILD_DIR", "${PROGNAME}"),
    env.Object(os.path.join("$BUILD_DIR", "main.o"), os.path.join("$PROJECT_SRC_DIR", "main.c")),
    LINKFLAGS=[*march, "-nostdlib", "-Wl,--gc-sections", "-T", "$LDSCRIPT_PATH"])
"""


def test_platform_without_build_program_warns_and_is_wired_late(
        core: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    main = project / "platform" / "builder" / "main.py"
    text = main.read_text()
    assert "target_elf = env.BuildProgram()\n" in text
    text = text.replace("target_elf = env.BuildProgram()\n", NO_BUILD_PROGRAM)
    main.write_text(text.replace('env.Depends(target_firm, "checkprogsize")\n', ""))
    result = run_pio(core, project)
    assert result.returncode == 0, result
    assert "partkit: warning: the platform never called env.BuildProgram()" in result.stderr
    assert "partkit: table partitions.csv (generated at 0x8000" in result.stdout
    assert "partkit: checking app image .pio/build/esp32c3/firmware.bin" in result.stdout
    assert "firmware.bin binary size" in result.stdout
    assert (build_dir(project) / "partitions.bin").read_bytes() == oracle_table(CSV)


# --- pioarduino fixture (tests/data/pio_platforms/pioarduino-arduino3) ----------------------

PIOARDUINO = ROOT / "tests" / "data" / "pio_platforms" / "pioarduino-arduino3"


def test_pioarduino_platform_esptool5_and_factory_slot(core: Path, tmp_path: Path) -> None:
    """pioarduino: esptool 5 executable (write-flash), a framework-built bootloader.bin,
    and a factory-only table, for which the platform's own maximum stays the board's."""
    pytest.importorskip("esp_idf_defs.partitions")
    project = make_project(tmp_path)
    platform = project / "pioarduino"
    shutil.copytree(PIOARDUINO, platform)
    set_options(project, platform=platform.as_uri(), board="esp32c3-arduino3",
                framework="arduino", **{"board_build.variants_dir": "variants"})
    bootloader_of_size(project / "variants" / "partkit_c3", 0x6000, name="bootloader.bin")

    result = run_pio(core, project)
    assert result.returncode == 0, result
    out = result.stdout
    assert (out.index("partkit: validating partitions.csv")
            < out.index("Generating partitions .pio/build/esp32c3/partitions.bin"))
    assert "partkit: checking bootloader image .pio/build/esp32c3/bootloader.bin" in out
    assert "Bootloader binary size 0x6000 bytes" in out
    assert f"from {SLOT} bytes)" in out  # not the board's 4194304: partkit's slot wins

    shown = run_pio(core, project, "-t", "partition-table")
    assert shown.returncode == 0, shown
    command = flash_command(shown.stdout)
    assert command == [str(Path(sys.executable).parent / "esptool"), "--chip", "esp32c3",
                       "write-flash", "0x8000", ".pio/build/esp32c3/partitions.bin"]
    assert "esptool v5." in run_against_mock(command, 1, project)


def test_espressif32_missing_csv_stops_before_compiling(
        core: Path, esptoolpy: Path, tmp_path: Path) -> None:
    project = espressif32_project(tmp_path, esptoolpy, **{"board_build.partitions": "nothere.csv"})
    result = run_pio(core, project)
    assert result.returncode != 0, result
    assert "app slot unknown: the table file does not exist" in result.stdout
    assert "Source `nothere.csv' not found" in result.output
    assert not list(build_dir(project).rglob("*.o")), "compiled without a table"


# --- upload, buildfs and uploadfs on both fixture platforms ---------------------------------
# The fixtures register their targets as the real platforms do: after BuildProgram(), on
# target_firm, with UPLOADCMD flashing $SOURCE (tests/data/pio_platforms/*/builder/main.py).

FS_CSV = CSV.replace("storage,  data, spiffs,  ,        0x100000,",
                     "storage,  data, spiffs,  0x40000,  0x20000,")
FS_OFFSET, FS_SIZE = 0x40000, 0x20000


def pioarduino_project(root: Path, csv: str = CSV, **ini: str) -> Path:
    pytest.importorskip("esp_idf_defs.partitions")  # the fixture generator's engine
    project = make_project(root, csv)
    platform = project / "pioarduino"
    shutil.copytree(PIOARDUINO, platform)
    set_options(project, platform=platform.as_uri(), board="esp32c3-arduino3",
                framework="arduino", **{"board_build.variants_dir": "variants"}, **ini)
    bootloader_of_size(project / "variants" / "partkit_c3", 0x6000, name="bootloader.bin")
    return project


def fixture_project(which: str, root: Path, esptoolpy: Path, csv: str, **ini: str) -> Path:
    if which == "espressif32":
        project = espressif32_project(root, esptoolpy, csv, **ini)
    else:
        project = pioarduino_project(root, csv, **ini)
    data = project / "data"
    data.mkdir()
    (data / "index.html").write_text("<p>hello</p>\n")
    return project


@pytest.fixture
def device(tmp_path: Path):  # type: ignore[no-untyped-def]
    from support.mock_device import MockDevice

    mock = MockDevice(tmp_path / "mock-state")
    yield mock
    mock.stop()


@pytest.mark.parametrize("which", ["espressif32", "pioarduino"])
def test_upload_flashes_firmware_bin_and_checks_come_first(
        core: Path, esptoolpy: Path, tmp_path: Path, device, which: str) -> None:  # type: ignore[no-untyped-def]
    """pio run -t upload writes firmware.bin at 0x10000 (read back from the mock), not a
    partkit check report, and partkit's checks ran before the upload."""
    (tmp_path / "p").mkdir()
    project = fixture_project(which, tmp_path / "p", esptoolpy, FS_CSV)
    up = run_pio(core, project, "-t", "upload", "--upload-port", device.url)
    assert up.returncode == 0, up
    out = up.stdout
    assert re.search(r"(?m)^Uploading \.pio/build/esp32c3/firmware\.bin$", out), up
    assert out.index("firmware.bin binary size") < out.index("Uploading")
    assert out.index("Bootloader binary size") < out.index("Uploading")
    firmware = (build_dir(project) / "firmware.bin").read_bytes()
    assert device.read(tmp_path, 0x10000, len(firmware)) == firmware
    table = (build_dir(project) / "partitions.bin").read_bytes()
    assert device.read(tmp_path, 0x8000, len(table)) == table
    # A second upload (nothing to rebuild) still writes the app.
    again = run_pio(core, project, "-t", "upload", "--upload-port", device.url)
    assert again.returncode == 0, again
    assert re.search(r"(?m)^Uploading \.pio/build/esp32c3/firmware\.bin$", again.stdout)
    assert "is up to date" not in again.output  # no stamp noise
    if which == "pioarduino":
        return  # its nobuild upload has no $ESP32_APP_OFFSET (fails in the platform itself)
    # Upload without building: the files of the last build, checked against its table.
    device.write(tmp_path, 0x10000, b"\x00" * 16)
    bare = run_pio(core, project, "-t", "nobuild", "-t", "upload", "--upload-port", device.url)
    assert bare.returncode == 0, bare
    assert "partkit: nobuild: checking the files of the last build against " \
           ".pio/build/esp32c3/partitions.bin" in bare.stdout
    assert "never called env.BuildProgram()" not in bare.stderr
    assert bare.stdout.index("firmware.bin binary size") < bare.stdout.index("Uploading")
    assert device.read(tmp_path, 0x10000, len(firmware)) == firmware


GROW_FS_SCRIPT = """\
# One 4 KiB block more than the platform's FS_SIZE (set by the DataToBin emitter).
Import("env")
if "FS_SIZE" in env:
    env["FS_SIZE"] = env["FS_SIZE"] + 0x1000
"""


def fs_line(image: str, partition: str, offset: int, size: int, why: str) -> str:
    return (f"partkit: uploadfs writes .pio/build/esp32c3/{image} to '{partition}' at "
            f"{offset:#x} ({size:#x} bytes; {why})")


@pytest.mark.parametrize("which", ["espressif32", "pioarduino"])
def test_fs_image_checked_on_every_buildfs_and_uploadfs(
        core: Path, esptoolpy: Path, tmp_path: Path, device, which: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "p").mkdir()
    project = fixture_project(which, tmp_path / "p", esptoolpy, FS_CSV,
                              **{"board_build.filesystem": "littlefs"})
    line = fs_line("littlefs.bin", "storage", FS_OFFSET, FS_SIZE,
                   "the last spiffs/fat/littlefs data partition")
    for attempt in range(2):  # the second time the image exists already
        built = run_pio(core, project, "-t", "buildfs")
        assert built.returncode == 0, built
        assert line in built.stdout, (attempt, built)
    image = (build_dir(project) / "littlefs.bin").read_bytes()
    assert len(image) == FS_SIZE
    up = run_pio(core, project, "-t", "uploadfs", "--upload-port", device.url)
    assert up.returncode == 0, up
    assert up.stdout.index(line) < up.stdout.index("Uploading .pio/build/esp32c3/littlefs.bin")
    assert device.read(tmp_path, FS_OFFSET, FS_SIZE) == image

    # An image larger than its partition stops buildfs and uploadfs before any write.
    (project / "grow_fs.py").write_text(GROW_FS_SCRIPT)
    set_options(project, extra_scripts="pre:../../pio_extra_script.py, post:grow_fs.py")
    device.write(tmp_path, FS_OFFSET, b"\x00" * 16)
    for target in ("buildfs", "uploadfs"):
        over = run_pio(core, project, "-t", target, "--upload-port", device.url)
        assert over.returncode == 1, over
        assert "4096 bytes too many" in over.output, over
        assert "littlefs.bin does not fit the partition uploadfs writes it to" in over.output
        assert "Uploading" not in over.stdout
    assert device.read(tmp_path, FS_OFFSET, 16) == b"\x00" * 16


@pytest.mark.parametrize("option", ["board_upload.partition_table_offset",
                                    "custom_partkit_offset"])
def test_table_offset_other_than_the_flashed_one_fails(
        core: Path, esptoolpy: Path, tmp_path: Path, option: str) -> None:
    """Arduino flashes partitions.bin at 0x8000 (FLASH_EXTRA_IMAGES) whatever the project
    says; checking the table for 0x9000 would check a table the device never reads."""
    moved = CSV.replace("nvs,      data, nvs,     0x9000,  0x6000,",
                        "nvs,      data, nvs,     0xa000,  0x5000,")
    project = espressif32_project(tmp_path, esptoolpy, moved, **{option: "0x9000"})
    result = run_pio(core, project)
    assert result.returncode != 0, result
    assert (f"partkit: error: {option} = 0x9000, but the platform flashes "
            ".pio/build/esp32c3/partitions.bin at 0x8000 (FLASH_EXTRA_IMAGES)") in result.stderr
    assert "\n  hint: the Arduino framework always puts the table at 0x8000: remove the " \
           "option" in result.stderr
    assert "Compiling" not in result.output


FAT_CSV = """\
# Name,   Type, SubType, Offset,  Size
nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x30000,
small,    data, fat,     0x40000, 0x10000,
ffat,     data, fat,     0x50000, 0x20000,
"""
LAST = "the last spiffs/fat/littlefs data partition"
PIOARDUINO_WL = ", fatfs: the whole wear-levelled partition (pioarduino 55.3.311)"


@pytest.mark.parametrize(("which", "fs_partition", "name", "offset", "size", "why"), [
    # pioarduino >= 55.03.36: a full-size (wear-levelled) image at the partition start.
    ("pioarduino", "", "ffat", 0x50000, 0x20000, LAST + PIOARDUINO_WL),
    # pioarduino >= 55.03.39 honours board_build.filesystem_partition.
    ("pioarduino", "small", "small", 0x40000, 0x10000,
     "board_build.filesystem_partition = small" + PIOARDUINO_WL),
    # platform-espressif32 6.x ignores it, and writes fatfs 4 KiB into the last partition.
    ("espressif32", "small", "ffat", 0x51000, 0x1F000,
     LAST + "; platform-espressif32 6.13.0 ignores board_build.filesystem_partition = small"
     ", fatfs 4 KiB in (platform-espressif32 6.13.0)"),
], ids=["pioarduino-whole", "pioarduino-named", "espressif32-named-ignored"])
def test_fatfs_image_checked_where_each_platform_writes_it(
        core: Path, esptoolpy: Path, tmp_path: Path, device, which: str,  # type: ignore[no-untyped-def]
        fs_partition: str, name: str, offset: int, size: int, why: str) -> None:
    ini = {"board_build.filesystem": "fatfs"}
    if fs_partition:
        ini["board_build.filesystem_partition"] = fs_partition
    (tmp_path / "p").mkdir()
    project = fixture_project(which, tmp_path / "p", esptoolpy, FAT_CSV, **ini)
    up = run_pio(core, project, "-t", "uploadfs", "--upload-port", device.url)
    assert up.returncode == 0, up
    assert fs_line("fatfs.bin", name, offset, size, why) in up.stdout, up
    assert re.search(rf"partkit: data '{name}' at {offset:#x} \({size:#x} bytes\): "
                     rf"\.pio/build/esp32c3/fatfs\.bin, {size:#x} bytes, .*: fits, 0x0 ", up.stdout)
    image = (build_dir(project) / "fatfs.bin").read_bytes()
    assert len(image) == size  # what the platform made and flashed, where partkit says
    assert device.read(tmp_path, offset, size) == image


def test_espressif32_bootloader_built_from_the_sdk_elf_is_checked(
        core: Path, esptoolpy: Path, tmp_path: Path) -> None:
    """Arduino 2.0.x without a variant bootloader.bin builds $BUILD_DIR/bootloader.bin from
    the SDK's bootloader ELF; that file is what is flashed, and checked."""
    project = espressif32_project(tmp_path, esptoolpy, bootloader_size=None)
    sdk = project / "espressif32" / "framework-arduinoespressif32" / "tools" / "sdk" / \
        "esp32c3" / "bin"
    bootloader_of_size(sdk, BOOTLOADER_ROOM + 16, name="bootloader_dio_80m.bin").unlink()
    result = run_pio(core, project)
    assert result.returncode == 1, result
    assert (build_dir(project) / "bootloader.bin").stat().st_size == BOOTLOADER_ROOM + 16
    assert "partkit: checking bootloader image .pio/build/esp32c3/bootloader.bin" in \
        result.stdout, result
    assert "too large" in result.output or "overflow" in result.output, result


UNEQUAL_OTA_CSV = """\
# Name,   Type, SubType, Offset,  Size
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
app0,     app,  ota_0,   0x10000, 0x40000,
app1,     app,  ota_1,   0x50000, 0x100000,
"""


@pytest.mark.parametrize("which", ["espressif32", "pioarduino"])
def test_upload_fails_when_the_slot_it_writes_is_too_small(
        core: Path, esptoolpy: Path, tmp_path: Path, device, which: str) -> None:  # type: ignore[no-untyped-def]
    """The app fits app1 but not app0: ESP-IDF's rule makes that a warning (an OTA update
    may go to app1), but upload writes app0 at 0x10000 and its tail would land in app1."""
    (tmp_path / "p").mkdir()
    project = fixture_project(which, tmp_path / "p", esptoolpy, UNEQUAL_OTA_CSV)
    # 16 bytes more than app0; PlatformIO's ELF-section sum still passes.
    set_options(project, build_flags=f"-DPAD_BYTES={pad_for_size(core, project, 0x40010)}")
    built = run_pio(core, project)
    assert built.returncode == 0, built
    assert (build_dir(project) / "firmware.bin").stat().st_size == 0x40010
    assert "1/2 app partitions are too small" in built.output  # a warning for the build
    up = run_pio(core, project, "-t", "upload", "--upload-port", device.url)
    assert up.returncode == 1, up
    assert ("partkit: upload writes .pio/build/esp32c3/firmware.bin at 0x10000 into 'app0' "
            "(0x40000 bytes)") in up.stdout, up
    assert "too small for binary firmware.bin" in up.output
    assert "firmware.bin does not fit the app partition upload writes it to" in up.output
    assert "Uploading" not in up.stdout
    assert device.read(tmp_path, 0x10000, 16) == b"\xff" * 16  # nothing written


def test_upload_and_uploadfs_together_after_clean(
        core: Path, esptoolpy: Path, tmp_path: Path, device) -> None:  # type: ignore[no-untyped-def]
    """With uploadfs on the command line platform-espressif32 6.x makes every upload target
    flash the FS image; partkit does not ask for a firmware.bin that nothing builds."""
    (tmp_path / "p").mkdir()
    project = fixture_project("espressif32", tmp_path / "p", esptoolpy, FS_CSV,
                              **{"board_build.filesystem": "littlefs"})
    both = run_pio(core, project, "-t", "upload", "-t", "uploadfs", "--upload-port", device.url)
    assert both.returncode == 0, both
    assert "firmware.bin' not found" not in both.output
    assert fs_line("littlefs.bin", "storage", FS_OFFSET, FS_SIZE,
                   "the last spiffs/fat/littlefs data partition") in both.stdout
    image = (build_dir(project) / "littlefs.bin").read_bytes()
    assert device.read(tmp_path, FS_OFFSET, FS_SIZE) == image
