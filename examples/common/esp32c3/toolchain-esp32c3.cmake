# CMake toolchain file for the partkit ESP32-C3 demo firmware, using Debian's
# gcc-riscv64-unknown-elf (a multilib riscv64 compiler that also targets rv32).
#
#   cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE=<this file> ...
#
# Link with: -T <dir>/esp32c3.ld (app) or -T <dir>/bootloader.ld (bootloader-like image),
# then: python -m esptool --chip esp32c3 elf2image -o app.bin app.elf

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)

set(PARTKIT_RISCV_PREFIX "riscv64-unknown-elf-" CACHE STRING "Cross toolchain prefix")
find_program(CMAKE_C_COMPILER "${PARTKIT_RISCV_PREFIX}gcc" REQUIRED)
find_program(CMAKE_ASM_COMPILER "${PARTKIT_RISCV_PREFIX}gcc" REQUIRED)
find_program(CMAKE_OBJCOPY "${PARTKIT_RISCV_PREFIX}objcopy")
find_program(CMAKE_SIZE "${PARTKIT_RISCV_PREFIX}size")

# No C library or startup files: the firmware is freestanding.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-march=rv32imc_zicsr -mabi=ilp32 -ffreestanding -Os")
set(CMAKE_ASM_FLAGS_INIT "-march=rv32imc_zicsr -mabi=ilp32")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostdlib -nostartfiles")

# Path to this directory, for linker scripts and sources.
set(PARTKIT_ESP32C3_DIR "${CMAKE_CURRENT_LIST_DIR}" CACHE INTERNAL "")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
