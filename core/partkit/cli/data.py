"""``partkit data build``: a data partition image at exactly its partition's size."""

from __future__ import annotations

import argparse
import sys

from partkit.cli.common import add_table_arguments, emit, options_from_args, usage_error
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.common.esptool import installed_esptool_version, write_command
from partkit.common.fileio import check_outputs, write_atomic
from partkit.data import build_partition_image, depfile, plaintext_nvs_warning
from partkit.flash.tablearea import load_table_file

__all__ = ["run"]

LAYOUT_NOTES = {
    "fat": "raw FAT without wear levelling: ESP-IDF mounts it read-only "
           "(esp_vfs_fat_spiflash_mount_ro); FFat and pioarduino's fatfs need the "
           "wear-levelled layout (--format fat-wl)",
    "fat-wl": "FAT in ESP-IDF's wear-levelled layout (FFat, esp_vfs_fat_spiflash_mount_rw_wl, "
              "pioarduino's fatfs)",
}

EPILOG = """\
formats (the partkit[fs] extra: pip install partkit[fs]):
  nvs       from an NVS CSV (key,type,encoding,value), esp-idf-nvs-partition-gen
  littlefs  from a directory, littlefs-python (4 KiB blocks, name_max 64, on-disk
            version 2.1; --littlefs-version 2.0 for esp_littlefs before 1.6)
  fat       from a directory, pyfatfs: raw FAT12, 4 KiB sectors, NO wear levelling.
            ESP-IDF mounts it read-only (esp_vfs_fat_spiflash_mount_ro)
  fat-wl    the same FAT volume in ESP-IDF's wear-levelled layout (a spare sector, the
            volume, two state copies, a config sector): what Arduino's FFat,
            esp_vfs_fat_spiflash_mount_rw_wl and pioarduino's fatfs mount
  SPIFFS images are not built: no maintained package exists (use ESP-IDF's spiffsgen.py).
Without --format the partition's subtype decides (nvs, littlefs, fat: raw); a 'spiffs'
partition needs --format (Arduino-ESP32 and PlatformIO put LittleFS there).

example:
  partkit data build partitions.csv --partition storage --from data/ -o storage.bin

exit status:
  0  image written
  2  bad input or usage: unknown partition, files that do not fit, a missing extra
"""


def _add_build_options(b: argparse.ArgumentParser) -> None:
    b.add_argument("table", help="CSV or binary partition table")
    b.add_argument("--partition", required=True, metavar="NAME", help="the data partition")
    b.add_argument("--from", dest="source", required=True, metavar="DIR|CSV",
                   help="directory of files (littlefs, fat) or NVS CSV (nvs)")
    b.add_argument("--format", choices=("nvs", "littlefs", "fat", "fat-wl", "spiffs"),
                   help="image format (default: from the partition's subtype)")
    b.add_argument("--littlefs-version", choices=("2.0", "2.1"),
                   help="LittleFS on-disk version (default 2.1; esp_littlefs before 1.6, "
                        "i.e. littlefs 2.5 and older, mounts only 2.0)")
    b.add_argument("-o", "--output", required=True, metavar="IMG",
                   help="the image file to write")
    b.add_argument("--depfile", metavar="FILE",
                   help="also write a Make/Ninja depfile: IMG depends on every file and "
                        "directory under DIR (for build systems)")
    b.add_argument("--depfile-target", metavar="NAME",
                   help="the target the depfile names (default: IMG as given)")
    add_table_arguments(b, has_output=True)


def run(argv: list[str]) -> int:
    return Subcommands(
        "partkit data", "Build a data partition image (NVS, LittleFS, FAT) at exactly the size "
        "the table\ngives the partition.",
        (Subcommand("build", "build the image of one partition", _add_build_options, _build,
                    EPILOG, "Build the image of one data partition from a directory or an "
                    "NVS CSV."),),
        usage="usage: partkit data build TABLE --partition NAME --from DIR|CSV -o IMG "
        "[options]", epilog=EPILOG).run(argv)


def _build(args: argparse.Namespace) -> int:
    # before anything is written: `-o a.bin --depfile a.bin` wrote the image, then
    # refused the depfile (exit 2 with a.bin already replaced)
    check_outputs([args.output, args.depfile], [args.table, args.source])
    options = options_from_args(args, verify=True)
    table = load_table_file(args.table, options).table
    part, fmt, image = build_partition_image(table, args.partition, args.source,
                                             args.format, args.littlefs_version or "2.1")
    if args.littlefs_version and fmt != "littlefs":
        raise usage_error(f"--littlefs-version is for LittleFS images, not {fmt}")

    plain = plaintext_nvs_warning(table, part) if fmt == "nvs" else None
    if plain is not None:
        emit([plain])
    write_atomic(args.output, image)
    if args.depfile:
        target = args.depfile_target or args.output
        write_atomic(args.depfile, depfile(target, args.source).encode())

    note = f"; {LAYOUT_NOTES[fmt]}" if fmt in LAYOUT_NOTES else ""
    sys.stderr.write(f"partkit: {fmt} image {args.output} for '{part.name}' at "
                     f"0x{part.offset:x} ({len(image)} bytes, the whole partition{note}); "
                     "flash with: "
                     f"{write_command(part.offset, args.output, installed_esptool_version())}\n")
    return 0
