"""Build script of the espressif32 test fixture (platform-espressif32 6.13.0 behaviour).

What partkit meets on the real platform, without its downloads:

* esptool is the ``tool-esptoolpy`` package (esptool 4.x, underscore commands), run as
  ``"$PYTHONEXE" <package>/esptool.py``; ``$OBJCOPY`` and ``$UPLOADER`` name it, and
  ``elf2image`` makes ``firmware.bin`` with it.
* The framework script (builder/frameworks/arduino.py, inside ``env.BuildProgram()``)
  owns ``partitions.bin``, ``$PARTITIONS_TABLE_CSV`` and ``FLASH_EXTRA_IMAGES``.
* ``upload.maximum_size`` is set right before ``checkprogsize`` from the first app row
  whose subtype is factory or ota_0, in file order (``board_build.app_partition_name``
  picks a row by name instead).
* The upload command is ``write_flash`` with the extra images appended.

Compiling uses the system ``riscv64-unknown-elf-gcc`` (ESP32-C3 only).
"""

import os

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32c3")
march = ["-march=rv32imc_zicsr", "-mabi=ilp32"]


def _size(text):
    text = text.strip()
    if text[-1:] in ("K", "k", "M", "m"):
        return int(text[:-1], 0) * (1024 if text[-1] in "Kk" else 1024 * 1024)
    return int(text, 0)


def _app_rows(csv_path):
    with open(csv_path, encoding="utf-8") as csv:
        for line in csv:
            fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
            if len(fields) >= 5 and fields[1] in ("app", "0"):
                yield fields


def _update_max_upload_size(source, target, env):
    csv_path = env.subst("$PARTITIONS_TABLE_CSV")
    if not csv_path:
        return
    rows = list(_app_rows(csv_path))
    wanted = board.get("build.app_partition_name", "")
    chosen = [r for r in rows if r[0] == wanted] if wanted else []
    chosen = chosen or [r for r in rows if r[2] in ("factory", "ota_0")]
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
    OBJCOPY=os.path.join(platform.get_package_dir("tool-esptoolpy") or "", "esptool.py"),
    ARFLAGS=["rc"],
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.flash\.appdesc|\.flash\.rodata|\.flash\.text|\.dram0\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.dram0\.data|\.dram0\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    ESP32_APP_OFFSET=board.get("upload.offset_address", "0x10000"),
)
env.Append(
    CCFLAGS=[*march, "-ffreestanding", "-nostdlib", "-Os", "-Wall"],
    LINKFLAGS=[*march, "-nostdlib", "-Wl,--gc-sections"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction(
                f'"$PYTHONEXE" "$OBJCOPY" --chip {mcu} elf2image '
                f'--flash_mode {board.get("build.flash_mode", "dio")} --flash_freq 80m '
                f'--flash_size {board.get("upload.flash_size", "4MB")} -o $TARGET $SOURCES',
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
    UPLOADER="$OBJCOPY",
    UPLOADERFLAGS=[
        "--chip", mcu, "--port", '"$UPLOAD_PORT"', "--baud", "$UPLOAD_SPEED",
        "--before", "default_reset", "--after", "hard_reset",
        "write_flash", "-z", "--flash_mode", board.get("build.flash_mode", "dio"),
        "--flash_freq", "80m", "--flash_size", board.get("upload.flash_size", "detect"),
    ],
    UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS $ESP32_APP_OFFSET $SOURCE',
)
for image in env.get("FLASH_EXTRA_IMAGES", []):
    env.Append(UPLOADERFLAGS=[image[0], env.subst(image[1])])
env.AddPlatformTarget("upload", target_firm, [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
], "Upload")

Default([target_buildprog, target_size])
