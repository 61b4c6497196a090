"""NVS images with Espressif's ``esp-idf-nvs-partition-gen`` (the format's own generator).

The CSV is the generator's: ``key,type,encoding,value`` with a header row; ``file``
values are read relative to the CSV's directory (the generator itself would use the
current directory, which differs between build systems).
"""

from __future__ import annotations

import csv
import io
import os

from partkit.common.errors import PartkitError, SourceLocation, error

__all__ = ["build"]

PAGE = 0x1000
RW_MINIMUM = 3 * PAGE  # two data pages and the page NVS keeps free for garbage collection


def build(source: str, size: int) -> bytes:
    import importlib

    try:  # untyped library: reached through import_module so it stays Any
        gen = importlib.import_module("esp_idf_nvs_partition_gen.nvs_partition_gen")
    except ImportError:
        from partkit.data import missing_extra

        raise missing_extra("esp-idf-nvs-partition-gen", "NVS") from None
    if size % PAGE or size < PAGE:
        raise PartkitError(error(f"an NVS partition must be a multiple of 4 KiB, not 0x{size:x}"))
    read_only = size < RW_MINIMUM
    # The generator keeps one page free when the partition is written at run time.
    room = size if read_only else size - PAGE
    base = os.path.dirname(os.path.abspath(source))
    with open(source, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
    out = io.BytesIO()
    try:
        with gen.nvs_open(out, room, gen.Page.VERSION2, read_only=read_only) as nvs:
            header, *rows = numbered
            reader = csv.DictReader([line for _, line in numbered])
            missing = {"key", "type", "encoding", "value"} - set(reader.fieldnames or ())
            if missing:
                raise PartkitError(error(
                    f"the NVS CSV header lacks {', '.join(sorted(missing))}",
                    SourceLocation(source, header[0], 1),
                    "the first row is: key,type,encoding,value"))
            for (number, _), row in zip(rows, reader):
                loc = SourceLocation(source, number, 1)
                key, kind = (row["key"] or "").strip(), (row["type"] or "").strip()
                value = row["value"] or ""
                if len(key) > 15:
                    raise PartkitError(error(f"NVS key '{key}' is longer than 15 characters",
                                             loc))
                if kind == "file" and not os.path.isabs(value):
                    value = os.path.join(base, value)
                if kind == "file":
                    _check_file_entry(value, size)
                try:
                    gen.write_entry(nvs, key, kind, (row["encoding"] or "").strip(), value)
                except (gen.InputError, ValueError, OSError) as exc:
                    raise PartkitError(error(f"NVS entry '{key}': {str(exc).strip()}",
                                             loc)) from None
                except (gen.PageFullError, gen.InsufficientSizeError):
                    raise _too_big(source, size) from None
    except gen.InsufficientSizeError:
        raise _too_big(source, size) from None
    return out.getvalue().ljust(size, b"\xff")


def _check_file_entry(path: str, size: int) -> None:
    """A ``file`` entry is a regular file no larger than the partition, checked before the
    generator reads it whole (a link to /dev/zero would never end)."""
    from partkit.common.fileio import check_input

    found = check_input(path, regular=True, what="an NVS file entry").st_size
    if found > size:
        raise PartkitError(error(
            f"the NVS entries do not fit a {size // 1024} KiB partition: this file alone has "
            f"{found} bytes", SourceLocation(path),
            "make the partition bigger (partkit resize --set NAME=SIZE) or store less"))


def _too_big(source: str, size: int) -> PartkitError:
    return PartkitError(error(
        f"the NVS entries do not fit a {size // 1024} KiB partition", SourceLocation(source),
        "make the partition bigger (partkit resize --set NAME=SIZE) or store less"))
