"""partkit: ESP32 partition tables, byte-identical to ESP-IDF, with real size checks.

The package is a pure codec: text or bytes in, model out, text or bytes back. Only
``partkit.cli`` and the build-system plugins touch files or print.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
