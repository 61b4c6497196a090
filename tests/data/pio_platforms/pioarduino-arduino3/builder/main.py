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
* Targets are registered as pioarduino 55.03.311 registers them, after
  ``env.BuildProgram()``: ``buildfs``/``upload``/``uploadfs``/``uploadfsota``/
  ``erase_upload`` on ``target_firm`` (firmware.bin, or with buildfs/uploadfs/uploadfsota
  on the command line the ``DataToBin`` image, always rebuilt), ``UPLOADCMD`` flashing
  ``$SOURCE``; ``erase`` without sources; ``size`` on the ELF.
* ``uploadfs`` writes to the spiffs/fat/littlefs data row named by
  ``board_build.filesystem_partition`` (since 55.03.39), else the last one (blank offsets
  counted from 0); a fatfs image is the whole partition (wear-levelled, since 55.03.36)
  written at its start. The fixture's fatfs image is a plain FAT of that size.

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
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32c3")
mkfs = os.path.join(env.PioPlatform().get_dir(), "tools", "mkfs.py")  # stands in for mk<filesystem>
filesystem = board.get("build.filesystem", "littlefs")
march = ["-march=rv32imc_zicsr", "-mabi=ilp32"]
esptool = os.path.join(os.path.dirname(env.subst("$PYTHONEXE")), "esptool")


def _size(text):
    text = text.strip()
    if text[-1:] in ("K", "k", "M", "m"):
        return int(text[:-1], 0) * (1024 if text[-1] in "Kk" else 1024 * 1024)
    return int(text, 0)


def _parse_partitions(env):
    """The CSV rows with blank offsets filled in as the platform does (from 0)."""
    rows, next_offset = [], 0
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
    # Where upload writes the app: the ota_0 row, else 0x10000 (set only here, lazily).
    app_offset = next((r["offset"] for r in rows if r["subtype"] == "ota_0"), 0x10000)
    env.Replace(ESP32_APP_OFFSET=hex(app_offset))
    return rows


def fetch_fs_size(env):
    rows = [r for r in _parse_partitions(env)
            if r["type"] in ("data", "1", "0x01") and r["subtype"] in (
                "spiffs", "fat", "littlefs", "0x82", "0x81", "0x83")]
    wanted = board.get("build.filesystem_partition", "")
    named = [r for r in rows if wanted and r["name"] == wanted]
    if wanted and not named:
        print(f"Warning! Selected filesystem partition `{wanted}` is not available in the "
              "partition table! Falling back to last available filesystem partition.")
    if not rows:
        sys.stderr.write("Could not find the any filesystem section in the partitions "
                         f"table {env.subst('$PARTITIONS_TABLE_CSV')}\n")
        env.Exit(1)
        return
    fs = named[0] if named else rows[-1]
    env["FS_START"], env["FS_SIZE"] = fs["offset"], fs["size"]
    env["FS_PAGE"], env["FS_BLOCK"] = 0x100, 0x1000


def _fetch_fs_size(target, source, env):
    fetch_fs_size(env)
    return target, source


def _update_max_upload_size(source, target, env):
    csv_path = env.subst("$PARTITIONS_TABLE_CSV")
    if not csv_path:
        return
    with open(csv_path, encoding="utf-8") as csv:
        rows = [[f.strip() for f in line.split("#", 1)[0].split(",")] for line in csv]
    rows = [r for r in rows if len(r) >= 5]
    _parse_partitions(env)
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
    ESP32_APP_OFFSET=None,  # set by _parse_partitions (before checkprogsize)
    ESP32_FS_IMAGE_NAME=env.get("ESP32_FS_IMAGE_NAME",
                                env.get("ESP32_SPIFFS_IMAGE_NAME", filesystem)),
    MKFSTOOL=f'"$PYTHONEXE" "{mkfs}" {filesystem}',
    ERASEFLAGS=["--chip", mcu, "--port", '"$UPLOAD_PORT"'],
    ERASECMD="$OBJCOPY $ERASEFLAGS erase-flash",
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
        ),
        DataToBin=Builder(
            action=env.VerboseAction(
                "$MKFSTOOL -c $SOURCES -s $FS_SIZE $TARGET",
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
    "--before", "default-reset", "--after", "hard-reset",
    "write-flash", "-z", "--flash-mode", board.get("build.flash_mode", "dio"),
    "--flash-freq", "80m", "--flash-size", "detect",
]
env.Replace(
    UPLOADER=esptool,
    UPLOADERFLAGS=list(upload_flags),
    UPLOADCMD="$UPLOADER $UPLOADERFLAGS $ESP32_APP_OFFSET $SOURCE",
)
for image in env.get("FLASH_EXTRA_IMAGES", []):
    env.Append(UPLOADERFLAGS=[image[0], env.subst(image[1])])
if "uploadfs" in COMMAND_LINE_TARGETS:
    env.Replace(UPLOADERFLAGS=[*upload_flags, "$FS_START"],
                UPLOADCMD="$UPLOADER $UPLOADERFLAGS $SOURCE")
upload_actions = [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
]
env.AddPlatformTarget("upload", target_firm, upload_actions, "Upload")
env.AddPlatformTarget("uploadfs", target_firm, upload_actions, "Upload Filesystem Image")
env.AddPlatformTarget(
    "uploadfsota", target_firm, upload_actions, "Upload Filesystem Image OTA")
env.AddPlatformTarget("erase_upload", target_firm, [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$ERASECMD", "Erasing..."),
    env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
], "Erase Flash and Upload")
env.AddPlatformTarget("erase", None, [
    env.VerboseAction(env.AutodetectUploadPort, "Looking for upload port..."),
    env.VerboseAction("$ERASECMD", "Erasing..."),
], "Erase Flash")

Default([target_buildprog, target_size])
