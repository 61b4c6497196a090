"""Data partition images built at exactly their partition's size, from the table.

Thin adapters over the maintained libraries (the ``partkit[fs]`` extra), imported only
when an image is built: NVS with ``esp-idf-nvs-partition-gen``, LittleFS with
``littlefs-python``, FAT with ``pyfatfs`` (raw, or in ESP-IDF's wear-levelled layout:
``fat-wl``). SPIFFS has no
maintained package, so partkit does not build SPIFFS images.
"""

from __future__ import annotations

import os
import re
import sys

from partkit.common.errors import PartkitError, SourceLocation, closest, error, warning
from partkit.common.fileio import MAX_INPUT, check_input
from partkit.data.extras import missing_extra
from partkit.data.tree import check_root, deferred_interrupt, walk
from partkit.table.names import DATA, SUBTYPE_DATA_NVS, SUBTYPE_DATA_NVS_KEYS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition, PartitionTable

__all__ = [
    "FORMATS",
    "SUBTYPE_FORMATS",
    "build_image",
    "build_partition_image",
    "depfile",
    "find_partition",
    "format_for",
    "missing_extra",
    "plaintext_nvs_warning",
]

# format -> (module, the package that builds it)
FORMATS: dict[str, tuple[str, str]] = {
    "nvs": ("partkit.data.nvs", "esp-idf-nvs-partition-gen"),
    "littlefs": ("partkit.data.littlefs", "littlefs-python"),
    "fat": ("partkit.data.fat", "pyfatfs"),
    "fat-wl": ("partkit.data.fat_wl", "pyfatfs"),
}
# data subtype -> the format its image has (spiffs is ambiguous: Arduino puts LittleFS there)
SUBTYPE_FORMATS = {0x02: "nvs", 0x81: "fat", 0x83: "littlefs"}
SPIFFS_SUBTYPE = 0x82
SPIFFS_HINT = ("no maintained Python package builds SPIFFS images; build it with ESP-IDF's "
               "spiffsgen.py, or put a LittleFS image there (--format littlefs, as "
               "Arduino-ESP32 and PlatformIO do)")


def format_for(part: Partition, requested: str | None) -> str:
    """The image format for a partition: ``requested`` if given, else from its subtype."""
    if requested is not None:
        fmt = requested.lower()
        if fmt == "spiffs":
            raise PartkitError(error("SPIFFS images are not supported", None, SPIFFS_HINT))
        if fmt not in FORMATS:
            guess = closest(fmt, FORMATS)
            raise PartkitError(error(
                f"--format: unknown image format '{requested}'", None,
                (f"did you mean '{guess}'? " if guess else "")
                + f"formats: {', '.join(FORMATS)}"))
        return fmt
    if part.type == DATA and part.subtype in SUBTYPE_FORMATS:
        return SUBTYPE_FORMATS[part.subtype]
    if part.type == DATA and part.subtype == SPIFFS_SUBTYPE:
        raise PartkitError(error(
            f"partition '{part.name}' has subtype spiffs: which file system goes there?",
            part.loc, "give --format littlefs (Arduino-ESP32/PlatformIO LittleFS) or --format "
            "fat; " + SPIFFS_HINT))
    raise PartkitError(error(
        f"partition '{part.name}' (type {part.type}, subtype 0x{part.subtype:x}) has no image "
        "format of its own", part.loc, f"give --format ({', '.join(FORMATS)})"))


def find_partition(table: PartitionTable, name: str) -> Partition:
    part = table.find_by_name(name)
    if part is None:
        guess = closest(name, [p.name for p in table])
        raise PartkitError(error(
            f"no partition named '{name}' in {table.path or 'the table'}", None,
            (f"did you mean '{guess}'? " if guess else "")
            + "partitions: " + ", ".join(p.name for p in table)))
    return part


def build_image(fmt: str, source: str, size: int, littlefs_version: str = "2.1") -> bytes:
    """The image of ``source`` (a directory, or an NVS CSV) for a partition of ``size``;
    a LittleFS one in on-disk version ``littlefs_version``."""
    import importlib

    module_name = FORMATS[fmt][0]
    want_dir = fmt != "nvs"
    if want_dir:
        check_root(source, f"a {fmt} image")
    else:
        if os.path.isdir(source):
            raise PartkitError(error("an NVS image is built from a CSV file (key,type,encoding,"
                                     "value); this is a directory", SourceLocation(source),
                                     "--from names the NVS CSV"))

        if check_input(source, regular=True, what="an NVS CSV").st_size > MAX_INPUT:
            raise PartkitError(error(f"more than {MAX_INPUT >> 20} MiB: too large for an NVS "
                                     "CSV", SourceLocation(source), "is this the right file?"))
    module = importlib.import_module(module_name)

    with deferred_interrupt():  # a library callback must not swallow Ctrl-C
        image: bytes = (module.build(source, size, littlefs_version) if fmt == "littlefs"
                        else module.build(source, size))
    if len(image) != size:  # the adapters pad to the partition; anything else is a bug
        raise AssertionError(f"{fmt} image of {len(image)} bytes for a {size}-byte partition")
    return image


def build_partition_image(table: PartitionTable, name: str, source: str,
                          fmt: str | None = None,
                          littlefs_version: str = "2.1") -> tuple[Partition, str, bytes]:
    """The image of data partition ``name``: (partition, format, bytes of its size)."""
    part = find_partition(table, name)
    if part.type != DATA:
        raise PartkitError(error(f"partition '{name}' is not a data partition", part.loc,
                                 "app images come from the build (partkit check --app)"))
    chosen = format_for(part, fmt)
    return part, chosen, build_image(chosen, source, part.size, littlefs_version)


def plaintext_nvs_warning(table: PartitionTable, part: Partition) -> Diagnostic | None:
    """A warning when the table has an nvs_keys partition (NVS encryption) and a plaintext
    NVS image is built for ``part``: an encrypted NVS cannot read it."""

    keys = table.find(DATA, SUBTYPE_DATA_NVS_KEYS)
    if part.type != DATA or part.subtype != SUBTYPE_DATA_NVS or not keys:
        return None
    return warning(
        f"the table has an nvs_keys partition ('{keys[0].name}'), so the firmware likely "
        f"uses NVS encryption, but this image of '{part.name}' is plaintext: an encrypted "
        "NVS does not read it", part.loc,
        "partkit does not encrypt NVS; use esp-idf-nvs-partition-gen encrypt with the "
        "device's keys, or ignore this if NVS encryption is off")


def _make_escape(path: str) -> str:
    """A path as Make and Ninja read it from a depfile.

    Only Windows separators become "/"; on POSIX a backslash is part of the name and is
    doubled where it would otherwise escape what follows (a space, '#', the end).
    """

    if os.sep == "\\":
        path = path.replace("\\", "/")
    path = re.sub(r"(\\+)(?=[ #]|$)", lambda m: m.group(1) * 2, path)
    return path.replace("$", "$$").replace("#", "\\#").replace(" ", "\\ ")


def depfile(output: str, source: str) -> str:
    """A Make-style depfile: ``output`` depends on every file and directory under
    ``source`` (directories too, so an added or removed file counts), symlinked
    directories followed as the build followed them."""


    deps = [source]
    if os.path.isdir(source):
        deps += [entry.path for entry in walk(source, sys.maxsize, "data")]
    lines = [f"{_make_escape(output)}:"] + [f" {_make_escape(d)}" for d in deps]
    return " \\\n".join(lines) + "\n"
