"""The otadata partition: two copies of the boot selection record, one per flash sector.

Each sector starts with a 32-byte ``esp_ota_select_entry_t`` (little-endian):
``ota_seq`` u32, ``seq_label`` 20 bytes, ``ota_state`` u32, ``crc`` u32. The CRC covers
only the four ``ota_seq`` bytes: ROM ``crc32_le(UINT32_MAX, &ota_seq, 4)``, which equals
``zlib.crc32(seq_bytes, 0xFFFFFFFF)``. The bootloader takes the valid entry with the
highest sequence number and boots OTA slot ``(ota_seq - 1) % number_of_ota_apps`` in
unsigned 32-bit arithmetic (``ota_seq`` 0 wraps to 0xFFFFFFFF first); with no valid entry
it boots the factory app (else ota_0). A bootloader with rollback enabled first marks a
record still in ``pending_verify`` aborted, so it no longer counts.
"""

from __future__ import annotations

import struct
import zlib

from partkit.common.record import Record

__all__ = [
    "ENTRY_SIZE",
    "OTADATA_SIZE",
    "SECTOR_SIZE",
    "STATE_NAMES",
    "OtaEntry",
    "active_entry",
    "active_slot",
    "decode",
    "encode_for_slot",
    "entry_crc",
    "slot_of_seq",
]

SECTOR_SIZE = 0x1000
OTADATA_SIZE = 2 * SECTOR_SIZE
ENTRY_SIZE = 32
ERASED_SEQ = 0xFFFFFFFF
_ENTRY = struct.Struct("<I20sII")

# esp_ota_img_states_t
STATE_NEW = 0x0
STATE_PENDING_VERIFY = 0x1
STATE_VALID = 0x2
STATE_INVALID = 0x3
STATE_ABORTED = 0x4
STATE_UNDEFINED = 0xFFFFFFFF
STATE_NAMES: dict[int, str] = {
    STATE_NEW: "new",
    STATE_PENDING_VERIFY: "pending_verify",
    STATE_VALID: "valid",
    STATE_INVALID: "invalid",
    STATE_ABORTED: "aborted",
    STATE_UNDEFINED: "undefined",
}


def slot_of_seq(seq: int, ota_app_count: int) -> int:
    """The OTA slot a sequence number selects, as the bootloader computes it: ``seq - 1``
    in uint32_t (0 wraps to 0xFFFFFFFF), then ``%`` the number of OTA apps."""
    return ((seq - 1) & 0xFFFFFFFF) % ota_app_count


def entry_crc(seq: int) -> int:
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


class OtaEntry(Record):
    """One decoded select entry (sector ``index`` 0 or 1)."""

    __slots__ = ("crc", "index", "label", "seq", "state")

    index: int
    seq: int
    label: bytes
    state: int
    crc: int

    def __init__(self, index: int, seq: int, label: bytes, state: int, crc: int) -> None:
        self._init(index=index, seq=seq, label=label, state=state, crc=crc)

    @property
    def erased(self) -> bool:
        return self.seq == ERASED_SEQ

    @property
    def crc_ok(self) -> bool:
        return self.crc == entry_crc(self.seq)

    @property
    def valid(self) -> bool:
        """What the bootloader accepts: a written sequence number with a matching CRC."""
        return not self.erased and self.crc_ok

    @property
    def bootable(self) -> bool:
        """Valid and not marked invalid/aborted by the rollback state machine."""
        return self.valid and self.state not in (STATE_INVALID, STATE_ABORTED)

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, f"0x{self.state:08x}")

    def slot(self, ota_app_count: int) -> int | None:
        if not self.valid or ota_app_count <= 0:
            return None
        return slot_of_seq(self.seq, ota_app_count)

    def __repr__(self) -> str:
        return (
            f"OtaEntry({self.index}, seq=0x{self.seq:x}, state={self.state_name}, "
            f"crc=0x{self.crc:08x}{'' if self.crc_ok else ' (bad)'})"
        )


def decode(data: bytes) -> tuple[OtaEntry, OtaEntry]:
    """Decode both sectors of an otadata partition (at least 0x1000 + 32 bytes)."""
    if len(data) < SECTOR_SIZE + ENTRY_SIZE:
        raise ValueError(f"otadata needs at least {SECTOR_SIZE + ENTRY_SIZE} bytes")
    entries = []
    for index in (0, 1):
        seq, label, state, crc = _ENTRY.unpack_from(data, index * SECTOR_SIZE)
        entries.append(OtaEntry(index, seq, label, state, crc))
    return entries[0], entries[1]


def active_entry(entries: tuple[OtaEntry, OtaEntry], rollback: bool = False) -> OtaEntry | None:
    """The entry the bootloader follows: highest sequence number among bootable entries
    (sector 0 on a tie). With ``rollback``, a pending_verify entry is aborted first."""
    usable = [e for e in entries if e.bootable
              and not (rollback and e.state == STATE_PENDING_VERIFY)]
    if not usable:
        return None
    return max(usable, key=lambda e: e.seq)


def active_slot(entries: tuple[OtaEntry, OtaEntry], ota_app_count: int,
                rollback: bool = False) -> int | None:
    """OTA slot index selected by otadata, or None (boot default: factory, else ota_0)."""
    entry = active_entry(entries, rollback)
    return None if entry is None else entry.slot(ota_app_count)


def encode_entry(seq: int, state: int = STATE_UNDEFINED) -> bytes:
    return _ENTRY.pack(seq, b"\xff" * 20, state, entry_crc(seq))


def encode_for_slot(
    slot: int | None, ota_app_count: int, size: int = OTADATA_SIZE, state: int = STATE_UNDEFINED
) -> bytes:
    """Initial otadata: all 0xFF (``slot`` None, like ota_data_initial.bin) or selecting a slot.

    The selecting record goes into sector 0 with ``ota_seq = slot + 1``, the smallest
    sequence number that maps to that slot; sector 1 stays erased. ``state`` defaults to
    ``undefined`` (0xFFFFFFFF), which bootloaders with and without rollback both accept
    without a pending-verify cycle.
    """
    data = bytearray(b"\xff" * size)
    if slot is not None:
        if not 0 <= slot < ota_app_count:
            raise ValueError(f"OTA slot {slot} out of range (table has {ota_app_count} OTA apps)")
        data[:ENTRY_SIZE] = encode_entry(slot + 1, state)
    return bytes(data)
