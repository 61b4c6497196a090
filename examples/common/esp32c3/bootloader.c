/*
 * Bootloader-like ESP32-C3 image for partkit's bootloader-fits tests.
 * Everything loads into internal RAM (IRAM code, DRAM data), like a second-stage
 * bootloader; BL_PAD_BYTES sets how big the image is.
 */
#include <stdint.h>

#ifndef BL_PAD_BYTES
#define BL_PAD_BYTES 1024
#endif
#if BL_PAD_BYTES < 1
#error "BL_PAD_BYTES must be at least 1"
#endif

/* Same layout as ESP-IDF's esp_bootloader_desc_t: 80 bytes, magic byte 0x50 first. */
typedef struct {
    uint8_t magic_byte;
    uint8_t reserved[2];
    uint8_t secure_version;
    uint32_t version;
    char idf_ver[32];
    char date_time[24];
    uint8_t reserved2[16];
} bootloader_desc_t;

_Static_assert(sizeof(bootloader_desc_t) == 80, "bootloader descriptor must be 80 bytes");

__attribute__((section(".data_bootloader_desc"), used))
const bootloader_desc_t bootloader_desc = {
    .magic_byte = 0x50,
    .version = 1,
    .idf_ver = "v5.4-partkit",
    .date_time = "Jan  1 2025 12:00:00",
};

__attribute__((used))
const uint8_t bootloader_padding[BL_PAD_BYTES] = {2};

volatile uint32_t bootloader_state = 7;

__attribute__((used, noreturn))
void call_start_cpu0(void)
{
    uint32_t acc = bootloader_desc.version;
    for (;;) {
        acc += bootloader_padding[acc % BL_PAD_BYTES];
        bootloader_state = acc;
    }
}
