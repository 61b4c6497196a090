"""``partkit image otadata IMAGE``: decode both otadata sectors and tell which app boots.

:func:`write_otadata_report` prints the answer for ``partkit device otadata`` too.
"""

from __future__ import annotations

import json
import sys

from partkit.cli.dispatch import Subcommand
from partkit.cli.image.shared import (
    add_table_source,
    load,
    ota_apps,
    otadata_partition,
    read_otadata,
    reads_image,
)
from partkit.flash import otadata
from partkit.flash.bootpredict import boot_choice, rollback_note

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from partkit.flash.otadata import OtaEntry
    from partkit.table.model import Partition, PartitionTable

__all__ = ["OTADATA", "write_otadata_report"]

EXIT_CODES = """\
exit status:
  0  otadata decoded (also when a sector has a bad CRC: the output says so)
  2  bad input (no otadata partition, unreadable image)
"""


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="flash image or dump")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_table_source(p)


def _otadata(args: argparse.Namespace) -> int:
    table, _ = load(args)
    part = otadata_partition(table, args.image)
    write_otadata_report(table, part, read_otadata(args.image, part), as_json=args.json)
    return 0


def write_otadata_report(table: PartitionTable, part: Partition, data: bytes, *,
                         as_json: bool, where: str = "") -> None:
    """Print what otadata ``part`` (its bytes ``data``) holds and which app boots (stdout).

    ``where`` follows the offset in the text report (`` on PORT`` for a device).
    """
    entries = otadata.decode(data)
    ota = ota_apps(table)
    active = otadata.active_entry(entries)
    slot = otadata.active_slot(entries, len(ota))
    if slot is not None and active is not None:
        chosen = boot_choice(table, active.seq, True)  # the last row of a repeated subtype
        boots = chosen.name if chosen is not None else None
    else:
        default = table.boot_default()
        boots = default.name if default is not None else None
    rolled = rollback_note(entries, table)
    if as_json:
        sys.stdout.write(json.dumps({
            "otadata": part.name, "offset": part.offset, "ota_apps": [p.name for p in ota],
            "sectors": [_entry_json(e, len(ota)) for e in entries],
            "active_sector": None if active is None else active.index,
            "active_slot": slot, "boots": boots, "with_rollback": rolled}, indent=2) + "\n")
        return
    out = [f"otadata '{part.name}' at 0x{part.offset:x}{where}; OTA apps: "
           + (", ".join(f"ota_{p.subtype - 0x10}={p.name}" for p in ota) or "none")]
    for e in entries:
        if e.erased:
            out.append(f"  sector {e.index}: erased")
            continue
        crc = "ok" if e.crc_ok else f"BAD (expected 0x{otadata.entry_crc(e.seq):08x})"
        sel = e.slot(len(ota))
        out.append(f"  sector {e.index}: ota_seq {e.seq} -> "
                   + (f"ota_{sel}" if sel is not None else
                      "ignored" if not e.crc_ok else "no OTA slot")
                   + f", state {e.state_name}, crc 0x{e.crc:08x} {crc}"
                   + (" (active)" if e is active else ""))
    how = (f"otadata selects ota_{slot}" if slot is not None else
           "no valid record: the boot default")
    out.append(f"boots: {boots or 'nothing (no app partition)'} ({how})")
    if rolled is not None:
        out.append(f"with rollback: {rolled}")
    sys.stdout.write("\n".join(out) + "\n")


def _entry_json(e: OtaEntry, count: int) -> dict[str, object]:
    return {"sector": e.index, "ota_seq": e.seq, "seq_label": e.label.hex(),
            "state": e.state_name, "crc": e.crc, "crc_ok": e.crc_ok, "erased": e.erased,
            "valid": e.valid, "slot": e.slot(count)}


OTADATA = Subcommand("otadata", "decode both otadata sectors and tell which app boots",
                     _options, reads_image(_otadata), EXIT_CODES)
