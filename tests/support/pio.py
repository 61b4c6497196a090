"""Offline PlatformIO for integration tests.

``pio run`` needs the ``tool-scons`` core package, which would normally be downloaded.
Here a private ``PLATFORMIO_CORE_DIR`` gets a local stand-in instead: a package directory
named ``tool-scons`` at the version PlatformIO asks for, whose ``scons.py`` runs the SCons
installed in the test venv. It is installed with ``pio pkg install -g -t file://DIR`` and
then marked as owned by ``platformio`` (core packages are looked up by that owner).

Platforms are local directories (``platform = file://...`` in platformio.ini), e.g. the
example's ``examples/platformio-esp32c3/platform``; nothing is fetched from the network.

    core = offline_core(tmp_path_factory.mktemp("pio-core"))   # once per session
    result = run_pio(core, project_dir, "-t", "partition-table")

platform-espressif32 runs esptool from its ``tool-esptoolpy`` package (esptool 4.x, run as
``"$PYTHONEXE" <package>/esptool.py``). ``esptoolpy_package`` makes such a package from the
esptool 4.11.0 source distribution (fetched once with pip into the venv's
``partkit-test-cache``); a test platform names it by its ``file://`` URI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from support.tools import missing, require_tool

__all__ = [
    "ESPTOOL4_VERSION",
    "SCONS_PACKAGE_VERSION",
    "PioResult",
    "esptoolpy_package",
    "offline_core",
    "pio_env",
    "run_pio",
]

# What platformio.dependencies.get_core_dependencies() requires (~4.41101.0 in 6.1.x/6.2).
SCONS_PACKAGE_VERSION = "4.41101.0"

_SCONS_PY = """\
# Offline stand-in for PlatformIO's tool-scons package: run the SCons of this Python.
import sys

import SCons.Script

if __name__ == "__main__":
    sys.exit(SCons.Script.main())
"""


# The esptool of platform-espressif32 6.13.0 (tool-esptoolpy ~2.41100.0): 4.x, underscores.
ESPTOOL4_VERSION = "4.11.0"
_CACHE = Path(sys.prefix) / "partkit-test-cache"


class PioResult:
    """A finished ``pio`` run: exit code and the two streams (text)."""

    def __init__(self, args: list[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return (
            f"pio {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def _required_scons_spec() -> str:
    try:
        from platformio.dependencies import get_core_dependencies
    except ImportError:
        return "~" + SCONS_PACKAGE_VERSION
    return str(get_core_dependencies()["tool-scons"])


def pio_env(core_dir: Path) -> dict[str, str]:
    """Process environment for an offline, quiet, private PlatformIO."""
    env = dict(os.environ)
    env.update(
        PLATFORMIO_CORE_DIR=str(core_dir),
        PLATFORMIO_SETTING_ENABLE_TELEMETRY="no",
        PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
        PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD="0",
        PLATFORMIO_DISABLE_PROGRESSBAR="true",
        PLATFORMIO_NO_ANSI="true",
        NO_COLOR="1",
    )
    # esptool, scons and partkit's own venv first; system cross compiler after.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("PLATFORMIO_EXTRA_SCRIPTS", "PLATFORMIO_BUILD_FLAGS", "PLATFORMIO_BUILD_DIR"):
        env.pop(name, None)
    return env


def offline_core(core_dir: Path) -> Path:
    """Prepare ``core_dir`` as a PlatformIO core dir with the local tool-scons; returns it."""
    pio = require_tool("pio")
    try:
        import SCons  # noqa: F401
    except ImportError:
        missing("the scons Python package is not installed (pip install scons)")
    spec = _required_scons_spec()
    version = spec.lstrip("~^=<> ")
    package = core_dir.parent / f"{core_dir.name}-tool-scons"
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.json").write_text(
        json.dumps(
            {
                "name": "tool-scons",
                "version": version,
                "description": "SCons from the test venv (offline stand-in)",
                "system": "*",
            },
            indent=2,
        )
    )
    (package / "scons.py").write_text(_SCONS_PY)
    proc = subprocess.run(
        [pio, "pkg", "install", "--global", "--tool", package.as_uri()],
        env=pio_env(core_dir),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"installing the local tool-scons failed:\n{proc.stdout}{proc.stderr}")
    manifest = core_dir / "packages" / "tool-scons" / ".piopm"
    meta = json.loads(manifest.read_text())
    meta["spec"].update(owner="platformio", name="tool-scons")
    manifest.write_text(json.dumps(meta))
    return core_dir


def run_pio(core_dir: Path, project_dir: Path, *args: str, timeout: float = 300) -> PioResult:
    """``pio run -d project_dir [args]`` with the offline core; never raises on failure."""
    pio = require_tool("pio")
    argv = ["run", "-d", str(project_dir), *args]
    proc = subprocess.run(
        [pio, *argv],
        env=pio_env(core_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return PioResult(argv, proc)


def _esptool4_sdist() -> Path:
    """The esptool 4.x source distribution, downloaded once into the venv's cache."""
    name = f"esptool-{ESPTOOL4_VERSION}.tar.gz"
    cached = _CACHE / name
    if cached.is_file():
        return cached
    _CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "esptool",
         "-d", str(_CACHE), f"esptool=={ESPTOOL4_VERSION}"],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0 or not cached.is_file():
        missing(f"cannot fetch esptool {ESPTOOL4_VERSION} with pip: {proc.stderr.strip()[-300:]}")
    return cached


def esptoolpy_package(dest: Path) -> Path:
    """A ``tool-esptoolpy`` package directory (esptool.py + the esptool 4.x package)."""
    sdist = _esptool4_sdist()
    top = f"esptool-{ESPTOOL4_VERSION}/"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers()
                   if m.name == top + "esptool.py" or m.name.startswith(top + "esptool/")]
        for member in members:
            if not (member.isfile() or member.isdir()):
                continue
            target = dest / member.name[len(top):]
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
    (dest / "package.json").write_text(json.dumps({
        "name": "tool-esptoolpy",
        "version": "2.41100.0",
        "description": f"esptool {ESPTOOL4_VERSION} (partkit test stand-in for tool-esptoolpy)",
        "system": "*",
    }, indent=2))
    return dest
