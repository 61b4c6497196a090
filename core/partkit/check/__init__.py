"""Size checks: ESP image reader, app/bootloader/flash checks, reports and the flash map."""
