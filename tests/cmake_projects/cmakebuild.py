"""Drive real CMake builds for the CMake-module tests.

A :class:`Project` is a source tree and a build tree (both under the test's tmp dir, with
spaces in their paths) configured with one generator. Every command's combined output is
returned so tests can assert on the build log as a user would see it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support.tools import missing, require_tool

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "examples" / "common" / "esp32c3" / "toolchain-esp32c3.cmake"
GENERATORS = {"Ninja": "ninja", "Unix Makefiles": "make"}


_snapshot: Path | None = None


def module_dir() -> Path:
    """The CMake module dir of a snapshot of this checkout (``cmake/`` + ``core/partkit``).

    Generated tables depend on partkit's own sources, so an edit to the live checkout
    during a test run would (rightly) trigger rebuilds; tests use a frozen copy, at a
    path with spaces, which also proves the module is relocatable.
    """
    global _snapshot
    if _snapshot is None:
        base = Path(tempfile.mkdtemp(prefix="partkit-cmake-"))
        atexit.register(shutil.rmtree, base, True)
        checkout = base / "partkit checkout"
        shutil.copytree(ROOT / "cmake", checkout / "cmake")
        shutil.copytree(ROOT / "core" / "partkit", checkout / "core" / "partkit",
                        ignore=shutil.ignore_patterns("__pycache__"))
        _snapshot = checkout / "cmake"
    return _snapshot


class Log:
    """A finished command: exit code and everything it printed."""

    def __init__(self, args: list[str], returncode: int, output: str) -> None:
        self.args = args
        self.returncode = returncode
        self.output = output

    def __repr__(self) -> str:
        return f"exit {self.returncode}: {' '.join(self.args)}\n{self.output}"


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Log:
    proc = subprocess.run(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return Log(args, proc.returncode, proc.stdout)


def tools_for(generator: str) -> str:
    """cmake plus the generator's build tool, or skip (fail under CI)."""
    require_tool(GENERATORS[generator])
    return require_tool("cmake")


def oracle_table(csv_text: str, md5: bool = True, offset: int = 0x8000,
                 bootloader_offset: int | None = None) -> bytes:
    """What ESP-IDF's gen_esp32part writes for this CSV (esp-idf-defs as the oracle)."""
    try:
        from esp_idf_defs import partitions
    except ImportError:
        if sys.version_info < (3, 10):
            import pytest

            pytest.skip("esp-idf-defs (the reference oracle) needs Python 3.10+")
        missing("esp-idf-defs is not installed")
        raise
    table = partitions.PartitionTable.from_csv(csv_text, offset, bootloader_offset)
    table.verify(offset)
    data: bytes = table.to_binary(md5sum=md5)
    return data


class Project:
    """One CMake project: sources in ``src``, build tree in ``build``."""

    def __init__(self, src: Path, build: Path, generator: str) -> None:
        self.src = src
        self.build_dir = build
        self.generator = generator
        self.cmake = tools_for(generator)
        self.defines: dict[str, str] = {}
        self.builds: list[Log] = []  # every build's log, oldest first
        self.python: str | None = sys.executable  # passed as Python3_EXECUTABLE if set
        self.env: dict[str, str] = dict(os.environ, CLICOLOR="0", NINJA_STATUS="[%f/%t] ")

    def configure(self, check: bool = True, **defines: str) -> Log:
        self.defines.update(defines)
        args = [self.cmake, "-S", str(self.src), "-B", str(self.build_dir), "-G", self.generator]
        if self.python:
            args.append(f"-DPython3_EXECUTABLE={self.python}")
        args += [f"-D{k}={v}" for k, v in self.defines.items()]
        log = run(args, env=self.env)
        if check:
            assert log.returncode == 0, log
        return log

    def build(self, *targets: str, check: bool = True) -> Log:
        args = [self.cmake, "--build", str(self.build_dir)]
        for target in targets:
            args += ["--target", target]
        log = run(args, env=self.env)
        self.builds.append(log)
        if check:
            assert log.returncode == 0, log
        return log

    def ninja_dry_run(self) -> Log:
        """``ninja -n -d explain``: what Ninja would run, and why."""
        return run([require_tool("ninja"), "-C", str(self.build_dir), "-n", "-d", "explain"])

    def path(self, name: str) -> Path:
        return self.build_dir / name


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return dst


def mtimes(*paths: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}
