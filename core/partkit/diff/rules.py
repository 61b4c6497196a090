"""The OTA-safety rules: one table, each rule with a stable code, a title and its reason.

A rule looks at the two sides of a diff and the user's answers (which slot runs, which data
partitions the update erases on purpose) and returns the violations it finds; an empty list
means the rule holds. docs/diff.md lists the same rules with the same codes and reasons; a
test keeps the two in step.
"""

from __future__ import annotations

from partkit.common.record import Record
from partkit.diff.context import DiffContext
from partkit.diff.otaswitch import switch
from partkit.flash.bootpredict import boot_choice
from partkit.table.names import (
    APP,
    BUILTIN_SUBTYPES,
    DATA,
    SUBTYPE_APP_OTA_MIN,
    SUBTYPE_DATA_COREDUMP,
    SUBTYPE_DATA_EFUSE,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_NVS_KEYS,
    SUBTYPE_DATA_OTA,
    SUBTYPE_DATA_PHY,
    SUBTYPE_DATA_TEE_OTA,
    is_ota_app,
)
from partkit.table.verify import OTADATA_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.diff.changes import Change
    from partkit.table.model import Partition, PartitionTable

__all__ = ["RULES", "DiffContext", "Rule", "Violation", "evaluate", "rule"]

# Data the device itself owns (calibration, credentials, keys, crash dumps): never moved
# or resized by accident.
SYSTEM_DATA: dict[int, str] = {
    SUBTYPE_DATA_NVS: "nvs",
    SUBTYPE_DATA_NVS_KEYS: "nvs_keys",
    SUBTYPE_DATA_PHY: "phy",
    SUBTYPE_DATA_COREDUMP: "coredump",
    SUBTYPE_DATA_EFUSE: "efuse",
    SUBTYPE_DATA_TEE_OTA: "tee_ota",
}
SECURE_ALIGN = {"v1": 0x10000, "v2": 0x1000}
NVS_LABEL = "nvs"  # NVS_DEFAULT_PART_NAME


class Violation(Record):
    """One broken rule: the partitions involved, what happened and what would fix it."""

    __slots__ = ("code", "hint", "message", "partitions")

    code: str
    message: str
    partitions: tuple[str, ...]
    hint: str | None

    def __init__(self, code: str, message: str, partitions: tuple[str, ...] = (),
                 hint: str | None = None) -> None:
        self._init(code=code, message=message, partitions=partitions, hint=hint)


class Rule(Record):
    """A rule: stable ``code``, a one-line ``title``, the ``reason`` it exists, a check."""

    __slots__ = ("check", "code", "reason", "title")

    code: str
    title: str
    reason: str
    check: Callable[[DiffContext], list[Violation]]

    def __init__(self, code: str, title: str, reason: str,
                 check: Callable[[DiffContext], list[Violation]]) -> None:
        self._init(code=code, title=title, reason=reason, check=check)


def _hex(n: int) -> str:
    return f"0x{n:x}"


def _ota_apps(table: PartitionTable) -> list[Partition]:
    return [p for p in table if is_ota_app(p.type, p.subtype)]


def _erase_hint(names: list[str]) -> str:
    return ("if the update erases or migrates it on purpose, say so: --erase "
            + " ".join(dict.fromkeys(names)))


# --- the checks ---------------------------------------------------------------------------


def _table_offset(ctx: DiffContext) -> list[Violation]:
    old, new = ctx.old.table_offset, ctx.new.table_offset
    if old == new:
        return []
    return [Violation("table-offset", f"the table moves from {_hex(old)} to {_hex(new)}",
                      hint="keep the table where the bootloader on the devices looks: "
                           f"{_hex(old)}")]


def _md5_row(ctx: DiffContext) -> list[Violation]:
    old, new = ctx.old.md5, ctx.new.md5
    if old == new:
        return []
    what = "drops the MD5 row OLD has" if old else "adds an MD5 row OLD does not have"
    return [Violation("md5-row", f"NEW {what}",
                      hint="encode NEW as OLD was: " + ("with the MD5 row (no --disable-md5sum)"
                                                        if old else "with --disable-md5sum"))]


def _flash_size(ctx: DiffContext) -> list[Violation]:
    if ctx.flash_size is None:
        return []
    out = []
    for p in ctx.new.table:
        if p.end > ctx.flash_size:
            out.append(Violation(
                "flash-size", f"'{p.name}' ends at {_hex(p.end)}, beyond the "
                f"{_hex(ctx.flash_size)}-byte flash ({ctx.flash_source or 'given'})",
                (p.name,), "shrink or move it; the bootloader's flash size does not grow "
                "with a table update"))
    return out


def _running_moved(ctx: DiffContext) -> list[Violation]:
    out = []
    for run in ctx.running:
        if ctx.new_at(run.offset) is None:
            out.append(Violation(
                "running-slot-moved",
                f"no app partition starts at {_hex(run.offset)} in NEW, where the running app "
                f"'{run.name}' sits", (run.name,),
                f"keep an app partition at {_hex(run.offset)}; if '{run.name}' does not run "
                "on the devices, name the slot that does with --running"))
    return out


def _running_shrunk(ctx: DiffContext) -> list[Violation]:
    out = []
    for run in ctx.running:
        now = ctx.new_at(run.offset)
        if now is not None and now.size < run.size:
            out.append(Violation(
                "running-slot-shrunk",
                f"the running slot '{run.name}' shrinks from {_hex(run.size)} to "
                f"{_hex(now.size)} bytes" + ("" if now.name == run.name
                                             else f" (as '{now.name}')"),
                (run.name,) if now.name == run.name else (run.name, now.name),
                f"keep '{now.name}' at least {_hex(run.size)} bytes"))
    return out


def _app_fits(ctx: DiffContext) -> list[Violation]:
    app = ctx.app
    if app is None:
        return []
    out = []
    size = app.measured_size
    for run in ctx.running:
        now = ctx.new_at(run.offset)
        if now is not None and size > now.size:
            out.append(Violation(
                "app-does-not-fit",
                f"--app {app.path} is {_hex(size)} bytes, {_hex(size - now.size)} more than the "
                f"running slot '{now.name}' ({_hex(now.size)}) holds in NEW", (now.name,),
                "grow the slot or shrink the app"))
    return out


def _usable(table: PartitionTable) -> int:
    """OTA slots the app can switch to: ota_0, ota_1, ... up to the first missing subtype
    (esp_ota_get_app_partition_count; esp_ota_set_boot_partition refuses the others)."""
    subtypes = {p.subtype for p in _ota_apps(table)}
    count = 0
    while SUBTYPE_APP_OTA_MIN + count in subtypes:
        count += 1
    return count


def _ota_slots(ctx: DiffContext) -> list[Violation]:
    before, after = _ota_apps(ctx.old.table), _ota_apps(ctx.new.table)
    usable = _usable(ctx.new.table)
    if len(before) < 2 or usable >= 2:
        return []
    gap = ("" if usable == len(after) else
           f" ({usable} usable: ota_{usable} is missing, and the app switches only to slots "
           "from ota_0 up to the first missing subtype)")
    return [Violation(
        "ota-slots", f"OLD has {len(before)} OTA app slots, NEW has {len(after)}{gap}",
        tuple(p.name for p in before),
        "keep two OTA slots, ota_0 and ota_1, so the devices can still update over the air")]


def _otadata(ctx: DiffContext) -> list[Violation]:
    before = ctx.old.table.find(DATA, SUBTYPE_DATA_OTA)
    after = ctx.new.table.find(DATA, SUBTYPE_DATA_OTA)
    if not before:
        return []
    old = before[0]
    if not after:
        return [Violation("otadata", f"NEW has no otadata partition; OLD has '{old.name}' at "
                          f"{_hex(old.offset)}", (old.name,),
                          f"keep '{old.name}' at {_hex(old.offset)}, size {_hex(OTADATA_SIZE)}")]
    out = []
    if len(after) > 1:
        out.append(Violation("otadata", f"NEW has {len(after)} otadata partitions",
                             tuple(p.name for p in after), "keep exactly one"))
    new = after[0]
    if (new.offset, new.size) != (old.offset, OTADATA_SIZE):
        out.append(Violation(
            "otadata", f"otadata '{new.name}' is at {_hex(new.offset)} size {_hex(new.size)} in "
            f"NEW; OLD has it at {_hex(old.offset)} size {_hex(old.size)}",
            (old.name,) if old.name == new.name else (old.name, new.name),
            f"keep it at {_hex(old.offset)}, size {_hex(OTADATA_SIZE)}"))
    return out


def _boot_default(ctx: DiffContext) -> list[Violation]:
    if ctx.new.table.find(DATA, SUBTYPE_DATA_OTA):
        return []

    default = boot_choice(ctx.new.table, None, False)  # factory, else the slot of index 0
    out = []
    for run in ctx.running:
        now = ctx.new_at(run.offset)
        if now is not None and now is not default:
            boots = f"'{default.name}'" if default is not None else "nothing"
            out.append(Violation(
                "boot-default",
                f"NEW has no otadata, so the bootloader boots {boots}, not the running app "
                f"'{now.name}' at {_hex(now.offset)}", (now.name,),
                "add an otadata partition, or make the running slot the factory app (or ota_0 "
                "when there is no factory app)"))
    return out


def _data_changes(ctx: DiffContext, system: bool) -> list[Violation]:
    code = "system-data" if system else "data-moved"
    out = []
    for change in ctx.changes:
        old = change.old
        if old is None or old.type != DATA or old.subtype == SUBTYPE_DATA_OTA:
            continue
        if (old.subtype in SYSTEM_DATA) != system or ctx.erased(change):
            continue
        new = change.new
        lost = "its contents are lost"
        if new is None:
            what = "is removed"
        elif change.has("moved"):
            what = (f"moves from {_hex(old.offset)} size {_hex(old.size)} to {_hex(new.offset)} "
                    f"size {_hex(new.size)}")
            if copied(change):
                lost = (("its pages are copied before the table changes, but what the running "
                         "app writes there after the copy is lost") if not _overlap(old, new)
                        else "its copy overwrites its own source, so a power cut half way "
                        "loses both copies")
        elif (change.has("resized") and old.subtype == SUBTYPE_DATA_NVS == new.subtype
              and new.size > old.size and not change.has("type-changed")):
            continue  # NVS grows in place: the added, erased pages are free pages
        elif change.has("resized"):
            what = (f"{'grows' if new.size > old.size else 'shrinks'} from {_hex(old.size)} to "
                    f"{_hex(new.size)} bytes at {_hex(old.offset)}")
        else:
            continue
        kind = f"{SYSTEM_DATA[old.subtype]} partition" if system else "data partition"
        out.append(Violation(code, f"{kind} '{old.name}' {what}; {lost}",
                             (old.name,), _erase_hint([old.name])))
    return out


def copied(change: Change) -> bool:
    """The plan copies this data partition: moved, same size and kind, not erased."""
    old, new = change.old, change.new
    return (old is not None and new is not None and change.has("moved")
            and not change.has("resized") and not change.has("type-changed"))


def _overlap(a: Partition, b: Partition) -> bool:
    return a.offset < b.end and b.offset < a.end


def _system_data(ctx: DiffContext) -> list[Violation]:
    return _data_changes(ctx, True)


def _data_moved(ctx: DiffContext) -> list[Violation]:
    return _data_changes(ctx, False)


def _readonly(ctx: DiffContext) -> list[Violation]:
    return [Violation("readonly", f"'{p.name}' is flagged readonly, but the "
                      f"{'otadata' if p.subtype == SUBTYPE_DATA_OTA else 'coredump'} partition "
                      "is written at run time", (p.name,), "remove the readonly flag")
            for p in ctx.new.table
            if p.readonly and p.type == DATA
            and p.subtype in (SUBTYPE_DATA_OTA, SUBTYPE_DATA_COREDUMP)]


def _secure_alignment(ctx: DiffContext) -> list[Violation]:
    align = SECURE_ALIGN.get(ctx.secure or "")
    if align is None:
        return []
    return [Violation("secure-alignment", f"app partition '{p.name}' ({_hex(p.offset)}, size "
                      f"{_hex(p.size)}) is not aligned to {_hex(align)} as Secure Boot "
                      f"{ctx.secure} needs", (p.name,),
                      f"use offsets and sizes that are multiples of {_hex(align)}")
            for p in ctx.new.table if p.type == APP and (p.offset % align or p.size % align)]


def _type_changed(ctx: DiffContext) -> list[Violation]:
    out = []
    for change in ctx.changes:
        old, new = change.old, change.new
        if old is None or new is None or not change.has("type-changed") or ctx.erased(change):
            continue
        if old.type == new.type == APP:
            continue  # the bootloader's choice of app is ota-reindex's and boot-default's
        out.append(Violation(
            "type-changed", f"'{new.name}' changes from type {old.type} subtype "
            f"{_hex(old.subtype)} to type {new.type} subtype {_hex(new.subtype)}; code looking "
            "it up finds other contents than it expects", (new.name,),
            _erase_hint([new.name]) if new.type == DATA else
            "give the partition a new name, or keep its type and subtype"))
    return out


def _encryption(ctx: DiffContext) -> list[Violation]:
    out = []
    for change in ctx.changes:
        old, new = change.old, change.new
        if (old is None or new is None or new.type != DATA or old.encrypted == new.encrypted
                or ctx.erased(change)):
            continue
        if (new.subtype in (SUBTYPE_DATA_OTA, SUBTYPE_DATA_NVS_KEYS, SUBTYPE_DATA_TEE_OTA)
                and old.subtype == new.subtype):
            continue  # always encrypted under flash encryption, never otherwise: no effect
        now = "encrypted" if new.encrypted else "no longer encrypted"
        out.append(Violation(
            "encryption-changed", f"data partition '{new.name}' is {now} in NEW; with flash "
            "encryption on, its existing contents read as garbage", (new.name,),
            _erase_hint([new.name])))
    return out


def _nvs_label(ctx: DiffContext) -> list[Violation]:
    before = ctx.old.table.find_by_name(NVS_LABEL)
    if before is None or (before.type, before.subtype) != (DATA, SUBTYPE_DATA_NVS):
        return []
    now = ctx.new.table.find_by_name(NVS_LABEL)
    if now is None:
        renamed = [c.new.name for c in ctx.changes if c.old is before and c.new is not None]
        what = (f"is renamed '{renamed[0]}'" if renamed else "is gone")
        return [Violation("nvs-label", f"the partition named '{NVS_LABEL}' {what} in NEW; "
                          "nvs_flash_init() finds NVS by that name", (before.name,),
                          f"keep a data/nvs partition named '{NVS_LABEL}'")]
    if (now.type, now.subtype) != (DATA, SUBTYPE_DATA_NVS) or now.readonly:
        what = "is readonly" if (now.type, now.subtype) == (DATA, SUBTYPE_DATA_NVS) else \
            f"is type {now.type} subtype {_hex(now.subtype)}, not data/nvs"
        return [Violation("nvs-label", f"'{NVS_LABEL}' {what} in NEW; nvs_flash_init() then "
                          "fails and the running app usually reboots in a loop", (now.name,),
                          f"keep '{NVS_LABEL}' a writable data/nvs partition")]
    return []


def _ota_reindex(ctx: DiffContext) -> list[Violation]:
    return [Violation("ota-reindex", message, names,
                      "keep the running slot's subtype and the number of OTA slots, or change "
                      "them so that one otadata record selects the running slot under both "
                      "tables") for message, names in switch(ctx).problems]


def rule(code: str) -> Rule:
    """The rule with this code (KeyError for an unknown code)."""
    for r in RULES:
        if r.code == code:
            return r
    raise KeyError(code)


RULES: tuple[Rule, ...] = (
    Rule("table-offset", "the partition table stays at the same offset",
         "The bootloader on the devices is not updated over the air and reads the table at the "
         "offset it was built with; a table written elsewhere is never read.", _table_offset),
    Rule("md5-row", "the MD5 row is kept (or kept absent)",
         "An app built with CONFIG_PARTITION_TABLE_MD5=y (the default) refuses a table "
         "without the MD5 row and then finds no partition at all; bootloaders before "
         "ESP-IDF v3.1 reject a table with the row as a bad magic (the current bootloader "
         "accepts both).", _md5_row),
    Rule("flash-size", "NEW fits the flash size in the bootloader's header",
         "The bootloader rejects a table with a partition past the flash size its own image "
         "header declares (byte 3), whatever the chip's real size, and then boots nothing.",
         _flash_size),
    Rule("running-slot-moved", "the running app slot keeps its offset",
         "The app performing the update executes from flash through the cache at that offset; "
         "after the new table is in place the bootloader must find it there again.",
         _running_moved),
    Rule("running-slot-shrunk", "the running app slot does not shrink",
         "A smaller slot no longer holds the whole running image: the bootloader's image "
         "check reads past the slot and refuses it, and an update of the neighbouring slot "
         "overwrites its tail.",
         _running_shrunk),
    Rule("app-does-not-fit", "--app fits the running slot in NEW",
         "The image the devices run after the update must fit the slot it runs from.",
         _app_fits),
    Rule("ota-slots", "two OTA app slots remain when OLD had them",
         "With fewer than two OTA slots the devices can no longer update over the air: the "
         "running slot cannot be overwritten while it runs. Slots count from ota_0 up to the "
         "first missing subtype: the app switches to no other (esp_ota_ops.c).", _ota_slots),
    Rule("otadata", "exactly one otadata, at the same offset, size 0x2000",
         "otadata selects the slot to boot; if power fails between writing the table and "
         "rewriting otadata, the bootloader must still find valid otadata where it was.",
         _otadata),
    Rule("ota-reindex", "otadata selects the running slot under OLD and NEW alike",
         "The bootloader picks OTA slot (seq - 1) % N counting slots by subtype; when the "
         "slot count or the running slot's subtype changes, the record on the devices selects "
         "another slot once the table is written, and a power cut before otadata is rewritten "
         "boots it. The plan rewrites otadata first with a record valid under both tables; "
         "when none exists the change is unsafe.", _ota_reindex),
    Rule("nvs-label", "a partition named nvs stays a writable data/nvs partition",
         "nvs_flash_init() opens NVS by the label 'nvs'; renamed, retyped or readonly, the "
         "running app gets ESP_ERR_NOT_FOUND (or cannot write) and usually reboots in a loop.",
         _nvs_label),
    Rule("boot-default", "without otadata, the running slot is the boot default",
         "With no otadata the bootloader starts the factory app, else the lowest OTA slot; "
         "anything else never boots again.", _boot_default),
    Rule("system-data", "nvs, nvs_keys, phy, coredump, efuse and tee_ota keep offset and size",
         "They hold Wi-Fi credentials, calibration, keys and crash dumps: moved or resized, "
         "their contents are lost or read as corrupt (NVS pages, key blocks).", _system_data),
    Rule("data-moved", "other data partitions keep offset and size unless erased on purpose",
         "A file system or custom data partition that moves or resizes no longer mounts or "
         "reads its old contents; the update must erase or migrate it.", _data_moved),
    Rule("readonly", "otadata and coredump are not readonly",
         "The OTA code writes otadata and the panic handler writes coredump at run time; a "
         "readonly flag makes both fail on the device.", _readonly),
    Rule("secure-alignment", "app slots are aligned for --secure (v1: 64K, v2: 4K)",
         "Secure Boot v1 signs apps in 64 KiB units; v2 puts the signature sector at a 4 KiB "
         "boundary after the image; a slot that is not a multiple cannot hold a verifiable "
         "image.", _secure_alignment),
    Rule("type-changed", "a kept name keeps its type and subtype",
         "Firmware finds partitions by name, type and subtype; the same name with another "
         "type or subtype makes it read data in the wrong format.", _type_changed),
    Rule("encryption-changed", "a kept data partition keeps its encrypted flag",
         "With flash encryption enabled the flag decides whether reads are decrypted: bytes "
         "written one way read as garbage the other way.", _encryption),
)


def evaluate(ctx: DiffContext) -> tuple[Violation, ...]:
    """Every violation of every rule, in the order of :data:`RULES`."""
    return tuple(v for r in RULES for v in r.check(ctx))


def running_candidates(table: PartitionTable, names: tuple[str, ...] | None,
                       ) -> tuple[Partition, ...]:
    """OLD's app partitions that may run: the named ones, else every app partition.

    A name is a partition name, an app subtype keyword (``factory``, ``ota_0``) or the
    slot's offset (``0x10000``: what runs is the bytes at an offset); raises KeyError with
    the unknown name.
    """
    apps = [p for p in table if p.type == APP]
    if names is None:
        return tuple(apps)
    keywords = BUILTIN_SUBTYPES.keywords(APP)
    out: list[Partition] = []
    for name in names:
        found = [p for p in apps if p.name == name] or [
            p for p in apps if name in keywords and p.subtype == keywords[name]] or [
            p for p in apps if _offset(name) == p.offset]
        if not found:
            raise KeyError(name)
        out.extend(p for p in found[:1] if p not in out)
    return tuple(out)


def _offset(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None
