"""C headers generated with the table: they compile with the examples' RISC-V GCC, and the
CMake and SCons builds regenerate them (and rebuild the firmware) when the CSV changes.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import GENERATORS, TOOLCHAIN, Project, copy_tree, module_dir, mtimes
from partkit.table import builtin
from support.tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
CC_FLAGS = ["-march=rv32imc_zicsr", "-mabi=ilp32", "-ffreestanding", "-nostdlib", "-Os", "-Wall",
            "-Werror", "-c"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partkit", *args], capture_output=True,
                          text=True)


def compile_c(source: Path, *include_dirs: Path) -> subprocess.CompletedProcess[str]:
    cc = require_tool("riscv64-unknown-elf-gcc")
    args = [cc, *CC_FLAGS, *(f"-I{d}" for d in include_dirs), str(source), "-o",
            str(source.with_suffix(".o"))]
    return subprocess.run(args, capture_output=True, text=True)


@pytest.mark.firmware
@pytest.mark.parametrize("name", ["two_ota", "two_ota_tee", "default", "zigbee", "noota_3gffat"])
def test_layout_header_compiles_and_matches_the_table(tmp_path: Path, name: str) -> None:
    proc = cli("gen", "-q", "--builtin", name, str(tmp_path / "pt.bin"), "--header",
               str(tmp_path / "partitions.h"))
    assert proc.returncode == 0, proc.stderr
    shown = __import__("json").loads(cli("show", f"builtin:{name}", "--json").stdout)
    asserts = []
    for p in shown["partitions"]:
        ident = "PARTITION_" + p["name"].upper()
        asserts += [
            f"_Static_assert({ident}_OFFSET == {p['offset']}u, \"offset\");",
            f"_Static_assert({ident}_SIZE == {p['size']}u, \"size\");",
            f"_Static_assert({ident}_TYPE == {p['type']}, \"type\");",
            f"_Static_assert({ident}_SUBTYPE == {p['subtype']}, \"subtype\");",
            f"_Static_assert(sizeof({ident}_LABEL) == {len(p['name'].encode()[:16]) + 1}, "
            "\"label\");",
        ]
    source = tmp_path / "use.c"
    source.write_text('#include "partitions.h"\n#include "partitions.h"\n'  # pragma once
                      + "\n".join(asserts) + "\nint table_offset = PARTKIT_TABLE_OFFSET;\n"
                      + f"_Static_assert(PARTKIT_PARTITION_COUNT == {len(shown['partitions'])},"
                        ' "count");\n')
    result = compile_c(source, tmp_path)
    assert result.returncode == 0, result.stderr
    # A wrong value must fail to compile (the asserts are real).
    source.write_text('#include "partitions.h"\n'
                      f"{asserts[0].replace('== ', '== 1 + ')}\n")
    assert compile_c(source, tmp_path).returncode != 0


@pytest.mark.firmware
def test_subtypes_header_compiles_inside_the_subtype_enum(tmp_path: Path) -> None:
    inc = tmp_path / "extra_partition_subtypes.inc"
    proc = cli("gen", "-q", "--builtin", "two_ota", str(tmp_path / "pt.bin"),
               "--subtypes-header", str(inc), "--extra-partition-subtypes",
               "data,my_store,0x40", "app,my_app,41", "data, spaced , 0x7f", "--")
    assert proc.returncode == 0, proc.stderr
    source = tmp_path / "enum.c"
    # The shape of esp_partition.h's esp_partition_subtype_t around its #include.
    source.write_text(
        "typedef enum {\n"
        "    ESP_PARTITION_SUBTYPE_APP_FACTORY = 0x00,\n"
        '#include "extra_partition_subtypes.inc"\n'
        "    ESP_PARTITION_SUBTYPE_ANY = 0xff,\n"
        "} esp_partition_subtype_t;\n"
        '_Static_assert(ESP_PARTITION_SUBTYPE_DATA_MY_STORE == 0x40, "data");\n'
        '_Static_assert(ESP_PARTITION_SUBTYPE_APP_MY_APP == 0x41, "app");\n'
        '_Static_assert(ESP_PARTITION_SUBTYPE_DATA_SPACED == 0x7f, "spaces");\n')
    result = compile_c(source, tmp_path)
    assert result.returncode == 0, result.stderr


def test_colliding_names_are_an_error_naming_both_rows(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("nvs, data, nvs, 0x9000, 0x6000\nota-0, app, ota_0, 0x10000, 1M\n"
                   "OTA_0, app, ota_1, , 1M\n")
    header = tmp_path / "p.h"
    proc = cli("gen", "-q", str(csv), str(tmp_path / "p.bin"), "--header", str(header))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (f"{csv}:3:1: error: partition names 'ota-0' and 'OTA_0' both become "
            "PARTITION_OTA_0_* in the header") in proc.stderr
    assert f"{csv}:2:1: note: 'ota-0' is here" in proc.stderr
    assert not header.exists()


def test_unchanged_header_is_not_rewritten(tmp_path: Path) -> None:
    header = tmp_path / "p.h"
    args = ["gen", "-q", "--builtin", "two_ota", str(tmp_path / "p.bin"), "--header", str(header)]
    assert cli(*args).returncode == 0
    os.utime(header, ns=(1_000_000_000, 1_000_000_000))
    assert cli(*args, "--disable-md5sum").returncode == 0  # other bytes, same layout
    assert header.stat().st_mtime_ns == 1_000_000_000
    assert cli("gen", "-q", "--builtin", "singleapp", str(tmp_path / "p.bin"), "--header",
               str(header)).returncode == 0
    assert header.stat().st_mtime_ns != 1_000_000_000
    assert "PARTITION_FACTORY_SIZE 0x100000" in header.read_text()


# --- the examples: the app's code uses the header, builds keep them in step --------------

def storage_pair(image: Path, offset: int, size: int) -> bool:
    """The app keeps {PARTITION_STORAGE_OFFSET, PARTITION_STORAGE_SIZE} in its image."""
    return struct.pack("<II", offset, size) in image.read_bytes()


@pytest.fixture(params=list(GENERATORS))
def cmake_example(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    require_tool("riscv64-unknown-elf-gcc")
    pytest.importorskip("esptool")
    src = copy_tree(ROOT / "examples", tmp_path / "ex amples")
    p = Project(src / "cmake-esp32c3", tmp_path / "build dir", str(request.param))
    p.defines.update(CMAKE_TOOLCHAIN_FILE=TOOLCHAIN.as_posix(),
                     partkit_DIR=module_dir().as_posix())
    p.configure()
    p.build()
    return p


@pytest.mark.cmake
@pytest.mark.firmware
@pytest.mark.slow
def test_cmake_example_header_follows_the_csv(cmake_example: Project) -> None:
    p = cmake_example
    header, elf = p.path("include/partitions.h"), p.path("app.elf")
    assert "#define PARTITION_STORAGE_OFFSET 0x310000\n" in header.read_text()
    assert storage_pair(p.path("app.bin"), 0x310000, 0xF0000)

    # Another table option, same layout: the table is regenerated, the header and app not.
    before = mtimes(header, elf)
    p.configure(PARTITION_TABLE_MD5="OFF")
    log = p.build()
    assert log.output.count("partkit: generating partition table") == 1
    assert "Building C object" not in log.output
    assert mtimes(header, elf) == before

    # A layout change: header rewritten, the app recompiled and carrying the new values.
    csv = p.src / "partitions.csv"
    csv.write_text(csv.read_text().replace("0xF0000", "0x80000"))
    log = p.build()
    assert "#define PARTITION_STORAGE_SIZE 0x80000\n" in header.read_text()
    assert log.output.count("Building C object") == 1
    assert all(m != before[f] for f, m in mtimes(header, elf).items())
    assert storage_pair(p.path("app.bin"), 0x310000, 0x80000)
    assert "check OK" in log.output


@pytest.mark.cmake
@pytest.mark.firmware
def test_cmake_extra_subtypes_header_rebuilds_when_the_subtypes_change(tmp_path: Path) -> None:
    require_tool("riscv64-unknown-elf-gcc")
    src = tmp_path / "src"
    src.mkdir()
    (src / "partitions.csv").write_text("nvs, data, nvs, 0x9000, 0x6000\n"
                                        "factory, app, factory, 0x10000, 1M\n"
                                        "store, data, my_store, , 0x10000\n")
    (src / "use.c").write_text(
        "typedef enum {\n"
        '#include "extra_partition_subtypes.inc"\n'
        "    ESP_PARTITION_SUBTYPE_ANY = 0xff,\n"
        "} esp_partition_subtype_t;\n"
        "int store_subtype = ESP_PARTITION_SUBTYPE_DATA_MY_STORE;\n")
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\n"
        "project(subtypes C)\n"
        "find_package(partkit CONFIG REQUIRED)\n"
        'set(SUBTYPE_VALUE 0x40 CACHE STRING "")\n'
        "partkit_add_partition_table(pt CSV partitions.csv\n"
        "  EXTRA_SUBTYPES data,my_store,${SUBTYPE_VALUE}\n"
        "  EXTRA_SUBTYPES_HEADER config/extra_partition_subtypes.inc)\n"
        "add_library(use STATIC use.c)\n"
        'target_include_directories(use PRIVATE "${CMAKE_CURRENT_BINARY_DIR}/config")\n'
        "add_dependencies(use pt_bin)\n")
    p = Project(src, tmp_path / "build", "Ninja")
    p.defines.update(CMAKE_TOOLCHAIN_FILE=TOOLCHAIN.as_posix(),
                     partkit_DIR=module_dir().as_posix())
    p.configure()
    p.build()
    inc = p.path("config/extra_partition_subtypes.inc")
    assert "ESP_PARTITION_SUBTYPE_DATA_MY_STORE = 0x40," in inc.read_text()
    assert p.build().output.count("Building C object") == 0
    p.configure(SUBTYPE_VALUE="0x41")
    log = p.build()
    assert "ESP_PARTITION_SUBTYPE_DATA_MY_STORE = 0x41," in inc.read_text()
    assert log.output.count("Building C object") == 1
    table = p.path("partition-table.bin").read_bytes()
    assert table[0x40 + 3] == 0x41  # the third row's subtype byte


@pytest.mark.scons
@pytest.mark.firmware
def test_scons_example_header_follows_the_csv(tmp_path: Path) -> None:
    require_tool("riscv64-unknown-elf-gcc")
    scons_exe = require_tool("scons")
    for name in ("plugins", "core"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    examples = tmp_path / "examples"
    for name in ("scons-esp32c3", "common"):
        shutil.copytree(ROOT / "examples" / name, examples / name,
                        ignore=shutil.ignore_patterns("build", ".sconsign*"))
    project = examples / "scons-esp32c3"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def scons(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([scons_exe, "-Q", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    scons()
    build = project / "build"
    header = build / "partitions.h"
    assert "#define PARTITION_STORAGE_OFFSET 0x110000\n" in header.read_text()
    assert storage_pair(build / "firmware.bin", 0x110000, 0x100000)
    firmware = (build / "firmware.bin").read_bytes()

    noop = scons()
    assert "riscv64-unknown-elf-gcc" not in noop.stdout

    csv = project / "partitions.csv"
    csv.write_text(csv.read_text().replace("storage,  data, spiffs,  ,        0x100000,",
                                           "storage,  data, spiffs,  ,        0x80000,"))
    rebuilt = scons()
    assert "#define PARTITION_STORAGE_SIZE 0x80000\n" in header.read_text()
    assert "main.c" in rebuilt.stdout  # the app was recompiled
    assert "bootloader.c" not in rebuilt.stdout
    assert (build / "firmware.bin").read_bytes() != firmware
    assert storage_pair(build / "firmware.bin", 0x110000, 0x80000)


def test_every_builtin_gives_a_header(tmp_path: Path) -> None:
    """No built-in has names that collide in the header."""
    for table in builtin.all_builtins():
        proc = cli("gen", "-q", "--builtin", table.name, str(tmp_path / "x.bin"), "--header",
                   str(tmp_path / f"{table.name}.h"))
        assert proc.returncode == 0, (table.name, proc.stderr)
        text = (tmp_path / f"{table.name}.h").read_text()
        assert text.count("#define PARTITION_") == 5 * len(table.rows)


def test_label_is_the_name_the_table_stores(tmp_path: Path) -> None:
    """PARTITION_<NAME>_LABEL for esp_partition_find_first(): the 16 bytes the binary keeps,
    as a C string (octal escapes for non-ASCII, quotes and backslashes escaped)."""
    csv = tmp_path / "t.csv"
    csv.write_text('nvs, data, nvs, 0x9000, 0x6000\nfactory_firmware_slot, app, factory, '
                   '0x10000, 1M\nphy_\u0438\u043d\u0438\u0442, data, phy, , 4K\n',
                   encoding="utf-8")
    proc = cli("gen", "-q", str(csv), str(tmp_path / "pt.bin"), "--header",
               str(tmp_path / "p.h"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "p.h").read_text()
    assert '#define PARTITION_NVS_LABEL "nvs"\n' in text
    assert '#define PARTITION_FACTORY_FIRMWARE_SLOT_LABEL "factory_firmwar"' not in text
    assert '#define PARTITION_FACTORY_FIRMWARE_SLOT_LABEL "factory_firmware"\n' in text
    from partkit.table.cheader import macro_name

    ident = macro_name("phy_\u0438\u043d\u0438\u0442")
    assert (f'#define PARTITION_{ident}_LABEL '
            '"phy_\\320\\270\\320\\275\\320\\270\\321\\202"\n') in text, text
    binary = (tmp_path / "pt.bin").read_bytes()
    assert binary[32 * 2 + 12:32 * 2 + 28] == "phy_\u0438\u043d\u0438\u0442".encode().ljust(16, b"\0")
