"""Build script of the offline ESP32-C3 example platform.

It does what platform-espressif32 does for an app, minus the downloads: compile the
project sources with the system ``riscv64-unknown-elf-gcc``, link with the project's
linker script, turn the ELF into an app image with ``esptool elf2image`` (run by the
same Python as PlatformIO), and wire ``checkprogsize`` the same way. When the source
directory also has ``bootloader.c`` + ``bootloader.ld`` it builds ``bootloader.bin``
from them, like the espressif32 frameworks produce one.

It deliberately does *not* create ``partitions.bin``: that is the partkit extra script's
job on this platform (platform-espressif32's frameworks do create it, see
docs/platformio.md).
"""

import os

from SCons.Script import (  # pylint: disable=import-error
    AlwaysBuild,
    Builder,
    Default,
    DefaultEnvironment,
)

env = DefaultEnvironment()
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32c3")
flash_size = board.get("upload.flash_size", "4MB")
flash_mode = board.get("build.flash_mode", "dio")
march = ["-march=rv32imc_zicsr", "-mabi=ilp32"]

if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

env.Replace(
    AR="riscv64-unknown-elf-ar",
    AS="riscv64-unknown-elf-as",
    CC="riscv64-unknown-elf-gcc",
    CXX="riscv64-unknown-elf-g++",
    OBJCOPY="riscv64-unknown-elf-objcopy",
    RANLIB="riscv64-unknown-elf-ranlib",
    SIZETOOL="riscv64-unknown-elf-size",
    ARFLAGS=["rc"],
    PROGSUFFIX=".elf",
    # ELF section sums, as platform-espressif32 counts them (the .bin is larger)
    SIZEPROGREGEXP=r"^(?:\.flash\.appdesc|\.flash\.rodata|\.flash\.text|\.dram0\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.dram0\.data|\.dram0\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    ESPTOOL_IMAGE=(
        '"$PYTHONEXE" -m esptool --chip %s elf2image --flash-mode %s --flash-size %s'
        % (mcu, flash_mode, flash_size)
    ),
)
env.Append(
    CCFLAGS=[*march, "-ffreestanding", "-nostdlib", "-Os", "-Wall"],
    LINKFLAGS=[*march, "-nostdlib", "-Wl,--gc-sections"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction("$ESPTOOL_IMAGE -o $TARGET $SOURCE", "Building $TARGET"),
            suffix=".bin",
        )
    ),
)
if board.get("build.ldscript", ""):
    env.Replace(LDSCRIPT_PATH=board.get("build.ldscript"))

# Optional bootloader-like image from the same source directory, defined before the
# program as platform-espressif32's frameworks do.
bootloader_bin = []
src_dir = env.subst("$PROJECT_SRC_DIR")
bl_source = os.path.join(src_dir, "bootloader.c")
bl_script = os.path.join(src_dir, "bootloader.ld")
if os.path.isfile(bl_source) and os.path.isfile(bl_script):
    bl_env = env.Clone(LINKFLAGS=[*march, "-nostdlib", "-T", bl_script])
    bl_elf = bl_env.Program(
        os.path.join("$BUILD_DIR", "bootloader.elf"),
        bl_env.Object(os.path.join("$BUILD_DIR", "bootloader", "bootloader.o"), bl_source),
    )
    env.Depends(bl_elf, bl_script)
    bootloader_bin = env.ElfToBin(os.path.join("$BUILD_DIR", "bootloader"), bl_elf)

target_elf = env.BuildProgram()
target_firm = env.ElfToBin(os.path.join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Depends(target_firm, "checkprogsize")

targets = [env.Alias("buildprog", target_firm, target_firm), bootloader_bin]

AlwaysBuild(env.Alias("nobuild", target_firm))
target_size = env.Alias(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")
)
AlwaysBuild(target_size)
Default([*targets, target_size])
