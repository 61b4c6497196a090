"""docs/cmake.md carries the module's ``#[=[.md`` doc blocks verbatim.

The blocks in cmake/partkit.cmake are the single source (as Corrosion's ANCHOR includes);
each ``<!-- ANCHOR: name -->`` ... ``<!-- ANCHOR_END: name -->`` section of the docs must
match the module's. To refresh the docs after editing the module, run

    python tests/test_cmake_docs.py --write
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "cmake" / "partkit.cmake"
DOCS = ROOT / "docs" / "cmake.md"
ANCHOR = re.compile(r"<!-- ANCHOR: (\S+) -->\n(.*?)<!-- ANCHOR_END: \1 -->", re.S)


def blocks(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in ANCHOR.finditer(text)}


def test_every_public_function_is_documented() -> None:
    module = MODULE.read_text()
    public = set(re.findall(r"^function\((partkit_\w+)", module, re.M))
    assert public == {"partkit_add_partition_table", "partkit_check_app_size",
                      "partkit_check_bootloader_size", "partkit_get_partition_info",
                      "partkit_add_flash_args", "partkit_add_data_image"}
    assert public <= set(blocks(module))


def test_docs_match_the_module() -> None:
    module, docs = blocks(MODULE.read_text()), blocks(DOCS.read_text())
    assert set(docs) == set(module), "run: python tests/test_cmake_docs.py --write"
    for name, text in module.items():
        assert docs[name] == text, f"docs/cmake.md '{name}' is stale: python {__file__} --write"


def write() -> None:
    module = blocks(MODULE.read_text())
    docs = ANCHOR.sub(lambda m: f"<!-- ANCHOR: {m.group(1)} -->\n{module[m.group(1)]}"
                      f"<!-- ANCHOR_END: {m.group(1)} -->", DOCS.read_text())
    DOCS.write_text(docs)


if __name__ == "__main__" and "--write" in sys.argv:
    write()
