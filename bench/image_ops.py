"""Writing a 3 MB partition into 16 MB and 128 MB flash images, against dd in the same run.

Each round writes new contents (two random 3 MB files, alternating, so every byte of the
partition changes) with partkit and with ``dd conv=notrunc``; medians are compared.

* partkit API: ``imagefile.write_partition`` in this process: the operation itself
  (undo journal + write + read-back verify), without interpreter start-up.
* partkit CLI: ``python -m partkit image write`` as a user runs it (includes ~15-20 ms of
  interpreter start-up, which dd does not pay).
* dd: ``dd if=new of=image bs=1M seek=OFF oflag=seek_bytes conv=notrunc`` (spawned).

Pairs of equal durability: the default partkit write (no fsync; kill-safe) against plain
dd, and ``--sync`` (fsync-ordered; power-cut-safe) against ``dd conv=notrunc,fsync``.
Peak memory: ``ru_maxrss`` of a fresh CLI process writing into the 128 MB image.

    python bench/image_ops.py [--rounds 21] [--dir DIR] [--json out.json] [--check]

Targets (issue 6): API time <= 1.5 x dd (default mode), peak RSS < 64 MB at 128 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "core"))

from partkit.flash import imagefile  # noqa: E402
from partkit.cli import main as partkit_main  # noqa: E402

MB = 1 << 20
PART_OFFSET = 0x110000
PART_SIZE = 3 * MB
CSV = f"""\
nvs,      data, nvs,    0x9000,   0x6000,
phy_init, data, phy,    0xf000,   0x1000,
factory,  app,  factory, 0x10000, 1M,
storage,  data, spiffs, {PART_OFFSET:#x}, {PART_SIZE:#x},
"""


def make_image(directory: Path, size_mb: int) -> Path:
    table = directory / "parts.csv"
    table.write_text(CSV)
    image = directory / f"flash{size_mb}.bin"
    code = partkit_main(["image", "create", str(image), "--table", str(table), "--flash-size",
                         f"{size_mb}MB", "--chip", "esp32c3", "--no-flash-args"])
    assert code == 0
    # realistic contents everywhere (not a sparse file of 0xFF)
    with open(image, "r+b") as f:
        f.seek(PART_OFFSET + PART_SIZE)
        remaining = size_mb * MB - f.tell()
        while remaining > 0:
            n = min(8 * MB, remaining)
            f.write(os.urandom(n))
            remaining -= n
    return image


def dd(src: Path, image: Path, sync: bool) -> float:
    conv = "notrunc,fsync" if sync else "notrunc"
    t = time.perf_counter()
    subprocess.run(["dd", f"if={src}", f"of={image}", "bs=1M", f"seek={PART_OFFSET}",
                    "oflag=seek_bytes", f"conv={conv}", "status=none"], check=True)
    return time.perf_counter() - t


def api(src: Path, image: Path, part: object, sync: bool) -> float:
    t = time.perf_counter()
    imagefile.write_partition(str(image), part, str(src), sync=sync)  # type: ignore[arg-type]
    return time.perf_counter() - t


def cli(src: Path, image: Path, sync: bool) -> float:
    cmd = [sys.executable, "-m", "partkit", "image", "write", str(image), "-n", "storage",
           str(src)] + (["--sync"] if sync else [])
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=_env())
    return time.perf_counter() - t


def _env() -> dict[str, str]:
    # a user's install has .pyc files: allow writing them (the first run warms them up)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def peak_rss_mb(src: Path, image: Path) -> float:
    code = ("import resource, sys\nfrom partkit.cli import main\n"
            f"rc = main(['image', 'write', {str(image)!r}, '-n', 'storage', {str(src)!r}])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(rc)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=_env()).stdout
    return int(out.split()[-1]) / 1024  # Linux reports KiB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--dir", help="where to put the images (default: a temp dir)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    from partkit.table.model import Partition

    part = Partition("storage", 1, 0x82, PART_OFFSET, PART_SIZE)
    results: list[dict[str, object]] = []
    ok = True
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        sources = [d / "a.bin", d / "b.bin"]
        for s in sources:
            s.write_bytes(os.urandom(PART_SIZE))
        for size_mb in (16, 128):
            image = make_image(d, size_mb)
            for sync in (False, True):
                times: dict[str, list[float]] = {"dd": [], "api": [], "cli": []}
                cli(sources[0], image, sync)  # warm-up: .pyc files, page cache
                for i in range(args.rounds):
                    src = sources[i % 2]
                    # each tool writes new data every round: swap the source per tool
                    times["dd"].append(dd(src, image, sync))
                    times["api"].append(api(sources[(i + 1) % 2], image, part, sync))
                    times["cli"].append(cli(src, image, sync))
                med = {k: statistics.median(v) * 1000 for k, v in times.items()}
                row: dict[str, object] = {
                    "image_mb": size_mb, "sync": sync,
                    "dd_ms": round(med["dd"], 2), "api_ms": round(med["api"], 2),
                    "cli_ms": round(med["cli"], 2),
                    "api_ratio": round(med["api"] / med["dd"], 2),
                    "cli_ratio": round(med["cli"] / med["dd"], 2),
                }
                if not sync and med["api"] > 1.5 * med["dd"]:
                    ok = False
                results.append(row)
            if size_mb == 128:
                rss = peak_rss_mb(sources[0], image)
                results.append({"image_mb": 128, "peak_rss_mb": round(rss, 1)})
                ok = ok and rss < 64
            image.unlink()
    print(f"{'image':>6} {'mode':<8} {'dd ms':>8} {'api ms':>8} {'cli ms':>8} "
          f"{'api/dd':>7} {'cli/dd':>7}")
    for r in results:
        if "peak_rss_mb" in r:
            print(f"peak RSS of 'partkit image write' on the 128 MB image: {r['peak_rss_mb']} MB")
            continue
        mode = "--sync" if r["sync"] else "default"
        print(f"{r['image_mb']:>4}MB {mode:<8} {r['dd_ms']:>8} {r['api_ms']:>8} {r['cli_ms']:>8} "
              f"{r['api_ratio']:>7} {r['cli_ratio']:>7}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
