/* Simulated esp32 core runtime: the app descriptor first in DROM (where image tools look
 * for it) and an entry point that runs the sketch. Never runs on silicon. */
#include "Arduino.h"

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

__attribute__((section(".rodata_desc"), used))
const app_desc_t app_desc = {
    .magic_word = 0xABCD5432u,
    .version = "sketch",
    .project_name = "arduino-sketch",
    .time = "12:00:00",
    .date = "Jan  1 2026",
    .idf_ver = "v5.5-simulated",
    .max_efuse_blk_rev_full = 199,
    .mmu_page_size = 16,
};

volatile uint32_t core_ticks = 1;   /* .dram0.data */
static volatile uint32_t core_scratch[64];   /* .dram0.bss */

__attribute__((used, noreturn))
void call_start_cpu0(void)
{
    core_scratch[0] = app_desc.magic_word;
    setup();
    for (;;) {
        loop();
        core_ticks++;
    }
}
