"""find_package(partkit CONFIG) from a wheel installed into a fresh virtual environment.

The wheel is built from this checkout, installed with no index and no dependencies, and a
small project finds the module two ways: with the venv's bin/ on PATH (the shared-data copy
in <venv>/share/cmake/partkit) and with ``partkit_DIR`` from ``partkit --cmake-dir``.
Neither way may fall back to the checkout or the test interpreter.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from cmake_projects.cmakebuild import ROOT, Project, module_dir, oracle_table, run

pytestmark = [pytest.mark.cmake, pytest.mark.slow]

CSV = """\
nvs,      data, nvs,     ,        0x6000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, 0x10000, 1M,
"""

PROJECT = """\
cmake_minimum_required(VERSION 3.16)
project(consumer NONE)
find_package(partkit @VERSION@ CONFIG REQUIRED)
message(STATUS "partkit_DIR=${partkit_DIR}")
message(STATUS "partkit_VERSION=${partkit_VERSION}")
partkit_add_partition_table(partition-table CSV partitions.csv ALL)
partkit_get_partition_info(app TABLE partition-table BOOT_DEFAULT INFO offset size)
message(STATUS "boot app: ${app}")
"""


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no pip of its own) with only the partkit wheel installed."""
    root = tmp_path_factory.mktemp("package")
    wheels = root / "wheels"
    isolation = []
    try:
        import hatchling  # noqa: F401  (build offline with the test env's backend)

        isolation = ["--no-build-isolation"]
    except ImportError:
        pass
    log = run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q",
               "-w", str(wheels), str(ROOT)])
    assert log.returncode == 0, log
    (wheel,) = wheels.glob("partkit-*.whl")
    env_dir = root / "fresh venv"
    log = run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    assert log.returncode == 0, log
    python = bin_dir(env_dir) / "python"
    log = run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
               "--no-deps", "--no-index", str(wheel)])
    assert log.returncode == 0, log
    return env_dir


def consumer(root: Path, version: str = "0.1") -> Project:
    src = root / "consumer src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(PROJECT.replace("@VERSION@", version))
    (src / "partitions.csv").write_text(CSV)
    p = Project(src, root / "consumer build", "Ninja")
    p.python = None  # the module must find the venv's interpreter by itself
    return p


def assert_uses_venv(p: Project, log_output: str, venv: Path) -> None:
    assert f"Found partkit 0.1.0: {bin_dir(venv)}" in log_output
    assert "boot app: 0x10000 0x100000" in log_output
    p.build()
    assert p.path("partition-table.bin").read_bytes() == oracle_table(CSV)
    ninja = p.path("build.ninja").read_text()
    assert "PYTHONPATH" not in ninja  # not the checkout's core/
    assert str(bin_dir(venv)) in ninja


def test_found_through_path(venv: Path, tmp_path: Path) -> None:
    p = consumer(tmp_path)
    p.env["PATH"] = f"{bin_dir(venv)}{os.pathsep}{p.env['PATH']}"
    log = p.configure()
    assert f"partkit_DIR={venv / 'share' / 'cmake' / 'partkit'}" in log.output
    assert "partkit_VERSION=0.1.0" in log.output
    assert_uses_venv(p, log.output, venv)


def test_found_through_cmake_dir(venv: Path, tmp_path: Path) -> None:
    cmake_dir = run([str(bin_dir(venv) / "partkit"), "--cmake-dir"]).output.strip()
    assert "site-packages" in cmake_dir
    p = consumer(tmp_path)
    log = p.configure(partkit_DIR=cmake_dir)
    assert_uses_venv(p, log.output, venv)


def test_version_request_is_honoured(venv: Path, tmp_path: Path) -> None:
    p = consumer(tmp_path, version="0.2")
    log = p.configure(check=False, partkit_DIR=str(venv / "share" / "cmake" / "partkit"))
    assert log.returncode != 0
    assert "partkit" in log.output and "0.1.0" in log.output  # the version it did find


def test_missing_partkit_gives_a_hint(tmp_path: Path) -> None:
    bare = tmp_path / "bare venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(bare)]).returncode == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(x NONE)\n"
        "find_package(partkit CONFIG REQUIRED)\n")
    vendored = shutil.copytree(module_dir(), tmp_path / "vendored" / "cmake")
    p = Project(src, tmp_path / "build", "Ninja")
    p.python = None
    # A copy of the module alone (vendored, no core/ beside it) with an interpreter that
    # lacks partkit: configuration must stop and say what to do.
    log = p.configure(check=False, partkit_DIR=str(vendored),
                      PARTKIT_PYTHON=str(bin_dir(bare) / "python"))
    text = " ".join(log.output.split())
    assert log.returncode != 0
    assert "No module named partkit" in text
    assert "Hint: install partkit into that interpreter" in text


def test_vendored_module_checks_the_version_it_runs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(x NONE)\n"
        "find_package(partkit 0.2 CONFIG REQUIRED)\n")
    vendored = shutil.copytree(module_dir(), tmp_path / "vendored" / "cmake")
    p = Project(src, tmp_path / "build", "Ninja")
    p.python = None
    # The test interpreter has partkit 0.1.x importable (the project's dev install).
    log = p.configure(check=False, partkit_DIR=str(vendored), PARTKIT_PYTHON=sys.executable)
    assert log.returncode != 0
    assert "is older than the requested 0.2" in " ".join(log.output.split())


def test_idf_component_ships_in_the_wheel(venv: Path) -> None:
    """`partkit --idf-component-dir` from the installed wheel names the component's files."""
    out = run([str(bin_dir(venv) / "partkit"), "--idf-component-dir"]).output.strip()
    component = Path(out)
    assert "site-packages" in out and component.name == "partkit"  # the component's name
    for name in ("CMakeLists.txt", "Kconfig", "project_include.cmake", "check_sizes.py",
                 "bootloader_hook.cmake", "idf_component.yml", "idf_ext.py"):
        assert (component / name).is_file(), name
    # The check_sizes entry ESP-IDF would run works from the wheel alone.
    log = run([str(bin_dir(venv) / "python"), str(component / "check_sizes.py"), "--help"])
    assert log.returncode == 0 and "bootloader" in log.output
