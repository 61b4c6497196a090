"""Check everything an ESP-IDF build will flash: the shared build-folder checker
(:mod:`partkit.check.buildfolder`) fed by :mod:`partkit.idf.builddir`."""

from __future__ import annotations

from partkit.check.buildfolder import (
    BuildCheck,
    Placement,
    check_build,
    load_build_table,
    to_json,
    to_text,
)

__all__ = ["BuildCheck", "Placement", "check_build", "load_build_table", "to_json", "to_text"]
