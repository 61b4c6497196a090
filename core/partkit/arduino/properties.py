"""Arduino platform property files (``boards.txt``, ``platform.txt``): ``key=value`` lines.

Only what partkit reads: comments (``#``) and blank lines are skipped, the last value of a
key wins, and a board's menu choices (``<board>.menu.<Menu>.<choice>.<key>``) override the
board's own ``<board>.<key>`` as the IDE does when that choice is selected (the first
choice of a menu the FQBN does not name).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["board_properties", "is_unexpanded", "parse_properties", "read_properties"]


def parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if eq:
            props[key.strip()] = value.strip()
    return props


def read_properties(path: str) -> dict[str, str]:
    """The file's properties; an unreadable file gives none (callers say what is unknown)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_properties(f.read(4 * 1024 * 1024))
    except OSError:
        return {}


def board_properties(boards: Mapping[str, str], board: str,
                     menu: Mapping[str, str]) -> dict[str, str]:
    """One board's properties with its selected menu choices applied (prefix removed)."""
    prefix = f"{board}."
    props = {k[len(prefix):]: v for k, v in boards.items()
             if k.startswith(prefix) and not k.startswith(f"{prefix}menu.")}
    chosen = dict(menu)
    for key in boards:  # a menu the FQBN does not name: its first choice, as the IDE does
        parts = key[len(prefix):].split(".") if key.startswith(f"{prefix}menu.") else []
        if len(parts) == 3:
            chosen.setdefault(parts[1], parts[2])
    for name, choice in chosen.items():
        choice_prefix = f"{prefix}menu.{name}.{choice}."
        props.update({k[len(choice_prefix):]: v for k, v in boards.items()
                      if k.startswith(choice_prefix)})
    return props


def is_unexpanded(value: str | None) -> bool:
    """True for a property the platform does not define: the IDE leaves ``{name}`` as is."""
    return not value or (value.startswith("{") and value.endswith("}"))
