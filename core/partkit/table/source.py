"""Where a table comes from, answered once: :func:`open_table` for every command.

A *spec* is what the user typed for a table: a CSV or binary file, ``builtin:NAME``, a
flash image or dump, or a connected chip (``port:/dev/ttyUSB0``, ``socket://host:N``,
``rfc2217://...``). Files say what they are by their bytes. Images and devices are read
by the layers that own them (journal-aware image reads in ``partkit.flash``, esptool in
``partkit.device``): a caller that accepts them passes their readers in :class:`Readers`,
so this module imports neither; without them a spec is a CSV or binary file.

The flash size has one rule (:func:`flash_size_of`): the flash-size code in the
bootloader's image header when an image, dump or device has one (it is what the 2nd-stage
bootloader checks partitions against, whatever the chip or a file's length says); else
``--flash-size``; else a device's flash chip; else the length of a full dump (a power of
two from 1MB, not an unpadded ``merge-bin`` output). The result says where the number
came from. ``partkit diff`` applies the same order to its two sides (OLD's header first:
the devices run OLD's bootloader). A ``--flash-size`` the header overrules is not dropped
silently: :func:`judge_flash_size` adds a warning that says which size is used and why.
"""

from __future__ import annotations

import os

from partkit.common.errors import SourceLocation, warning
from partkit.common.numbers import format_size
from partkit.common.record import Record
from partkit.table import binary
from partkit.table.codec import Loaded, load_table
from partkit.table.csvparse import PARTITION_TABLE_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.common.errors import Diagnostic
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

__all__ = [
    "BUILD_ORIGIN",
    "HEADER_ORIGIN",
    "KINDS",
    "NO_READERS",
    "Field",
    "FlashSize",
    "RawTable",
    "Readers",
    "TableSource",
    "decode",
    "flash_size_of",
    "grow_hint",
    "has_md5_row",
    "is_device_spec",
    "is_full_dump_length",
    "judge_flash_size",
    "open_table",
    "read_raw",
    "read_table_input",
    "source_flash_size",
]

KINDS = ("csv", "binary", "builtin", "image", "device")
BUILTIN_PREFIX = "builtin:"  # partkit.table.builtin.PREFIX; its data loads only when used
# esptool's port URLs name a device; ``port:`` says so for a plain serial port.
DEVICE_URLS = ("socket://", "rfc2217://")
DEVICE_PREFIX = "port:"


class Field(Record):
    """What the flash around the table says (an image or a device only).

    ``header_flash_size``: byte 3 of the bootloader image header, the size the bootloader
    checks partitions against (``header_where`` names the place). ``otadata``: the bytes of
    the table's otadata partition, whose active record says which slot boots.
    ``app_images``: the offsets of the app slots that start with an image's magic byte, or
    lie past the end of the source (unknown, so not taken for blank): the bootloader skips
    a slot without an image and boots the next one it tries.
    """

    __slots__ = ("app_images", "header_flash_size", "header_where", "otadata")

    header_flash_size: int | None
    header_where: str | None
    otadata: bytes | None
    app_images: frozenset[int] | None

    def __init__(self, header_flash_size: int | None = None, header_where: str | None = None,
                 otadata: bytes | None = None, app_images: frozenset[int] | None = None,
                 ) -> None:
        self._init(header_flash_size=header_flash_size, header_where=header_where,
                   otadata=otadata, app_images=app_images)


class RawTable(Record):
    """The table bytes a source yields, before decoding, and what the source knows:
    ``flash_size`` is an image file's length or a device's flash chip size (None for a
    table file); ``field`` what the flash around the table says."""

    __slots__ = ("data", "field", "flash_size", "kind", "label")

    data: bytes
    kind: str  # one of KINDS
    label: str  # the path diagnostics name (``dump.bin@0x8000``)
    flash_size: int | None
    field: Field

    def __init__(self, data: bytes, kind: str, label: str, flash_size: int | None = None,
                 field: Field | None = None) -> None:
        self._init(data=data, kind=kind, label=label, flash_size=flash_size,
                   field=field if field is not None else Field())


class Readers(Record):
    """The image and device readers a caller accepts: ``(spec, options) -> RawTable``.

    ``options.table_offset`` says where the table is; ``options.chip`` (when known) where
    an image's bootloader is.
    """

    __slots__ = ("device", "image")

    image: Callable[[str, TableOptions], RawTable] | None
    device: Callable[[str, TableOptions], RawTable] | None

    def __init__(self, image: Callable[[str, TableOptions], RawTable] | None = None,
                 device: Callable[[str, TableOptions], RawTable] | None = None) -> None:
        self._init(image=image, device=device)


NO_READERS = Readers()


class TableSource(Record):
    """A decoded table and what its source said: kind, offset, MD5 row, flash size."""

    __slots__ = ("flash_size", "flash_size_origin", "is_binary", "kind", "label", "md5",
                 "table", "table_offset", "warnings")

    table: PartitionTable
    warnings: tuple[Diagnostic, ...]
    is_binary: bool
    kind: str
    label: str
    table_offset: int
    md5: bool  # a binary has an MD5 row; a CSV will be encoded with one (options.md5)
    flash_size: int | None
    flash_size_origin: str | None

    def __init__(self, table: PartitionTable, warnings: tuple[Diagnostic, ...],
                 is_binary: bool, kind: str, label: str, table_offset: int, md5: bool,
                 flash_size: int | None, flash_size_origin: str | None) -> None:
        self._init(table=table, warnings=warnings, is_binary=is_binary, kind=kind,
                   label=label, table_offset=table_offset, md5=md5, flash_size=flash_size,
                   flash_size_origin=flash_size_origin)

    @property
    def loaded(self) -> Loaded:
        return Loaded(self.table, self.is_binary, self.warnings)


def is_device_spec(spec: str) -> bool:
    return spec.startswith(DEVICE_URLS) or spec.startswith(DEVICE_PREFIX)


def has_md5_row(data: bytes) -> bool:
    """True when a binary table has an MD5 row before its end marker."""
    for start in range(0, len(data) - binary.ENTRY_SIZE + 1, binary.ENTRY_SIZE):
        row = data[start:start + binary.ENTRY_SIZE]
        if row == binary.END_MARKER:
            return False
        if row[:16] == binary.MD5_MARKER:
            return True
    return False


def read_table_input(path: str) -> bytes:
    """A table file's bytes; ``builtin:NAME`` is a built-in table's CSV text."""
    if path.startswith(BUILTIN_PREFIX):
        from partkit.table.builtin import csv_text, lookup

        return csv_text(lookup(path[len(BUILTIN_PREFIX):])).encode("utf-8")
    from partkit.common.fileio import read_input

    return read_input(path)


def _looks_like_image(spec: str) -> bool:
    """A flash image: larger than a table sector and not text (ESP image, erased, NULs)."""
    import stat

    from partkit.common.fileio import check_input, read_input

    # a FIFO or device is read once as a table stream (bounded), never opened twice
    if not stat.S_ISREG(check_input(spec).st_mode):
        return False
    try:
        size = os.path.getsize(spec)
        with open(spec, "rb") as f:
            head = f.read(PARTITION_TABLE_SIZE)
    except OSError:
        read_input(spec)  # raises the standard diagnostic (no such file, a directory, ...)
        raise
    if size <= PARTITION_TABLE_SIZE:  # 0xC00 bytes, or the whole sector when signed
        return False
    return head[:1] == b"\xe9" or head[:32] == b"\xff" * 32 or b"\x00" in head


def read_raw(spec: str, options: TableOptions, readers: Readers = NO_READERS) -> RawTable:
    """The table bytes behind ``spec``; raises PartkitError for an unreadable source."""
    if spec.startswith(BUILTIN_PREFIX):
        return RawTable(read_table_input(spec), "builtin", spec)
    if spec == "-":  # every table argument takes stdin
        import sys

        from partkit.common.fileio import read_stream

        data = read_stream(sys.stdin.buffer, "<stdin>")
        return RawTable(data, "binary" if binary.looks_binary(data) else "csv", "<stdin>")
    if readers.device is not None and is_device_spec(spec):
        port = spec[len(DEVICE_PREFIX):] if spec.startswith(DEVICE_PREFIX) else spec
        return readers.device(port, options)
    if readers.image is not None and _looks_like_image(spec):
        return readers.image(spec, options)
    data = read_table_input(spec)
    return RawTable(data, "binary" if binary.looks_binary(data) else "csv", spec)


def source_flash_size(raw: RawTable) -> tuple[int | None, str | None]:
    """What the source itself says of the flash size, without options: a device's flash
    chip, or a full dump's length (a power of two from 1MB)."""
    where = raw.label.rsplit("@", 1)[0]
    size = raw.flash_size
    if raw.kind == "device" and size is not None:
        return size, f"the flash chip of {where}"
    if raw.kind == "image" and size is not None and is_full_dump_length(size):
        return size, f"the length of {where}"
    return None, None


def is_full_dump_length(size: int) -> bool:
    """A dump of a whole flash chip: a power of two from 1MB (an unpadded ``merge-bin``
    output ends after its last image, so its length says nothing of the flash)."""
    return size >= 1 << 20 and not size & (size - 1)


def flash_size_of(raw: RawTable, options: TableOptions) -> tuple[int | None, str | None]:
    """The flash size a table is judged against, and where it came from (module docstring)."""
    if raw.field.header_flash_size is not None:
        return raw.field.header_flash_size, raw.field.header_where
    if options.flash_size is not None:
        return options.flash_size, "--flash-size"
    return source_flash_size(raw)


class FlashSize(Record):
    """The flash size a table is judged against (None: unknown), where the number came from
    (``--flash-size``, ``the bootloader header at dump.bin@0x1000, byte 3``, ``the length
    of dump.bin``, ``the flash chip of PORT``, a build's setting), and the warnings judging
    it raised (a ``--flash-size`` the bootloader header overrules)."""

    __slots__ = ("origin", "size", "warnings")

    size: int | None
    origin: str | None
    warnings: tuple[Diagnostic, ...]

    def __init__(self, size: int | None = None, origin: str | None = None,
                 warnings: tuple[Diagnostic, ...] = ()) -> None:
        self._init(size=size, origin=origin, warnings=warnings)

    @classmethod
    def given(cls, size: int | None, origin: str = "--flash-size") -> FlashSize:
        """A size the user or a build set (no flash around the table to overrule it)."""
        return cls(size, origin if size is not None else None)

    def overruling(self, given: int | None, where: SourceLocation) -> FlashSize:
        """This size, with a ``flash-size-overruled`` warning when ``given`` (``--flash-size``)
        differs from the bootloader header's."""
        size, origin = self.size, self.origin
        if given is None or size is None or origin is None or given == size or (
                origin == "--flash-size"):
            return self
        said, wanted = format_size(size, "esptool"), format_size(given, "esptool")
        why = "the 2nd-stage bootloader checks the partitions against its own header"
        if given < size:  # ESP-IDF esp_flash_spi_init.c: the app's flash init then fails
            why += (f"; on a {wanted} chip the app stops at start-up ('Detected size("
                    f"{given >> 10}k) smaller than the size in the binary image header("
                    f"{size >> 10}k). Probe failed.')")
        # a chip smaller than the header is a failed check ('partkit check', 'image check')
        code = "flash-smaller-than-header" if given < size else "flash-size-overruled"
        return self.replace(warnings=(*self.warnings, warning(
            f"--flash-size {wanted} is not used: {origin} says {said} (0x{size:x}), and {why}",
            where, hint=f"judged against {said}; for a {wanted} flash, write the bootloader "
                        "with that size (esptool merge-bin/write-flash --flash-size)",
            code=code)))


HEADER_ORIGIN = "the bootloader header at "  # how read_header_flash_size names the place
BUILD_ORIGIN = "the build's "  # an ESP-IDF build's file (partkit.idf.builddir)


def grow_hint(origin: str | None) -> str:
    """How to make the flash bigger where the size came from: ``--flash-size`` cannot
    overrule a bootloader header, and a build directory's size is the build's."""
    if origin is not None and origin.startswith(HEADER_ORIGIN):
        return ("shrink or move partitions, or if the chip has more flash, write the "
                "bootloader with that size (esptool merge-bin/write-flash --flash-size): "
                "--flash-size cannot overrule its header")
    if origin is not None and origin.startswith(BUILD_ORIGIN):
        return ("shrink or move partitions, or if the chip has more flash, set the "
                "project's flash size (CONFIG_ESPTOOLPY_FLASHSIZE) and build again")
    return "shrink or move partitions, or use a bigger --flash-size if the chip has it"


def judge_flash_size(raw: RawTable, options: TableOptions) -> FlashSize:
    """:func:`flash_size_of`, with a warning when it overrules ``--flash-size``: the
    bootloader header says another size, and the 2nd-stage bootloader checks the
    partitions against its header, not against what the command line says."""
    size, origin = flash_size_of(raw, options)
    return FlashSize(size, origin).overruling(options.flash_size,
                                              SourceLocation(raw.label.rsplit("@", 1)[0]))


def decode(raw: RawTable, options: TableOptions, table_offset: int | None = None
           ) -> TableSource:
    """Decode ``raw`` with ``options`` (validation as ``options.verify`` says)."""
    loaded = load_table(raw.data, raw.label, options)
    is_text = not loaded.is_binary
    md5 = options.md5 if is_text else has_md5_row(raw.data)
    size, origin = flash_size_of(raw, options)
    return TableSource(loaded.table, loaded.warnings, loaded.is_binary, raw.kind, raw.label,
                       options.table_offset if table_offset is None else table_offset, md5,
                       size, origin)


def open_table(spec: str, options: TableOptions, readers: Readers = NO_READERS
               ) -> TableSource:
    """Read and decode the table ``spec`` names; raises PartkitError with every error.

    ``options`` decode it: table offset (where an image or device holds the table),
    MD5, subtypes, validation, and a flash size the partitions must fit (an error) when
    ``options.flash_size`` is set.
    """
    return decode(read_raw(spec, options, readers), options)
