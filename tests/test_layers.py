"""The import structure of ``core/partkit``: layers that import one way, and no circles.

Every import counts: at module top, inside functions and under ``TYPE_CHECKING``. An
import names the module it names (``from partkit.table import binary`` is
``partkit.table.binary``); the parent packages Python initialises on the way are not
counted, since a package ``__init__`` re-exporting its own modules is no circle.
docs/architecture.md explains the layers; this list is their order.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "core" / "partkit"

# Lowest first. A module may import its own layer and the ones before it, never a later
# one. The longest matching name decides a module's layer ("partkit" is the root
# ``__init__`` alone).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("partkit", "partkit.common")),
    ("table codec", ("partkit.table",)),
    ("flash contents", ("partkit.flash", "partkit.check.findings")),
    ("data images", ("partkit.data",)),
    ("checks", ("partkit.check",)),
    ("operations", ("partkit.esp_at", "partkit.plan", "partkit.device")),
    ("front ends", ("partkit.diff", "partkit.idf", "partkit.arduino", "partkit.parttool",
                    "partkit.buildsys")),
    ("command line", ("partkit.cli", "partkit.__main__")),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path, module: str) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(path: Path, modules: set[str], module: str = "") -> set[str]:
    """The package modules ``path`` (the module ``module``) imports, anywhere in it.

    Relative imports resolve against its package; a module named by a string literal
    (``importlib.import_module("partkit.cli.x")``, ``__import__(...)``, a name in a
    dispatch table) counts as imported, since it is loaded by that name.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(path, module).split(".")
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                     else base for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value.split(":", 1)[0]]  # also "module:NAME" (a LazySubcommand)
        found.update(names)
    return found & modules


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules, name) - {name} for name, path in files.items()}


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matched name, layer)
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            nested = "." in name and module.startswith(name + ".")  # not the root's
            if (module == name or nested) and (
                    best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        own = layer_of(module)
        if own is None:
            problems.append(f"{module} is in no layer (add it to LAYERS)")
            continue
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                problems.append(f"{module} ({LAYERS[own][0]}) imports {target} "
                                f"({LAYERS[theirs][0]})")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert upward_imports(import_graph(PACKAGE)) == []


def test_no_import_circles() -> None:
    assert circles(import_graph(PACKAGE)) == []


def test_findings_import_nothing_from_the_checks() -> None:
    graph = import_graph(PACKAGE)
    assert not {m for m in graph["partkit.check.findings"] if m.startswith("partkit.check.")}


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "partkit" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "partkit"


def test_the_checker_sees_upward_imports_and_circles(tmp_path: Path) -> None:
    # Function-level and TYPE_CHECKING imports count as much as module-top ones.
    tree = _tree(tmp_path, {
        "__init__.py": "",
        "common/__init__.py": "",
        "common/low.py": "def f():\n    from partkit.cli.top import g\n",
        "table/__init__.py": "",
        "table/a.py": "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from partkit.table import b\n",
        "table/b.py": "import partkit.table.a\n",
        "cli/__init__.py": "",
        "cli/top.py": "from partkit.common.low import f\n",
        "stray/__init__.py": "",
    })
    graph = import_graph(tree)
    assert graph["partkit.table.b"] == {"partkit.table.a"}
    assert upward_imports(graph) == [
        "partkit.common.low (foundation) imports partkit.cli.top (command line)",
        "partkit.stray is in no layer (add it to LAYERS)",
    ]
    assert sorted(circles(graph)) == [["partkit.cli.top", "partkit.common.low"],
                                      ["partkit.table.a", "partkit.table.b"]]


@pytest.mark.parametrize(("module", "layer"), [
    ("partkit", "foundation"), ("partkit.check.findings", "flash contents"),
    ("partkit.check.checks", "checks"), ("partkit.parttool", "front ends"),
    ("partkit.cli.image", "command line"),
])
def test_layer_names(module: str, layer: str) -> None:
    index = layer_of(module)
    assert index is not None and LAYERS[index][0] == layer


# --- the adapters outside the package use its public surfaces only ----------------------------

ROOT = PACKAGE.parents[1]
ADAPTERS = (ROOT / "plugins" / "scons" / "partkit.py", ROOT / "pio_extra_script.py")
PUBLIC = ("partkit.buildsys", "partkit.cli")  # the API for build adapters, and main(argv)


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: p.name)
def test_build_adapters_import_only_the_public_api(path: Path) -> None:
    used = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("partkit"):
            used.add(str(node.module))
        elif isinstance(node, ast.Import):
            used.update(a.name for a in node.names if a.name.startswith("partkit"))
    assert used, "no partkit import found: the test would prove nothing"
    inner = sorted(m for m in used if not (m in PUBLIC or m.startswith("partkit.buildsys.")))
    assert inner == []
    assert "partkit.cli.common" not in used


def test_cmake_module_runs_commands_not_python_snippets() -> None:
    for path in sorted((ROOT / "cmake").glob("*.cmake")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bimport partkit\b|\bfrom partkit[. ]", text), path
        assert " -c\n" not in text and " -c \"" not in text, path


def test_buildsys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.cli import main

    assert main(["buildsys", "bootloader-offset", "ESP32"]) == 0
    assert capsys.readouterr().out == "0x1000\n"
    assert main(["buildsys", "bootloader-offset", "esp99"]) == 2
    assert "unknown chip 'esp99'" in capsys.readouterr().err
    out = tmp_path / "otadata.bin"
    assert main(["buildsys", "erased-file", str(out), "8192"]) == 0
    assert out.read_bytes() == b"\xff" * 0x2000
    table = tmp_path / "t.csv"
    table.write_text("nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 1M,\n")
    assert main(["buildsys", "partition-info", f"table={table}", "name=factory",
                 "info=offset", "info=size"]) == 0
    assert capsys.readouterr().out == "0x10000 0x100000\n"
    assert main(["buildsys", "package-dir"]) == 0
    assert Path(capsys.readouterr().out.strip()) == PACKAGE


def test_the_checker_sees_imports_by_name_and_relative_imports(tmp_path: Path) -> None:
    # Each lower module reaches the command line another way; every one must be seen.
    tree = _tree(tmp_path, {
        "__init__.py": "",
        "common/__init__.py": "",
        "common/by_importlib.py": "import importlib\n"
                                  "def f():\n    importlib.import_module('partkit.cli.top')\n",
        "common/by_dunder.py": "def f():\n    __import__('partkit.cli.top')\n",
        "common/by_table.py": "LOADERS = {'x': ('partkit.cli.top', 'pkg')}\n",
        "common/relative.py": "from ..cli import top\n",
        "common/relative_pkg.py": "from .. import cli\n",
        "common/from_root.py": "from partkit import cli\n",
        "common/sibling.py": "from . import by_dunder\n",
        "cli/__init__.py": "",
        "cli/top.py": "",
    })
    graph = import_graph(tree)
    assert graph["partkit.common.sibling"] == {"partkit.common.by_dunder"}
    assert upward_imports(graph) == [
        f"partkit.common.{name} (foundation) imports partkit.cli{target} (command line)"
        for name, target in [("by_dunder", ".top"), ("by_importlib", ".top"),
                             ("by_table", ".top"), ("from_root", ""), ("relative", ".top"),
                             ("relative_pkg", "")]]


def test_a_format_module_loaded_by_name_is_no_circle() -> None:
    # partkit.data loads its format modules by name; they raise missing_extra from a
    # module of their own, not from the package that loads them.
    graph = import_graph(PACKAGE)
    assert "partkit.data.nvs" in graph["partkit.data"]
    assert "partkit.data" not in graph["partkit.data.nvs"]


# --- imports at module top, except on gen's start-up path ---------------------------------

# What `partkit gen` loads: its start-up time is budgeted (bench/cli_latency.py), so these
# modules may import what only some runs need inside the function that needs it.
START_UP = frozenset({
    "partkit", "partkit.cli", "partkit.cli.common", "partkit.cli.gen", "partkit.cli.reporting",
    "partkit.common", "partkit.common.errors", "partkit.common.fileio", "partkit.common.notices",
    "partkit.common.numbers", "partkit.common.record", "partkit.table", "partkit.table.binary",
    "partkit.table.codec", "partkit.table.csvparse", "partkit.table.layout",
    "partkit.table.model", "partkit.table.names", "partkit.table.options",
    "partkit.table.source", "partkit.table.verify",
})
# Imported where used everywhere: the optional extras' loader (a missing extra is a clear
# error, not an ImportError at start) and POSIX-only modules (partkit also runs on Windows).
LAZY_ANYWHERE = frozenset({"importlib", "fcntl", "termios", "msvcrt"})


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each import inside a function, outside ``try`` (optional
    dependencies are tried where needed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tried = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for n in ast.walk(t)}
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if id(node) in tried:
                continue
            if isinstance(node, ast.ImportFrom) and not node.level:
                found.append((node.lineno, node.module or ""))
            elif isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names)
    return sorted(set(found))


def late_imports(root: Path, start_up: frozenset[str]) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        if module in start_up:
            continue
        for line, name in function_level_imports(path):
            top = name.split(".")[0]
            if top in LAZY_ANYWHERE or (top != "partkit" and top not in sys.stdlib_module_names):
                continue  # an optional extra (esptool, littlefs, ...) or a POSIX-only module
            problems.append(f"{module}:{line} imports {name} inside a function")
    return problems


def test_imports_at_module_top_outside_gens_start_up_path() -> None:
    assert late_imports(PACKAGE, START_UP) == []


def test_the_late_import_checker_sees_them(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {
        "__init__.py": "",
        "flash/__init__.py": "",
        "flash/a.py": ("import os\n\ndef f():\n    import json\n    from partkit.table import b\n"
                       "    try:\n        import littlefs\n    except ImportError:\n"
                       "        pass\n    import fcntl\n    import esptool\n"),
    })
    assert late_imports(tree, frozenset()) == [
        "partkit.flash.a:4 imports json inside a function",
        "partkit.flash.a:5 imports partkit.table inside a function",
    ]


def test_gen_loads_only_its_start_up_modules(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x10000, 1M\n")
    script = ("import sys\nfrom partkit.cli import main\n"
              f"code = main(['gen', {str(csv)!r}, {str(tmp_path / 't.bin')!r}])\n"
              "print(code, *sorted(m for m in sys.modules if m.split('.')[0] == 'partkit'))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "0"
    # a module gen does not need is one more import on every build; one START_UP lists but
    # gen no longer loads may import at its top again
    assert set(out[1:]) == START_UP
