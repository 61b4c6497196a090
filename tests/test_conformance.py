"""Every recorded reference outcome in tests/data/conformance (a copy of the reference corpus), replayed through `partkit gen`.

- reference succeeded -> byte-identical output (and the binary -> CSV rendering for cases.jsonl);
- reference rejected (exit 2) -> partkit exits 2 and names the same CSV line when it names one;
- reference crashed -> partkit gives a clean error (exit 2) or, where the input is valid,
  a correct result listed in docs/compat.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from partkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "tests" / "data" / "conformance"
COMPAT = ROOT / "docs" / "compat.md"

# Inputs the reference crashed on although they are valid tables: partkit reads them.
VALID_WHERE_REFERENCE_CRASHED = {"edge/all_ff"}


def _load(name: str) -> list[dict]:
    path = CONFORMANCE / name
    if not path.exists():
        pytest.fail(f"conformance data missing: {path}", pytrace=False)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


CASES = _load("cases.jsonl")
EDGE_CASES = _load("edge_cases.jsonl")


def _reference_line(stderr: str) -> int | None:
    m = re.search(r"(?:Error at line|CSV Error at line) (\d+)", stderr)
    return int(m.group(1)) if m else None


def _run(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    rc = main(["gen", *argv])
    out, err = capsysbinary.readouterr()
    return rc, out, err.decode("utf-8", "replace")


def _check_rejection(case: dict, rc: int, err: str, input_name: str) -> None:
    if case["stderr"].startswith("REFERENCE CRASHED"):
        if case["id"] in VALID_WHERE_REFERENCE_CRASHED:
            assert rc == 0, err
            assert case["id"] in COMPAT.read_text(), "document the difference in docs/compat.md"
            return
        assert rc == 2, f"expected a clean error, got rc={rc}\n{err}"
        assert "error:" in err and "Traceback" not in err
        return
    assert rc == 2, f"reference rejected ({case['stderr']!r}); partkit rc={rc}\n{err}"
    assert "error:" in err
    line = _reference_line(case["stderr"])
    if line is not None:
        first_error = next(x for x in err.splitlines() if "error:" in x)
        assert first_error.startswith(f"{input_name}:{line}:"), (case["stderr"], err)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_tables(case: dict, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CONFORMANCE)
    out = tmp_path / "out.bin"
    rc, _, err = _run([*case["args"], case["input"], str(out)], capsysbinary)
    if case["rc"] != 0:
        _check_rejection(case, rc, err, case["input"])
        assert not out.exists()
        return
    assert rc == 0, err
    expected = (CONFORMANCE / case["output"]).read_bytes()
    assert hashlib.sha256(expected).hexdigest() == case["output_sha256"]
    assert out.read_bytes() == expected
    decoded = case.get("decoded")
    if decoded:
        rc, stdout, err = _run(["-q", str(out)], capsysbinary)
        assert rc == decoded["rc"], err
        assert stdout.decode() == decoded["stdout"]


@pytest.mark.parametrize("case", EDGE_CASES, ids=[c["id"] for c in EDGE_CASES])
def test_edge_cases(case: dict, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.get("env", {}).items():
        monkeypatch.setenv(name, value)
    for name in case.get("unset_env", []):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    source = "input.csv"
    if case.get("input_hex") is not None:
        (tmp_path / source).write_bytes(bytes.fromhex(case["input_hex"]))
    elif case.get("input_text") is not None:
        (tmp_path / source).write_bytes(case["input_text"].encode("utf-8"))
    else:
        source = "nonexistent.csv"
    args = [a for a in case["args"] if a != "STDOUT"]
    to_stdout = "STDOUT" in case["args"]
    argv = [*args, source] if to_stdout else [*args, source, "out.bin"]
    rc, stdout, err = _run(argv, capsysbinary)
    if case["rc"] != 0:
        _check_rejection(case, rc, err, source)
        return
    assert rc == 0, err
    produced = stdout if to_stdout else (tmp_path / "out.bin").read_bytes()
    if "out_hex" in case:
        assert produced.hex() == case["out_hex"]
    if "out_md5" in case:
        assert hashlib.md5(produced).hexdigest() == case["out_md5"]
    if "out" in case:
        assert produced.decode("utf-8", "replace") == case["out"]
    if to_stdout:
        assert produced.decode("utf-8") == case["stdout"]
    if case.get("roundtrip_csv"):
        rc, stdout, rt_err = _run(["-q", "out.bin"], capsysbinary)
        assert rc == 0, rt_err
        assert stdout.decode("utf-8") == case["roundtrip_csv"]
    # Status lines and warnings go to stderr like the reference's.
    for line in case["stderr"].splitlines():
        if line.startswith(("Parsing", "Verifying")):
            assert line in err
        elif line.startswith("WARNING"):
            assert "warning:" in err
