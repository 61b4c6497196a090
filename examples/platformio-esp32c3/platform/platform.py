"""Platform class for the offline ESP32-C3 example platform (no packages to install)."""

from platformio.public import PlatformBase


class Partkitesp32c3Platform(PlatformBase):
    pass
