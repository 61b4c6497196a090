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
* Targets are registered as platform-espressif32 6.13.0 registers them, after
  ``env.BuildProgram()``: ``buildfs``/``upload``/``uploadfs``/``uploadfsota`` all on
  ``target_firm`` (firmware.bin, or with buildfs/uploadfs/uploadfsota on the command line
  the ``DataToBin`` image, always rebuilt), ``UPLOADCMD`` flashing ``$SOURCE`` at
  ``$ESP32_APP_OFFSET`` with the extra images appended (uploadfs: at ``$FS_START`` alone),
  ``erase`` without sources, ``size`` on the ELF.
* ``uploadfs`` writes to the *last* spiffs/fat/littlefs data row (offsets as
  ``_parse_partitions`` computes them: blank ones from 0x9000); ``board_build.
  filesystem_partition`` is ignored; fatfs goes 4 KiB past the partition start.

Compiling uses the system ``riscv64-unknown-elf-gcc`` (ESP32-C3 only).
"""

import os
import sys

from SCons.Script import (
    COMMAND_LINE_TARGETS,
    AlwaysBuild,
    Builder,
    Default,
    DefaultEnvironment,
)

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32c3")
mkfs = os.path.join(platform.get_dir(), "tools", "mkfs.py")  # stands in for mk<filesystem>
filesystem = board.get("build.filesystem", "spiffs")
march = ["-march=rv32imc_zicsr", "-mabi=ilp32"]


def _size(text):
    text = text.strip()
    if text[-1:] in ("K", "k", "M", "m"):
        return int(text[:-1], 0) * (1024 if text[-1] in "Kk" else 1024 * 1024)
    return int(text, 0)


def _parse_partitions(env):
    """The CSV rows with blank offsets filled in as the platform does (from 0x9000)."""
    rows, next_offset = [], 0x9000
    csv_path = env.subst("$PARTITIONS_TABLE_CSV")
    if not os.path.isfile(csv_path):  # e.g. -t nobuild: no framework script ran
        sys.stderr.write(f"Could not find the file {csv_path} with partitions table.\n")
        env.Exit(1)
    with open(csv_path, encoding="utf-8") as csv:
        for line in csv:
            fields = [f.strip() for f in line.split("#", 1)[0].split(",")]
            if len(fields) < 5:
                continue
            bound = 0x10000 if fields[1] in ("0", "app") else 4
            offset = (_size(fields[3]) if fields[3]
                      else (next_offset + bound - 1) & ~(bound - 1))
            rows.append({"name": fields[0], "type": fields[1], "subtype": fields[2],
                         "offset": offset, "size": _size(fields[4])})
            next_offset = offset + _size(fields[4])
    return rows


def fetch_fs_size(env):
    fs = None
    for row in _parse_partitions(env):
        if row["type"] == "data" and row["subtype"] in ("spiffs", "fat", "littlefs"):
            fs = row
    if not fs:
        sys.stderr.write("Could not find the any filesystem section in the partitions "
                         f"table {env.subst('$PARTITIONS_TABLE_CSV')}\n")
        env.Exit(1)
        return
    env["FS_START"], env["FS_SIZE"] = fs["offset"], fs["size"]
    env["FS_PAGE"], env["FS_BLOCK"] = 0x100, 0x1000
    if filesystem == "fatfs":
        env["FS_START"] += 4096
        env["FS_SIZE"] -= 4096


def _fetch_fs_size(target, source, env):
    fetch_fs_size(env)
    return target, source


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
    ESP32_FS_IMAGE_NAME=env.get("ESP32_FS_IMAGE_NAME",
                                env.get("ESP32_SPIFFS_IMAGE_NAME", filesystem)),
    MKFSTOOL=f'"$PYTHONEXE" "{mkfs}" {filesystem}',
    ERASEFLAGS=["--chip", mcu, "--port", '"$UPLOAD_PORT"'],
    ERASECMD='"$PYTHONEXE" "$OBJCOPY" $ERASEFLAGS erase_flash',
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
        ),
        DataToBin=Builder(
            action=env.VerboseAction(
                "$MKFSTOOL -c $SOURCES -s $FS_SIZE"
                + (" -p $FS_PAGE -b $FS_BLOCK" if filesystem in ("spiffs", "littlefs") else "")
                + " $TARGET",
                "Building FS image from '$SOURCES' directory to $TARGET"),
            emitter=_fetch_fs_size,
            source_factory=env.Dir,
            suffix=".bin",
        ),
    ),
)
if board.get("build.ldscript", ""):
    env.Replace(LDSCRIPT_PATH=board.get("build.ldscript"))

if "nobuild" in COMMAND_LINE_TARGETS:
    target_elf = os.path.join("$BUILD_DIR", "${PROGNAME}.elf")
    if set(["uploadfs", "uploadfsota"]) & set(COMMAND_LINE_TARGETS):
        fetch_fs_size(env)
        target_firm = os.path.join("$BUILD_DIR", "${ESP32_FS_IMAGE_NAME}.bin")
    else:
        target_firm = os.path.join("$BUILD_DIR", "${PROGNAME}.bin")
else:
    target_elf = env.BuildProgram()
    if set(["buildfs", "uploadfs", "uploadfsota"]) & set(COMMAND_LINE_TARGETS):
        target_firm = env.DataToBin(
            os.path.join("$BUILD_DIR", "${ESP32_FS_IMAGE_NAME}"), "$PROJECT_DATA_DIR")
        env.NoCache(target_firm)
        AlwaysBuild(target_firm)
    else:
        target_firm = env.ElfToBin(os.path.join("$BUILD_DIR", "${PROGNAME}"), target_elf)
        env.Depends(target_firm, "checkprogsize")

env.AddPlatformTarget("buildfs", target_firm, target_firm, "Build Filesystem Image")
AlwaysBuild(env.Alias("nobuild", target_firm))
target_buildprog = env.Alias("buildprog", target_firm, target_firm)

if env.get("PIOMAINPROG"):
    env.AddPreAction("checkprogsize", env.VerboseAction(
        _update_max_upload_size, "Retrieving maximum program size $SOURCES"))

target_size = env.AddPlatformTarget(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"),
    "Program Size", "Calculate program size")

upload_flags = [
    "--chip", mcu, "--port", '"$UPLOAD_PORT"', "--baud", "$UPLOAD_SPEED",
    "--before", "default_reset", "--after", "hard_reset",
    "write_flash", "-z", "--flash_mode", board.get("build.flash_mode", "dio"),
    "--flash_freq", "80m", "--flash_size", board.get("upload.flash_size", "detect"),
]
env.Replace(
    UPLOADER="$OBJCOPY",
    UPLOADERFLAGS=list(upload_flags),
    UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS $ESP32_APP_OFFSET $SOURCE',
)
for image in env.get("FLASH_EXTRA_IMAGES", []):
    env.Append(UPLOADERFLAGS=[image[0], env.subst(image[1])])
if "uploadfs" in COMMAND_LINE_TARGETS:
    env.Replace(UPLOADERFLAGS=[*upload_flags, "$FS_START"],
                UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS $SOURCE')
upload_actions = [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
]
env.AddPlatformTarget("upload", target_firm, upload_actions, "Upload")
env.AddPlatformTarget("uploadfs", target_firm, upload_actions, "Upload Filesystem Image")
env.AddPlatformTarget(
    "uploadfsota", target_firm, upload_actions, "Upload Filesystem Image OTA")
env.AddPlatformTarget("erase", None, [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for serial port..."),
    env.VerboseAction("$ERASECMD", "Erasing..."),
], "Erase Flash")

Default([target_buildprog, target_size])
