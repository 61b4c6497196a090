"""An ESP-IDF build directory, read from the files ``idf.py build`` leaves in it.

Nothing is retyped by the user: the target comes from ``project_description.json``, the
table options from ``config/sdkconfig.json`` (the same Kconfig values ESP-IDF's CMake hands
to gen_esp32part and check_sizes.py) and the images that will be flashed, with their
offsets, from ``flasher_args.json`` (or ``flash_args`` when only that exists). Any IDF
version that writes these files works (v5.1 to v6.0 were tried); the linux target writes no
flasher files (its app runs on the host), so only the table is known there. What could not
be read is kept in ``IdfBuild.not_checked``, so a report never claims more than was checked.
"""

from __future__ import annotations

import os
import re
import shlex

from partkit.check.buildfolder import FlashedImage
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.jsonfile import read_json_object
from partkit.common.numbers import parse_size
from partkit.common.record import Record
from partkit.table.names import BUILTIN_SUBTYPES
from partkit.table.options import DEFAULT_TABLE_OFFSET, TableOptions, parse_extra_subtypes
from partkit.table.source import BUILD_ORIGIN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.table.names import SubtypeRegistry
    from partkit.table.options import TableOptions

__all__ = ["FlashedImage", "IdfBuild", "config_location", "read_build_dir",
           "read_extra_subtypes", "sdkconfig_line"]

PROJECT_DESCRIPTION = "project_description.json"
SDKCONFIG_JSON = os.path.join("config", "sdkconfig.json")
FLASHER_ARGS = "flasher_args.json"
FLASH_ARGS = "flash_args"
TABLE_BIN = os.path.join("partition_table", "partition-table.bin")
EXTRA_SUBTYPES_INC = os.path.join("config", "extra_partition_subtypes.inc")
BOOTLOADER_BIN = os.path.join("bootloader", "bootloader.bin")

_HINT = "run 'idf.py build' (or 'idf.py reconfigure') first, or point --idf-build-dir at it"




class IdfBuild(Record):
    """What partkit needs from one build directory; paths are absolute. A
    :class:`~partkit.check.buildfolder.BuildFolder`."""

    kind = "ESP-IDF"
    json_key = "idf_build"
    rebuild_hint = "run 'idf.py build' (or 'idf.py partition-table')"

    __slots__ = ("app", "bootloader", "build_dir", "chip", "extra_subtypes", "fail_free",
                 "flash_size", "flash_size_origin", "flash_size_text", "images",
                 "images_listing", "not_checked",
                 "options",
                 "project_name", "sdkconfig", "strict", "table", "table_builtin",
                 "table_source", "target", "warn_free")

    build_dir: str
    project_name: str
    target: str  # IDF_TARGET: a chip name, or "linux"
    chip: str | None  # None for the linux target
    table: str  # the binary table the build generated (may not exist yet)
    table_source: str | None  # the CSV it came from
    table_builtin: str | None  # ESP-IDF's predefined CSV's file name, when the project uses one
    options: TableOptions
    flash_size: int | None
    flash_size_text: str | None  # as the build spells it: "4MB", "detect", "keep"
    flash_size_origin: str | None  # the file that said it (reports name it)
    app: FlashedImage | None
    bootloader: FlashedImage | None
    images: tuple[FlashedImage, ...]  # everything flashed, in flasher_args order
    images_listing: str  # the file that listed them: flasher_args.json or flash_args
    # the partkit component's Kconfig (CONFIG_PARTKIT_*), when the project uses it
    warn_free: str | None
    fail_free: str | None
    strict: bool
    # EXTRA_PARTITION_SUBTYPES entries (type,name,value), already in options.subtypes
    extra_subtypes: tuple[str, ...]
    # what a check of this build cannot cover, each "what: why" (e.g. the linux target's app)
    not_checked: tuple[str, ...]
    sdkconfig: str | None  # the project's sdkconfig file (messages about CONFIG_* point there)

    def __init__(self, *, build_dir: str, project_name: str, target: str, chip: str | None,
                 table: str, table_source: str | None, options: TableOptions,
                 flash_size: int | None, flash_size_text: str | None,
                 app: FlashedImage | None, bootloader: FlashedImage | None,
                 images: tuple[FlashedImage, ...], warn_free: str | None = None,
                 fail_free: str | None = None, strict: bool = False,
                 extra_subtypes: tuple[str, ...] = (), not_checked: tuple[str, ...] = (),
                 sdkconfig: str | None = None, table_builtin: str | None = None,
                 images_listing: str = FLASHER_ARGS,
                 flash_size_origin: str | None = None) -> None:
        self._init(build_dir=build_dir, project_name=project_name, target=target, chip=chip,
                   table=table, table_source=table_source, options=options,
                   flash_size=flash_size, flash_size_text=flash_size_text, app=app,
                   bootloader=bootloader, images=images, warn_free=warn_free,
                   fail_free=fail_free, strict=strict, extra_subtypes=extra_subtypes,
                   not_checked=not_checked, sdkconfig=sdkconfig, table_builtin=table_builtin,
                   images_listing=images_listing, flash_size_origin=flash_size_origin)


def _load_json(path: str, *, required: bool = True) -> dict[str, object] | None:
    data = read_json_object(path, _HINT)
    if data is None and required:
        raise PartkitError(error("missing: not an ESP-IDF build directory, or not configured",
                                 SourceLocation(path), hint=_HINT))
    return data


def _text(data: dict[str, object], key: str, path: str, *, required: bool = True) -> str:
    value = data.get(key)
    if isinstance(value, str):
        return value
    if value is None and not required:
        return ""
    what = "missing" if value is None else f"not a string ({type(value).__name__})"
    raise PartkitError(error(f"'{key}' is {what}: not the file ESP-IDF writes",
                             SourceLocation(path), hint=_HINT))


def _offset(value: object, where: str, path: str) -> int:
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return int(value, 0)
    except ValueError:
        pass
    raise PartkitError(error(f"{where}: not a flash offset: {value!r}", SourceLocation(path)))


def _config_int(config: dict[str, object], key: str, path: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PartkitError(error(f"'{key}' is not a number: {value!r}", SourceLocation(path)))
    return _offset(value, key, path)


def _table_source(config: dict[str, object], project_path: str, idf_path: str) -> str | None:
    """The CSV ESP-IDF's partition_table component generates from.

    Source: ESP-IDF ``components/partition_table/Kconfig.projbuild`` and ``CMakeLists.txt``.
    """
    if config.get("PARTITION_TABLE_CUSTOM"):
        name = config.get("PARTITION_TABLE_CUSTOM_FILENAME")
        if isinstance(name, str) and name:
            return os.path.normpath(os.path.join(project_path, name))
        return None
    name = config.get("PARTITION_TABLE_FILENAME")
    if isinstance(name, str) and name and idf_path:
        return os.path.normpath(os.path.join(idf_path, "components", "partition_table", name))
    return None


def _secure(config: dict[str, object]) -> str | None:
    # gen_esp32part gets --secure only when secure boot is on and short app partitions
    # are not allowed; v2 when SECURE_BOOT_V2_ENABLED.
    if not config.get("SECURE_BOOT") or config.get("SECURE_BOOT_ALLOW_SHORT_APP_PARTITION"):
        return None
    return "v2" if config.get("SECURE_BOOT_V2_ENABLED") else "v1"


def _budget(config: dict[str, object], key: str) -> str | None:
    value = config.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _flash_size(text: str | None) -> int | None:
    if not text or text in ("detect", "keep"):
        return None

    try:
        return parse_size(text)
    except ValueError:
        return None


def _flasher_images(flasher: dict[str, object], path: str,
                    build_dir: str) -> tuple[list[FlashedImage], dict[str, FlashedImage]]:
    files = flasher.get("flash_files", {})
    if not isinstance(files, dict):
        raise PartkitError(error("'flash_files' is not an object", SourceLocation(path)))
    named: dict[str, FlashedImage] = {}
    for name, entry in flasher.items():
        if not isinstance(entry, dict) or "offset" not in entry or "file" not in entry:
            continue
        file = entry["file"]
        if not isinstance(file, str):
            raise PartkitError(error(f"'{name}.file' is not a path", SourceLocation(path)))
        named[name] = FlashedImage(name, _offset(entry["offset"], f"'{name}.offset'", path),
                                   os.path.join(build_dir, file),
                                   str(entry.get("encrypted", "false")).lower() == "true")
    by_place = {(i.offset, os.path.normpath(i.path)): i for i in named.values()}
    images: list[FlashedImage] = []
    for offset_text, file in files.items():
        if not isinstance(file, str):
            raise PartkitError(error(f"flash_files[{offset_text!r}] is not a path",
                                     SourceLocation(path)))
        offset = _offset(offset_text, f"flash_files key {offset_text!r}", path)
        full = os.path.join(build_dir, file)
        images.append(by_place.get((offset, os.path.normpath(full)),
                                   FlashedImage("", offset, full)))
    return images, named


def _flash_args_images(path: str, build_dir: str) -> tuple[list[FlashedImage], str | None]:
    """``flash_args``: an esptool argfile, options first, then ``offset file`` pairs."""

    try:
        with open(path, encoding="utf-8") as f:
            words = shlex.split(f.read(1024 * 1024), comments=False)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PartkitError(error(f"cannot read: {exc}", SourceLocation(path))) from None
    images: list[FlashedImage] = []
    size: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("--flash-size", "--flash_size") and i + 1 < len(words):
            size = words[i + 1]
            i += 2
        elif word.startswith("-"):
            i += 2 if i + 1 < len(words) and not words[i + 1].startswith("0x") else 1
        elif i + 1 < len(words):
            images.append(FlashedImage("", _offset(word, "offset", path),
                                       os.path.join(build_dir, words[i + 1])))
            i += 2
        else:
            raise PartkitError(error(f"offset {word} has no file", SourceLocation(path)))
    return images, size


def read_extra_subtypes(path: str) -> tuple[str, ...]:
    """EXTRA_PARTITION_SUBTYPES from ``config/extra_partition_subtypes.inc`` (none if absent).

    ESP-IDF writes the entries verbatim into the file's parttool comment
    (``--extra-partition-subtypes "app,my_app1,0x40" ...``) and as enum lines
    (``ESP_PARTITION_SUBTYPE_APP_MY_APP1 = 0x40,``, names upper-cased); the comment keeps
    the names as the CSV spells them, the enum lines are the fallback.
    """

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1024 * 1024)
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise PartkitError(error(f"cannot read: {exc}", SourceLocation(path))) from None
    for line in text.splitlines():
        words = line.split("--extra-partition-subtypes", 1)
        if len(words) == 2:
            try:
                return tuple(w.replace(" ", "") for w in shlex.split(words[1]) if w.strip())
            except ValueError:
                break
    types = ("APP", "DATA", "BOOTLOADER", "PARTITION_TABLE")
    found = []
    for m in re.finditer(r"^ESP_PARTITION_SUBTYPE_(\w+?)\s*=\s*(\w+)\s*,", text, re.M):
        name, value = m.groups()
        ptype = next((t for t in sorted(types, key=len, reverse=True)
                      if name.startswith(t + "_")), None)
        if ptype is not None:
            found.append(f"{ptype.lower()},{name[len(ptype) + 1:].lower()},{value}")
    return tuple(found)


def sdkconfig_line(path: str, name: str) -> SourceLocation | None:
    """The line of an sdkconfig file that sets ``name`` (a CONFIG_* option), if any."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if line.startswith(f"{name}="):
                    return SourceLocation(path, number, 1)
    except OSError:
        return None
    return None


def config_location(build: IdfBuild, name: str) -> SourceLocation | None:
    """Where ``name`` is set in the project's sdkconfig (the file when the line is not found)."""
    if not build.sdkconfig:
        return None
    return sdkconfig_line(build.sdkconfig, name) or SourceLocation(build.sdkconfig)


def _sdkconfig_path(desc: dict[str, object], project_path: str) -> str | None:
    config_file = desc.get("config_file")
    if isinstance(config_file, str) and config_file:
        return config_file
    return os.path.join(project_path, "sdkconfig") if project_path else None


def read_build_dir(build_dir: str) -> IdfBuild:
    """Read an ESP-IDF build directory. Raises PartkitError (exit 2) naming the bad file."""
    build_dir = os.path.abspath(build_dir)
    if not os.path.isdir(build_dir):
        raise PartkitError(error("not a directory", SourceLocation(build_dir), hint=_HINT))
    desc_path = os.path.join(build_dir, PROJECT_DESCRIPTION)
    desc = _load_json(desc_path)
    assert desc is not None
    target = _text(desc, "target", desc_path)
    project_path = _text(desc, "project_path", desc_path, required=False)
    idf_path = _text(desc, "idf_path", desc_path, required=False)
    config_path = os.path.join(build_dir, SDKCONFIG_JSON)
    config = _load_json(config_path)
    assert config is not None
    if "PARTITION_TABLE_OFFSET" not in config:
        raise PartkitError(error(
            "no PARTITION_TABLE_OFFSET: the project builds no partition table "
            "(CONFIG_PARTITION_TABLE_* unset) or this is not ESP-IDF's sdkconfig.json",
            SourceLocation(config_path), hint="add partition_table to the project's components"))
    chip = None if target == "linux" else target
    flasher_path = os.path.join(build_dir, FLASHER_ARGS)
    flasher = _load_json(flasher_path, required=False)
    named: dict[str, FlashedImage] = {}
    size_text: str | None = None
    size_from = None
    not_checked: list[str] = []
    if flasher is not None:
        images, named = _flasher_images(flasher, flasher_path, build_dir)
        settings = flasher.get("flash_settings")
        if isinstance(settings, dict) and isinstance(settings.get("flash_size"), str):
            size_text = str(settings["flash_size"])
            size_from = f"{BUILD_ORIGIN}{FLASHER_ARGS}"
        extra = flasher.get("extra_esptool_args")
        if isinstance(extra, dict) and isinstance(extra.get("chip"), str):
            chip = str(extra["chip"])
    elif os.path.exists(os.path.join(build_dir, FLASH_ARGS)):
        images, size_text = _flash_args_images(os.path.join(build_dir, FLASH_ARGS), build_dir)
        size_from = f"{BUILD_ORIGIN}{FLASH_ARGS}"
    else:
        images = []
        if target != "linux":
            not_checked.append("the flashed files (app, bootloader, data images): the build "
                               "has neither flasher_args.json nor flash_args")
    configured = config.get("ESPTOOLPY_FLASHSIZE")
    # Secure boot and "detect" builds write "keep"/"detect" for esptool; the flash the
    # project was configured for is still ESPTOOLPY_FLASHSIZE.
    if isinstance(configured, str) and size_text in (None, "detect", "keep"):
        size_text, size_from = configured, f"{BUILD_ORIGIN}CONFIG_ESPTOOLPY_FLASHSIZE"
    flash_size = _flash_size(size_text)
    if flash_size is None:  # the linux target's sdkconfig has no ESPTOOLPY_FLASHSIZE
        not_checked.append("the partitions against the flash size: the build names no flash "
                           f"size ({size_text or 'no ESPTOOLPY_FLASHSIZE'})")
    bootloader_offset = _config_int(config, "BOOTLOADER_OFFSET_IN_FLASH", config_path)
    recovery = (_config_int(config, "BOOTLOADER_RECOVERY_OFFSET", config_path)
                if config.get("BOOTLOADER_RECOVERY_ENABLE") else None)
    table_offset = _config_int(config, "PARTITION_TABLE_OFFSET", config_path)
    extra_subtypes = read_extra_subtypes(os.path.join(build_dir, EXTRA_SUBTYPES_INC))
    options = TableOptions(
        table_offset=table_offset if table_offset is not None else DEFAULT_TABLE_OFFSET,
        # CMake passes BOOTLOADER_OFFSET_IN_FLASH, or 0 where it is undefined (linux)
        primary_bootloader_offset=bootloader_offset or 0,
        recovery_bootloader_offset=recovery,
        md5=bool(config.get("PARTITION_TABLE_MD5")),
        secure=_secure(config),
        flash_size=flash_size,
        chip=chip,
        subtypes=_subtypes(extra_subtypes, os.path.join(build_dir, EXTRA_SUBTYPES_INC)),
    )
    table = named["partition-table"].path if "partition-table" in named else os.path.join(
        build_dir, TABLE_BIN)
    app = named.get("app")
    if app is None and flasher is None:
        app_bin = _text(desc, "app_bin", desc_path, required=False)
        candidate = os.path.join(build_dir, app_bin) if app_bin else ""
        if candidate and os.path.exists(candidate):
            app = FlashedImage("app", -1, candidate)  # offset unknown: not flashed by idf.py
    if app is None:
        why = ("the linux target builds a host executable, no app image" if target == "linux"
               else "the build lists no app image")
        not_checked.append(f"the app: {why}")
    bootloader = named.get("bootloader")
    if bootloader is None and chip is not None:
        # Secure boot builds leave the bootloader out of flash_files (it is flashed by
        # hand), but it must still end before the table.
        candidate = os.path.join(build_dir, BOOTLOADER_BIN)
        if os.path.exists(candidate):
            bootloader = FlashedImage("bootloader", bootloader_offset or 0, candidate)
        else:
            not_checked.append(f"the bootloader: {candidate} is missing")
    custom = bool(config.get("PARTITION_TABLE_CUSTOM"))
    builtin_name = config.get("PARTITION_TABLE_FILENAME")
    return IdfBuild(
        build_dir=build_dir,
        project_name=_text(desc, "project_name", desc_path, required=False),
        target=target, chip=chip, table=table,
        table_source=_table_source(config, project_path, idf_path),
        options=options, flash_size=flash_size, flash_size_text=size_text,
        flash_size_origin=size_from if flash_size is not None else None,
        app=app, bootloader=bootloader, images=tuple(images),
        warn_free=_budget(config, "PARTKIT_WARN_FREE"),
        fail_free=_budget(config, "PARTKIT_FAIL_FREE"),
        strict=bool(config.get("PARTKIT_STRICT")),
        extra_subtypes=extra_subtypes, not_checked=tuple(not_checked),
        sdkconfig=_sdkconfig_path(desc, project_path),
        images_listing=FLASHER_ARGS if flasher is not None else FLASH_ARGS,
        table_builtin=builtin_name if not custom and isinstance(builtin_name, str) else None)


def _subtypes(entries: tuple[str, ...], path: str) -> SubtypeRegistry:
    try:
        return parse_extra_subtypes(entries, BUILTIN_SUBTYPES)
    except PartkitError as exc:
        raise PartkitError(exc.diagnostics[0].replace(location=SourceLocation(path))) from None
