"""An Arduino build folder (arduino-esp32 core), read from the files the build leaves in it.

The esp32 core copies the table it builds from (the sketch's ``partitions.csv``, else the
variant's, else the board menu scheme's) to ``partitions.csv`` in the build folder, makes
``<project>.partitions.bin`` from it, ``<project>.bin`` with esptool elf2image and
``<project>.bootloader.bin``. The upload writes the table at 0x8000, the core's
``boot_app0.bin`` (initial otadata) at 0xe000 and the app at 0x10000 (fixed in the core's
upload pattern), whatever the table says. ``build.options.json`` names the sketch, the FQBN
(board and menu choices) and the hardware folders, so the board's ``build.mcu``,
``build.flash_size`` and ``build.bootloader_addr`` are found in its ``boards.txt``; values
given by the caller (the build hook passes the build properties) win. What cannot be
found stays unknown, and the check says so instead of guessing.
"""

from __future__ import annotations

import glob
import os

from partkit.arduino.cores import version_key
from partkit.arduino.properties import board_properties, is_unexpanded, read_properties
from partkit.check.buildfolder import FlashedImage
from partkit.common.chips import bootloader_offset, chip_names
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.jsonfile import read_json_object
from partkit.common.numbers import parse_size
from partkit.common.record import Record
from partkit.table.options import TableOptions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from partkit.table.options import TableOptions

__all__ = ["APP_OFFSET", "OTADATA_OFFSET", "TABLE_OFFSET", "ArduinoBuild", "BoardOverrides",
           "find_board", "not_checked", "read_build_dir"]

TABLE_OFFSET = 0x8000  # the esp32 core's gen_esp32part and upload use the default offset
APP_OFFSET = 0x10000  # the core's upload pattern writes the app here
OTADATA_OFFSET = 0xE000  # ... and the core's tools/partitions/boot_app0.bin here, always
BOOT_APP0 = os.path.join("tools", "partitions", "boot_app0.bin")
BUILD_OPTIONS = "build.options.json"
TABLE_CSV = "partitions.csv"

_HINT = ("compile first ('arduino-cli compile --build-path DIR' or the IDE), then point "
         "--arduino-build-dir at that folder")


class BoardOverrides(Record):
    """Build properties the caller knows (from the IDE's ``{build.*}``); None: look them up."""

    __slots__ = ("bootloader_offset", "chip", "core_dir", "flash_size", "project_name")

    chip: str | None
    flash_size: str | None
    bootloader_offset: str | None
    project_name: str | None
    core_dir: str | None  # {runtime.platform.path}: where boot_app0.bin is

    def __init__(self, *, chip: str | None = None, flash_size: str | None = None,
                 bootloader_offset: str | None = None, project_name: str | None = None,
                 core_dir: str | None = None) -> None:
        def known(value: str | None) -> str | None:
            return None if value is None or is_unexpanded(value) else value

        self._init(chip=known(chip), flash_size=known(flash_size),
                   bootloader_offset=known(bootloader_offset),
                   project_name=known(project_name), core_dir=known(core_dir))


class ArduinoBuild(Record):
    """What partkit needs from one Arduino build folder; paths are absolute. A
    :class:`~partkit.check.buildfolder.BuildFolder`."""

    kind = "Arduino"
    json_key = "arduino_build"
    images_listing = "the esp32 core's upload command"
    rebuild_hint = "compile the sketch again (the esp32 core writes it)"

    __slots__ = ("app", "board", "bootloader", "build_dir", "chip", "core_dir", "flash_size",
                 "flash_size_text", "fqbn", "images", "options", "project_name", "ram_max",
                 "sketch_dir", "table", "table_origin", "table_source", "target")

    build_dir: str
    project_name: str  # "<sketch>.ino", the stem of every output
    fqbn: str | None
    board: Mapping[str, str]  # the board's properties with its menu choices ({} unknown)
    core_dir: str | None  # the esp32 core the build used, when known
    sketch_dir: str | None
    target: str  # the chip, or "unknown chip"
    chip: str | None
    table: str  # <project>.partitions.bin (may not exist yet)
    table_source: str | None  # the CSV the table came from (the sketch's own when it is)
    table_origin: str  # "partitions.csv" (the sketch's), or where the core took it from
    options: TableOptions
    flash_size: int | None
    flash_size_text: str | None
    app: FlashedImage | None
    bootloader: FlashedImage | None
    images: tuple[FlashedImage, ...]
    ram_max: int | None  # upload.maximum_data_size: the dynamic memory the core reports

    def __init__(self, *, build_dir: str, project_name: str, fqbn: str | None,
                 board: Mapping[str, str], core_dir: str | None, sketch_dir: str | None,
                 target: str,
                 chip: str | None, table: str, table_source: str | None, table_origin: str,
                 options: TableOptions, flash_size: int | None, flash_size_text: str | None,
                 app: FlashedImage | None, bootloader: FlashedImage | None,
                 images: tuple[FlashedImage, ...], ram_max: int | None) -> None:
        self._init(build_dir=build_dir, project_name=project_name, fqbn=fqbn, board=board,
                   core_dir=core_dir, sketch_dir=sketch_dir, target=target, chip=chip, table=table,
                   table_source=table_source, table_origin=table_origin, options=options,
                   flash_size=flash_size, flash_size_text=flash_size_text, app=app,
                   bootloader=bootloader, images=images, ram_max=ram_max)


def _load_options(build_dir: str) -> dict[str, object]:
    # missing: an --output-dir copy has only the images, the rest stays unknown
    return read_json_object(os.path.join(build_dir, BUILD_OPTIONS), _HINT) or {}


def _version_key(path: str) -> tuple[tuple[int, ...], int, str]:
    return version_key(os.path.basename(os.path.dirname(os.path.join(path, ""))))


def find_board(hardware_folders: list[str], fqbn: str) -> tuple[dict[str, str], str | None]:
    """The FQBN's board properties from the ``boards.txt`` of its core, and that core's
    folder (({}, None) if not found).

    A hardware folder is either a sketchbook-style ``hardware`` folder
    (``<vendor>/<arch>/boards.txt``) or a packages folder
    (``<vendor>/hardware/<arch>/<version>/boards.txt``; the highest version wins).
    """
    parts = fqbn.split(":")
    if len(parts) < 3:
        return {}, None
    vendor, arch, board = parts[:3]
    menu: dict[str, str] = {}
    if len(parts) > 3:
        for item in parts[3].split(","):
            name, eq, choice = item.partition("=")
            if eq:
                menu[name] = choice
    for folder in reversed(hardware_folders):  # later folders override earlier ones
        candidates = [os.path.join(folder, vendor, arch)]
        versions = sorted(glob.glob(os.path.join(glob.escape(folder), vendor, "hardware",
                                                 arch, "*", "")), key=_version_key)
        candidates += list(reversed(versions))
        for core in candidates:
            boards = read_properties(os.path.join(core, "boards.txt"))
            if f"{board}.name" in boards or any(k.startswith(f"{board}.") for k in boards):
                return board_properties(boards, board, menu), core
    return {}, None


def _custom_properties(value: object) -> dict[str, str]:
    """``--build-property KEY=VALUE`` settings, which win over the board's: arduino-cli
    records them joined with "," (a piece without "=" continues the value before it)."""
    found: dict[str, str] = {}
    key = None
    for piece in value.split(",") if isinstance(value, str) else ():
        name, eq, text = piece.partition("=")
        if eq and name and " " not in name:
            key = name.strip()
            found[key] = text
        elif key is not None:
            found[key] += "," + piece
    return found


def _int(text: str | None, what: str, where: str) -> int | None:
    if text is None or is_unexpanded(text):
        return None
    try:
        return int(text, 0)
    except ValueError:
        raise PartkitError(error(f"{what}: not a number: {text!r}", SourceLocation(where),
                                 hint="a flash offset such as 0x1000")) from None


def _project_name(build_dir: str, options: Mapping[str, object]) -> str:
    sketch = options.get("sketchLocation")
    if isinstance(sketch, str) and sketch:
        base = os.path.basename(sketch.rstrip("/\\"))
        return base if base.endswith((".ino", ".pde")) else f"{base}.ino"
    found = sorted(glob.glob(os.path.join(glob.escape(build_dir), "*.partitions.bin")))
    if len(found) == 1:
        return os.path.basename(found[0])[:-len(".partitions.bin")]
    raise PartkitError(error(
        "cannot tell the sketch's name: no build.options.json and "
        f"{len(found) or 'no'} *.partitions.bin files", SourceLocation(build_dir),
        hint="give --project-name NAME.ino (the stem of NAME.ino.bin)"))


def _sketch_dir(options: Mapping[str, object]) -> str | None:
    sketch = options.get("sketchLocation")
    if not isinstance(sketch, str) or not sketch:
        return None
    return sketch if os.path.isdir(sketch) else os.path.dirname(sketch)


def _same_file_content(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read(1024 * 1024) == fb.read(1024 * 1024)
    except OSError:
        return False


def _table_source(build_dir: str, sketch_dir: str | None, board: Mapping[str, str],
                  core_dir: str | None) -> tuple[str | None, str]:
    """The CSV messages point at, and where the core took the table from.

    The core copies the sketch's CSV, else the variant's, else the scheme's, but never
    deletes the build folder's copy: a sketch whose partitions.csv was removed (or edited)
    after a build is built with the old copy. So the origin is named only when the copy
    has that file's content."""
    copy = os.path.join(build_dir, TABLE_CSV)
    if sketch_dir is not None:
        own = os.path.join(sketch_dir, TABLE_CSV)
        if os.path.isfile(own) and _same_file_content(own, copy):
            return own, TABLE_CSV  # the sketch's own table: point at the user's lines
    if not os.path.isfile(copy):
        return None, "the core's table"
    scheme = board.get("build.partitions")
    if core_dir is None:
        return copy, f"the '{scheme}' partition scheme" if scheme else "the core's table"
    variant = board.get("build.variant")
    if variant:
        name = board.get("build.custom_partitions") or "partitions"
        if _same_file_content(os.path.join(core_dir, "variants", variant, f"{name}.csv"),
                              copy):
            return copy, f"the '{variant}' variant's {name}.csv"
    if scheme and _same_file_content(
            os.path.join(core_dir, "tools", "partitions", f"{scheme}.csv"), copy):
        return copy, f"the '{scheme}' partition scheme"
    return copy, ("the build folder's partitions.csv, left by an earlier build (not the "
                  "sketch's, the variant's or the scheme's)")


def read_build_dir(build_dir: str, overrides: BoardOverrides | None = None) -> ArduinoBuild:
    """Read an Arduino build folder. Raises PartkitError (exit 2) naming the bad file."""
    given = overrides or BoardOverrides()
    build_dir = os.path.abspath(build_dir)
    if not os.path.isdir(build_dir):
        raise PartkitError(error("not a directory", SourceLocation(build_dir), hint=_HINT))
    options_json = _load_options(build_dir)
    value = options_json.get("fqbn")
    fqbn = value if isinstance(value, str) and value else None
    folders = options_json.get("hardwareFolders")
    board: dict[str, str] = {}
    core_dir: str | None = None
    if fqbn is not None and isinstance(folders, str):
        board, core_dir = find_board([f for f in folders.split(",") if f], fqbn)
    board.update(_custom_properties(options_json.get("customBuildProperties")))
    core_dir = given.core_dir or core_dir
    project = given.project_name or _project_name(build_dir, options_json)
    stem = os.path.join(build_dir, project)
    table = f"{stem}.partitions.bin"
    if not os.path.exists(table) and not os.path.exists(os.path.join(build_dir, TABLE_CSV)):
        raise PartkitError(error(
            f"no {project}.partitions.bin and no partitions.csv: not an esp32 Arduino build "
            "folder, or the build did not get that far", SourceLocation(build_dir), hint=_HINT))
    chip = given.chip or board.get("build.mcu")
    if chip is not None and chip not in chip_names():
        chip = None  # a core newer than partkit: checks that need the chip say so
    size_text = given.flash_size or board.get("build.flash_size")
    try:
        flash_size = parse_size(size_text) if size_text else None
    except (ValueError, PartkitError):
        flash_size = None
    where = os.path.join(build_dir, BUILD_OPTIONS)
    bl_offset = _int(given.bootloader_offset or board.get("build.bootloader_addr"),
                     "build.bootloader_addr", where)
    if bl_offset is None and chip is not None:
        bl_offset = bootloader_offset(chip)
    sketch_dir = _sketch_dir(options_json)
    source, origin = _table_source(build_dir, sketch_dir, board, core_dir)
    images: list[FlashedImage] = []
    bootloader = None
    if bl_offset is not None and os.path.exists(f"{stem}.bootloader.bin"):
        bootloader = FlashedImage("bootloader", bl_offset, f"{stem}.bootloader.bin")
        images.append(bootloader)
    if os.path.exists(table):
        images.append(FlashedImage("partition-table", TABLE_OFFSET, table))
    boot_app0 = os.path.join(core_dir, BOOT_APP0) if core_dir else None
    if boot_app0 is not None and os.path.isfile(boot_app0):
        images.append(FlashedImage("boot_app0", OTADATA_OFFSET, boot_app0))
    app = None
    if os.path.exists(f"{stem}.bin"):
        app = FlashedImage("app", APP_OFFSET, f"{stem}.bin")
        images.append(app)
    return ArduinoBuild(
        build_dir=build_dir, project_name=project, fqbn=fqbn, board=board, core_dir=core_dir,
        sketch_dir=sketch_dir, target=chip or "unknown chip", chip=chip, table=table,
        table_source=source, table_origin=origin,
        options=TableOptions(table_offset=TABLE_OFFSET, primary_bootloader_offset=bl_offset,
                             flash_size=flash_size, chip=chip),
        flash_size=flash_size, flash_size_text=size_text, app=app, bootloader=bootloader,
        images=tuple(images),
        ram_max=_int(board.get("upload.maximum_data_size"), "upload.maximum_data_size", where))


def not_checked(build: ArduinoBuild) -> list[str]:
    """What the check of this build could not cover, and what would let it."""
    notes = []
    if build.bootloader is None:
        notes.append("the bootloader: its offset is unknown (give --chip or "
                     "--bootloader-offset)" if os.path.exists(
                         os.path.join(build.build_dir, f"{build.project_name}.bootloader.bin"))
                     else "the bootloader: no .bootloader.bin in the build folder")
    if build.flash_size is None:
        notes.append("the table against the flash: flash size unknown (give --flash-size)")
    if not any(i.name == "boot_app0" for i in build.images):
        notes.append("boot_app0.bin, which the upload writes at 0xe000: " + (
            f"not in {os.path.join(build.core_dir, BOOT_APP0)}" if build.core_dir else
            "the core's folder is unknown (give --core-dir)"))
    return notes
