"""Size checks: app/bootloader/flash/data checks, findings, reports and the flash map."""
