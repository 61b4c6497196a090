"""partkit's public API for build-system adapters (the SCons tool, the PlatformIO script).

Plain values in, plain values out: paths, option texts, tables, diagnostics. Nothing here
imports SCons or PlatformIO; the adapters read their environment, call these and print.
Adapters import only this package (``partkit.buildsys`` and its ``commands`` and
``platformio`` modules), so partkit's inner layout can change without breaking them; the
CMake module runs ``partkit`` commands (``partkit buildsys ...`` for its lookups).
"""

from __future__ import annotations

import os

from partkit.buildsys.commands import check_argv, map_argv, show_argv, write_table_argv
from partkit.check.files import check_files
from partkit.check.findings import Budget
from partkit.check.report import to_text as check_report_text
from partkit.common.errors import (
    Diagnostic,
    PartkitError,
    SourceLocation,
    error,
    github_annotation,
)
from partkit.common.fileio import write_atomic, write_if_changed
from partkit.common.resources import resource_dir
from partkit.data import build_partition_image
from partkit.flash.tablearea import load_table_file
from partkit.table.builtin import lookup as lookup_builtin
from partkit.table.cheader import layout_header, subtypes_header
from partkit.table.codec import encode as encode_table
from partkit.table.names import APP, SUBTYPE_APP_TEE
from partkit.table.options import TableOptions, size_option, table_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "APP",
    "SUBTYPE_APP_TEE",
    "Budget",
    "Diagnostic",
    "PartkitError",
    "SourceLocation",
    "TableOptions",
    "build_partition_image",
    "check_argv",
    "check_files",
    "check_report_text",
    "diagnostic_text",
    "encode_table",
    "error",
    "layout_header",
    "load_table_file",
    "lookup_builtin",
    "map_argv",
    "resource_dir",
    "show_argv",
    "size_option",
    "subtypes_header",
    "table_options",
    "write_atomic",
    "write_if_changed",
    "write_table_argv",
]


def diagnostic_text(diagnostics: Iterable[Diagnostic], github: bool | None = None) -> str:
    """Diagnostics as ``partkit`` prints them to stderr (one per line, plus a GitHub
    annotation each under Actions; ``github`` None: when ``GITHUB_ACTIONS`` is true)."""
    if github is None:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
    lines = []
    for d in diagnostics:
        lines.append(d.format())
        if github:
            lines.append(github_annotation(d))
    return "".join(line + "\n" for line in lines)
