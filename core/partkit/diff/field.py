"""What a device in the field does with a table: the facts the rules and the plan rest on.

From ESP-IDF v6.0.2 (docs/diff.md cites the places):

- the 2nd-stage bootloader indexes OTA app partitions by *subtype* (``ota_N`` is slot N)
  and counts them (``app_count``); the active otadata record selects slot
  ``(seq - 1) % app_count`` (bootloader_utility.c). Without a valid record it boots the
  factory app, else slot 0. A slot index with no partition (``ota_0``, ``ota_2`` only) or
  at or above ``app_count`` is never selected;
- ``esp_ota_get_next_update_partition`` walks OTA slots in subtype order from the running
  one (esp_ota_ops.c), not in table order.
"""

from __future__ import annotations

from math import gcd

from partkit.flash.otadata import slot_of_seq
from partkit.table.names import (
    APP,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_APP_TEST,
    is_ota_app,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable

__all__ = ["boot_choice", "boot_order", "bridging_seq", "next_update_slot", "ota_count",
           "ota_index", "selecting_seq"]

MAX_SEQ = 0xFFFFFFFE  # 0xFFFFFFFF is an erased record


def ota_index(p: Partition) -> int | None:
    """The bootloader's slot index of an OTA app partition (its subtype), else None."""
    return p.subtype - SUBTYPE_APP_OTA_MIN if is_ota_app(p.type, p.subtype) else None


def ota_count(table: PartitionTable) -> int:
    """``app_count``: how many OTA app partitions the bootloader counts."""
    return sum(1 for p in table if is_ota_app(p.type, p.subtype))


def _slot(table: PartitionTable, index: int) -> Partition | None:
    """``index_to_partition``: the last OTA row with this subtype (the bootloader overwrites
    earlier ones), only for an index below ``app_count``."""
    if not 0 <= index < ota_count(table):
        return None
    found = [p for p in table if ota_index(p) == index]
    return found[-1] if found else None


def boot_choice(table: PartitionTable, seq: int | None, has_otadata: bool) -> Partition | None:
    """The app partition the bootloader tries first: ``seq`` is the active otadata record's
    sequence number (None: no valid record). Image validity and fallback are not judged."""
    factory = [p for p in table if p.type == APP and p.subtype == SUBTYPE_APP_FACTORY]
    count = ota_count(table)
    if has_otadata and seq is not None and count:
        return _slot(table, slot_of_seq(seq, count))
    if factory:
        return factory[-1]
    return _slot(table, 0)  # then the bootloader tries slots 1.. in turn


def boot_order(table: PartitionTable, seq: int | None, has_otadata: bool) -> list[Partition]:
    """The app partitions in the order the bootloader tries them until one holds a valid
    image (``load_boot_image``): the selected index, the lower ones down to factory, the
    higher OTA slots, then the test app."""
    factory = [p for p in table if p.type == APP and p.subtype == SUBTYPE_APP_FACTORY]
    test = [p for p in table if p.type == APP and p.subtype == SUBTYPE_APP_TEST]
    count = ota_count(table)
    start = -1  # factory (without one, index 0 comes next either way)
    if has_otadata and seq is not None and count:
        start = slot_of_seq(seq, count)
    order = [*range(start, -2, -1), *range(start + 1, count)]
    found = [factory[-1] if i == -1 and factory else _slot(table, i) if i >= 0 else None
             for i in order]
    out = [p for p in found if p is not None]
    return out + ([test[-1]] if test and test[-1] not in out else [])


def selecting_seq(index: int, count: int, above: int = 0) -> int | None:
    """The smallest sequence number above ``above`` that selects slot ``index`` of ``count``."""
    return bridging_seq(above, ((index, count),))


def bridging_seq(above: int, wants: tuple[tuple[int, int], ...]) -> int | None:
    """The smallest ``s > above`` with ``(s - 1) % n == k`` for every ``(k, n)`` in ``wants``
    (the same record selecting the running slot under the old and the new slot count), or
    None when no such number exists (the congruences disagree, or it would overflow)."""
    residue, modulus = 0, 1
    for k, n in wants:
        if not 0 <= k < n:
            return None
        g = gcd(modulus, n)
        if (k - residue) % g:
            return None
        # step residue by modulus until it also matches k mod n (n/g steps at most)
        for _ in range(n // g):
            if residue % n == k:
                break
            residue += modulus
        modulus = modulus * n // g
    # s - 1 = residue (mod modulus), s - 1 >= above
    seq = above + (residue - above) % modulus + 1
    return seq if seq <= MAX_SEQ else None


def next_update_slot(table: PartitionTable, running: Partition | None) -> Partition | None:
    """The slot the next OTA writes: the OTA partition after the running one in subtype
    order (wrapping), or the lowest when the running app is not an OTA slot."""
    slots = sorted((p for p in table if is_ota_app(p.type, p.subtype)),
                   key=lambda p: p.subtype)
    if not slots:
        return None
    if running is None or ota_index(running) is None:
        return slots[0]
    later = [p for p in slots if p.subtype > running.subtype]
    return later[0] if later else (slots[0] if slots[0] is not running else None)
