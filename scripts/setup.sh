#!/usr/bin/env bash
# Shared set-up for scripts/example.sh and scripts/test.sh: Debian packages (when missing)
# and a project venv (.venv) with partkit installed editable plus its test/dev extras.
# Sourced, not run: it sets PY to the venv's python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PARTKIT_VENV:-$ROOT/.venv}"

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v make >/dev/null || need_apt+=(make)
command -v riscv64-unknown-elf-gcc >/dev/null || need_apt+=(gcc-riscv64-unknown-elf)
# the Arduino IDE 1.8 builder: runs the simulated esp32 core in tests/test_arduino_builder.py
command -v arduino-builder >/dev/null || need_apt+=(arduino-builder)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "partkit setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

BASE_PY="${PARTKIT_PYTHON:-$(command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "partkit setup: creating $VENV"
  "$BASE_PY" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.partkit-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "partkit setup: installing partkit and its test tools into $VENV"
  "$PY" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$PY" -m pip install -q -e "$ROOT[test,dev]" 2>&1 | grep -v '^WARNING: Location' || true
  "$PY" -c "import partkit, esptool, SCons, pytest, hypothesis" # fail loudly if incomplete
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
