"""Real ESP32-C3 firmware images for tests, built from ``examples/common/esp32c3``.

Every image comes from Debian's ``riscv64-unknown-elf-gcc`` and ``esptool elf2image``, so
header, segments, checksum and SHA-256 are exactly what a real build produces. Builds are
cached per process by their parameters (a build takes ~0.3 s); callers get their own copy
in the directory they pass, so a test may modify its file freely.

    from support.firmware import build_app, app_of_size, build_bootloader, bootloader_of_size

    app = build_app(tmp_path, pad_bytes=100_000)      # -> tmp_path/app-....bin (+ .elf)
    app = app_of_size(tmp_path, 0x100000)             # .bin of exactly 1 MiB
    bl = bootloader_of_size(tmp_path, 0x8000)         # RAM-only bootloader-like image

Image sizes are multiples of 16 (esptool pads the checksum to 16 bytes, then appends a
32-byte SHA-256), so exact sizes must be multiples of 16. The padding array sits at the end
of the last (IROM) segment, so the size grows byte for byte with ``pad_bytes``.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support.tools import missing, require_tool

__all__ = [
    "FIRMWARE_DIR",
    "app_of_size",
    "bootloader_of_size",
    "build_app",
    "build_bootloader",
    "build_chip_app",
    "chip_app_addresses",
    "elf_section_sum",
    "sign_image",
]

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "examples" / "common" / "esp32c3"
CC = "riscv64-unknown-elf-gcc"
CFLAGS = ("-march=rv32imc_zicsr", "-mabi=ilp32", "-ffreestanding", "-nostdlib", "-Os")

_cache_dir: Path | None = None
_built: dict[tuple[object, ...], Path] = {}
_base_size: dict[tuple[object, ...], tuple[int, int]] = {}


def _cache() -> Path:
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = Path(tempfile.mkdtemp(prefix="partkit-fw-"))
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def _esptool_available() -> None:
    try:
        import esptool  # noqa: F401
    except ImportError:
        missing("esptool is not installed in the test environment")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )


def _build(kind: str, defines: dict[str, object]) -> Path:
    """Compile + elf2image one variant into the cache; returns the cached .bin."""
    key = (kind, tuple(sorted(defines.items())))
    if key in _built:
        return _built[key]
    cc = require_tool(CC)
    _esptool_available()
    source, script = {
        "app": ("main.c", "esp32c3.ld"),
        "bootloader": ("bootloader.c", "bootloader.ld"),
    }[kind]
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
    stem = _cache() / f"{kind}-{digest}"
    elf, binary = stem.with_suffix(".elf"), stem.with_suffix(".bin")
    flags = [f"-D{name}={_c_literal(value)}" for name, value in sorted(defines.items())]
    _run([cc, *CFLAGS, *flags, "-T", str(FIRMWARE_DIR / script),
          str(FIRMWARE_DIR / source), "-o", str(elf)])
    _run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "elf2image",
          "-o", str(binary), str(elf)])
    _built[key] = binary
    return binary


def _c_literal(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _deliver(cached: Path, out_dir: Path | str, name: str | None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / (name or cached.name)
    shutil.copyfile(cached, target)
    shutil.copyfile(cached.with_suffix(".elf"), target.with_suffix(".elf"))
    return target


def build_app(
    out_dir: Path | str,
    pad_bytes: int = 4096,
    *,
    project_name: str = "partkit-demo",
    version: str = "1.0.0",
    idf_version: str = "v5.4-partkit",
    name: str | None = None,
) -> Path:
    """A real ESP32-C3 app image with a ``pad_bytes`` const array; returns the .bin path.

    The matching ELF is written next to it (same stem, ``.elf``). Strings end up in the
    256-byte app descriptor at the start of the DROM segment (max 31 chars each).
    """
    if pad_bytes < 1:
        raise ValueError("pad_bytes must be >= 1")
    defines: dict[str, object] = {
        "PAD_BYTES": pad_bytes,
        "APP_PROJECT_NAME": project_name,
        "APP_VERSION": version,
        "APP_IDF_VERSION": idf_version,
    }
    return _deliver(_build("app", defines), out_dir, name)


def build_bootloader(out_dir: Path | str, pad_bytes: int = 1024, *, name: str | None = None) -> Path:
    """A bootloader-like image (IRAM/DRAM segments only); returns the .bin path."""
    if pad_bytes < 1:
        raise ValueError("pad_bytes must be >= 1")
    return _deliver(_build("bootloader", {"BL_PAD_BYTES": pad_bytes}), out_dir, name)


# The app linked for another chip: the same object (RISC-V code, never run), its flash
# sections moved to the chip's IROM/DROM map; .data/.bss ride in DROM so no segment lands
# in RAM that is flash-mapped on some chip (ESP32-S2 maps 0x3F000000.. through the cache).
_CHIP_APP_SCRIPT = """ENTRY(call_start_cpu0)
SECTIONS
{{
    . = {drom:#x};
    .flash.appdesc : {{ KEEP(*(.rodata_desc)) }}
    .flash.rodata : ALIGN(4) {{ *(.rodata .rodata.* .srodata .srodata.* .data .data.*
                               .sdata .sdata.*) *(.bss .bss.* .sbss .sbss.* COMMON) }}
    . = {irom:#x};
    .flash.text : ALIGN(4) {{ *(.text.entry) *(.text .text.*) KEEP(*(.flash_pad)) }}
    /DISCARD/ : {{ *(.comment) *(.riscv.attributes) *(.note.*) *(.eh_frame) }}
}}
"""


def chip_app_addresses(chip: str) -> tuple[int, int]:
    """(DROM, IROM) load addresses for ``chip``'s app, from esptool's map starts (the test
    oracle, not partkit's registry). Past the image and segment headers (0x20) so each
    segment keeps its flash offset modulo the 64 KiB MMU page; where one window maps both
    (C5, H4, P4, ...) the code goes 4 MiB above the data."""
    from esptool.targets import CHIP_DEFS

    target = CHIP_DEFS[chip]
    drom = target.DROM_MAP_START + 0x20
    if target.IROM_MAP_START == target.DROM_MAP_START:
        return drom, target.IROM_MAP_START + 0x400020
    return drom, target.IROM_MAP_START + 0x20


def build_chip_app(out_dir: Path | str, chip: str, *, name: str | None = None) -> Path:
    """A real app image for ``chip``: main.c linked by ``riscv64-unknown-elf-ld`` at that
    chip's flash-mapped addresses, turned into an image by ``esptool --chip CHIP
    elf2image`` (which takes the RISC-V ELF for the Xtensa chips too)."""
    key = ("chip-app", chip)
    if key not in _built:
        cc = require_tool(CC)
        ld = require_tool("riscv64-unknown-elf-ld")
        _esptool_available()
        stem = _cache() / f"app-{chip}"
        obj, script = stem.with_suffix(".o"), stem.with_suffix(".ld")
        drom, irom = chip_app_addresses(chip)
        script.write_text(_CHIP_APP_SCRIPT.format(drom=drom, irom=irom))
        _run([cc, *CFLAGS, "-c", str(FIRMWARE_DIR / "main.c"), "-o", str(obj)])
        _run([ld, "-m", "elf32lriscv", "-T", str(script), str(obj),
              "-o", str(stem.with_suffix(".elf"))])
        _run([sys.executable, "-m", "esptool", "--chip", chip, "elf2image",
              "-o", str(stem.with_suffix(".bin")), str(stem.with_suffix(".elf"))])
        _built[key] = stem.with_suffix(".bin")
    return _deliver(_built[key], out_dir, name)


def _exact(kind: str, size: int, pad_define: str, extra: dict[str, object]) -> Path:
    if size % 16:
        raise ValueError(f"ESP image sizes are multiples of 16; {size:#x} is not")
    key = (kind, tuple(sorted(extra.items())))
    if key not in _base_size:
        probe = 4096
        _base_size[key] = (probe, _build(kind, {pad_define: probe, **extra}).stat().st_size)
    probe, probe_size = _base_size[key]
    pad = probe + (size - probe_size)
    for _ in range(4):  # linear growth: normally exact on the first try
        if pad < 1:
            raise ValueError(f"{size:#x} bytes is below the smallest {kind} image")
        built = _build(kind, {pad_define: pad, **extra})
        actual = built.stat().st_size
        if actual == size:
            return built
        pad += size - actual
    raise RuntimeError(f"could not hit an exact {kind} image size of {size:#x}")


def app_of_size(
    out_dir: Path | str,
    size: int,
    *,
    project_name: str = "partkit-demo",
    version: str = "1.0.0",
    name: str | None = None,
) -> Path:
    """A real app image whose .bin is exactly ``size`` bytes (a multiple of 16, >= ~64 KiB)."""
    extra: dict[str, object] = {
        "APP_PROJECT_NAME": project_name,
        "APP_VERSION": version,
        "APP_IDF_VERSION": "v5.4-partkit",
    }
    return _deliver(_exact("app", size, "PAD_BYTES", extra), out_dir, name)


def bootloader_of_size(out_dir: Path | str, size: int, *, name: str | None = None) -> Path:
    """A bootloader-like image whose .bin is exactly ``size`` bytes (multiple of 16)."""
    return _deliver(_exact("bootloader", size, "BL_PAD_BYTES", {}), out_dir, name)


def elf_section_sum(elf: Path | str) -> int:
    """What ELF-based size tools report: the sum of the loadable PROGBITS sections.

    This is the number PlatformIO/Arduino compare against the slot; the real .bin is
    larger (headers, 64 KiB flash-page alignment, checksum, SHA-256).
    """
    import struct

    data = Path(elf).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1:
        raise ValueError(f"{elf}: not a 32-bit ELF file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    total = 0
    for i in range(shnum):
        _, sh_type, sh_flags, _, _, sh_size = struct.unpack_from(
            "<IIIIII", data, shoff + i * shentsize
        )
        if sh_type == 1 and sh_flags & 0x2:  # SHT_PROGBITS, SHF_ALLOC
            total += sh_size
    return total


def sign_image(image: Path | str, out: Path | str, key_dir: Path | str) -> Path:
    """Secure Boot V2 signature with real ``espsecure`` (RSA-3072 key made in key_dir).

    The signed file is the image padded to a 4 KiB boundary plus a 4 KiB signature sector.
    """
    _esptool_available()
    key = Path(key_dir) / "sbv2-key.pem"
    if not key.exists():
        _run([sys.executable, "-m", "espsecure", "generate-signing-key", "--version", "2",
              "--scheme", "rsa3072", str(key)])
    _run([sys.executable, "-m", "espsecure", "sign-data", "--version", "2",
          "--keyfile", str(key), "-o", str(out), str(image)])
    return Path(out)
