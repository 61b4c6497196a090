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

from partkit.common.chips import BOOTLOADER_OFFSET
from partkit.common.errors import PartkitError
from partkit.common.fileio import write_if_changed
from partkit.common.numbers import parse_int
from partkit.data.upload import check_fs_image
from partkit.flash.tablearea import load_table_file
from partkit.table import builtin
from partkit.table.options import table_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from partkit.common.errors import Diagnostic

__all__ = [
    "FRAMEWORK_PACKAGES",
    "SetupError",
    "bootloader_image",
    "bootloader_offset",
    "builtin_candidate",
    "check_fs_image_file",
    "display_path",
    "esptool_prefix",
    "flash_hint",
    "framework_has_table",
    "is_yes",
    "table_from_platform",
    "table_summary",
    "write_builtin_table",
    "write_flash_for_version",
    "write_flash_spelling",
]

# The framework packages whose own tables a board_build.partitions name may mean.
ARDUINO = "framework-arduinoespressif32"
ESPIDF = "framework-espidf"
FRAMEWORK_PACKAGES = (ARDUINO, ESPIDF)
# esptool 4.x and older know only underscores; 5.x prefers dashes (and still takes both).
WRITE_FLASH = ("write_flash", "write-flash")


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


def write_flash_for_version(text: str) -> str:
    """The write command of the esptool whose ``version`` printed ``text``."""
    found = re.search(r"\bv?(\d+)\.\d+", text)
    if found is None:
        return "write_flash"  # every esptool version still accepts it
    return "write-flash" if int(found.group(1)) >= 5 else "write_flash"


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


def check_fs_image_file(table: str, image: str, *, offset: str | None = None,
                        extra_subtypes: Sequence[str] = (), partition: str | None = None,
                        filesystem: str = "") -> tuple[int, str, list[Diagnostic]]:
    """Check a ``pio run -t buildfs`` image (the whole file) against the partition uploadfs
    writes it to (see partkit.data.upload).

    Returns (exit code, report lines naming that partition, diagnostics to print).
    """
    try:
        options = table_options(offset=offset, extra_subtypes=extra_subtypes)
        loaded = load_table_file(table, options).table
        result, where = check_fs_image(loaded, image, name=partition, filesystem=filesystem)
    except PartkitError as exc:
        return exc.exit_code, "", list(exc.diagnostics)
    findings = [f.diagnostic for f in result.findings]
    code = 1 if any(f.is_error for f in result.findings) else 0
    return code, f"partkit: {where}\npartkit: {result.summary()}", findings
