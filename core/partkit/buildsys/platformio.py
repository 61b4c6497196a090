"""What the PlatformIO script (pio_extra_script.py) decides, as plain functions.

The script reads the SCons/PlatformIO environment (board options, ``$UPLOADER``,
``FLASH_EXTRA_IMAGES``, package directories) and passes the values here; this module
never sees ``env``. It covers: which esptool the platform runs and how that esptool
spells ``write_flash``, the flash commands, a built-in table named by
``board_build.partitions``, the bootloader among the platform's extra images, the
``partkit: table ...`` line and the check of a ``buildfs`` image.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

from partkit.check.files import check_files
from partkit.common.chips import BOOTLOADER_OFFSET
from partkit.common.errors import PartkitError, SourceLocation, error
from partkit.common.esptool import WRITE_FLASH, write_flash_for_version
from partkit.common.fileio import write_if_changed
from partkit.common.numbers import parse_int
from partkit.data.upload import FATFS_SKIP, UploadfsRules, check_fs_image
from partkit.flash.tablearea import load_table_file
from partkit.table import builtin
from partkit.table.names import APP
from partkit.table.options import table_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from partkit.common.errors import Diagnostic
    from partkit.data.upload import UploadfsRules

__all__ = [
    "FRAMEWORK_PACKAGES",
    "FS_TARGETS",
    "SetupError",
    "app_targets",
    "bootloader_image",
    "bootloader_offset",
    "builtin_candidate",
    "check_fs_image_file",
    "check_upload_slot",
    "display_path",
    "esptool_prefix",
    "flash_hint",
    "flashed_table_offset",
    "framework_has_table",
    "is_yes",
    "reconcile_offset",
    "table_from_platform",
    "table_summary",
    "uploadfs_rules",
    "version_tuple",
    "write_builtin_table",
    "write_flash_for_version",
    "write_flash_spelling",
]

# The framework packages whose own tables a board_build.partitions name may mean.
ARDUINO = "framework-arduinoespressif32"
ESPIDF = "framework-espidf"
FRAMEWORK_PACKAGES = (ARDUINO, ESPIDF)


class SetupError(PartkitError):
    """A project setting the build cannot go on with; the script prints it and exits 2.

    A :class:`PartkitError` like every other bad input (one ``except`` catches both); its
    text is the bare message, as the script prints it after ``partkit: error:``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def is_yes(text: str) -> bool:
    """A custom_partkit_* switch (``strict = yes``)."""
    return text.strip().lower() in ("1", "true", "yes", "on")


# --- esptool -------------------------------------------------------------------------

def esptool_prefix(python: str, named: Iterable[str], package_dir: str | None) -> list[str]:
    """How this platform runs esptool (argv prefix).

    ``named``: the platform's ``$UPLOADER`` and ``$OBJCOPY`` (upload_protocol = esptool
    names it there); ``package_dir``: its ``tool-esptoolpy`` package, if any.
    platform-espressif32 runs ``"$PYTHONEXE" <tool-esptoolpy>/esptool.py``; pioarduino an
    ``esptool`` executable; without either, ``python -m esptool``.
    """
    tool = ""
    for value in named:
        value = value.strip().strip('"')
        if os.path.basename(value).startswith("esptool") and os.path.isfile(value):
            tool = value
            break
    if not tool and package_dir and os.path.isfile(os.path.join(package_dir, "esptool.py")):
        tool = os.path.join(package_dir, "esptool.py")
    if tool.endswith(".py"):
        return [python, tool]
    return [tool] if tool else [python, "-m", "esptool"]


def write_flash_spelling(prefix: Sequence[str], flags: Iterable[str] = ()) -> str:
    """How the esptool run by ``prefix`` spells write-flash: as the platform's own upload
    command (``flags``, its ``$UPLOADERFLAGS``) does, else asked from its version."""
    given = set(flags)
    for spelling in WRITE_FLASH:
        if spelling in given:
            return spelling
    try:
        proc = subprocess.run([*prefix, "version"], capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.SubprocessError):
        return "write_flash"
    return write_flash_for_version(proc.stdout)


def flash_hint(prefix: Sequence[str], write_flash: str, table: str, *, offset: str,
               chip: str = "") -> str:
    """The text after ``pio run -t partition-table``'s table: how to flash it by hand."""
    command = [*prefix, *(["--chip", chip] if chip else []), write_flash, offset, table]
    return ("\nTo flash the partition table (add --port PORT to choose the port), run:\n "
            + shlex.join(command))


# --- the table -------------------------------------------------------------------------

def table_from_platform(mode: str, platform_owned: bool, table_bin: str) -> bool:
    """Whether the table comes from the platform (checked) rather than partkit (generated).

    ``mode`` is custom_partkit_generate (auto, yes, no); ``platform_owned`` whether the
    platform already builds ``table_bin``. Raises SetupError for yes on such a platform.
    """
    mode = mode.lower()
    if platform_owned and mode == "yes":
        raise SetupError(f"the platform already generates {table_bin}; "
                         "set custom_partkit_generate = auto")
    return platform_owned or mode == "no"


def display_path(path: str, project_dir: str) -> str:
    """``path`` relative to the project (PlatformIO's working directory) when inside it."""
    inside = os.path.relpath(path, project_dir)
    return path if inside.startswith(os.pardir) else inside


def builtin_candidate(name: str, project_dir: str) -> bool:
    """Whether ``board_build.partitions = name`` may mean a built-in table: a bare name
    that is not a file in the project (the platform is asked next)."""
    return bool(name) and not os.path.isabs(name) and not os.path.dirname(name) \
        and not os.path.exists(os.path.join(project_dir, name))


def framework_has_table(name: str, packages: Mapping[str, str | None], variant: str) -> bool:
    """Whether a framework resolves ``board_build.partitions = name`` itself.

    ``packages`` maps FRAMEWORK_PACKAGES to their directories (None: not installed).
    Arduino looks in the board variant's directory, then tools/partitions; ESP-IDF in
    components/partition_table.
    """
    places = {
        ARDUINO: (os.path.join("variants", variant), os.path.join("tools", "partitions")),
        ESPIDF: (os.path.join("components", "partition_table"),),
    }
    for package, subdirs in places.items():
        root = packages.get(package)
        if root and any(os.path.isfile(os.path.join(root, d, name)) for d in subdirs):
            return True
    return False


def write_builtin_table(name: str, build_dir: str) -> tuple[str, str] | None:
    """The CSV of the built-in table ``name`` in ``build_dir/partkit``: (path, table name).

    Rewritten only when its text changes, so an unchanged table rebuilds nothing. None
    for an unknown name ending in .csv: a missing file, which the table builder reports.
    Raises SetupError for another unknown name (with the known names and a did-you-mean).
    """

    try:
        table = builtin.lookup(name)
    except PartkitError as exc:
        if name.lower().endswith(".csv"):
            return None
        raise SetupError(f"board_build.partitions = {name}: no such file, and {exc}") from None
    path = os.path.join(build_dir, "partkit", f"builtin-{table.name}.csv")
    write_if_changed(path, builtin.csv_text(table).encode("utf-8"))
    return path, table.name


def table_summary(table: str, origin: str, *, offset: str, flash_size: str, chip: str,
                  missing: bool = False, invalid: bool = False, slot: str = "",
                  slot_size: int = 0) -> str:
    """The ``partkit: table ...`` line: the inputs the build used and the app slot.

    ``origin`` is "generated" or "from the platform"; ``missing``/``invalid`` say why the
    slot is unknown; ``slot`` is empty when the table has no app partition.
    """
    if missing:
        app = "; app slot unknown: the table file does not exist"
    elif invalid:
        app = "; app slot unknown: the table is invalid (see the error below)"
    elif slot:
        app = f"; app slot '{slot}' {slot_size} bytes"
    else:
        app = "; no app slot in the table"
    return (f"partkit: table {table} ({origin} at {offset}, flash "
            f"{flash_size or 'unchecked'}, chip {chip or '?'}){app}")


# --- images ----------------------------------------------------------------------------

def bootloader_offset(option: str, chip: str) -> int | None:
    """Where the bootloader is flashed: custom_partkit_bootloader_offset, else the chip's
    (None for an unknown or empty chip)."""

    if option:
        return parse_int(option)
    return BOOTLOADER_OFFSET.get(chip.lower())


def bootloader_image(images: Iterable[tuple[str, str]], offset: int) -> tuple[str, str] | None:
    """The (offset text, path) of ``images`` (``FLASH_EXTRA_IMAGES``) flashed at ``offset``.

    platform-espressif32's Arduino 2.0.x flashes a prebuilt bootloader from the framework
    package this way instead of building one. Offsets that are not numbers are skipped.
    """

    for text, path in images:
        try:
            if parse_int(text) == offset:
                return text, path
        except ValueError:
            continue
    return None


# --- platform targets and uploadfs -----------------------------------------------------

# Targets whose $SOURCE is the image the image checks are about (they get the checks as
# dependencies); erase, size, monitor and the like have no image and are left alone.
FS_TARGETS = ("buildfs", "uploadfs", "uploadfsota")
_APP_TARGETS = ("buildprog", "upload", "erase_upload")
# pioarduino numbers its releases from 50 up; platform-espressif32 is at 6.x.
PIOARDUINO_FIRST_MAJOR = 50
PIOARDUINO_FAT_WHOLE = (55, 3, 36)  # fatfs: a wear-levelled image of the whole partition
PIOARDUINO_FS_PARTITION = (55, 3, 39)  # board_build.filesystem_partition honoured


def app_targets(registered: Iterable[str]) -> list[str]:
    """The targets to make wait for the app and bootloader checks: buildprog, upload,
    erase_upload and platform-espressif32's ESP-IDF ``__upload-*`` app targets among
    ``registered`` (the names in ``env["__PIO_TARGETS"]``)."""
    names = list(_APP_TARGETS)
    names += [n for n in registered
              if n.startswith("__upload") and "bootloader" not in n and n not in names]
    return names


def version_tuple(version: str) -> tuple[int, ...]:
    """``"55.03.311"`` -> (55, 3, 311); () when it does not start with a number."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):  # "6.13.0-rc1": stop at the suffix
            break
    return tuple(parts)


def uploadfs_rules(platform_name: str, version: str, *, filesystem: str = "",
                   partition: str = "") -> UploadfsRules:
    """Where this platform's ``uploadfs`` writes the ``buildfs`` image.

    ``platform_name``/``version``: PlatformIO's platform object (``espressif32``,
    ``6.13.0`` or pioarduino's ``55.3.311``); ``filesystem``: board_build.filesystem;
    ``partition``: board_build.filesystem_partition.
    """

    number = version_tuple(version)
    if number and number[0] >= PIOARDUINO_FIRST_MAJOR:
        label = f"pioarduino {version}"
        return UploadfsRules(label, filesystem, partition,
                             by_name=number >= PIOARDUINO_FS_PARTITION,
                             fat_skip=0 if number >= PIOARDUINO_FAT_WHOLE else FATFS_SKIP)
    label = f"platform-espressif32 {version}" if platform_name == "espressif32" else (
        f"{platform_name or 'the platform'} {version} (taken as platform-espressif32 6.x)")
    return UploadfsRules(label.strip(), filesystem, partition)


def flashed_table_offset(images: Iterable[tuple[str, str]], table_bin: str) -> str | None:
    """The offset text of ``table_bin`` among ``images`` (``FLASH_EXTRA_IMAGES``, paths
    absolute), i.e. where the platform's upload writes the table; None if not listed."""
    wanted = os.path.normcase(os.path.abspath(table_bin))
    for text, path in images:
        if os.path.normcase(os.path.abspath(path)) == wanted:
            return text
    return None


def reconcile_offset(configured: str, option: str, flashed: str | None,
                     table_bin: str) -> str:
    """The table offset partkit checks for: the one the platform flashes.

    ``configured``/``option``: the offset the project set and where (empty when it set
    none); ``flashed``: :func:`flashed_table_offset`. Raises SetupError when both are
    known and differ: the checks would be for a table the device never gets.
    """

    if flashed is None:
        return configured or "0x8000"
    if not configured:
        return flashed
    try:
        same = parse_int(configured) == parse_int(flashed)
    except ValueError:
        raise SetupError(f"{option} = {configured}: not a number") from None
    if same:
        return configured
    raise SetupError(
        f"{option} = {configured}, but the platform flashes {table_bin} at {flashed} "
        "(FLASH_EXTRA_IMAGES); partkit would check a table the device never reads.\n"
        "  hint: the Arduino framework always puts the table at 0x8000: remove the option, "
        "or build with framework = espidf and CONFIG_PARTITION_TABLE_OFFSET")


def check_upload_slot(table: str, image: str, app_offset: str, *, offset: str | None = None,
                      extra_subtypes: Sequence[str] = ()) -> tuple[int, str, list[Diagnostic]]:
    """Check the file ``upload`` flashes against the one app partition it lands in.

    ``app_offset`` is the platform's ``$ESP32_APP_OFFSET``. ``partkit check`` passes an app
    that fits *some* OTA slot with a warning (ESP-IDF's rule, for OTA updates); the slot
    written by upload must hold the whole file, or its tail lands in the next partition.
    Returns (exit code, report lines, diagnostics); an unknown offset is reported as not
    checked (exit 0).
    """

    try:
        at = parse_int(app_offset)
    except ValueError:
        return 0, (f"partkit: the app offset of upload is unknown ($ESP32_APP_OFFSET = "
                   f"{app_offset!r}); the slot it writes was not checked"), []
    try:
        options = table_options(offset=offset, extra_subtypes=extra_subtypes)
        loaded = load_table_file(table, options).table
        slot = next((p for p in loaded if p.type == APP and p.offset == at), None)
        if slot is None:
            return 1, "", [error(
                f"upload writes {image} at {at:#x}, where no app partition of {table} "
                "starts", SourceLocation(table),
                "set board_upload.offset_address to the app slot's offset, or move the slot")]
        report = check_files(table, options, app=image, app_type="app",
                             app_subtype=options.subtypes.render(APP, slot.subtype))
    except PartkitError as exc:
        return exc.exit_code, "", list(exc.diagnostics)
    where = f"partkit: upload writes {image} at {at:#x} into '{slot.name}' ({slot.size:#x} bytes)"
    app = report.app
    if app is None:  # no app image was read: nothing to say about the slot
        return 0, where, []
    findings = [f.diagnostic for f in app.findings if f.diagnostic.is_error]
    lines = [where] + ([f"partkit: {app.summary}"] if app.summary else [])
    return (1 if findings else 0), "\n".join(lines), findings


def check_fs_image_file(table: str, image: str, *, offset: str | None = None,
                        extra_subtypes: Sequence[str] = (),
                        rules: UploadfsRules | None = None,
                        ) -> tuple[int, str, list[Diagnostic]]:
    """Check a ``pio run -t buildfs`` image (the whole file) against the partition uploadfs
    writes it to (see partkit.data.upload; ``rules`` from :func:`uploadfs_rules`).

    Returns (exit code, report lines naming that partition, diagnostics to print).
    """

    try:
        options = table_options(offset=offset, extra_subtypes=extra_subtypes)
        loaded = load_table_file(table, options).table
        result, where = check_fs_image(loaded, image, rules)
    except PartkitError as exc:
        return exc.exit_code, "", list(exc.diagnostics)
    findings = [f.diagnostic for f in result.findings]
    code = 1 if any(f.is_error for f in result.findings) else 0
    return code, f"partkit: {where}\npartkit: {result.summary()}", findings
