"""Where the CMake module and SCons tool live, in a checkout or an installed wheel."""

from __future__ import annotations

import os

__all__ = ["resource_dir"]

_HERE = os.path.dirname(os.path.abspath(__file__))
# Installed wheel: partkit/cmake, partkit/scons. Checkout: <root>/cmake, <root>/plugins/scons.
_INSTALLED = {"cmake": os.path.join(_HERE, "cmake"), "scons": os.path.join(_HERE, "scons")}
_CHECKOUT = {
    "cmake": os.path.join(_HERE, os.pardir, os.pardir, "cmake"),
    "scons": os.path.join(_HERE, os.pardir, os.pardir, "plugins", "scons"),
}


def resource_dir(kind: str) -> str:
    for candidate in (_INSTALLED[kind], _CHECKOUT[kind]):
        if os.path.isdir(candidate):
            return os.path.normpath(candidate)
    return os.path.normpath(_INSTALLED[kind])
