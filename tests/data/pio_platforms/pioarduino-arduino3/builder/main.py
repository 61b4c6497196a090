"""Build script of the pioarduino test fixture (pioarduino 55.03.311 behaviour).

What partkit meets on pioarduino's platform-espressif32, without its downloads:

* esptool 5.x is an executable in the platform's Python environment (here: the
  ``esptool`` next to ``$PYTHONEXE``); ``$OBJCOPY`` and ``$UPLOADER`` name it, commands
  and options use dashes (``elf2image --flash-mode``, ``write-flash``).
* The framework script (inside ``env.BuildProgram()``) owns ``partitions.bin``,
  ``$BUILD_DIR/bootloader.bin``, ``$PARTITIONS_TABLE_CSV`` and ``FLASH_EXTRA_IMAGES``.
* ``upload.maximum_size`` is set right before ``checkprogsize`` from the first app row
  whose subtype is ``ota_0`` (a substring test; a ``factory`` row is never used), or the
  row named by ``board_build.app_partition_name``.

Compiling uses the system ``riscv64-unknown-elf-gcc`` (ESP32-C3 only).
"""

import os

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32c3")
march = ["-march=rv32imc_zicsr", "-mabi=ilp32"]
esptool = os.path.join(os.path.dirname(env.subst("$PYTHONEXE")), "esptool")


def _size(text):
    text = text.strip()
    if text[-1:] in ("K", "k", "M", "m"):
        return int(text[:-1], 0) * (1024 if text[-1] in "Kk" else 1024 * 1024)
    return int(text, 0)


def _update_max_upload_size(source, target, env):
    csv_path = env.subst("$PARTITIONS_TABLE_CSV")
    if not csv_path:
        return
    with open(csv_path, encoding="utf-8") as csv:
        rows = [[f.strip() for f in line.split("#", 1)[0].split(",")] for line in csv]
    rows = [r for r in rows if len(r) >= 5]
    wanted = board.get("build.app_partition_name", "")
    chosen = [r for r in rows if r[0] == wanted] if wanted else []
    chosen = chosen or [r for r in rows if r[1] in ("0", "app") and r[2] in ("ota_0")]
    if chosen:
        board.update("upload.maximum_size", _size(chosen[0][4]))


if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

env.Replace(
    AR="riscv64-unknown-elf-ar",
    AS="riscv64-unknown-elf-as",
    CC="riscv64-unknown-elf-gcc",
    CXX="riscv64-unknown-elf-g++",
    RANLIB="riscv64-unknown-elf-ranlib",
    SIZETOOL="riscv64-unknown-elf-size",
    OBJCOPY=esptool,
    ARFLAGS=["rc"],
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.flash\.appdesc|\.flash\.rodata|\.flash\.text|\.dram0\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.dram0\.data|\.dram0\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    ESP32_APP_OFFSET="0x10000",
)
env.Append(
    CCFLAGS=[*march, "-ffreestanding", "-nostdlib", "-Os", "-Wall"],
    LINKFLAGS=[*march, "-nostdlib", "-Wl,--gc-sections"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction(
                f"$OBJCOPY --chip {mcu} elf2image --flash-mode "
                f'{board.get("build.flash_mode", "dio")} --flash-freq 80m --flash-size '
                f'{board.get("upload.flash_size", "4MB")} -o $TARGET $SOURCES',
                "Building $TARGET"),
            suffix=".bin",
        )
    ),
)
if board.get("build.ldscript", ""):
    env.Replace(LDSCRIPT_PATH=board.get("build.ldscript"))

target_elf = env.BuildProgram()
target_firm = env.ElfToBin(os.path.join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Depends(target_firm, "checkprogsize")
target_buildprog = env.Alias("buildprog", target_firm, target_firm)
AlwaysBuild(env.Alias("nobuild", target_firm))

if env.get("PIOMAINPROG"):
    env.AddPreAction("checkprogsize", env.VerboseAction(
        _update_max_upload_size, "Retrieving maximum program size $SOURCES"))

target_size = env.AddPlatformTarget(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"),
    "Program Size", "Calculate program size")

env.Replace(
    UPLOADER=esptool,
    UPLOADERFLAGS=[
        "--chip", mcu, "--port", '"$UPLOAD_PORT"', "--baud", "$UPLOAD_SPEED",
        "--before", "default-reset", "--after", "hard-reset",
        "write-flash", "-z", "--flash-mode", board.get("build.flash_mode", "dio"),
        "--flash-freq", "80m", "--flash-size", "detect",
    ],
    UPLOADCMD="$UPLOADER $UPLOADERFLAGS $ESP32_APP_OFFSET $SOURCE",
)
for image in env.get("FLASH_EXTRA_IMAGES", []):
    env.Append(UPLOADERFLAGS=[image[0], env.subst(image[1])])
env.AddPlatformTarget("upload", target_firm, [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
], "Upload")

Default([target_buildprog, target_size])
