"""What a device in the field does with a table: the facts the rules and the plan rest on.

From ESP-IDF v6.0.2 (docs/diff.md cites the places):

- which app the bootloader tries first and its fallback order: partkit.flash.bootpredict
  (the one model ``image check`` uses too); the sequence numbers below select slot
  ``(seq - 1) % app_count`` there;
- ``esp_ota_get_next_update_partition`` walks OTA slots in subtype order from the running
  one (esp_ota_ops.c), not in table order.
"""

from __future__ import annotations

from math import gcd

from partkit.flash.bootpredict import ota_index
from partkit.table.names import is_ota_app

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.model import Partition, PartitionTable

__all__ = ["bridging_seq", "next_update_slot", "selecting_seq"]

MAX_SEQ = 0xFFFFFFFE  # 0xFFFFFFFF is an erased record


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
