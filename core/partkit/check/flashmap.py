"""Pictures of the flash layout: an SVG (``partkit map``) and an ASCII strip (``partkit show``).

Both are to scale: one linear axis from 0 to the flash size (or the highest partition end
when the flash size is unknown). The SVG draws every partition as a rectangle whose height
is proportional to its size; app slots show the part an app image uses. Labels sit in a
column beside the strip with leader lines, so tiny partitions stay readable.
"""

from __future__ import annotations

from partkit.common.numbers import format_size
from partkit.table.csvparse import PARTITION_TABLE_SIZE
from partkit.table.names import APP, SUBTYPE_APP_TEE, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from partkit.flash.appimage import ImageInfo
    from partkit.table.model import Partition, PartitionTable
    from partkit.table.options import TableOptions

__all__ = ["app_usage", "ascii_map", "beyond_flash", "image_overflows", "svg_map"]

_KEYS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Fill colours by partition type (app, data, bootloader, table, custom).
_COLOURS = {0x00: "#cfe3ff", 0x01: "#ffe6bf", 0x02: "#e0d4f7", 0x03: "#e0d4f7"}
_CUSTOM = "#d9f2d9"
_REGION = "#e6e6e6"
_USED = "#4a90d9"
_ERROR = "#d0021b"  # an image past its slot, partitions past the flash
UNKNOWN_BOOTLOADER = "bootloader room (start depends on the chip)"
_TYPE_LABELS = {0x00: "app", 0x01: "data", 0x02: "bootloader / table rows",
                0x03: "bootloader / table rows"}


def beyond_flash(table: PartitionTable, options: TableOptions) -> int:
    """Bytes of the table that lie past the end of the flash (0 if it fits or is unknown)."""
    if options.flash_size is None:
        return 0
    return max(0, table.highest_end() - options.flash_size)


def _span(table: PartitionTable, options: TableOptions) -> int:
    end = max(table.highest_end(), options.table_offset + PARTITION_TABLE_SIZE)
    if options.flash_size is not None:
        end = max(end, options.flash_size)
    return end


def _regions(options: TableOptions) -> list[tuple[str, int, int]]:
    """Fixed areas before the partitions: (label, offset, end)."""
    out = []
    bl = options.primary_bootloader_offset
    if bl is not None and bl < options.table_offset:
        out.append(("bootloader", bl, options.table_offset))
    elif bl is None and options.table_offset > 0:
        # Chip unknown: the bootloader starts at 0x0, 0x1000 or 0x2000 (give --chip).
        out.append((UNKNOWN_BOOTLOADER, 0, options.table_offset))
    table_end = options.table_offset + PARTITION_TABLE_SIZE
    out.append(("partition table", options.table_offset, table_end))
    if options.recovery_bootloader_offset is not None:
        rb = options.recovery_bootloader_offset
        out.append(("recovery bootloader", rb, rb + options.table_offset - (bl or 0)))
    return out


def app_usage(
    table: PartitionTable, apps: Sequence[tuple[str | None, ImageInfo]]
) -> dict[str, ImageInfo]:
    """Which image sits in which app slot: ``(slot name, image)`` pairs, or ``(None, image)``
    for "every app slot" (TEE slots excepted, as in ``partkit check``)."""
    usage: dict[str, ImageInfo] = {}
    for slot, image in apps:
        if slot is not None:
            usage[slot] = image
            continue
        for p in table:
            if p.type == APP and p.subtype not in SUBTYPE_APP_TEE:
                usage.setdefault(p.name, image)
    return usage


def image_overflows(table: PartitionTable,
                    usage: Mapping[str, ImageInfo]) -> list[tuple[Partition, ImageInfo]]:
    """Slots whose image does not fit, by the bytes flashed (the whole file, padding and
    all), the fact ``partkit check`` judges by."""
    return [(p, usage[p.name]) for p in table.sorted_by_offset()
            if p.name in usage and usage[p.name].flashed_size > p.size]


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def svg_map(
    table: PartitionTable,
    options: TableOptions,
    usage: Mapping[str, ImageInfo] | None = None,
    *,
    height: int = 900,
    title: str | None = None,
    flash_origin: str | None = None,
) -> str:
    """A standalone SVG document of the flash layout; ``flash_origin`` (where
    ``options.flash_size`` came from) is named under the heading."""
    usage = usage or {}
    span = _span(table, options)
    top, left, bar_w, label_x = 60, 110, 150, 330
    scale = height / span
    width = 900
    out: list[str] = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + top + 72}" '
        f'viewBox="0 0 {width} {height + top + 72}" data-span="{span}" '
        f'data-scale="{scale!r}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">')
    add(f'<rect width="{width}" height="{height + top + 72}" fill="#ffffff"/>')
    heading = title or f"Flash layout: {table.path or 'partition table'}"
    flash = (f"{format_size(options.flash_size, 'map')} flash" if options.flash_size is not None
             else "flash size unknown")
    if options.flash_size is not None and flash_origin is not None:
        flash += f" (from {flash_origin})"
    add(f'<text x="{left}" y="28" font-size="18" font-weight="bold">{_esc(heading)}</text>')
    add(f'<text x="{left}" y="46" fill="#555">{_esc(flash)}; table at '
        f'{options.table_offset:#x}; drawn to scale, 1 px = {span / height:.0f} bytes</text>')
    # The whole flash as the background of the strip: unused space shows as hatched.
    add('<defs><pattern id="free" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f4f4f4"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#d0d0d0" stroke-width="3"/></pattern></defs>')
    add(f'<rect class="flash" x="{left}" y="{top}" width="{bar_w}" height="{height}" '
        f'fill="url(#free)" stroke="#333" data-size="{span}"/>')

    labels: list[tuple[float, str, str]] = []  # (anchor y, css class, text)
    legend: dict[str, str] = {}  # fill -> legend text, for every fill drawn (in order)

    def y_of(offset: float) -> float:
        return top + offset * scale

    for name, start, end in _regions(options):
        add(f'<rect class="region" data-name="{_esc(name)}" data-offset="{start}" '
            f'data-size="{end - start}" x="{left}" y="{y_of(start)!r}" width="{bar_w}" '
            f'height="{(end - start) * scale!r}" fill="{_REGION}" stroke="#888"/>')
        legend[_REGION] = "bootloader / table"
        labels.append((y_of((start + end) / 2), "region-label",
                       f"({name}) {start:#x}, {format_size(end - start, 'map')}"))

    for p in table.sorted_by_offset():
        y, h = y_of(p.offset), p.size * scale
        fill = _COLOURS.get(p.type, _CUSTOM)
        legend.setdefault(fill, _TYPE_LABELS.get(p.type, "custom type"))
        add(f'<rect class="partition" data-name="{_esc(p.name)}" data-type="{p.type}" '
            f'data-subtype="{p.subtype}" data-offset="{p.offset}" data-size="{p.size}" '
            f'x="{left}" y="{y!r}" width="{bar_w}" height="{h!r}" fill="{fill}" '
            f'stroke="#333" stroke-width="0.5"><title>{_esc(_describe(p, options))}</title>'
            '</rect>')
        text = f"{p.name} {_describe(p, options)}"
        image = usage.get(p.name)
        if image is not None:
            used = image.flashed_size  # what is written to the slot, as check judges
            shown = min(used, p.size)
            colour = _USED if used <= p.size else _ERROR
            legend.setdefault(colour, "app image" if used <= p.size else "overflow")
            add(f'<rect class="used" data-name="{_esc(p.name)}" data-used="{used}" '
                f'x="{left + 1}" y="{y!r}" width="{bar_w - 2}" height="{shown * scale!r}" '
                f'fill="{colour}" fill-opacity="0.75"/>')
            free = p.size - used
            pct = 100.0 * used / p.size if p.size else 100.0
            state = (f"image {used:#x} bytes, {pct:.1f}% used, {free:#x} free" if free >= 0
                     else f"OVERFLOW by {-free:#x} bytes")
            if image.is_image and image.measured_size < used:
                state += f" (image {image.measured_size:#x}, file padded to {used:#x})"
            text += f" | {state}"
        labels.append((y + h / 2, "label", text))

    # Gaps between partitions and free space at the end, outlined so they read as empty.
    cursor = options.table_offset + PARTITION_TABLE_SIZE
    start = 0
    for _name, region_start, _ in _regions(options):
        if region_start > start:
            legend["url(#free)"] = "unused"  # flash before the bootloader shows as unused
        start = max(start, region_start)
    for p in table.sorted_by_offset():
        if p.offset > cursor:
            add(_empty("gap", cursor, p.offset, left, bar_w, y_of, scale))
            legend["url(#free)"] = "unused"
        cursor = max(cursor, p.end)
    if options.flash_size is not None and options.flash_size > cursor:
        add(_empty("free", cursor, options.flash_size, left, bar_w, y_of, scale))
        legend["url(#free)"] = "unused"
        labels.append((y_of((cursor + options.flash_size) / 2), "free-label",
                       f"free {format_size(options.flash_size - cursor, 'map')} from {cursor:#x}"))
    over = beyond_flash(table, options)
    if over and options.flash_size is not None:
        # What lies past the flash end is drawn over in the error colour, below a line
        # marking the end, so a table that cannot fit never looks as if it did.
        end = options.flash_size
        add(f'<rect class="beyond-flash" data-offset="{end}" data-size="{over}" x="{left}" '
            f'y="{y_of(end)!r}" width="{bar_w}" height="{over * scale!r}" fill="{_ERROR}" '
            'fill-opacity="0.45" stroke="none"/>')
        legend[_ERROR] = "past the end of the flash" + (
            " / overflow" if _ERROR in legend else "")
        labels.append((y_of(end + over / 2), "beyond-label",
                       f"{format_size(over, 'map')} past the end of the flash"))
    if options.flash_size is not None:
        fy = y_of(options.flash_size)
        add(f'<line class="flash-end" x1="{left - 4}" y1="{fy!r}" x2="{left + bar_w + 4}" '
            f'y2="{fy!r}" stroke="{_ERROR if over else "#333"}" stroke-width="2"/>')
        labels.append((fy, "flash-end-label",
                       f"end of the {format_size(options.flash_size, 'map')} flash at "
                       f"{options.flash_size:#x}"))

    # Offsets on the left axis: every partition start plus the flash end.
    ticks = sorted({0, span, *(p.offset for p in table),
                    *(() if options.flash_size is None else (options.flash_size,))})
    last_tick = -100.0
    for t in ticks:
        ty = y_of(t)
        if ty - last_tick < 11 and t != span:
            continue
        last_tick = ty
        add(f'<text class="tick" x="{left - 8}" y="{ty + 4!r}" text-anchor="end" '
            f'fill="#555">{t:#x}</text>')

    _place_labels(out, labels, left + bar_w, label_x, top, height)
    legend_y = top + height + 30
    x = left
    for colour, text in legend.items():
        step = 30 + 8 * len(text)
        if x + step > width and x > left:  # wrap to a second row
            x, legend_y = left, legend_y + 18
        add(f'<rect class="legend" x="{x}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{colour}" stroke="#555" stroke-width="0.5"/>')
        add(f'<text class="legend-text" x="{x + 17}" y="{legend_y}">{_esc(text)}</text>')
        x += 30 + 8 * len(text)
    add("</svg>")
    return "\n".join(out) + "\n"


def _empty(kind: str, start: int, end: int, left: int, bar_w: int, y_of: object,
           scale: float) -> str:
    y = y_of(start)  # type: ignore[operator]
    return (f'<rect class="{kind}" data-offset="{start}" data-size="{end - start}" '
            f'x="{left}" y="{y!r}" width="{bar_w}" height="{(end - start) * scale!r}" '
            'fill="none" stroke="#999" stroke-dasharray="4 3"/>')


def _place_labels(out: list[str], labels: list[tuple[float, str, str]], bar_right: int,
                  label_x: int, top: int, height: int) -> None:
    """Stack labels top-down at least one line apart, each with a leader to its anchor."""
    line = 15.0
    labels.sort(key=lambda item: item[0])
    placed: list[float] = []
    cursor = top - line
    for anchor, _, _ in labels:
        cursor = max(anchor, cursor + line)
        placed.append(cursor)
    overflow = placed[-1] - (top + height) if placed else 0.0
    if overflow > 0:  # pull the stack up if it runs off the bottom
        for i in range(len(placed) - 1, -1, -1):
            limit = top + height if i == len(placed) - 1 else placed[i + 1] - line
            placed[i] = min(placed[i], limit)
    for (anchor, cls, text), y in zip(labels, placed):
        out.append(f'<polyline points="{bar_right},{anchor!r} {bar_right + 20},{anchor!r} '
                   f'{label_x - 6},{y!r}" fill="none" stroke="#999" stroke-width="0.7"/>')
        out.append(f'<text class="{cls}" x="{label_x}" y="{y + 4!r}">{_esc(text)}</text>')


def _describe(p: Partition, options: TableOptions) -> str:
    sub = options.subtypes.render(p.type, p.subtype)
    return f"{type_name(p.type)}/{sub} @ {p.offset:#x}, {format_size(p.size, 'map')}"


def ascii_map(table: PartitionTable, options: TableOptions, width: int = 64) -> str:
    """A one-line strip of the flash, to scale, plus a key. ``.`` is unused space."""
    span = _span(table, options)
    items: list[tuple[int, int, str, str]] = []  # (start, end, key, legend line)
    for name, start, end in _regions(options):
        key = {"bootloader": "B", UNKNOWN_BOOTLOADER: "B", "partition table": "T"}.get(name, "R")
        items.append((start, end, key, f"  {key} ({name}) {start:#x}..{end:#x}"))
    for index, p in enumerate(table.sorted_by_offset()):
        key = _KEYS[index] if index < len(_KEYS) else "#"
        items.append((p.offset, p.end, key, f"  {key} {p.name} {_describe(p, options)}"))
    items.sort(key=lambda item: item[0])
    cells = ["."] * width
    cursor = 0
    for start, end, key, _ in items:
        # To scale, except that every item keeps at least one character of its own.
        a = min(max(start * width // span, cursor), width - 1)
        b = min(width, max(a + 1, -(-end * width // span)))
        for i in range(a, b):
            cells[i] = key
        cursor = b
    unit = span / width
    head = (f"flash map 0x0..{span:#x}, one character = {unit:.0f} bytes"
            f"{'' if options.flash_size is not None else ' (flash size unknown)'}:")
    legend = [line for _, _, _, line in items]
    return "\n".join([head, "|" + "".join(cells) + "|", *legend]) + "\n"
