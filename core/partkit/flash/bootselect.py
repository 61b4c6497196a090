"""Selecting the boot slot in otadata, the way the OTA code on the device does it.

The new record gets the smallest sequence number above the active one that maps to the
wanted slot (``(seq - 1) % ota_count == slot``) and goes into the *other* sector, so the
active record stays intact until the new one is complete: a device that loses power half
way still boots the old selection (a record marked invalid or aborted does not count,
as on the device). With no valid record, sequence ``slot + 1`` goes into
sector 0. Selecting the factory app blanks both sectors (blank otadata boots factory).
One deliberate difference from esp_ota_set_boot_partition (ESP-IDF v6.0.2): when the
active record already selects the slot, the device rewrites that sector in place with the
same sequence number; partkit writes the next matching one into the other sector, which
boots the same slot and keeps a valid record through a power cut.
"""

from __future__ import annotations

from partkit.flash.otadata import (
    ENTRY_SIZE,
    SECTOR_SIZE,
    STATE_UNDEFINED,
    decode,
    encode_entry,
)

__all__ = ["select_slot"]


def select_slot(current: bytes, slot: int | None, ota_count: int,
                state: int = STATE_UNDEFINED) -> bytes:
    """New otadata bytes (same length as ``current``) selecting OTA ``slot``, or factory
    when ``slot`` is None. Raises ValueError for a slot outside 0..ota_count-1."""
    size = len(current)
    if slot is None:
        return b"\xff" * size
    if not 0 <= slot < ota_count:
        raise ValueError(f"OTA slot {slot} out of range (the table has {ota_count} OTA apps)")
    data = bytearray(current.ljust(max(size, SECTOR_SIZE + ENTRY_SIZE), b"\xff"))
    # esp_ota_ops takes the active record as the bootloader does: written, CRC good and
    # not invalid/aborted; an aborted record with a higher seq is what gets replaced.
    valid = [e for e in decode(bytes(data)) if e.bootable]
    if valid:
        active = max(valid, key=lambda e: e.seq)
        seq = active.seq + 1
        seq += (slot - (seq - 1)) % ota_count
        index = 1 - active.index
    else:
        seq, index = slot + 1, 0
    if seq > 0xFFFFFFFE:
        raise ValueError("otadata sequence number would overflow; erase otadata first")
    start = index * SECTOR_SIZE
    end = min(start + SECTOR_SIZE, size)
    data[start:end] = b"\xff" * (end - start)
    data[start:start + ENTRY_SIZE] = encode_entry(seq, state)
    return bytes(data[:size])
