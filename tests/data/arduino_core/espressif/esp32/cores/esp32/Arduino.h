/* Simulated esp32 core: just what a test sketch needs. */
#pragma once
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
void setup(void);
void loop(void);
#ifdef __cplusplus
}
#endif
/* Puts a sketch's size knob at the end of the flash-mapped code, so the .bin grows with it. */
#define SKETCH_PAD __attribute__((section(".flash_pad"), used))
