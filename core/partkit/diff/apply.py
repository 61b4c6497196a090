"""Running a migration plan on a flash image or a connected chip.

Every step goes through a :class:`~partkit.device.target.Target`: on an image through the
undo journal of :mod:`partkit.flash.imagefile` (a killed write is rolled back on the next
access) and read back; on a chip through one esptool session, each region checked by the
flash MD5. A failure names the step it stopped in, what that step may have changed, and
the steps done and not started. ``write-otadata`` writes one sector only: the one not
holding the active record (or, in an otadata that OLD's bootloader ignores, the whole
region afresh), so the active record stays whole until the new one is.

:func:`grow_image` resizes an image to a bigger flash: the file grows with 0xFF and the
bootloader header's flash-size nibble (byte 3) is set, its appended SHA-256 recomputed
(the checksum byte covers the segments only), as esptool does when it rewrites a header.
"""

from __future__ import annotations

import os
import tempfile

from partkit.common.errors import CheckFailed, PartkitError, SourceLocation, error
from partkit.common.record import Record
from partkit.flash import imagefile
from partkit.flash.appimage import read_image
from partkit.flash.bootheader import patch_flash_params
from partkit.flash.otadata import STATE_UNDEFINED, active_entry, decode, encode_entry
from partkit.flash.tablearea import bootloader_header_at
from partkit.table.model import Partition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.device.target import Target
    from partkit.diff.plan import Step
    from partkit.diff.report import DiffReport
    from partkit.table.model import Partition

__all__ = ["FLASH_SIZE_CODE", "Done", "apply_plan", "check_growable", "check_reach",
           "grow_image", "step_text"]

SECTOR = 0x1000
FLASH_SIZE_CODE = {(1 << code) << 20: code for code in range(8)}  # 1MB -> 0 ... 128MB -> 7


class Done(Record):
    """What :func:`apply_plan` did: the steps, in order, each completed and verified."""

    __slots__ = ("steps",)

    steps: tuple[Step, ...]

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self._init(steps=steps)


def step_text(number: int, step: Step) -> str:
    what = f"'{step.partition}' " if step.partition else ""
    src = f" from 0x{step.source:x}" if step.source is not None else ""
    return (f"{number}. {step.action} {what}0x{step.offset:x}..0x{step.end:x}{src}")


def _region(name: str, offset: int, size: int) -> Partition:
    return Partition(name, 1, 0xFF, offset, size)


def _otadata_write(target: Target, step: Step) -> list[tuple[int, bytes]]:
    """(offset, sector bytes) to write; an empty ``bytes`` erases that sector."""
    write = step.otadata
    assert write is not None
    current = target.read(step.offset, 2 * SECTOR)
    active = active_entry(decode(current))
    if write.blank:  # the active record goes last: an older one left alone may select
        last = 0 if active is None else active.index  # another slot under OLD
        return [(step.offset + (1 - last) * SECTOR, b""), (step.offset + last * SECTOR, b"")]
    if write.count_old == 0:  # OLD's bootloader ignores this region: write it afresh
        seq = write.seq_after(None)
        assert seq is not None
        return [(step.offset + SECTOR, b""), (step.offset, encode_entry(seq, STATE_UNDEFINED))]
    seq = write.seq_after(None if active is None else active.seq)
    if seq is None:
        raise PartkitError(error(
            f"otadata at 0x{step.offset:x} selects a slot the plan did not expect (active "
            f"record: {active!r}); nothing was written in this step",
            hint="read the device again (partkit diff) and follow the new plan"))
    index = 0 if active is None else 1 - active.index
    return [(step.offset + index * SECTOR, encode_entry(seq, STATE_UNDEFINED))]


def _run(target: Target, step: Step, table: bytes) -> None:
    name = step.partition or "table"
    if step.action == "erase":
        target.erase_partition(_region(name, step.offset, step.size))
    elif step.action == "copy":
        assert step.source is not None
        data = target.read(step.source, step.size)  # all of it first: overlap is harmless
        target.write_partition(_region(name, step.offset, step.size), data)
    elif step.action == "write-table":
        target.write_partition(_region("partition table", step.offset, SECTOR), table)
    elif step.action == "write-otadata":
        for offset, data in _otadata_write(target, step):
            region = _region(name, offset, SECTOR)
            if data:
                target.write_partition(region, data)
            else:
                target.erase_partition(region)
    else:  # pragma: no cover - ACTIONS is closed
        raise AssertionError(step.action)


def check_reach(plan: tuple[Step, ...], size: int, label: str, hint: str) -> None:
    """Refuse (before the first step) a plan with a step past ``size`` bytes of flash: it
    would fail half way, after the table is written."""
    past = [step_text(i, s) for i, s in enumerate(plan, start=1)
            if max(s.end, (s.source or 0) + s.size) > size]
    if past:
        raise PartkitError(error(
            f"the plan reaches past the end of {label} (0x{size:x} bytes): {'; '.join(past)}; "
            "nothing was written", SourceLocation(label), hint))


def apply_plan(target: Target, report: DiffReport, table: bytes,
               on_step: Callable[[int, Step], None] | None = None) -> Done:
    """Run ``report.plan`` on ``target``; ``table`` is NEW's binary. Raises PartkitError
    naming the step that failed and the steps done and not started."""
    done: list[Step] = []
    for number, step in enumerate(report.plan, start=1):
        if on_step is not None:
            on_step(number, step)
        try:
            _run(target, step, table)
        except PartkitError as exc:
            raise _stopped(report, number, exc) from None
        except KeyboardInterrupt as exc:  # Ctrl-C: still exit 130, with the same report
            cause = PartkitError(error(str(exc.args[0]) if exc.args else "interrupted"))
            d = _stopped(report, number, cause).diagnostics[0]
            raise KeyboardInterrupt("; ".join(
                [d.message, *(text for _, text in d.notes), *([d.hint] if d.hint else [])])
            ) from None
        done.append(step)
    return Done(tuple(done))


def _stopped(report: DiffReport, number: int, exc: PartkitError) -> PartkitError:
    """Exit 1 (the device or file failed, not the input), with the exact state."""
    plan = report.plan
    finished = [step_text(i, s) for i, s in enumerate(plan[:number - 1], start=1)]
    left = [step_text(i, s) for i, s in enumerate(plan[number:], start=number + 1)]
    cause = exc.diagnostics[0] if exc.diagnostics else None
    notes: list[tuple[SourceLocation | None, str]] = [
        (None, f"done and verified: {'; '.join(finished) or 'nothing'}"),
        (None, f"not started: {'; '.join(left) or 'nothing'}")]
    if cause is not None:
        notes += list(cause.notes)
    after_table = any(s.action == "write-table" for s in plan[:number - 1])
    return CheckFailed(error(
        f"step {step_text(number, plan[number - 1])} stopped: "
        + (cause.message if cause is not None else str(exc)),
        None, (f"the table is NEW's, so partkit diff and apply now see no change: redo step "
               f"{number} and run the steps not started yourself (an erase: partkit image "
               "erase / partkit device erase with the partition's name)" if after_table else
               "the table is still OLD's and the devices boot as before: run apply again"),
        tuple(notes)))


# --- growing an image to a bigger flash ------------------------------------------------------


def check_growable(path: str, size: int, table_offset: int) -> int | None:
    """Raise (nothing written) when :func:`grow_image` cannot grow ``path`` to ``size``;
    returns the bootloader's offset (None: no bootloader found)."""

    code = FLASH_SIZE_CODE.get(size)
    current = imagefile.image_size(path)
    if code is None or size < current:
        raise PartkitError(error(
            f"--flash-size 0x{size:x}: " + ("not a flash size an image header can say "
                                           "(1MB..128MB, a power of two)" if code is None
                                           else f"smaller than the image ({current} bytes)"),
            SourceLocation(path), "give the devices' flash size, at least the image's length"))
    # the header the flash size was judged by (flash.tablearea's one rule)
    found = bootloader_header_at(lambda at, n: imagefile.read_region(path, at, n), current,
                                 table_offset)
    if found is None:
        return None
    offset = found[0]
    region = imagefile.read_region(path, offset, table_offset - offset)
    if read_image(region, f"{path}@0x{offset:x}").signature_length:
        raise PartkitError(error(
            f"the bootloader at 0x{offset:x} is signed (Secure Boot V2): its "
            "signature covers the header's flash size, and a changed header would "
            "not boot; nothing was written", SourceLocation(path),
            "build and sign the bootloader for the new flash size, put it into the "
            "image (partkit image write), then apply without --flash-size"))
    return offset


def grow_image(path: str, size: int, table_offset: int) -> str | None:
    """Grow ``path`` to ``size`` bytes of flash (0xFF) and set the bootloader header's flash
    size; returns where the header was (None: no bootloader found, only the file grew)."""

    header_at = check_growable(path, size, table_offset)
    current = imagefile.image_size(path)
    if size > current:
        with open(path, "r+b") as f:
            f.seek(0, 2)
            left = size - current
            while left:
                chunk = min(left, 1 << 20)
                f.write(b"\xff" * chunk)
                left -= chunk
    if header_at is None:
        return None
    region = imagefile.read_region(path, header_at, table_offset - header_at)
    label = f"{path}@0x{header_at:x}"
    info = read_image(region, label)
    assert info.image_length is not None
    # the size nibble only, SHA-256 recomputed: one home for that (flash.bootheader)
    data = patch_flash_params(region, label, info.chip or "", None, None, size).data
    end = -(-info.image_length // SECTOR) * SECTOR  # (the appended SHA-256 included)
    if bytes(data[:end]) != region[:end]:
        fd, tmp = tempfile.mkstemp(prefix=".partkit-bootloader-",
                                   dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(data[:end]).rstrip(b"\xff"))
            imagefile.write_partition(path, _region("bootloader", header_at, end), tmp)
        finally:
            os.unlink(tmp)
    return f"0x{header_at:x}"
