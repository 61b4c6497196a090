/* Simulated second-stage bootloader: RAM-only segments, as the real one. */
#include <stdint.h>
volatile uint32_t bl_state = 7;
__attribute__((used)) const uint8_t bl_code_pad[12288] = {1};
__attribute__((used, noreturn)) void call_start_cpu0(void)
{
    for (;;) { bl_state += bl_code_pad[bl_state % sizeof bl_code_pad]; }
}
