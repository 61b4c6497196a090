"""Where esp32 Arduino cores are installed, on every IDE and operating system.

Boards-manager installs live in ``<data>/packages/esp32/hardware/esp32/<version>/`` where
``<data>`` is the Arduino15 folder (``~/.arduino15`` on Linux, ``~/Library/Arduino15`` on
macOS, ``%LOCALAPPDATA%\\Arduino15`` on Windows), IDE 1.8's ``<ide>/portable`` or
arduino-cli's ``directories.data``; git installs are ``<sketchbook>/hardware/espressif/
esp32``. A core update installs a new ``<version>`` folder (without partkit's hook).
"""

from __future__ import annotations

import glob
import os
import re

from partkit.arduino.properties import read_properties
from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CoreInstall", "data_dirs", "find_cores", "is_core_dir", "sketchbook_dirs",
           "version_key"]


class CoreInstall(Record):
    """One esp32 core folder (the one holding ``platform.txt``) and how it was found."""

    __slots__ = ("found_in", "path", "version")

    path: str
    version: str
    found_in: str  # "Arduino15 (Linux)", "arduino-cli directories.data", "sketchbook", ...

    def __init__(self, path: str, version: str, found_in: str) -> None:
        self._init(path=path, version=version, found_in=found_in)


def is_core_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "platform.txt"))


def _yaml_dirs(path: str) -> dict[str, str]:
    """``directories: {data, user}`` from an arduino-cli.yaml (block style, as it writes it)."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(1024 * 1024).splitlines()
    except OSError:
        return found
    inside = False
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split(":", 1)[0].strip() == "directories"
            continue
        m = re.match(r"\s+(data|user)\s*:\s*(.+?)\s*$", line)
        if inside and m:
            found[m.group(1)] = _yaml_scalar(m.group(2))
    return found


def _yaml_scalar(text: str) -> str:
    """A one-line YAML scalar: quotes removed, a plain one's `` #`` comment dropped."""
    if text[:1] in "'\"":
        end = text.find(text[0], 1)
        return text[1:end] if end > 0 else text[1:]
    return re.split(r"\s#", text, maxsplit=1)[0].rstrip()


def _arduino15(home: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    places = [(os.path.join(home, ".arduino15"), "Arduino15 (Linux)"),
              (os.path.join(home, "Library", "Arduino15"), "Arduino15 (macOS)")]
    if env.get("LOCALAPPDATA"):
        places.append((os.path.join(env["LOCALAPPDATA"], "Arduino15"), "Arduino15 (Windows)"))
    return places


def _cli_configs(home: str, env: Mapping[str, str]) -> list[str]:
    configs = [env["ARDUINO_CONFIG_FILE"]] if env.get("ARDUINO_CONFIG_FILE") else []
    configs += [os.path.join(d, "arduino-cli.yaml") for d, _ in _arduino15(home, env)]
    # IDE 2 keeps its own arduino-cli.yaml (its sketchbook-location preference is
    # directories.user there) in ~/.arduinoIDE, %USERPROFILE%\.arduinoIDE on Windows
    configs += [os.path.join(d, ".arduinoIDE", "arduino-cli.yaml")
                for d in (home, env.get("USERPROFILE")) if d]
    return configs


def data_dirs(home: str, env: Mapping[str, str],
              ide_dirs: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Every folder that may hold ``packages/``, with how it was found."""
    places = _arduino15(home, env)
    for ide in (*ide_dirs, *([env["ARDUINO_IDE_PATH"]] if env.get("ARDUINO_IDE_PATH") else [])):
        places.append((os.path.join(ide, "portable"), "IDE 1.8 portable"))
    if env.get("ARDUINO_DIRECTORIES_DATA"):
        places.append((env["ARDUINO_DIRECTORIES_DATA"], "arduino-cli directories.data"))
    for config in _cli_configs(home, env):
        data = _yaml_dirs(config).get("data")
        if data:
            places.append((os.path.expanduser(data), "arduino-cli directories.data"))
    return places


def sketchbook_dirs(home: str, env: Mapping[str, str]) -> list[str]:
    """Sketchbook folders: the defaults, IDE 1.8's preference and arduino-cli's user dir."""
    books = [os.path.join(home, "Arduino"), os.path.join(home, "Documents", "Arduino")]
    if env.get("ARDUINO_DIRECTORIES_USER"):
        books.append(env["ARDUINO_DIRECTORIES_USER"])
    for config in _cli_configs(home, env):
        user = _yaml_dirs(config).get("user")
        if user:
            books.append(os.path.expanduser(user))
    for data, _ in _arduino15(home, env):
        prefs = os.path.join(data, "preferences.txt")

        path = read_properties(prefs).get("sketchbook.path")
        if path:
            books.append(path)
    return books


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Semantic-version order: 3.0.0-rc1 < 3.0.0 < 3.0.1 < 3.0.10."""
    release, dash, pre = version.partition("-")
    numbers = tuple(int(p) if p.isdigit() else -1 for p in release.split("."))
    return numbers, 0 if dash else 1, pre


def find_cores(home: str, env: Mapping[str, str],
               ide_dirs: tuple[str, ...] = ()) -> list[CoreInstall]:
    """Every installed esp32 core, each folder once, boards-manager versions in order."""
    found: list[CoreInstall] = []
    seen: set[str] = set()

    def add(path: str, version: str, how: str) -> None:
        real = os.path.realpath(path)
        if real not in seen and is_core_dir(path):
            seen.add(real)
            found.append(CoreInstall(os.path.abspath(path), version, how))

    for data, how in data_dirs(home, env, ide_dirs):
        base = os.path.join(glob.escape(data), "packages", "esp32", "hardware", "esp32")
        for path in sorted(glob.glob(os.path.join(base, "*", "")),
                           key=lambda p: version_key(os.path.basename(p.rstrip("/\\")))):
            add(path.rstrip("/\\"), os.path.basename(path.rstrip("/\\")), how)
    for book in sketchbook_dirs(home, env):
        path = os.path.join(book, "hardware", "espressif", "esp32")
        version = read_properties(os.path.join(path, "platform.txt")).get("version", "git")
        add(path, version, "sketchbook hardware folder")
    return found
