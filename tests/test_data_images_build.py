"""Data images in the build systems, driven for real: CMake (Ninja and Makefiles)
``partkit_add_data_image`` and SCons ``env.DataImage``, in small projects and in the
ESP32-C3 examples, whose flash_args must list the image at its partition's offset."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import GENERATORS, ROOT, TOOLCHAIN, Project, module_dir, mtimes
from partkit.cli import main
from support.tools import require_tool

littlefs = pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")
pytest.importorskip("esp_idf_nvs_partition_gen", reason="esp-idf-nvs-partition-gen missing")

CSV = """\
# Name,   Type, SubType,  Offset,   Size
nvs,      data, nvs,      0x9000,   24K
factory,  app,  factory,  0x10000,  1M
storage,  data, littlefs, ,         128K
"""
NVS = "key,type,encoding,value\nboard,namespace,,\nrev,data,u8,3\n"
CMAKELISTS = """\
cmake_minimum_required(VERSION 3.16)
project(data_images NONE)
find_package(partkit CONFIG REQUIRED)
partkit_add_partition_table(table CSV partitions.csv FLASH_SIZE 4MB ALL)
partkit_add_data_image(storage-image TABLE table PARTITION storage FROM files FLASH)
partkit_add_data_image(nvs-image TABLE table PARTITION nvs FROM nvs.csv OUTPUT nvs.bin FLASH)
partkit_add_flash_args(TABLE table)
"""


def mount(image: bytes) -> object:
    fs = littlefs.LittleFS(block_size=4096, block_count=len(image) // 4096, mount=False)
    fs.context.buffer = bytearray(image)
    fs.mount()
    return fs


def sources(root: Path, cmakelists: str = CMAKELISTS) -> Path:
    src = root / "src dir"
    (src / "files" / "sub").mkdir(parents=True)
    (src / "files" / "hello.txt").write_text("hello\n")
    (src / "files" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 8)
    (src / "partitions.csv").write_text(CSV)
    (src / "nvs.csv").write_text(NVS)
    (src / "CMakeLists.txt").write_text(cmakelists)
    return src


@pytest.fixture(params=list(GENERATORS))
def cmake_project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    require_tool(GENERATORS[str(request.param)])
    p = Project(sources(tmp_path), tmp_path / "build dir", str(request.param))
    p.defines["partkit_DIR"] = module_dir().as_posix()
    p.configure()
    p.build()
    return p


@pytest.mark.cmake
def test_cmake_builds_images_lists_them_and_rebuilds_on_change(cmake_project: Project) -> None:
    p = cmake_project
    image = p.path("storage-image.bin")
    assert image.stat().st_size == 128 * 1024
    fs = mount(image.read_bytes())
    assert sorted(fs.listdir("/")) == ["hello.txt", "sub"]  # type: ignore[attr-defined]
    assert p.path("nvs.bin").stat().st_size == 24 * 1024
    lines = p.path("flash_args").read_text().splitlines()
    assert lines[1:] == ["0x8000 partition-table.bin", "0x110000 storage-image.bin",
                         "0x9000 nvs.bin"]
    assert main(["check", str(p.path("partition-table.bin")), "--data",
                 f"storage={image}", "--data", f"nvs={p.path('nvs.bin')}"]) == 0

    before = mtimes(image, p.path("nvs.bin"))
    p.build()
    assert mtimes(image, p.path("nvs.bin")) == before  # no-op rebuild builds nothing
    # A file added to the directory (no re-run of cmake by hand) rebuilds only that image.
    (p.src / "files" / "new.txt").write_text("new\n")
    p.build()
    assert mtimes(p.path("nvs.bin")) == {p.path("nvs.bin"): before[p.path("nvs.bin")]}
    with mount(image.read_bytes()).open("new.txt", "r") as f:  # type: ignore[attr-defined]
        assert f.read() == "new\n"
    # A bigger partition in the CSV: the image follows the table.
    (p.src / "partitions.csv").write_text(CSV.replace("128K", "256K"))
    p.build()
    assert image.stat().st_size == 256 * 1024


@pytest.mark.cmake
@pytest.mark.parametrize("call, words", [
    ("partkit_add_data_image(x TABLE table PARTITION storage FROM files FLAVOUR y)",
     ["unexpected arguments: FLAVOUR;y"]),
    ("partkit_add_data_image(x TABLE table PARTITION nope FROM files)",
     ["has no partition named `nope`"]),
    ("partkit_add_data_image(x TABLE table PARTITION storage FROM missing)",
     ["FROM", "does not exist"]),
    ("partkit_add_data_image(x TABLE table PARTITION storage FROM files FORMAT spiffs)",
     ["FORMAT must be nvs, littlefs, fat or fat-wl"]),
    ("partkit_add_data_image(x TABLE table FROM files)",
     ["missing required parameter `PARTITION`"]),
    ("partkit_add_flash_args(TABLE table)\n"
     "partkit_add_data_image(x TABLE table PARTITION storage FROM files FLASH)",
     ["partkit_add_flash_args() for `table` already ran"]),
])
def test_cmake_mistakes_are_fatal(tmp_path: Path, call: str, words: list[str]) -> None:
    require_tool("ninja")
    text = "\n".join(CMAKELISTS.splitlines()[:4]) + "\n" + call + "\n"
    p = Project(sources(tmp_path, text), tmp_path / "build", "Ninja")
    p.defines["partkit_DIR"] = module_dir().as_posix()
    log = p.configure(check=False)
    assert log.returncode != 0
    for word in words:
        assert word in log.output, (word, log.output)


@pytest.mark.cmake
@pytest.mark.firmware
def test_cmake_example_lists_its_storage_image(tmp_path: Path) -> None:
    """examples/cmake-esp32c3: the LittleFS image of data/ at the storage partition."""
    require_tool("riscv64-unknown-elf-gcc")
    require_tool("ninja")
    src = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "cmake-esp32c3", src,
                    ignore=shutil.ignore_patterns("build"))
    p = Project(src, tmp_path / "build", "Ninja")
    p.defines.update(CMAKE_TOOLCHAIN_FILE=TOOLCHAIN.as_posix(),
                     partkit_DIR=module_dir().as_posix())
    p.configure()
    p.build("storage-image")
    assert "0x310000 storage.bin" in p.path("flash_args").read_text().splitlines()
    image = p.path("storage.bin").read_bytes()
    assert len(image) == 0xF0000
    fs = mount(image)
    assert sorted(fs.listdir("/")) == sorted(os.listdir(src / "data"))  # type: ignore[attr-defined]


# --- SCons ------------------------------------------------------------------------------

SCONSTRUCT = """\
import os
env = Environment(ENV=os.environ, tools=["default", "partkit"],
                  toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")])
env.Decider("content")
table = env.PartitionTable("build/partitions.bin", "partitions.csv")
storage = env.DataImage("build/storage.bin", table, "files", partition="storage")
nvs = env.DataImage("build/nvs.bin", "partitions.csv", "nvs.csv", partition="nvs")
Default(table, storage, nvs)
"""


def scons(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("scons")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([exe, "-Q", *args], cwd=project, env=env, capture_output=True,
                          text=True)


@pytest.mark.scons
def test_scons_data_image_builds_and_rebuilds_on_change(tmp_path: Path) -> None:
    for name in ("plugins", "core"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    project = sources(tmp_path)
    (project / "SConstruct").write_text(SCONSTRUCT)
    first = scons(project)
    assert first.returncode == 0, first.stdout + first.stderr
    image = project / "build" / "storage.bin"
    assert image.stat().st_size == 128 * 1024
    assert sorted(mount(image.read_bytes()).listdir("/")) == ["hello.txt", "sub"]  # type: ignore[attr-defined]
    assert (project / "build" / "nvs.bin").stat().st_size == 24 * 1024
    before = mtimes(image)
    again = scons(project)
    assert "partkit: data image" not in again.stdout
    assert mtimes(image) == before
    (project / "files" / "added.txt").write_text("added\n")
    changed = scons(project)
    assert "partkit: data image build/storage.bin" in changed.stdout
    assert "partkit: data image build/nvs.bin" not in changed.stdout
    # Files that do not fit fail the build with partkit's message.
    (project / "files" / "huge.bin").write_bytes(os.urandom(200 * 1024))
    failed = scons(project)
    assert failed.returncode != 0
    assert "do not fit a 128 KiB LittleFS partition" in failed.stderr


@pytest.mark.scons
@pytest.mark.firmware
def test_scons_example_flash_args_and_image(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

    require_tool("riscv64-unknown-elf-gcc")
    (tmp_path / "plugins").symlink_to(ROOT / "plugins", target_is_directory=True)
    for name in ("scons-esp32c3", "common"):
        shutil.copytree(ROOT / "examples" / name, tmp_path / "examples" / name,
                        ignore=shutil.ignore_patterns("build", ".sconsign*"))
    project = tmp_path / "examples" / "scons-esp32c3"
    result = scons(project)
    assert result.returncode == 0, result.stdout + result.stderr
    build = project / "build"
    lines = (build / "flash_args").read_text().splitlines()
    assert "0x110000 storage.bin" in lines and "0x10000 firmware.bin" in lines
    assert (build / "storage.bin").stat().st_size == 0x100000
    capsys.readouterr()
    assert main(["image", "inspect", str(build / "flash.bin"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = {p["name"]: p["contents"]["kind"] for p in doc["partitions"]}
    assert kinds["storage"] == "littlefs" and kinds["factory"] == "app"


@pytest.mark.scons
def test_scons_data_image_in_a_directory_with_a_dollar(tmp_path: Path) -> None:
    """Issue 20 item 13: the found file paths went through SCons "$" substitution."""
    root = tmp_path / "a$HOME b"
    root.mkdir()
    for name in ("plugins", "core"):
        (root / name).symlink_to(ROOT / name, target_is_directory=True)
    project = sources(root)
    # SCons substitutes toolpath entries too: the test's own path is escaped ("$$")
    (project / "SConstruct").write_text(SCONSTRUCT.replace(
        'toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")]',
        'toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")'
        '.replace("$", "$$")]'))
    first = scons(project)
    assert first.returncode == 0, first.stdout + first.stderr
    image = project / "build" / "storage.bin"
    assert sorted(mount(image.read_bytes()).listdir("/")) == ["hello.txt", "sub"]  # type: ignore[attr-defined]
