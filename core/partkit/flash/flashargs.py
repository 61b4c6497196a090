"""``flash_args`` and ``flasher_args.json`` in the formats ESP-IDF's build writes.

``flash_args`` is an esptool argfile (``esptool write-flash @flash_args``): a first line
``--flash-mode M --flash-freq F --flash-size S`` (freq before size), then one
``<0xoffset> <file>`` line per image, joined by newlines, with no trailing newline.
``flasher_args.json`` lists the same images under ``flash_files`` plus one named entry per
image, and the esptool settings (ESP-IDF ``components/esptool_py/flasher_args.json.in``
and ``tools/cmake/flash_targets.cmake``). Paths are relative to the directory the files
are written to, as in a build directory.

esptool reads an argfile line by line with ``shlex.split`` (POSIX rules), so a path with a
space, quote or other shell character is written single-quoted (:func:`argfile_quote`);
plain paths stay bare, byte-identical to ESP-IDF's file.
"""

from __future__ import annotations

import json
import os

from partkit.common.chips import find_chip
from partkit.common.record import Record

__all__ = ["FlashFile", "argfile_quote", "default_flash_freq", "flash_args",
           "flasher_args_json"]



# Characters shlex.split leaves alone outside quotes (shlex.quote's safe set; no `re` import).
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")


def argfile_quote(text: str) -> str:
    """``text`` as one word of an esptool argfile (``shlex.split`` gives it back unchanged)."""
    if text and all(c in _BARE for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def default_flash_freq(chip: str | None) -> str:
    """Kconfig's ESPTOOLPY_FLASHFREQ default for ``chip`` (80m for an unknown chip)."""
    row = find_chip(chip)
    return row.flash_freq if row is not None else "80m"


class FlashFile(Record):
    """One image to flash: its entry name (``bootloader``, ``app``, ...), offset, file."""

    __slots__ = ("encrypted", "name", "offset", "path")

    name: str
    offset: int
    path: str
    encrypted: bool

    def __init__(self, name: str, offset: int, path: str, encrypted: bool = False) -> None:
        # esptool accepts forward slashes everywhere; only Windows separators are turned
        # into them (on POSIX a backslash is part of a file name)
        if os.sep == "\\":
            path = path.replace("\\", "/")
        self._init(name=name, offset=offset, path=path, encrypted=encrypted)


def flash_args(files: list[FlashFile], mode: str, freq: str, size: str) -> str:
    lines = [f"--flash-mode {mode} --flash-freq {freq} --flash-size {size}"]
    lines += [f"0x{f.offset:x} {argfile_quote(f.path)}" for f in files]
    return "\n".join(lines)


def flasher_args_json(
    files: list[FlashFile],
    mode: str,
    freq: str,
    size: str,
    chip: str,
    *,
    before: str = "default-reset",
    after: str = "hard-reset",
    stub: bool = True,
) -> str:
    """The JSON text, laid out like ESP-IDF's template (one key per line at top level)."""

    def q(value: object) -> str:
        return json.dumps(value)

    settings = [("--flash-mode", mode), ("--flash-size", size), ("--flash-freq", freq)]
    write_args = ", ".join(f"{q(k)}, {q(v)}" for k, v in settings)
    out = ["{", f'    "write_flash_args" : [ {write_args} ],']
    out.append('    "flash_settings" : {')
    out.append(f'        "flash_mode": {q(mode)},')
    out.append(f'        "flash_size": {q(size)},')
    out.append(f'        "flash_freq": {q(freq)}')
    out.append("    },")
    out.append('    "flash_files" : {')
    out.append(",\n".join(f'        "0x{f.offset:x}" : {q(f.path)}' for f in files))
    out.append("    },")
    seen: set[str] = set()
    for f in files:
        if f.name in seen or f.name in ("write_flash_args", "flash_settings", "flash_files",
                                        "extra_esptool_args"):
            continue
        seen.add(f.name)
        out.append(f'    {q(f.name)} : {{ "offset" : "0x{f.offset:x}", "file" : {q(f.path)}, '
                   f'"encrypted" : "{"true" if f.encrypted else "false"}" }},')
    out.append('    "extra_esptool_args" : {')
    out.append(f'        "after"  : {q(after)},')
    out.append(f'        "before" : {q(before)},')
    out.append(f'        "stub"   : {"true" if stub else "false"},')
    out.append(f'        "chip"   : {q(chip)}')
    out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"
