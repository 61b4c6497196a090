"""Arduino (arduino-esp32 core): build folders, the size recipe and the core hook set-up."""
