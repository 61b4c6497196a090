"""NVS images with Espressif's ``esp-idf-nvs-partition-gen`` (the format's own generator).

The CSV is the generator's: ``key,type,encoding,value`` with a header row, checked first
by :mod:`partkit.data.nvscsv` (every problem at ``file:line:col``); ``file`` values are
read relative to the CSV's directory (the generator itself would use the current
directory, which differs between build systems).
"""

from __future__ import annotations

import io

from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.data.nvscsv import read_rows

__all__ = ["build"]

PAGE = 0x1000
RW_MINIMUM = 3 * PAGE  # two data pages and the page NVS keeps free for garbage collection


def build(source: str, size: int) -> bytes:
    import importlib

    try:  # untyped library: reached through import_module so it stays Any
        gen = importlib.import_module("esp_idf_nvs_partition_gen.nvs_partition_gen")
    except ImportError:
        from partkit.data.extras import missing_extra

        raise missing_extra("esp-idf-nvs-partition-gen", "NVS") from None
    if size % PAGE or size < PAGE:
        raise PartkitError(error(f"an NVS partition must be a multiple of 4 KiB, not 0x{size:x}"))
    read_only = size < RW_MINIMUM
    # The generator keeps one page free when the partition is written at run time.
    room = size if read_only else size - PAGE

    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror or exc}",
                                 SourceLocation(source))) from None
    rows = read_rows(data, source, room)  # every problem, before the generator runs
    out = io.BytesIO()
    try:
        with gen.nvs_open(out, room, gen.Page.VERSION2, read_only=read_only) as nvs:
            for row in rows:
                try:
                    gen.write_entry(nvs, row.key, row.kind, row.encoding, row.value)
                except (gen.InputError, ValueError, OSError) as exc:
                    raise PartkitError(error(f"NVS entry '{row.key}': {str(exc).strip()}",
                                             row.loc)) from None
                except (gen.PageFullError, gen.InsufficientSizeError):
                    raise _too_big(source, size) from None
    except gen.InsufficientSizeError:
        raise _too_big(source, size) from None
    return out.getvalue().ljust(size, b"\xff")


def _too_big(source: str, size: int) -> PartkitError:
    return PartkitError(error(
        f"the NVS entries do not fit a {size // 1024} KiB partition", SourceLocation(source),
        "make the partition bigger (partkit resize --set NAME=SIZE) or store less"))
