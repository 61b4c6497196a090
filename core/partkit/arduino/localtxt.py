"""partkit's block in an esp32 core's ``platform.local.txt``.

``platform.local.txt`` beside ``platform.txt`` adds or overrides platform properties and
survives nothing but the core's own folder: a core update starts without it. partkit
writes one marked block there and leaves every other line as the user wrote it:

- a prebuild hook (after the core's, which copy the table) that validates the sketch's own
  ``partitions.csv`` with its ``file:line`` (the core's generator names no line);
- a postobjcopy hook that runs ``partkit arduino check`` on the build folder (after the
  core's own hooks, which make the table and merge the images; hooks run in the text order
  of their keys, so the key is chosen to sort after the core's), failing the compile when
  the app does not fit the table the build made;
- ``recipe.advanced_size.pattern`` (arduino-cli >= 0.21, IDE 2): the size line from that
  table instead of the board's fixed ``upload.maximum_size``.

The interpreter is the absolute path of the Python that runs partkit, so no virtual
environment has to be active in the IDE; the IDE splits a command at spaces outside double
quotes (no shell), so every path is in double quotes.
"""

from __future__ import annotations

import os

from partkit.common.errors import PartkitError, SourceLocation, error

__all__ = ["BEGIN", "END", "LOCAL_TXT", "block_text", "core_file", "hook_key",
           "installed_block", "read_text", "remove_block", "with_block"]

LOCAL_TXT = "platform.local.txt"
BEGIN = "# >>> partkit >>> (written by 'partkit arduino install'; " \
        "'partkit arduino uninstall' removes it)"
END = "# <<< partkit <<<"
_HOOK_PREFIX = "recipe.hooks.objcopy.postobjcopy."
_PREBUILD_PREFIX = "recipe.hooks.prebuild."
_BUILD_ARGS = ('"{build.path}" --project-name "{build.project_name}" --chip "{build.mcu}" '
               '--flash-size "{build.flash_size}" --bootloader-offset "{build.bootloader_addr}" '
               '--core-dir "{runtime.platform.path}"')


def hook_key(platform_txt: dict[str, str], prefix: str = _HOOK_PREFIX) -> str:
    """A hook key (``prefix``: postobjcopy or prebuild) that sorts (as text) after every
    hook of that kind the core defines."""
    ids = [k[len(prefix):-len(".pattern")] for k in platform_txt
           if k.startswith(prefix) and k.endswith(".pattern")
           and not k.endswith("_partkit.pattern")]
    last = max(ids, default="9")
    # "<last>_partkit" sorts after "<last>" ('_' > '.') and so after every other key
    return f"{prefix}{last}_partkit.pattern"


def _quoted(path: str) -> str:
    if '"' in path:
        raise PartkitError(error("the Python interpreter's path contains a double quote, "
                                 "which an Arduino recipe cannot quote", SourceLocation(path),
                                 hint="install partkit with a Python in another folder"))
    return f'"{path}"'


def block_text(python: str, platform_txt: dict[str, str]) -> str:
    """The block for a core whose ``platform.txt`` properties are given."""
    run = f"{_quoted(python)} -m partkit arduino"
    return "\n".join([
        BEGIN,
        "# an invalid partitions.csv of the sketch: its file:line, before the core builds it",
        f"{hook_key(platform_txt, _PREBUILD_PREFIX)}={run} table \"{{build.source.path}}\" "
        '--chip "{build.mcu}"',
        "# fails the compile when the app does not fit the partition table the build made",
        f"{hook_key(platform_txt)}={run} check {_BUILD_ARGS}",
        "# arduino-cli / IDE 2: the size line from that table (IDE 1.8 ignores it)",
        f"recipe.advanced_size.pattern={run} size {_BUILD_ARGS} "
        '--size-tool "{compiler.path}{compiler.size.cmd}"',
        END,
    ]) + "\n"


def _split(text: str, path: str) -> tuple[str, str | None, str]:
    """(before, block or None, after). A damaged block (no end marker) is bad input."""
    if text.startswith("\ufeff"):  # a BOM stays first, before partkit's block
        before, block, after = _split(text[1:], path)
        return "\ufeff" + before, block, after
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == BEGIN]
    if not starts:
        return text, None, ""
    start = starts[0]
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip("\r\n") == END:
            return ("".join(lines[:start]), "".join(lines[start:end + 1]),
                    "".join(lines[end + 1:]))
    raise PartkitError(error("partkit's block has no end marker", SourceLocation(path, start + 1),
                             hint=f"restore the line '{END}' or delete the block by hand"))


def installed_block(text: str, path: str) -> str | None:
    """partkit's block as in the file, line ends as "\n" (an editor may have made them CRLF)."""
    block = _split(text, path)[1]
    return None if block is None else block.replace("\r\n", "\n")


def with_block(text: str, block: str, path: str) -> str:
    """``text`` with partkit's block replaced, or put first (after a BOM), in the file's line
    ends. First, so that removing it gives the user's bytes back exactly (appending would
    have to add a newline to a last line without one); the user's own settings, after it,
    still win over it."""
    before, old, after = _split(text, path)
    if "\r\n" in text:
        block = block.replace("\r\n", "\n").replace("\n", "\r\n")
    if old is None:
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        return bom + block + text[len(bom):]
    return before + block + after


def remove_block(text: str, path: str) -> str:
    before, _, after = _split(text, path)
    return before + after


def read_text(path: str) -> str:
    """The file's text, or "" when it does not exist."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PartkitError(error(f"cannot read: {exc}", SourceLocation(path))) from None


def core_file(core: str) -> str:
    return os.path.join(core, LOCAL_TXT)
