"""Where the CMake module, SCons tool and PlatformIO script live, installed or in a checkout."""

from __future__ import annotations

import os

__all__ = ["resource_dir", "resource_path"]

# the package directory (partkit/), one level above this module
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROOT = os.path.join(_HERE, os.pardir, os.pardir)
# kind -> (directory in an installed wheel, directory in a checkout, a file it must hold)
_PLACES = {
    "cmake": (os.path.join(_HERE, "cmake"), os.path.join(_ROOT, "cmake"), "partkit.cmake"),
    "scons": (os.path.join(_HERE, "scons"), os.path.join(_ROOT, "plugins", "scons"),
              "partkit.py"),
    "pio": (os.path.join(_HERE, "pio"), _ROOT, "pio_extra_script.py"),
    # the directory's name is the ESP-IDF component's name, so it stays "partkit"
    "idf": (os.path.join(_HERE, "idf_component", "partkit"),
            os.path.join(_ROOT, "plugins", "esp-idf", "partkit"), "project_include.cmake"),
}
# kind -> the file within the directory that the CLI prints instead of the directory
_FILES = {"pio": "pio_extra_script.py"}


def resource_dir(kind: str) -> str:
    """Directory of the CMake module ("cmake"), SCons tool ("scons") or PlatformIO script."""
    installed, checkout, marker = _PLACES[kind]
    for candidate in (installed, checkout):
        if os.path.exists(os.path.join(candidate, marker)):
            return os.path.normpath(candidate)
    return os.path.normpath(installed)


def resource_path(kind: str) -> str:
    """What ``partkit --<kind>-dir`` prints: the directory, or the PlatformIO script."""
    directory = resource_dir(kind)
    name = _FILES.get(kind)
    return os.path.join(directory, name) if name else directory
