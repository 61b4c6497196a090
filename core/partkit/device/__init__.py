"""Partitions on a connected chip: one esptool connection per operation (extra ``device``).

``session`` owns the connection (esptool used as a library, imported only here),
``security`` decides whether flash may be changed, ``target`` puts a device and an image
file behind one small interface, and ``ops`` holds the checks both share.
"""
