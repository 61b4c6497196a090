"""The table-only flash targets run esptool's real protocol against esp32-mock-bootloader.

CMake ``<table>-flash``, SCons ``PartitionTableFlash`` and PlatformIO
``-t partition-table-flash`` each write the generated table to a mock ESP32-C3 served on
``socket://127.0.0.1:PORT``; the test reads the flash back (esptool ``read-flash`` in ROM
mode: the stub's streamed reads do not work against the mock) and compares it with the
generated file. The mock's flash is erased before each write, so a stale table cannot pass.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import Project, module_dir
from support.tools import missing, require_tool

ROOT = Path(__file__).resolve().parents[1]
TABLE_SIZE = 0xC00


class Mock:
    """One mock bootloader daemon: its URL, flash erase and read-back."""

    def __init__(self, exe: str, port: int) -> None:
        self.exe = exe
        self.port = port
        self.url = f"socket://127.0.0.1:{port}"

    def erase(self) -> None:
        subprocess.run([self.exe, "erase-flash", "--port", str(self.port)], check=True,
                       capture_output=True, timeout=60)

    def read(self, tmp: Path, offset: int = 0x8000, size: int = TABLE_SIZE) -> bytes:
        out = tmp / f"readback-{offset:x}.bin"
        proc = subprocess.run(
            [sys.executable, "-m", "esptool", "--chip", "esp32c3", "-p", self.url, "--no-stub",
             "read-flash", hex(offset), hex(size), str(out)],
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return out.read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    exe = shutil.which("esp32-mock-bootloader", path=str(Path(sys.executable).parent)) \
        or shutil.which("esp32-mock-bootloader")
    if exe is None:
        missing("esp32-mock-bootloader is not installed (it is in the test extra)")
    assert exe is not None
    pytest.importorskip("esptool")
    port = _free_port()
    subprocess.run([exe, "start", "--chip", "esp32c3", "--port", str(port)], check=True,
                   capture_output=True, timeout=120)
    try:
        yield Mock(exe, port)
    finally:
        subprocess.run([exe, "stop", "--port", str(port)], capture_output=True, timeout=60)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ESPPORT", "ESPBAUD", "ESPTOOL_PORT")}
    env.update(extra)
    return env


@pytest.mark.cmake
def test_cmake_table_flash_target(mock: Mock, tmp_path: Path) -> None:
    src = tmp_path / "src dir"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(flash NONE)\n"
        "find_package(partkit CONFIG REQUIRED)\n"
        "partkit_add_partition_table(pt BUILTIN two_ota CHIP esp32c3 ALL)\n"
        "partkit_add_partition_table(other BUILTIN singleapp CHIP esp32c3 OFFSET 0x9000\n"
        "  OUTPUT other.bin)\n")
    p = Project(src, tmp_path / "build dir", "Ninja")
    p.defines["partkit_DIR"] = module_dir().as_posix()
    p.configure()

    mock.erase()
    p.env = _env(ESPPORT=mock.url, ESPBAUD="115200", CLICOLOR="0")
    log = p.build("pt-flash")
    assert f"-p {mock.url} -b 115200 --before default-reset --after hard-reset " \
           "write-flash 0x8000 " in log.output
    assert mock.read(tmp_path) == p.path("partition-table.bin").read_bytes()

    # Another table, at its own offset; the default baud rate when ESPBAUD is unset.
    mock.erase()
    p.env = _env(ESPPORT=mock.url, CLICOLOR="0")
    log = p.build("other-flash")
    assert "-b 460800" in log.output
    other = p.path("other.bin").read_bytes()
    assert mock.read(tmp_path, 0x9000) == other
    assert mock.read(tmp_path, 0x8000) == b"\xff" * TABLE_SIZE  # only the table was written

    # A wrong port fails the build with a hint.
    p.env = _env(ESPPORT="socket://127.0.0.1:1", CLICOLOR="0")
    bad = p.build("pt-flash", check=False)
    assert bad.returncode != 0
    assert "Hint: set ESPPORT" in bad.output


@pytest.mark.cmake
@pytest.mark.firmware
@pytest.mark.slow
def test_cmake_example_flash_targets(mock: Mock, tmp_path: Path) -> None:
    """The example's partition-table-flash, and its flash target (flash_args) with ESPPORT."""
    require_tool("riscv64-unknown-elf-gcc")
    from cmake_projects.cmakebuild import TOOLCHAIN, copy_tree

    src = copy_tree(ROOT / "examples", tmp_path / "examples")
    p = Project(src / "cmake-esp32c3", tmp_path / "build", "Ninja")
    p.defines.update(CMAKE_TOOLCHAIN_FILE=TOOLCHAIN.as_posix(),
                     partkit_DIR=module_dir().as_posix())
    p.configure()
    p.build()
    mock.erase()
    p.env = _env(ESPPORT=mock.url, CLICOLOR="0")
    p.build("partition-table-flash")
    table = p.path("partition-table.bin").read_bytes()
    assert mock.read(tmp_path) == table

    mock.erase()
    log = p.build("flash")
    assert f"-p {mock.url}" in log.output and "write-flash @flash_args" in log.output
    assert mock.read(tmp_path) == table
    app = p.path("app.bin").read_bytes()
    assert mock.read(tmp_path, 0x10000, 0x1000) == app[:0x1000]


SCONSTRUCT = """\
import os
env = Environment(ENV=os.environ, tools=["default", "partkit"],
                  toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")],
                  PARTKIT_CHIP="esp32c3")
table = env.PartitionTable("build/partitions.bin", "partitions.csv")
env.PartitionTableFlash(table)
small = env.PartitionTable("build/default.bin", PARTKIT_BUILTIN="default")
env.PartitionTableFlash(small, alias="default-flash", PARTKIT_PORT=ARGUMENTS.get("PORT", ""),
                        PARTKIT_BAUD="230400")
Default(table)
"""


@pytest.mark.scons
def test_scons_table_flash_alias(mock: Mock, tmp_path: Path) -> None:
    exe = require_tool("scons")
    for name in ("plugins", "core"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "SConstruct").write_text(SCONSTRUCT)
    (project / "partitions.csv").write_text("nvs, data, nvs, 0x9000, 0x6000\n"
                                            "factory, app, factory, 0x10000, 1M\n"
                                            "storage, data, littlefs, , 0x80000\n")

    def scons(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, "-Q", *args], cwd=project, env=_env(**env),
                              capture_output=True, text=True, timeout=300)

    mock.erase()
    result = scons("partition-table-flash", ESPPORT=mock.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"--chip esp32c3 -p {mock.url} -b 460800 --before default-reset" in result.stdout
    assert mock.read(tmp_path) == (project / "build" / "partitions.bin").read_bytes()

    mock.erase()  # PARTKIT_PORT / PARTKIT_BAUD win over the environment
    result = scons("default-flash", f"PORT={mock.url}", ESPPORT="socket://127.0.0.1:1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-b 230400" in result.stdout
    assert mock.read(tmp_path) == (project / "build" / "default.bin").read_bytes()

    bad = scons("partition-table-flash", ESPPORT="socket://127.0.0.1:1")
    assert bad.returncode != 0


@pytest.mark.pio
@pytest.mark.firmware
def test_platformio_partition_table_flash(mock: Mock, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    require_tool("riscv64-unknown-elf-gcc")
    from support.pio import offline_core, run_pio
    from test_pio_partkit import make_project

    core = offline_core(tmp_path_factory.mktemp("pio") / "core")
    project = make_project(tmp_path, **{"board_build.partitions": "min_spiffs",
                                        "upload_port": mock.url, "upload_speed": "230400"})
    mock.erase()
    result = run_pio(core, project, "-t", "partition-table-flash")
    assert result.returncode == 0, result
    assert f"--port {mock.url} --baud 230400 --before default-reset --after hard-reset " \
           "write-flash 0x8000 " in result.stdout
    table = (project / ".pio" / "build" / "esp32c3" / "partitions.bin").read_bytes()
    assert mock.read(tmp_path) == table
    assert not (project / ".pio" / "build" / "esp32c3" / "firmware.elf").exists()  # table only


@pytest.mark.pio
@pytest.mark.firmware
def test_platformio_flash_with_the_platform_esptool(
        mock: Mock, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """platform-espressif32 stand-in: its tool-esptoolpy (esptool 4.x, underscores)."""
    require_tool("riscv64-unknown-elf-gcc")
    from support.pio import esptoolpy_package, offline_core, run_pio
    from test_pio_partkit import OTA_CSV, espressif32_project

    core = offline_core(tmp_path_factory.mktemp("pio") / "core")
    esptoolpy = esptoolpy_package(tmp_path_factory.mktemp("tool-esptoolpy"))
    project = espressif32_project(tmp_path, esptoolpy, OTA_CSV, upload_port=mock.url)
    mock.erase()
    result = run_pio(core, project, "-t", "partition-table-flash")
    assert result.returncode == 0, result
    assert "esptool.py" in result.stdout and " write_flash 0x8000 " in result.stdout
    assert "--before default_reset --after hard_reset" in result.stdout
    table = (project / ".pio" / "build" / "esp32c3" / "partitions.bin").read_bytes()
    assert mock.read(tmp_path) == table
