"""A gen_esp32part-like command line built on esp-idf-defs (ESP-IDF's partition classes).

Benchmark peer only: it does what gen_esp32part.py does for CSV input (argparse, parse,
verify, encode, write) through the reference's own classes.
"""

from __future__ import annotations

import argparse
import sys

from esp_idf_defs.partitions import PartitionTable


def main() -> int:
    parser = argparse.ArgumentParser(description="ESP32 partition table utility (peer)")
    parser.add_argument("--flash-size", nargs="?", choices=["1MB", "2MB", "4MB", "8MB", "16MB"])
    parser.add_argument("--disable-md5sum", action="store_true")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--offset", "-o", default="0x8000")
    parser.add_argument("--primary-bootloader-offset", default=None)
    parser.add_argument("--secure", nargs="?", const="v1", choices=["v1", "v2"])
    parser.add_argument("input", type=argparse.FileType("rb"))
    parser.add_argument("output", nargs="?", default="-")
    args = parser.parse_args()
    offset = int(args.offset, 0)
    bl = None if args.primary_bootloader_offset is None else int(args.primary_bootloader_offset, 0)
    table, is_binary = PartitionTable.from_file(args.input, offset, bl)
    if not args.no_verify:
        table.verify(offset, args.secure)
    if args.flash_size:
        table.verify_size_fits(int(args.flash_size[:-2]) * 1024 * 1024)
    data = table.to_csv().encode() if is_binary else table.to_binary(not args.disable_md5sum)
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(args.output, "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
