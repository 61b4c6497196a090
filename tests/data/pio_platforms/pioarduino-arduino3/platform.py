"""Platform class of the espressif32 test fixture (see README.md)."""

from platformio.public import PlatformBase


class Espressif32Platform(PlatformBase):
    pass
