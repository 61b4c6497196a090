"""Flash contents: the ESP image reader, image files, otadata, partition contents,
flash_args, lookups."""
