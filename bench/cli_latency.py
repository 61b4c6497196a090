"""Start-up latency of `partkit gen` on a 94-entry table, against two peers in the same run.

Peers: the real ESP-IDF gen_esp32part.py when given (`--gen-esp32part PATH`), else a
gen_esp32part-like command line built on esp-idf-defs (bench/peer_gen.py), and a bare
`python -c pass`. Runs are paired (each round runs every command once, in shuffled order)
and medians are compared, so machine noise hits all commands alike.

    python bench/cli_latency.py [--rounds 60] [--json out.json]
        [--gen-esp32part .../components/partition_table/gen_esp32part.py] [--regular-install]

Targets: partkit <= 0.5 x peer, partkit <= 2.0 x bare interpreter, judged on the regular
install's console script with `--regular-install` (a fresh venv with partkit's wheel, as
`pip install partkit` leaves it), else on `python -m partkit`.
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
    ap.add_argument("--gen-esp32part", metavar="PATH",
                    help="the real ESP-IDF gen_esp32part.py to time as the peer")
    ap.add_argument("--regular-install", action="store_true",
                    help="also time partkit installed from its wheel into a fresh venv "
                         "(no editable-install path hooks), and judge the targets on it")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "table.csv")
        csv.write_text(table_csv())
        py = sys.executable
        partkit_script = Path(py).parent / "partkit"
        peer_name = "peer (gen_esp32part.py)" if args.gen_esp32part else "peer (esp-idf-defs)"
        peer = [py, args.gen_esp32part] if args.gen_esp32part else [py, str(HERE / "peer_gen.py")]
        commands = {
            "bare python -c pass": [py, "-c", "pass"],
            peer_name: [*peer, "-q", str(csv), str(Path(tmp, "peer.bin"))],
            "partkit gen (python -m)": [py, "-m", "partkit", "gen", "-q", str(csv),
                                        str(Path(tmp, "pk.bin"))],
        }
        if args.regular_install:
            script = _regular_install(Path(tmp, "venv"))
            commands["partkit gen (regular install)"] = [str(script), "gen", "-q", str(csv),
                                                         str(Path(tmp, "pk3.bin"))]
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
        if args.regular_install:
            assert Path(tmp, "pk3.bin").read_bytes() == pk
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
    bare, peer_ms = med["bare python -c pass"], med[peer_name]
    print(f"{'command':<30} {'median ms':>10} {'x bare':>8} {'x peer':>8}")
    for name, ms in med.items():
        print(f"{name:<30} {ms:>10.1f} {ms / bare:>8.2f} {ms / peer_ms:>8.2f}")
    judged = ("partkit gen (regular install)" if args.regular_install
              else "partkit gen (python -m)")
    pk_ms = med[judged]
    ok = pk_ms <= 0.5 * peer_ms and pk_ms <= 2.0 * bare
    print(f"\npython {sys.version.split()[0]}, {args.rounds} paired rounds; targets for "
          f"{judged}: <= 0.5 x peer and <= 2.0 x bare: {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"median_ms": med, "rounds": args.rounds,
                                               "python": sys.version.split()[0]}, indent=2))
    return 0 if ok else 1


def _regular_install(venv: Path) -> Path:
    """partkit's wheel installed into a fresh venv (offline: the build backend comes from
    this interpreter's environment); returns its console script."""
    root = HERE.parent
    wheels = venv.parent / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(root)], check=True)
    wheel = next(wheels.glob("partkit-*.whl"))
    # This interpreter's (current) pip, aimed at the new venv with --python: its console
    # script template no longer imports `re` (pip 23.2 cost ~8 ms of start-up). Without
    # --python, pip would first uninstall the partkit installed here (the editable checkout).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    return venv / "bin" / "partkit"


if __name__ == "__main__":
    sys.exit(main())
