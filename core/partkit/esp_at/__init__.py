"""ESP-AT's secondary partition table (at_customize.csv)."""
