"""The fixture framework's own table generator: CSV -> partitions.bin.

Stands in for the generator the Arduino core ships (run as ``"$PYTHONEXE" <it> -q SRC DST``).
Like that one it reports a bad row by line number only, without the file name. It uses
esp-idf-defs (the tests' oracle), never partkit, so the build really has two tools.
"""

import sys

from esp_idf_defs.partitions import InputError, PartitionTable, ValidationError


def main(argv):
    args = [a for a in argv if a != "-q"]
    source, target = args
    with open(source, encoding="utf-8") as csv:
        text = csv.read()
    try:
        table = PartitionTable.from_csv(text)
        table.verify()
    except (InputError, ValidationError) as exc:
        sys.stderr.write(f"CSV {exc}\n")
        return 2
    with open(target, "wb") as out:
        out.write(table.to_binary().ljust(0xC00, b"\xff"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
