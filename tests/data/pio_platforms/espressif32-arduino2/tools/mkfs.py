"""The fixture's file-system image maker (stands in for the platform's mklittlefs/mkfatfs).

    "$PYTHONEXE" mkfs.py FILESYSTEM -c DIR -s SIZE [-p PAGE -b BLOCK] TARGET

As the real tools do, it writes an image of exactly SIZE bytes: littlefs with
littlefs-python (4 KiB blocks), fatfs with pyfatfs (a plain FAT of SIZE bytes).
It never uses partkit, so the build really has two tools.
"""

import argparse
import os
import sys
import tempfile


def littlefs(source, size, out):
    from littlefs import LittleFS

    fs = LittleFS(block_size=4096, block_count=size // 4096, name_max=64)
    for root, _dirs, files in os.walk(source):
        rel = os.path.relpath(root, source)
        if rel != ".":
            fs.makedirs(rel.replace(os.sep, "/"), exist_ok=True)
        for name in files:
            inside = os.path.join(rel, name).replace(os.sep, "/").lstrip("./") or name
            with open(os.path.join(root, name), "rb") as src, fs.open(inside, "wb") as dst:
                dst.write(src.read())
    out.write(bytes(fs.context.buffer))


def fatfs(source, size, out):
    from pyfatfs.PyFat import PyFat
    from pyfatfs.PyFatFS import PyFatFS

    fd, scratch = tempfile.mkstemp()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(size))  # zeros: pyfatfs leaves the root directory as it finds it
        fat = PyFat()
        fat.mkfs(scratch, PyFat.FAT_TYPE_FAT12, size=size, sector_size=4096, label="FIXTURE")
        fat.close()
        fs = PyFatFS(scratch)
        for root, _dirs, files in os.walk(source):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), source).replace(os.sep, "/")
                with open(os.path.join(root, name), "rb") as src, \
                        fs.openbin("/" + rel, "w") as dst:
                    dst.write(src.read())
        fs.close()
        with open(scratch, "rb") as f:
            out.write(f.read()[:size])
    finally:
        os.unlink(scratch)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("filesystem", choices=("littlefs", "fatfs"))
    parser.add_argument("-c", dest="source", required=True)
    parser.add_argument("-s", dest="size", type=lambda t: int(t, 0), required=True)
    parser.add_argument("-p", dest="page")
    parser.add_argument("-b", dest="block")
    parser.add_argument("target")
    args = parser.parse_args(argv)
    with open(args.target, "wb") as out:
        (littlefs if args.filesystem == "littlefs" else fatfs)(args.source, args.size, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
