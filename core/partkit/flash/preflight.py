"""Pre-flight check of a whole flash image (merge-bin output, ``image create``, a dump).

What must hold before an image is flashed or shipped, each failure with a stable code:

* ``bootloader-missing`` / ``bootloader-invalid`` / ``bootloader-chip`` /
  ``bootloader-too-large``: an ESP image for the chip at the chip's bootloader offset,
  ending before the partition table;
* ``flash-size``: the flash size in the bootloader header (byte 3, high nibble; the
  bootloader configures the flash with it) reaches the end of the last partition;
* ``table-missing`` / ``table-invalid``: a table gen would accept at the table offset;
* ``app-invalid`` / ``app-chip`` / ``app-overflow``: every app slot is erased or holds a
  valid image for the chip that fits the slot;
* ``otadata-crc`` / ``otadata-sequence`` / ``otadata-target`` / ``boot-app``: otadata
  decodes, and the slot it (or, blank, the boot default) selects holds a valid app;
* ``data-contents``: NVS, FAT, SPIFFS and LittleFS partitions hold what their subtype
  says (as :mod:`partkit.flash.contents` recognises it) or are erased.

Partitions past the end of the image (merge-bin writes no padding) are not checked: the
device keeps what its flash holds there. Nothing here prints.

Just over 500 lines: one check per region of the flash (bootloader, table, apps,
otadata, data), each small; they share the image reader and the report, so they stay
together.
"""

from __future__ import annotations

from partkit.common.chips import BOOTLOADER_OFFSET, MMU_PAGE, find_chip
from partkit.common.errors import Diagnostic, PartkitError, SourceLocation, error, warning
from partkit.common.numbers import align_up
from partkit.common.record import Record
from partkit.flash import imagefile, otadata
from partkit.flash.appimage import ImageBytes, header_flash_size, read_image, size_code_note
from partkit.flash.bootpredict import ota_count, predict_boot
from partkit.flash.contents import EXPECTED_CONTENTS, describe
from partkit.flash.lfsmeta import geometry_problem, name_max_problem, read_superblock
from partkit.table.binary import MAX_TABLE_BYTES
from partkit.table.codec import load_table
from partkit.table.names import (
    APP,
    DATA,
    SUBTYPE_DATA_NVS,
    SUBTYPE_DATA_OTA,
)
from partkit.table.source import is_full_dump_length

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.flash.appimage import ImageInfo
    from partkit.flash.bootpredict import BootPrediction
    from partkit.flash.contents import Finding
    from partkit.flash.otadata import OtaEntry
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["CODES", "PartitionState", "PreflightReport", "Problem",
           "check_image"]

SECTOR = 0x1000
MAX_BOOTLOADER = 0x100000  # far more than any bootloader: room to measure one that overflows
MAX_APP = 16 << 20

# Every finding code, with what it means (docs/diff.md lists the same; a test keeps them).
CODES: dict[str, str] = {
    "bootloader-missing": "no bootloader image at the chip's bootloader offset",
    "bootloader-invalid": "the bootloader image is truncated or corrupt",
    "bootloader-chip": "the bootloader is built for another chip",
    "bootloader-too-large": "the bootloader runs into the partition table",
    "flash-size": "the bootloader header's (or --flash-size's) flash ends before the "
                  "partitions do",
    "table-missing": "no partition table at the table offset",
    "table-invalid": "the table is corrupt or breaks gen's rules",
    "table": "a warning gen gives for the table",
    "app-invalid": "an app slot holds neither a valid ESP image nor erased flash, or a "
                   "mapped segment is off the 64 KiB MMU page the bootloader requires (a "
                   "warning on chips whose page size is configurable)",
    "app-chip": "an app slot holds an image for another chip",
    "app-overflow": "an app image is larger than its slot and spills into what follows",
    "otadata-crc": "an otadata sector has a CRC that does not match its sequence number",
    "otadata-sequence": "an otadata sector has sequence number 0, which ESP-IDF never "
                        "writes (a warning: the slot is predicted in the bootloader's "
                        "unsigned arithmetic, 0 - 1 = 0xFFFFFFFF)",
    "otadata-target": "otadata selects a slot that is missing or holds no valid app (the "
                      "message names the slot the bootloader falls back to, if any)",
    "boot-app": "without a valid otadata record, the boot-default app slot holds no valid "
                "app (the message names the fallback, if any)",
    "otadata-pending-verify": "the active otadata record is still pending_verify (a "
                              "warning: a bootloader with rollback marks it aborted and "
                              "boots another slot; the message gives both outcomes)",
    "data-contents": "an NVS, FAT, SPIFFS or LittleFS partition holds something else",
    "littlefs-geometry": "a LittleFS superblock's block size or count is not the one "
                         "esp_littlefs mounts the partition with (4096-byte blocks, the "
                         "partition's size): the mount fails and format-on-failure wipes it",
    "littlefs-name-max": "a LittleFS superblock's file-name limit exceeds esp_littlefs's "
                         "default CONFIG_LITTLEFS_OBJ_NAME_LEN (64): a warning, since the "
                         "firmware may raise it; otherwise the mount fails and "
                         "format-on-failure wipes the partition",
}


class Problem(Record):
    """One finding: a stable ``code``, a diagnostic, and the partition it concerns."""

    __slots__ = ("code", "diagnostic", "partition")

    code: str
    diagnostic: Diagnostic
    partition: str | None

    def __init__(self, code: str, diagnostic: Diagnostic, partition: str | None = None) -> None:
        self._init(code=code, diagnostic=diagnostic, partition=partition)

    @property
    def is_error(self) -> bool:
        return self.diagnostic.is_error


class PartitionState(Record):
    """What one partition holds (``contents`` None when it lies outside the image)."""

    __slots__ = ("contents", "partition", "status")

    partition: Partition
    contents: Finding | None
    # "ok", "error", "absent" (beyond the image, or cut inside it with no app or file system
    # in the part present), "encrypted" (not readable)
    status: str

    def __init__(self, partition: Partition, contents: Finding | None, status: str) -> None:
        self._init(partition=partition, contents=contents, status=status)


class PreflightReport(Record):
    """Everything ``image check`` found. ``exit_code`` 0 when no problem is an error."""

    __slots__ = ("bootloader", "chip", "flash_size", "header_flash_size", "image", "partitions",
                 "problems", "size", "table", "table_offset")

    image: str
    size: int
    chip: str | None
    bootloader: dict[str, object] | None
    header_flash_size: int | None
    flash_size: int | None
    table_offset: int
    table: PartitionTable | None
    partitions: tuple[PartitionState, ...]
    problems: tuple[Problem, ...]

    def __init__(self, image: str, size: int, chip: str | None,
                 bootloader: dict[str, object] | None, header_flash_size: int | None,
                 flash_size: int | None, table_offset: int, table: PartitionTable | None,
                 partitions: tuple[PartitionState, ...], problems: tuple[Problem, ...]) -> None:
        self._init(image=image, size=size, chip=chip, bootloader=bootloader,
                   header_flash_size=header_flash_size, flash_size=flash_size,
                   table_offset=table_offset, table=table, partitions=partitions,
                   problems=problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class _Checker:
    """Collects problems while walking the image; one instance per check."""

    def __init__(self, image: str, options: TableOptions) -> None:
        self.image = image
        self.options = options
        self.size = imagefile.image_size(image)
        self.problems: list[Problem] = []
        self.chip = options.chip
        self.size_note = ""  # how the bootloader read an unknown size code
        self.spills: list[tuple[int, int, str]] = []  # (start, end, slot) of overflowing images

    def add(self, code: str, message: str, hint: str | None = None, *,
            part: Partition | None = None, severity: str = "error") -> None:
        assert code in CODES, code
        where = f"{self.image}@0x{part.offset:x}" if part is not None else self.image
        make = error if severity == "error" else warning
        self.problems.append(Problem(code, make(message, SourceLocation(where), hint),
                                     part.name if part is not None else None))

    def region(self, offset: int, length: int) -> bytes:
        return imagefile.read_region(self.image, offset, max(0, min(length,
                                                                    self.size - offset)))

    # --- bootloader -------------------------------------------------------------------

    def bootloader(self) -> tuple[dict[str, object] | None, int | None]:
        table_offset = self.options.table_offset
        offsets = ([BOOTLOADER_OFFSET[self.chip]] if self.chip is not None
                   else sorted(set(BOOTLOADER_OFFSET.values())))
        for offset in offsets:
            if offset >= table_offset or self.region(offset, 1) != b"\xe9":
                continue
            label = f"{self.image}@0x{offset:x}"
            try:
                info = read_image(self.region(offset, table_offset - offset), label)
            except PartkitError as exc:
                self._broken_bootloader(offset, exc)
                return {"offset": offset, "valid": False}, None
            if self.chip is None:
                self.chip = info.chip
            head = self.region(offset, 4)
            hdr, self.size_note = header_flash_size(head), size_code_note(head)
            doc: dict[str, object] = {"offset": offset, "valid": True, "chip": info.chip,
                                      "size": info.measured_size, "header_flash_size": hdr}
            if info.chip is not None and info.chip != self.chip:
                self.add("bootloader-chip", f"the bootloader at 0x{offset:x} is built for "
                         f"{info.chip}, not {self.chip}", "flash the bootloader built for "
                         "this chip")
            elif (info.chip is not None and BOOTLOADER_OFFSET.get(info.chip) != offset):
                self.add("bootloader-missing", f"an {info.chip} bootloader at 0x{offset:x}, "
                         f"but the {info.chip} ROM loads it from "
                         f"0x{BOOTLOADER_OFFSET[info.chip]:x}", "place it at the chip's offset")
            return doc, hdr
        where = (f"at 0x{offsets[0]:x}, where the {self.chip} ROM loads it from"
                 if self.chip is not None else "at any bootloader offset below the table")
        self.add("bootloader-missing", f"no bootloader image {where}",
                 "merge the bootloader into the image (or give --chip if it is elsewhere)")
        return None, None

    def _broken_bootloader(self, offset: int, exc: PartkitError) -> None:
        table_offset = self.options.table_offset
        try:
            info = read_image(self.region(offset, MAX_BOOTLOADER), f"{self.image}@0x{offset:x}")
        except PartkitError:
            info = None
        if info is not None and offset + info.measured_size > table_offset:
            self.add("bootloader-too-large", f"the bootloader at 0x{offset:x} is "
                     f"{info.measured_size} bytes (0x{info.measured_size:x}) and runs into the "
                     f"partition table at 0x{table_offset:x}",
                     f"it may be at most 0x{table_offset - offset:x} bytes; move the table")
            return
        message = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        self.add("bootloader-invalid", f"the bootloader at 0x{offset:x} is broken: {message}",
                 "rebuild it, or re-merge the image")

    # --- table --------------------------------------------------------------------------

    def table(self) -> PartitionTable | None:
        offset = self.options.table_offset
        if self.size < offset + MAX_TABLE_BYTES or self.region(offset, 2) != b"\xaa\x50":
            self.add("table-missing", f"no partition table at 0x{offset:x}",
                     "give the table offset with --offset; 'partkit image inspect' finds it")
            return None
        options = self.options.replace(flash_size=None, verify=True)
        if self.chip is not None and options.primary_bootloader_offset is None:
            options = options.replace(primary_bootloader_offset=BOOTLOADER_OFFSET[self.chip])
        try:
            loaded = load_table(self.region(offset, MAX_TABLE_BYTES), f"{self.image}@0x{offset:x}",
                                options)
        except PartkitError as exc:
            self.problems.extend(Problem("table-invalid", d) for d in exc.diagnostics)
            return None
        self.problems.extend(Problem("table", d) for d in loaded.warnings)
        return loaded.table

    # --- partitions ---------------------------------------------------------------------

    def app_slot(self, part: Partition, found: Finding, table: PartitionTable) -> bool:
        """True when the slot holds a valid app (False: erased, or a problem was added)."""
        if found.kind == "erased":
            return False
        if found.kind != "app":
            self.add("app-invalid", f"app slot '{part.name}' holds neither an ESP image nor "
                     f"erased flash: {found.summary}", "write an app image or erase the slot",
                     part=part)
            return False
        if not found.details.get("valid"):
            self._broken_app(part, found, table)
            return False
        chip = found.details.get("chip")
        if self.chip is not None and chip is not None and chip != self.chip:
            self.add("app-chip", f"app slot '{part.name}' holds an image for {chip}, not "
                     f"{self.chip}", "build the app for the same chip as the bootloader",
                     part=part)
            return False
        return self._mmu_aligned(part)

    def _mmu_aligned(self, part: Partition) -> bool:
        """The bootloader maps flash segments through 64 KiB MMU pages: a mapped segment's
        flash offset and load address must agree modulo the page (esp_image_format.c
        rejects the image otherwise)."""

        size = max(0, min(part.size, MAX_APP, self.size - part.offset))
        info = read_image(ImageBytes(lambda at, n: self.region(part.offset + at, n), size),
                          f"{self.image}@0x{part.offset:x}")
        for index, seg in enumerate(info.segments):
            at = part.offset + seg.file_offset
            if seg.flash_mapped and at % MMU_PAGE != seg.address % MMU_PAGE:
                chip = info.chip or self.chip or ""
                row = find_chip(chip)
                unsure = row is not None and row.mmu_page_configurable
                self.add("app-invalid", f"app slot '{part.name}': segment {index} loads at "
                         f"0x{seg.address:08x} but its data sits at flash 0x{at:x}; they "
                         "differ modulo the 64 KiB MMU page, so the bootloader rejects the "
                         "image" + (f" (unless the {chip} app and bootloader were built for a "
                                    "smaller CONFIG_MMU_PAGE_SIZE)" if unsure else ""),
                         "rebuild the image with esptool elf2image (it aligns mapped "
                         "segments); do not edit or concatenate images by hand", part=part,
                         severity="warning" if unsure else "error")
                return unsure
        return True

    def _broken_app(self, part: Partition, found: Finding, table: PartitionTable) -> None:
        try:
            info: ImageInfo | None = read_image(self.region(part.offset, MAX_APP),
                                                f"{self.image}@0x{part.offset:x}")
        except PartkitError:
            info = None
        if info is not None and info.measured_size > part.size:
            after = [p for p in table.sorted_by_offset() if part.end <= p.offset
                     < part.offset + info.measured_size]
            into = f" into '{after[0].name}'" if after else ""
            self.spills.append((part.end, part.offset + info.measured_size, part.name))
            self.add("app-overflow", f"the image in app slot '{part.name}' is "
                     f"{info.measured_size} bytes (0x{info.measured_size:x}), "
                     f"{info.measured_size - part.size} more than the slot: it spills{into}",
                     f"make '{part.name}' at least 0x{align_up(info.measured_size, SECTOR):x}"
                     " bytes or shrink the app", part=part)
            return
        self.add("app-invalid", f"app slot '{part.name}': {found.summary}",
                 "rewrite the slot with a valid image, or erase it", part=part)

    def spilled_into(self, part: Partition) -> str | None:
        """The app slot whose oversized image runs into ``part`` (reported there already)."""
        for start, end, slot in self.spills:
            if start <= part.offset < end:
                return slot
        return None

    def data(self, part: Partition, found: Finding, table: PartitionTable) -> bool:
        expected = EXPECTED_CONTENTS.get(part.subtype)
        if found.kind == "littlefs" and not self.littlefs(part):
            return False
        if expected is None or found.kind == "erased" or found.kind in expected:
            return True
        if part.subtype == SUBTYPE_DATA_NVS and found.kind == "data" and self._nvs_later(
                part, table):
            return True
        subtype = self.options.subtypes.render(part.type, part.subtype)
        self.add("data-contents", f"'{part.name}' is a {subtype} partition but holds "
                 f"{found.summary}", f"write a {' or '.join(expected)} image into it, or erase "
                 "it", part=part)
        return False

    def littlefs(self, part: Partition) -> bool:
        """The superblock's geometry is the one esp_littlefs mounts the partition with."""

        sb = read_superblock(lambda at, n: self.region(part.offset + at, n), part.size)
        names = None if sb is None else name_max_problem(sb)
        if names is not None:
            self.add("littlefs-name-max", f"'{part.name}': {names}",
                     "write an image built with name_max=64 (partkit data build), or check "
                     "the firmware's CONFIG_LITTLEFS_OBJ_NAME_LEN", part=part,
                     severity="warning")
        problem = None if sb is None else geometry_problem(sb, part.size)
        if problem is None:
            return True
        self.add("littlefs-geometry", f"'{part.name}': {problem}",
                 "write an image built for this partition (partkit data build)", part=part)
        return False

    def _nvs_later(self, part: Partition, table: PartitionTable) -> bool:
        """NVS recycles pages, so page 0 of a used partition may be blank: look from the
        first page with a written header (the detector needs a header at the start)."""

        for at in range(part.offset + SECTOR, part.end, SECTOR):
            if self.region(at, 32) != b"\xff" * 32:
                rest = part.replace(offset=at, size=part.end - at)
                return describe(self.image, rest, table).kind == "nvs"
        return False

    def otadata(self, part: Partition, table: PartitionTable,
                valid_apps: dict[int, Partition]) -> None:

        entries = otadata.decode(self.region(part.offset, otadata.OTADATA_SIZE).ljust(
            otadata.SECTOR_SIZE + otadata.ENTRY_SIZE, b"\xff"))
        count = ota_count(table)
        for e in entries:
            if e.erased:
                continue
            if not e.crc_ok:
                self.add("otadata-crc", f"otadata sector {e.index}: CRC 0x{e.crc:08x} does not "
                         f"match ota_seq {e.seq} (expected 0x{otadata.entry_crc(e.seq):08x})",
                         "the bootloader ignores this sector; rewrite otadata with "
                         "'partkit image set-boot'", part=part)
            elif e.seq == 0 and count:
                self.add("otadata-sequence", f"otadata sector {e.index} has ota_seq 0, which "
                         "ESP-IDF never writes: the bootloader computes ota_seq - 1 in 32 bits "
                         f"(0xffffffff) and selects ota_{otadata.slot_of_seq(0, count)}",
                         "rewrite otadata with 'partkit image set-boot'", part=part,
                         severity="warning")
        loadable = lambda p: id(p) in valid_apps  # noqa: E731
        plain = predict_boot(table, entries, loadable)
        active = plain.entry
        if active is not None and active.state == otadata.STATE_PENDING_VERIFY:
            rolled = predict_boot(table, entries, loadable, rollback=True)
            self.add("otadata-pending-verify", f"otadata sector {active.index} (ota_seq "
                     f"{active.seq}) is still pending_verify: a bootloader with rollback "
                     "(CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE) marks it aborted at boot, so "
                     f"{rolled.outcome()}; without rollback, {plain.outcome()}",
                     "ESP-IDF writes a new update as 'new' (set-boot --state new), or "
                     "'undefined' without rollback", part=part, severity="warning")
        if active is None or not count:
            self.boot_default(table, valid_apps, entries)
            return
        if plain.start is None:
            slot = otadata.slot_of_seq(active.seq, count)
            self.add("otadata-target", f"otadata (sector {active.index}, ota_seq {active.seq}) "
                     f"selects ota_{slot}, which the table does not have; "
                     + _fallback(plain), "rewrite otadata with 'partkit image set-boot'",
                     part=part)
        elif plain.falls_back or plain.boots is None:
            target = plain.start
            self.add("otadata-target", f"otadata (sector {active.index}, ota_seq {active.seq}) "
                     f"selects {target.name if target.name.startswith('ota_') else 'its slot'}"
                     f" ('{target.name}'), which holds no valid app; " + _fallback(plain),
                     f"write the app into '{target.name}', or select a slot that has one "
                     "with 'partkit image set-boot'", part=part)

    def boot_default(self, table: PartitionTable, valid_apps: dict[int, Partition],
                     entries: tuple[OtaEntry, OtaEntry] | None = None) -> None:

        prediction = predict_boot(table, entries, lambda p: id(p) in valid_apps)
        default = prediction.start or table.boot_default()
        if default is None or id(default) in valid_apps:
            return
        if default.offset >= self.size:
            return  # not in the image: the device keeps what it has there
        self.add("boot-app", f"with blank otadata the bootloader starts '{default.name}', "
                 f"which holds no valid app; {_fallback(prediction)}",
                 f"write the app into '{default.name}'", part=default)


def _fallback(prediction: BootPrediction) -> str:
    if prediction.boots is None:
        return ("no other partition holds a loadable app either: the bootloader resets "
                "and tries again, forever")
    return f"the bootloader falls back to '{prediction.boots.name}'"


def check_image(image: str, options: TableOptions, *,
                flash_size: int | None = None) -> PreflightReport:
    """Check a whole image. ``options``: table offset, chip (None: from the bootloader
    header), subtypes. Raises PartkitError only when the file cannot be read."""

    c = _Checker(image, options)
    boot, hdr = c.bootloader()
    table = c.table()
    states: list[PartitionState] = []
    if table is None:
        return PreflightReport(image, c.size, c.chip, boot, hdr, flash_size,
                               options.table_offset, None, (), tuple(c.problems))
    end = table.highest_end()
    says = f"the bootloader header says {hdr >> 20}MB of flash{c.size_note}" if hdr else ""
    if hdr is not None and end > hdr:
        c.add("flash-size", f"{says} (0x{hdr:x}), but the partitions end at 0x{end:x}",
              "merge or build the bootloader with the right --flash-size (esptool "
              "merge-bin --flash-size)")
    if hdr is not None and flash_size is not None and flash_size < hdr:
        # ESP-IDF esp_flash_spi_init.c: the app's flash init compares the chip with the header
        c.add("flash-size", f"{says}, more than the {flash_size >> 20}MB chip (--flash-size): "
              f"the app stops at start-up ('Detected size({flash_size >> 10}k) smaller than "
              f"the size in the binary image header({hdr >> 10}k). Probe failed.')",
              "merge or build the bootloader with the chip's --flash-size")
    if flash_size is not None and end > flash_size:
        c.add("flash-size", f"the partitions end at 0x{end:x}, beyond the 0x{flash_size:x}-byte "
              "flash (--flash-size)", "shrink or move partitions")
    elif hdr is None and flash_size is None and is_full_dump_length(c.size) and end > c.size:
        # table.source.flash_size_of's last rule, as diff, check and show apply it
        c.add("flash-size", f"the partitions end at 0x{end:x}, beyond the 0x{c.size:x}-byte "
              "flash (the length of the dump)", "shrink or move partitions, or give "
              "--flash-size if the chip is larger than the dump")
    valid_apps: dict[int, Partition] = {}
    otadata_parts: list[Partition] = []
    # In flash order, so an image overflowing its slot is known before the next partition.
    for part in table.sorted_by_offset():
        if part.offset >= c.size:
            states.append(PartitionState(part, None, "absent"))
            continue
        if part.encrypted:
            states.append(PartitionState(part, None, "encrypted"))
            continue
        found = describe(image, part, table)
        if part.end > c.size and found.kind in ("erased", "data"):
            # cut inside: the missing tail is unknown, so "erased" would be a guess
            states.append(PartitionState(part, None, "absent"))
            continue
        before = len(c.problems)
        if c.spilled_into(part) is not None:
            states.append(PartitionState(part, found, "error"))  # the overflow names it
            continue
        if part.type == APP:
            if c.app_slot(part, found, table):
                valid_apps[id(part)] = part
        elif part.type == DATA and part.subtype == SUBTYPE_DATA_OTA:
            otadata_parts.append(part)
        elif part.type == DATA:
            c.data(part, found, table)
        states.append(PartitionState(part, found, "ok" if len(c.problems) == before
                                     else "error"))
    for part in otadata_parts:
        before = len(c.problems)
        c.otadata(part, table, valid_apps)
        if len(c.problems) != before:
            states = [s.replace(status="error") if s.partition is part else s for s in states]
    if not otadata_parts:
        c.boot_default(table, valid_apps)
    order = {id(p): i for i, p in enumerate(table)}
    states.sort(key=lambda s: order[id(s.partition)])  # report in table order
    return PreflightReport(image, c.size, c.chip, boot, hdr, flash_size, options.table_offset,
                           table, tuple(states), tuple(c.problems))
