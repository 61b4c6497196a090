"""The fixture's Arduino 3.x build script (what arduino-esp32 3.x's
tools/pioarduino-build.py does for partition tables and the bootloader).

* ``$PARTITIONS_TABLE_CSV``: ``board_build.partitions``, else ``build.arduino.partitions``,
  looked up in the variant directory, then tools/partitions/, then the project.
* ``$BUILD_DIR/partitions.bin`` comes from the framework's own generator.
* ``$BUILD_DIR/bootloader.bin`` is made with esptool elf2image from the bootloader ELF
  (here the variant's ``bootloader.elf``); ``FLASH_EXTRA_IMAGES`` lists it at the chip's
  bootloader offset and the table at 0x8000.
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
    for candidate in (join(variants_dir, variant, name),
                      join(FRAMEWORK_DIR, "tools", "partitions", name)):
        if name and isfile(candidate):
            return candidate
    return abspath(name or "partitions.csv")


bootloader_offset = {"esp32": "0x1000", "esp32s2": "0x1000", "esp32p4": "0x2000",
                     "esp32c5": "0x2000"}.get(mcu, "0x0000")
bootloader_elf = join(variants_dir, variant, "bootloader.elf")
if isfile(bootloader_elf):
    bootloader = env.Command(
        join("$BUILD_DIR", "bootloader.bin"), bootloader_elf,
        env.VerboseAction(
            f"$OBJCOPY --chip {mcu} elf2image --flash-mode dio --flash-freq 80m "
            "--flash-size 4MB -o $TARGET $SOURCE", "Building $TARGET"))
    env.Depends("$BUILD_DIR/$PROGNAME$PROGSUFFIX", bootloader)
    env.Append(FLASH_EXTRA_IMAGES=[(bootloader_offset, str(bootloader[0]))])
env.Append(FLASH_EXTRA_IMAGES=[("0x8000", join(env.subst("$BUILD_DIR"), "partitions.bin"))])

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
