"""Helpers shared by the build-system adapters (SCons tool, PlatformIO script).

Plain values in, plain values out: paths, option texts, lists of (offset, path). Nothing
here imports SCons or PlatformIO; the adapters read their environment and call these.
"""
