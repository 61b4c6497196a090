"""A partition write + read-back + info sequence on a device: partkit against parttool's way.

The device is esp32-mock-bootloader (ESP32-C3, esptool's real protocol over socket://),
started by this script on a free loopback port. Each round writes new contents (two
random files, alternating) into the 64 KiB ``storage`` partition, reads the partition
back and asks for its offset and size, in three ways, in alternating order:

* partkit API: ``with ParttoolTarget(url) as target:``, then ``write_partition``,
  ``read_partition`` and ``get_partition_info``: one process, two esptool connections
  (the table read in the constructor, then one held for the block), every write
  verified with the flash MD5;
* partkit API as ESP-IDF scripts call it (no ``with``): a connection for the table and
  one per call, each released afterwards (so other targets may use the port);
* partkit CLI: ``partkit device write``, ``read`` and ``info``: three processes, one
  connection each;
* parttool's way: what ESP-IDF's parttool.py runs, one ``python -m esptool`` process per
  step, each resetting, syncing and (for stub commands) uploading the stub again:
  write_partition = read the table + erase-region + write-flash; read_partition = read the
  table + read-flash; get_partition_info = read the table. Six processes. Its reads use
  ``--no-stub``: the stub's streamed read does not complete against the mock (it drops a
  stream when an acknowledgement is late; docs/device.md), the ROM read does.

With ``--parttool PATH`` (ESP-IDF's real parttool.py, never committed) it is timed too,
run as far as it works against the mock (see :func:`real_parttool`); a failure is
reported, not hidden.

    python bench/device_ops.py [--rounds 11] [--parttool PATH] [--json out.json] [--check]

Target (issue 11): partkit (API) <= 0.5 x parttool's way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "core"))

from partkit.parttool import PartitionName, ParttoolTarget  # noqa: E402
from partkit.table.codec import encode, load_table  # noqa: E402
from partkit.table.options import table_options  # noqa: E402

CSV = b"""\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x60000,
storage,  data, spiffs,  0x70000, 0x10000,
"""
OFFSET, SIZE = 0x70000, 0x10000
DATA_SIZE = 48 << 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mock(state: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("esp32-mock-bootloader", path=str(Path(sys.executable).parent)) \
        or shutil.which("esp32-mock-bootloader")
    if exe is None:
        sys.exit("esp32-mock-bootloader is not installed (pip install esp32-mock-bootloader)")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--chip", "esp32c3", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, ESP32_MOCK_BOOTLOADER_STATE_DIR=str(state)))
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("the mock did not start")
            time.sleep(0.05)
    return proc, f"socket://127.0.0.1:{port}"


def esptool(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "esptool", "--port", url, *args], check=True,
                   capture_output=True)


def partkit_api(url: str, src: Path, out: Path) -> float:
    t = time.perf_counter()
    with ParttoolTarget(url) as target:
        target.write_partition(PartitionName("storage"), str(src))
        target.read_partition(PartitionName("storage"), str(out))
        info = target.get_partition_info(PartitionName("storage"))
    elapsed = time.perf_counter() - t
    assert not isinstance(info, list) and (info.offset, info.size) == (OFFSET, SIZE)
    return elapsed


def partkit_api_plain(url: str, src: Path, out: Path) -> float:
    t = time.perf_counter()
    target = ParttoolTarget(url)
    target.write_partition(PartitionName("storage"), str(src))
    target.read_partition(PartitionName("storage"), str(out))
    info = target.get_partition_info(PartitionName("storage"))
    elapsed = time.perf_counter() - t
    assert not isinstance(info, list) and (info.offset, info.size) == (OFFSET, SIZE)
    return elapsed


def partkit_cli(url: str, src: Path, out: Path) -> float:
    base = [sys.executable, "-m", "partkit", "device", "--port", url, "-q"]
    t = time.perf_counter()
    subprocess.run([*base, "write", "-n", "storage", str(src)], check=True, env=_env())
    subprocess.run([*base, "read", "-n", "storage", "-o", str(out)], check=True, env=_env())
    info = subprocess.run([*base, "info", "-n", "storage"], check=True, capture_output=True,
                          text=True, env=_env()).stdout
    elapsed = time.perf_counter() - t
    assert info == f"0x{OFFSET:x} 0x{SIZE:x}\n", info
    return elapsed


def parttool_way(url: str, src: Path, out: Path, tmp: Path) -> float:
    table = tmp / "table.bin"
    t = time.perf_counter()
    # write_partition: table, erase, write (parttool erases before it checks the size)
    esptool(url, "--no-stub", "read-flash", str(0x8000), "3072", str(table))
    esptool(url, "erase-region", str(OFFSET), str(SIZE))
    esptool(url, "write-flash", str(OFFSET), str(src))
    # read_partition: table, read
    esptool(url, "--no-stub", "read-flash", str(0x8000), "3072", str(table))
    esptool(url, "--no-stub", "read-flash", str(OFFSET), str(SIZE), str(out))
    # get_partition_info: table
    esptool(url, "--no-stub", "read-flash", str(0x8000), "3072", str(table))
    return time.perf_counter() - t


def real_parttool(path: str, url: str, src: Path, out: Path, table: Path) -> float:
    """ESP-IDF's parttool.py, as close to the sequence as it runs against the mock: its
    stub read of the table fails there, so write_partition gets the table as a file (one
    step fewer than on a device) and the reads run with ``--esptool-args no-stub``."""
    base = [sys.executable, path, "--port", url]
    t = time.perf_counter()
    for step in (["-f", str(table), "write_partition", "--partition-name=storage", "--input",
                  str(src)],
                 # an option after --esptool-args ends its words: parttool's argparse
                 # would take the subcommand name as one more
                 ["--esptool-args", "no-stub", "-o", "0x8000", "read_partition",
                  "--partition-name=storage", "--output", str(out)],
                 ["--esptool-args", "no-stub", "-o", "0x8000", "get_partition_info",
                  "--partition-name=storage", "--info", "offset", "size"]):
        subprocess.run([*base, *step], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - t


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--parttool", metavar="PATH", help="ESP-IDF's parttool.py, timed too")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = ap.parse_args()
    options = table_options()
    table = encode(load_table(CSV, "bench.csv", options).table, options)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proc, url = start_mock(tmp / "state")
        try:
            (tmp / "table.bin").write_bytes(table)
            esptool(url, "--no-stub", "write-flash", "0x8000", str(tmp / "table.bin"))
            sources = [tmp / "a.bin", tmp / "b.bin"]
            for s in sources:
                s.write_bytes(os.urandom(DATA_SIZE))
            want = [s.read_bytes() + b"\xff" * (SIZE - DATA_SIZE) for s in sources]
            out = tmp / "out.bin"
            times: dict[str, list[float]] = {"api": [], "api_plain": [], "cli": [],
                                             "parttool_way": []}
            real: list[float] = []
            real_error = None
            ways = [("api", lambda s: partkit_api(url, s, out)),
                    ("api_plain", lambda s: partkit_api_plain(url, s, out)),
                    ("cli", lambda s: partkit_cli(url, s, out)),
                    ("parttool_way", lambda s: parttool_way(url, s, out, tmp))]
            partkit_api(url, sources[0], out)  # warm-up: imports, .pyc files
            for i in range(args.rounds):
                order = ways if i % 2 == 0 else ways[::-1]
                for k, (name, fn) in enumerate(order):
                    src = (i + k) % 2
                    times[name].append(fn(sources[src]))
                    assert out.read_bytes() == want[src], f"{name}: read-back differs"
                if args.parttool and real_error is None:
                    try:
                        real.append(real_parttool(args.parttool, url, sources[i % 2], out,
                                                  tmp / "table.bin"))
                        assert out.read_bytes() == want[i % 2], "parttool.py: read-back differs"
                    except subprocess.CalledProcessError as exc:
                        real_error = (exc.stderr or b"").decode(errors="replace").strip()
                        real_error = real_error.splitlines()[-1] if real_error else str(exc)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    med = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, object] = {
        "rounds": args.rounds,
        "api_s": round(med["api"], 3), "api_plain_s": round(med["api_plain"], 3),
        "cli_s": round(med["cli"], 3),
        "parttool_way_s": round(med["parttool_way"], 3),
        "api_ratio": round(med["api"] / med["parttool_way"], 3),
        "api_plain_ratio": round(med["api_plain"] / med["parttool_way"], 3),
        "cli_ratio": round(med["cli"] / med["parttool_way"], 3),
    }
    if args.parttool:
        result["real_parttool_s"] = round(statistics.median(real), 3) if real else None
        result["real_parttool_error"] = real_error
    print(f"write {DATA_SIZE >> 10} KiB + read back {SIZE >> 10} KiB + info, median of "
          f"{args.rounds} rounds")
    print(f"  parttool's way (6 esptool processes): {med['parttool_way']:.3f} s")
    print(f"  partkit API, with-block (2 connections): {med['api']:.3f} s "
          f"= {result['api_ratio']}x")
    print(f"  partkit API, IDF-style (4 connections):  {med['api_plain']:.3f} s "
          f"= {result['api_plain_ratio']}x")
    print(f"  partkit CLI (3 commands):             {med['cli']:.3f} s "
          f"= {result['cli_ratio']}x")
    if args.parttool:
        ratio = (f" -> partkit API = {med['api'] / statistics.median(real):.3f}x" if real
                 else "")
        print(f"  real parttool.py (5 esptool processes): {result['real_parttool_s']} s"
              + (f" (failed: {real_error})" if real_error else ratio))
        if real:
            result["api_ratio_vs_real"] = round(med["api"] / statistics.median(real), 3)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    slowest = max(med["api"], med["api_plain"])
    return 1 if args.check and slowest > 0.5 * med["parttool_way"] else 0


if __name__ == "__main__":
    sys.exit(main())
