"""Start-up latency of `partkit gen` on a 94-entry table, against two peers in the same run.

Peers: a gen_esp32part-like command line built on esp-idf-defs (bench/peer_gen.py) and a
bare `python -c pass`. Runs are paired (each round runs every command once, in shuffled
order) and medians are compared, so machine noise hits all commands alike.

    python bench/cli_latency.py [--rounds 60] [--json out.json]

Targets: partkit <= 0.5 x peer, partkit <= 2.0 x bare interpreter.
`--baseline CORE_DIR` times another checkout's core/ in the same rounds (before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table_csv(entries: int = 94) -> str:
    rows = ["# Name, Type, SubType, Offset, Size, Flags", "nvs, data, nvs, , 0x6000,",
            "otadata, data, ota, , 0x2000,", "phy_init, data, phy, , 0x1000,"]
    rows += [f"app{i}, app, ota_{i}, , 64K," for i in range(16)]
    rows += [f"blob{i}, 0x40, {i}, , 4K," for i in range(entries - len(rows) + 1)]
    return "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--baseline", metavar="CORE_DIR",
                    help="also time `python -m partkit gen` from another checkout's core/ "
                         "(e.g. an older commit, via git archive), in the same rounds")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "table.csv")
        csv.write_text(table_csv())
        py = sys.executable
        partkit_script = Path(py).parent / "partkit"
        commands = {
            "bare python -c pass": [py, "-c", "pass"],
            "peer (esp-idf-defs)": [py, str(HERE / "peer_gen.py"), "-q", str(csv),
                                    str(Path(tmp, "peer.bin"))],
            "partkit gen (python -m)": [py, "-m", "partkit", "gen", "-q", str(csv),
                                        str(Path(tmp, "pk.bin"))],
        }
        if args.baseline:
            commands["partkit gen (baseline)"] = [py, "-m", "partkit", "gen", "-q", str(csv),
                                                  str(Path(tmp, "base.bin"))]
        if partkit_script.exists():
            commands["partkit gen (console script)"] = [str(partkit_script), "gen", "-q",
                                                        str(csv), str(Path(tmp, "pk2.bin"))]
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # any value disables .pyc caching
        base_env = dict(env, PYTHONPATH=str(Path(args.baseline or ".").resolve()))
        envs = {name: base_env if name.endswith("(baseline)") else env for name in commands}
        if args.baseline:  # the baseline must really come from there, not this checkout
            where = subprocess.run([py, "-c", "import partkit; print(partkit.__file__)"],
                                   env=base_env, check=True, capture_output=True, text=True)
            assert where.stdout.startswith(base_env["PYTHONPATH"]), where.stdout
        for name, argv in commands.items():  # warm caches and .pyc files; check they work
            subprocess.run(argv, check=True, env=envs[name], stdout=subprocess.DEVNULL)
        pk = Path(tmp, "pk.bin").read_bytes()
        assert pk == Path(tmp, "peer.bin").read_bytes(), "partkit and peer disagree"
        assert len(table_csv().splitlines()) - 1 == 94
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for _ in range(args.rounds):
            random.shuffle(names)
            for name in names:
                start = time.perf_counter()
                subprocess.run(commands[name], check=True, env=envs[name],
                               stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)

    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    bare, peer = med["bare python -c pass"], med["peer (esp-idf-defs)"]
    print(f"{'command':<30} {'median ms':>10} {'x bare':>8} {'x peer':>8}")
    for name, ms in med.items():
        print(f"{name:<30} {ms:>10.1f} {ms / bare:>8.2f} {ms / peer:>8.2f}")
    pk_ms = med["partkit gen (python -m)"]
    ok = pk_ms <= 0.5 * peer and pk_ms <= 2.0 * bare
    print(f"\npython {sys.version.split()[0]}, {args.rounds} paired rounds; targets "
          f"partkit <= 0.5 x peer and <= 2.0 x bare: {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"median_ms": med, "rounds": args.rounds,
                                               "python": sys.version.split()[0]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
