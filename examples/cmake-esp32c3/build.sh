#!/bin/sh
# Build the partkit ESP32-C3 CMake example from scratch, then show the partition table
# and the size report.
#
#   examples/cmake-esp32c3/build.sh [BUILD_DIR]
#
# BUILD_DIR defaults to examples/cmake-esp32c3/build (deleted first). PYTHON selects the
# interpreter with partkit and esptool (default: the checkout's .venv, else python3);
# GENERATOR selects the CMake generator (default: Ninja if installed, else Unix Makefiles).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-"$here/build"}

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
if [ -z "${GENERATOR:-}" ]; then
    if command -v ninja >/dev/null 2>&1; then GENERATOR=Ninja; else GENERATOR="Unix Makefiles"; fi
fi

rm -rf "$build"
set -x
cmake -S "$here" -B "$build" -G "$GENERATOR" \
    -DPython3_EXECUTABLE="$(command -v "$PYTHON")" -Dpartkit_DIR="$root/cmake"
cmake --build "$build"
cmake --build "$build" --target partition-table
cmake --build "$build" --target size-report
