#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, lint (ruff), types (mypy --strict),
# pytest (conformance, differential, fuzz, real cmake/scons/pio/esptool builds), and the
# core tests again on the oldest and newest supported Pythons (3.9, 3.13).
# Extra arguments go to pytest. Under CI=true a missing tool fails instead of skipping.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

echo "== ruff"; "$PY" -m ruff check core
echo "== mypy --strict"; "$PY" -m mypy
echo "== pytest"
"$PY" -m pytest -q -p no:cacheprovider "$@"

# Core codec on Python 3.9 and 3.13 (pyenv installs them on these machines).
for version in 3.9 3.13; do
  interp=""
  if command -v pyenv >/dev/null; then  # pyenv's shims refuse versions not selected: go direct
    full="$(pyenv versions --bare | grep -E "^${version//./\\.}\.[0-9]+$" | tail -n 1 || true)"
    [ -n "$full" ] && interp="$(pyenv root)/versions/$full/bin/python"
  fi
  if [ -z "$interp" ] || ! "$interp" -c pass 2>/dev/null; then
    interp="$(command -v "python$version" || true)"
    if [ -n "$interp" ] && ! "$interp" -c pass 2>/dev/null; then interp=""; fi
  fi
  if [ -z "$interp" ] || [ ! -x "$interp" ]; then
    if [ "${CI:-}" = "true" ]; then echo "Python $version not found (required under CI)"; exit 1; fi
    echo "== Python $version not found: skipping its core run"; continue
  fi
  venv="$ROOT/.venv-$version"
  [ -x "$venv/bin/python" ] || "$interp" -m venv "$venv"
  "$venv/bin/python" -m pip install -q pytest hypothesis -e "$ROOT" 2>&1 | grep -v '^WARNING: Location' || true
  echo "== pytest core on Python $version"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_imports.py tests/test_conformance.py \
    tests/test_fuzz.py tests/test_gen_cli.py
done
