/*
 * Minimal ESP32-C3 "app" used by partkit's tests and examples.
 *
 * It never runs on silicon in CI; it exists so that `esptool elf2image` produces a real
 * ESP app image whose size the tests control. The size knob is PAD_BYTES: a const array
 * in flash-mapped .rodata (DROM). The app descriptor is placed first in DROM, where the
 * second-stage bootloader and image tools look for it.
 */
#include <stdint.h>

#ifndef PAD_BYTES
#define PAD_BYTES 4096
#endif
#if PAD_BYTES < 1
#error "PAD_BYTES must be at least 1"
#endif

#ifndef APP_PROJECT_NAME
#define APP_PROJECT_NAME "partkit-demo"
#endif
#ifndef APP_VERSION
#define APP_VERSION "1.0.0"
#endif
#ifndef APP_IDF_VERSION
#define APP_IDF_VERSION "v5.4-partkit"
#endif

/* Same layout as ESP-IDF's esp_app_desc_t: 256 bytes, magic word first. */
typedef struct {
    uint32_t magic_word;
    uint32_t secure_version;
    uint32_t reserved1[2];
    char version[32];
    char project_name[32];
    char time[16];
    char date[16];
    char idf_ver[32];
    uint8_t app_elf_sha256[32];
    uint16_t min_efuse_blk_rev_full;
    uint16_t max_efuse_blk_rev_full;
    uint8_t mmu_page_size;
    uint8_t reserved3[3];
    uint32_t reserved2[18];
} app_desc_t;

_Static_assert(sizeof(app_desc_t) == 256, "app descriptor must be 256 bytes");

__attribute__((section(".rodata_desc"), used))
const app_desc_t app_desc = {
    .magic_word = 0xABCD5432u,
    .secure_version = 0,
    .version = APP_VERSION,
    .project_name = APP_PROJECT_NAME,
    .time = "12:00:00",
    .date = "Jan  1 2025",
    .idf_ver = APP_IDF_VERSION,
    .max_efuse_blk_rev_full = 199,
    .mmu_page_size = 16, /* log2(64 KiB) */
};

/*
 * The size knob. It is linked at the end of the flash-mapped code (IROM), the last
 * segment of the image, so the .bin grows byte for byte with PAD_BYTES. In DROM it
 * would mostly fill the gap esptool pads to the next 64 KiB page and the size would
 * move in steps.
 */
__attribute__((section(".flash_pad"), used))
const uint8_t app_padding[PAD_BYTES] = {1};

#ifdef HAVE_PARTITIONS_H
/*
 * The flash layout from the partition table, via the header partkit generates with it
 * (CMake HEADER / SCons PARTKIT_HEADER), so code and table cannot disagree: where the app
 * finds its data partition, kept in the image.
 */
#include "partitions.h"

_Static_assert(PARTITION_STORAGE_TYPE == 0x01, "storage must be a data partition");
_Static_assert(PARTITION_FACTORY_OFFSET % 0x10000 == 0, "app partitions are 64K aligned");

__attribute__((used))
const uint32_t storage_partition[2] = {PARTITION_STORAGE_OFFSET, PARTITION_STORAGE_SIZE};
#endif

/* Initialised data and bss, so the image also carries a DRAM segment. */
volatile uint32_t boot_counter = 0x1234;
static volatile uint32_t scratch[16];

__attribute__((used, noreturn))
void call_start_cpu0(void)
{
    uint32_t sum = app_desc.magic_word + boot_counter;
    for (uint32_t i = 0; i < 16; i++) {
        scratch[i] = sum + app_padding[i % PAD_BYTES];
    }
    for (;;) {
        boot_counter++;
    }
}
