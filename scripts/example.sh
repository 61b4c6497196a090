#!/usr/bin/env bash
# The main job on a bundled example: a real ESP32-C3 firmware build with CMake (Debian's
# RISC-V GCC + esptool elf2image) that generates the partition table and runs the app and
# bootloader size checks (examples/cmake-esp32c3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
PYTHON="$PY" exec bash "$ROOT/examples/cmake-esp32c3/build.sh" "$@"
