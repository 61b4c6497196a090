"""Flash contents: image files, otadata, partition contents, flash_args, lookups."""
