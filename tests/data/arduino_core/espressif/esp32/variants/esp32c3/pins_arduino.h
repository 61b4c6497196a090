#pragma once
#define LED_BUILTIN 8
