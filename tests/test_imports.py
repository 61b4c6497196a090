"""Every core module imports on this interpreter (CI runs this on Python 3.9 and 3.13 too),
and the core has no runtime dependency outside the standard library."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import partkit


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(partkit.__path__, "partkit."))


def test_every_core_module_imports() -> None:
    names = _modules()
    assert {"partkit.table.codec", "partkit.check.checks", "partkit.flash.imagefile", "partkit.cli.gen"} <= set(names)
    for name in names:
        if name != "partkit.__main__":
            importlib.import_module(name)


def test_core_imports_only_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names) if hasattr(sys, "stdlib_module_names") else None
    script = ("import sys, importlib\n"
              f"for n in {[n for n in _modules() if n != 'partkit.__main__']!r}:\n"
              "    importlib.import_module(n)\n"
              "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                          f"{partkit.__path__[0].rsplit('/', 1)[0]!r}); exec({script!r})"],
                         capture_output=True, text=True, check=True).stdout.split()
    if stdlib is not None:
        foreign = [m for m in out if m not in stdlib and m != "partkit" and not m.startswith("_")]
        assert foreign == []
