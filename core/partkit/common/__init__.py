"""Shared foundations: diagnostics, number syntax, records, file access, chip facts."""
