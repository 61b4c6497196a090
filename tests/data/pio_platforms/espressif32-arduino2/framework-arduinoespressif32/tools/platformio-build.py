"""The fixture's Arduino 2.0.x build script (what framework-arduinoespressif32's
tools/platformio-build.py does for partition tables and extra flash images).

* The table CSV: ``board_build.partitions``, else ``build.arduino.partitions``; a name is
  looked up in the variant directory, then in tools/partitions/, then as a path relative to
  the project. It becomes ``$PARTITIONS_TABLE_CSV``.
* ``$BUILD_DIR/partitions.bin`` is made by the framework's own generator, before the ELF
  is linked.
* ``FLASH_EXTRA_IMAGES``: the bootloader at the chip's bootloader offset (0x1000 on
  esp32/esp32s2, else 0x0000) and the table at 0x8000. The bootloader is the variant's
  prebuilt ``bootloader.bin`` when the variant ships one, else ``$BUILD_DIR/bootloader.bin``
  made with esptool elf2image from the SDK's ``tools/sdk/<mcu>/bin/
  bootloader_<flash_mode>_<freq>.elf``.
  (The real core also lists boot_app0.bin at 0xe000; this fixture has no such file.)
  The variant directory is ``<framework>/variants``, or ``board_build.variants_dir`` in
  the project.
"""

from os.path import abspath, isfile, join

from SCons.Script import DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

FRAMEWORK_DIR = join(platform.get_dir(), "framework-arduinoespressif32")
mcu = board.get("build.mcu", "esp32")
variant = board.get("build.variant", "")
if board.get("build.variants_dir", ""):
    variants_dir = join(env.subst("$PROJECT_DIR"), board.get("build.variants_dir"))
else:
    variants_dir = join(FRAMEWORK_DIR, "variants")


def partition_table_csv():
    name = board.get("build.partitions", board.get("build.arduino.partitions", ""))
    if not name:
        in_variant = join(variants_dir, variant, "partitions.csv")
        if isfile(in_variant):
            return in_variant
        return join(FRAMEWORK_DIR, "tools", "partitions", "default.csv")
    for candidate in (join(variants_dir, variant, name),
                      join(FRAMEWORK_DIR, "tools", "partitions", name)):
        if isfile(candidate):
            return candidate
    return abspath(name)


bootloader = join(variants_dir, variant, "bootloader.bin")
bootloader_offset = "0x1000" if mcu in ("esp32", "esp32s2") else "0x0000"
flash_mode = board.get("build.flash_mode", "dio")
sdk_elf = join(FRAMEWORK_DIR, "tools", "sdk", mcu, "bin", f"bootloader_{flash_mode}_80m.elf")
extra_images = []
if isfile(bootloader):
    extra_images.append((bootloader_offset, bootloader))
elif isfile(sdk_elf):
    built = env.Command(
        join("$BUILD_DIR", "bootloader.bin"), sdk_elf,
        env.VerboseAction(
            f'"$PYTHONEXE" "$OBJCOPY" --chip {mcu} elf2image --flash_mode {flash_mode} '
            f'--flash_freq 80m --flash_size {board.get("upload.flash_size", "4MB")} '
            "-o $TARGET $SOURCE", "Building $TARGET"))
    env.Depends("$BUILD_DIR/$PROGNAME$PROGSUFFIX", built)
    extra_images.append((bootloader_offset, join(env.subst("$BUILD_DIR"), "bootloader.bin")))
extra_images.append(("0x8000", join(env.subst("$BUILD_DIR"), "partitions.bin")))
env.Append(FLASH_EXTRA_IMAGES=extra_images)

env.Replace(PARTITIONS_TABLE_CSV=abspath(partition_table_csv()))
partition_table = env.Command(
    join("$BUILD_DIR", "partitions.bin"),
    "$PARTITIONS_TABLE_CSV",
    env.VerboseAction(
        f'"$PYTHONEXE" "{join(FRAMEWORK_DIR, "tools", "gen_partitions.py")}" -q $SOURCE $TARGET',
        "Generating partitions $TARGET",
    ),
)
env.Depends("$BUILD_DIR/$PROGNAME$PROGSUFFIX", partition_table)
