"""A valid partition table from what the user asks for (``partkit new``).

Layout, in flash order, as ESP-IDF's and Arduino's predefined tables do it: the system
partitions (nvs, otadata, phy_init) right after the partition table, below the first app;
then the fixed-size data partitions (coredump, then the requested ones) that fit before the
first 64 KiB boundary; the app slots (equal, 64 KiB multiples, 64 KiB aligned); the other
fixed-size data partitions; the ``rest`` partition, if any; a coredump that did not fit
before the apps last (at the flash end when there is a ``rest``).

Without an explicit size, nvs gets what is left below the first app once otadata and
phy_init have their place, at most 24 KiB: 24 KiB next to phy_init (ESP-IDF's single-app
tables), 16 KiB next to otadata and phy_init (ESP-IDF's two_ota, nvs 0x9000, otadata 0xd000,
phy 0xf000), 20 KiB next to otadata (Arduino, otadata 0xe000).

``max`` app slots are the largest equal slots that leave every other partition its
requested room; what stays free is then smaller than one 64 KiB unit per slot. ``max``
and ``rest`` both mean "what is left", so a request may use only one of them.
"""

from __future__ import annotations

from partkit.common.errors import PartkitError, error
from partkit.common.numbers import align_up, format_size
from partkit.common.record import Record
from partkit.table.csvparse import PARTITION_TABLE_SIZE
from partkit.table.layout import APP_ALIGNMENT, DATA_ALIGNMENT
from partkit.table.model import Partition, PartitionTable
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_COUNT,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_DATA_COREDUMP,
    SUBTYPE_DATA_FAT,
    SUBTYPE_DATA_LITTLEFS,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
    SUBTYPE_DATA_PHY,
    SUBTYPE_DATA_SPIFFS,
    type_name,
)
from partkit.table.render import csv_size, flags_text
from partkit.table.verify import MAX_NAME_BYTES, NVS_RW_MIN_SIZE, OTADATA_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.names import SubtypeRegistry

__all__ = ["DEFAULT_NVS_SIZE", "Request", "Want", "nvs_size", "plan", "render_csv"]

DEFAULT_NVS_SIZE = 0x6000  # 24 KiB, ESP-IDF's single-app default
PHY_SIZE = 0x1000
# Smallest useful size of a ``rest`` partition: NVS needs 3 pages, a file system 2 blocks.
REST_MINIMUM = {SUBTYPE_DATA_NVS: NVS_RW_MIN_SIZE, SUBTYPE_DATA_FAT: 0x2000,
                SUBTYPE_DATA_SPIFFS: 0x2000, SUBTYPE_DATA_LITTLEFS: 0x2000}


class Want(Record):
    """One requested data partition; ``size`` None means ``rest`` (to the flash end)."""

    __slots__ = ("name", "size", "subtype")

    name: str
    subtype: int
    size: int | None

    def __init__(self, name: str, subtype: int, size: int | None) -> None:
        self._init(name=name, subtype=subtype, size=size)

    def __repr__(self) -> str:
        return f"Want({self.name!r}, 0x{self.subtype:x}, {self.size!r})"

    @property
    def minimum(self) -> int:
        if self.size is not None:
            return align_up(self.size, DATA_ALIGNMENT)
        return REST_MINIMUM.get(self.subtype, DATA_ALIGNMENT)


class Request(Record):
    """What ``partkit new`` was asked for. ``app_size`` None means ``max``; ``ota`` 0 means
    one factory app; ``nvs`` None means the default size (see the module), ``nvs`` and
    ``coredump`` 0 mean none."""

    __slots__ = ("app_size", "coredump", "data", "flash_size", "nvs", "ota", "otadata", "phy",
                 "table_offset")

    flash_size: int
    table_offset: int
    ota: int
    app_size: int | None
    nvs: int | None
    otadata: bool
    phy: bool
    coredump: int
    data: tuple[Want, ...]

    def __init__(self, flash_size: int, table_offset: int = 0x8000, ota: int = 0,
                 app_size: int | None = None, nvs: int | None = None,
                 otadata: bool = False, phy: bool = False, coredump: int = 0,
                 data: tuple[Want, ...] = ()) -> None:
        self._init(flash_size=flash_size, table_offset=table_offset, ota=ota,
                   app_size=app_size, nvs=nvs, otadata=otadata, phy=phy, coredump=coredump,
                   data=tuple(data))

    def __repr__(self) -> str:
        return "Request(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def _bad(message: str, hint: str | None = None) -> PartkitError:
    return PartkitError(error(message, None, hint))


def _validate(req: Request) -> None:
    if not 2 <= req.ota <= SUBTYPE_APP_OTA_COUNT and req.ota != 0:
        if req.ota == 1:
            raise _bad("--ota 1: a single OTA slot cannot be updated over the air (the "
                       "running app cannot overwrite itself)",
                       "use --ota 2 (two slots that take turns), or --factory")
        raise _bad(f"--ota {req.ota}: the bootloader knows 2 to {SUBTYPE_APP_OTA_COUNT} OTA "
                   "slots (or 0: one factory app)")
    if req.app_size is not None and req.app_size <= 0:
        raise _bad(f"--app-size {req.app_size}: an app slot needs at least 64K",
                   "give the slot size (e.g. --app-size 1536K), or 'max'")
    if req.nvs is not None and 0 < req.nvs < NVS_RW_MIN_SIZE:
        raise _bad(f"--nvs {format_size(req.nvs)}: a read/write NVS needs at least "
                   f"{format_size(NVS_RW_MIN_SIZE)}", "use --nvs 12K or more (or --nvs 0: none)")
    rests = [w.name for w in req.data if w.size is None]
    if req.app_size is None:
        rests.insert(0, "app (max)")
    if len(rests) > 1:
        raise _bad(f"only one partition can take what is left, but {' and '.join(rests)} "
                   "both ask for it", "give all but one of them a size")
    names = [n for n, _ in _system_names(req)] + [w.name for w in req.data]
    seen: set[str] = set()
    for name in names:
        if not name or "," in name or name != name.strip():
            raise _bad(f"partition name '{name}' is not usable in a CSV",
                       "names are non-empty, without commas or surrounding spaces")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise _bad(f"partition name '{name}' is longer than {MAX_NAME_BYTES} bytes",
                       "the binary table stores 16 bytes of the name")
        if name in seen:
            raise _bad(f"partition name '{name}' is requested twice",
                       "give each data partition its own name (--data NAME:SUBTYPE=SIZE, "
                       "--fs FORMAT:NAME=SIZE)")
        seen.add(name)
    for w in req.data:
        if w.subtype == SUBTYPE_DATA_NVS and w.size is not None and w.size < NVS_RW_MIN_SIZE:
            raise _bad(f"NVS partition '{w.name}' of {format_size(w.size)} is too small "
                       f"(a read/write NVS needs {format_size(NVS_RW_MIN_SIZE)})")
        if w.subtype == SUBTYPE_DATA_OTA:
            raise _bad(f"'{w.name}': otadata is added by --ota / --otadata, not --data")


def _system_names(req: Request) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    if req.nvs is None or req.nvs:
        out.append(("nvs", SUBTYPE_DATA_NVS))
    if req.ota or req.otadata:
        out.append(("otadata", SUBTYPE_DATA_OTA))
    if req.phy:
        out.append(("phy_init", SUBTYPE_DATA_PHY))
    if req.coredump:
        out.append(("coredump", SUBTYPE_DATA_COREDUMP))
    out += [(f"ota_{i}", -1) for i in range(req.ota)] or [("factory", -1)]
    return out


def nvs_size(req: Request) -> int:
    """The nvs size: the requested one, or the anchors' default (see the module)."""
    if req.nvs is not None:
        return align_up(req.nvs, DATA_ALIGNMENT)
    cursor = req.table_offset + PARTITION_TABLE_SIZE
    room = align_up(cursor, APP_ALIGNMENT) - cursor
    if req.ota or req.otadata:
        room -= OTADATA_SIZE
    if req.phy:
        room -= PHY_SIZE
    return min(DEFAULT_NVS_SIZE, room) if room >= NVS_RW_MIN_SIZE else DEFAULT_NVS_SIZE


def plan(req: Request) -> PartitionTable:
    """Lay out the request; raises PartkitError naming the shortfall when it cannot fit."""
    _validate(req)
    system: list[Want] = []
    nvs = nvs_size(req)
    if nvs:
        system.append(Want("nvs", SUBTYPE_DATA_NVS, nvs))
    if req.ota or req.otadata:
        system.append(Want("otadata", SUBTYPE_DATA_OTA, OTADATA_SIZE))
    if req.phy:
        system.append(Want("phy_init", SUBTYPE_DATA_PHY, PHY_SIZE))
    coredump = (Want("coredump", SUBTYPE_DATA_COREDUMP, align_up(req.coredump, DATA_ALIGNMENT))
                if req.coredump else None)
    fixed = ([coredump] if coredump else []) + [w for w in req.data if w.size is not None]
    rest = next((w for w in req.data if w.size is None), None)

    parts: list[Partition] = []
    cursor = req.table_offset + PARTITION_TABLE_SIZE
    # The system partitions always sit before the apps, as in every predefined table, so
    # the last app slot can grow into free space later (partkit resize).
    for w in system:
        parts.append(Partition(w.name, DATA, w.subtype, cursor, w.minimum))
        cursor += w.minimum
    app_start = align_up(cursor, APP_ALIGNMENT)
    # Other partitions that fit fill the space before the first app (first fit, in order);
    # the others follow the apps, so no 64 KiB of flash is lost to alignment.
    after_apps: list[Want] = []
    for w in fixed:
        if cursor + w.minimum <= app_start:
            parts.append(Partition(w.name, DATA, w.subtype, cursor, w.minimum))
            cursor += w.minimum
        else:
            after_apps.append(w)
    slots = max(req.ota, 1)
    room_after = sum(w.minimum for w in after_apps) + (rest.minimum if rest else 0)
    available = req.flash_size - app_start - room_after
    if req.app_size is None:
        slot = max(available, 0) // slots // APP_ALIGNMENT * APP_ALIGNMENT
        if slot == 0:
            _shortfall(req, slots * APP_ALIGNMENT - available, "one 64 KiB unit per app slot")
    else:
        slot = align_up(req.app_size, APP_ALIGNMENT)
        if slots * slot > available:
            _shortfall(req, slots * slot - available,
                       f"{slots} app slot{'s' if slots > 1 else ''} of {format_size(slot)}")
    names = [f"ota_{i}" for i in range(req.ota)] or ["factory"]
    for i, name in enumerate(names):
        subtype = SUBTYPE_APP_OTA_MIN + i if req.ota else SUBTYPE_APP_FACTORY
        parts.append(Partition(name, APP, subtype, app_start + i * slot, slot))
    cursor = app_start + slots * slot
    # A coredump after the apps goes last, at the flash end when a partition takes the rest
    # (Arduino's tables); the rest partition ends where it starts.
    last = [w for w in after_apps if w is coredump]
    for w in [w for w in after_apps if w is not coredump]:
        parts.append(Partition(w.name, DATA, w.subtype, cursor, w.minimum))
        cursor += w.minimum
    if rest is not None:
        size = req.flash_size - cursor - sum(w.minimum for w in last)
        parts.append(Partition(rest.name, DATA, rest.subtype, cursor, size))
        cursor += size
    for w in last:
        parts.append(Partition(w.name, DATA, w.subtype, cursor, w.minimum))
        cursor += w.minimum
    return PartitionTable(sorted(parts, key=lambda p: p.offset))


def _shortfall(req: Request, missing: int, apps: str) -> None:
    missing = align_up(missing, DATA_ALIGNMENT)
    raise PartkitError(error(
        f"the request does not fit the {format_size(req.flash_size)} flash: "
        f"{format_size(missing)} ({missing} bytes) missing for {apps}", None,
        "make partitions smaller, use fewer OTA slots, or a bigger --flash-size"))


def render_csv(table: PartitionTable, subtypes: SubtypeRegistry, header: str = "") -> str:
    """The table as an aligned, commented ESP-IDF CSV."""
    rows = [(p.name, type_name(p.type), subtypes.render(p.type, p.subtype), f"0x{p.offset:x}",
             csv_size(p.size), flags_text(p)) for p in table]
    titles = ("# Name", "Type", "SubType", "Offset", "Size", "Flags")
    widths = [max(len(r[i]) + 1 for r in [titles, *rows]) for i in range(5)]

    def line(cells: tuple[str, ...]) -> str:
        text = "".join((c + ",").ljust(w + 1) for c, w in zip(cells[:5], widths))
        return (text + cells[5]).rstrip() + "\n"

    comments = "".join(f"# {c}\n" if c else "#\n" for c in header.splitlines())
    return comments + line(titles) + "".join(line(r) for r in rows)
