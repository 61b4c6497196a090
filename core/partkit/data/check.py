"""Does a built data image fit the partition it will be flashed to? (``check --data``)

"Fits" means the whole file: every byte of it is written from the partition's offset, so
a file one byte longer than the partition overwrites the next one. The file's contents
are sniffed (:mod:`partkit.flash.contents`) to report what it is and to catch an image
built for another kind of partition.
"""

from __future__ import annotations

import os

from partkit.check.findings import Finding
from partkit.common.errors import PartkitError, SourceLocation, error, warning
from partkit.common.fileio import check_input
from partkit.common.record import Record
from partkit.data import find_partition
from partkit.flash.contents import EXPECTED_CONTENTS, describe
from partkit.flash.lfsmeta import geometry_problem, name_max_problem, read_superblock
from partkit.table.model import PartitionTable
from partkit.table.names import APP, DATA

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.check.findings import Finding
    from partkit.common.errors import Diagnostic
    from partkit.table.model import Partition, PartitionTable

__all__ = ["DataCheck", "check_data", "contents_warning"]

# The formats a file can be recognised as; other kinds ("data", "erased", ...) are not
# judged against the partition's subtype.
JUDGED_KINDS = ("nvs", "littlefs", "fat", "spiffs", "app")


class DataCheck(Record):
    """One data image against its partition, built once with its findings."""

    __slots__ = ("findings", "kind", "partition", "path", "size")

    path: str
    partition: Partition
    size: int
    kind: str
    findings: tuple[Finding, ...]

    def __init__(self, path: str, partition: Partition, size: int, kind: str,
                 findings: tuple[Finding, ...] = ()) -> None:
        self._init(path=path, partition=partition, size=size, kind=kind, findings=findings)

    @property
    def fits(self) -> bool:
        return self.size <= self.partition.size

    @property
    def free(self) -> int:
        return self.partition.size - self.size

    def as_dict(self) -> dict[str, object]:
        p = self.partition
        return {"path": self.path, "partition": p.name, "offset": p.offset,
                "partition_size": p.size, "image_size": self.size, "free": self.free,
                "fits": self.fits, "kind": self.kind}

    def summary(self) -> str:
        p = self.partition
        state = (f"fits, {self.free:#x} ({self.free} bytes) left" if self.fits else
                 f"{-self.free:#x} ({-self.free} bytes) too large")
        return (f"data '{p.name}' at {p.offset:#x} ({p.size:#x} bytes): {self.path}, "
                f"{self.size:#x} bytes, {self.kind}: {state}")


def _sniff(path: str, part: Partition, size: int) -> str:
    """What the file holds, read as if it were the partition (at offset 0 of the file)."""

    if size == 0:
        return "empty"
    view = part.replace(offset=0, size=min(size, part.size) // 0x1000 * 0x1000 or size)
    try:
        return describe(path, view, PartitionTable([view])).kind
    except (PartkitError, OSError, ValueError):
        return "data"


def _littlefs_problems(path: str, size: int,
                       partition_size: int) -> tuple[str | None, str | None]:
    """(geometry problem, name_max problem) of a LittleFS image's superblock."""

    with open(path, "rb") as f:
        def read(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        sb = read_superblock(read, size)
    if sb is None:
        return None, None
    return geometry_problem(sb, partition_size), name_max_problem(sb)


def check_data(table: PartitionTable, name: str, path: str) -> DataCheck:
    """Check one image file against partition ``name``; raises PartkitError for bad input."""

    part = find_partition(table, name)
    if part.type != DATA:
        raise PartkitError(error(
            f"--data {name}: '{name}' is not a data partition", part.loc,
            "app images are checked with --app"))

    size = check_input(path, regular=True, what="a data image").st_size
    kind = _sniff(path, part, size)
    findings = []
    if size > part.size:
        findings.append(Finding("data-too-large", error(
            f"data image of {size} bytes ({size:#x}) does not fit partition '{name}' of "
            f"{part.size} bytes ({part.size:#x}) at {part.offset:#x}: {size - part.size} bytes "
            "too many; they would overwrite what follows", SourceLocation(path),
            "build the image for the partition (partkit data build) or grow the partition "
            "(partkit resize --set NAME=SIZE)",
            ((part.loc, f"'{name}' is defined here"),) if part.loc is not None else ())))
    if kind == "littlefs":
        problem, names = _littlefs_problems(path, size, part.size)
        if names is not None:
            findings.append(Finding("data-littlefs-name-max", warning(
                f"'{path}' may not mount in '{name}': {names}", SourceLocation(path),
                "build it with name_max=64 (partkit data build does), or check the "
                "firmware's CONFIG_LITTLEFS_OBJ_NAME_LEN is at least the image's")))
        if problem is not None:
            findings.append(Finding("data-littlefs-geometry", error(
                f"'{path}' will not mount in '{name}': {problem}", SourceLocation(path),
                "build it for the partition: partkit data build TABLE --partition "
                f"{name} --from DIR (or littlefs-python with block_size=4096, name_max=64, "
                f"block_count={part.size // 4096})",
                ((part.loc, f"'{name}' is defined here"),) if part.loc is not None else ())))
    expected = EXPECTED_CONTENTS.get(part.subtype)
    if expected and kind in JUDGED_KINDS and kind not in expected:
        findings.append(Finding("data-kind-mismatch", warning(
            f"'{path}' holds {kind}, but partition '{name}' expects "
            f"{' or '.join(expected)}", SourceLocation(path),
            "is this the image for another partition?")))
    return DataCheck(path, part, size, kind, tuple(findings))


def contents_warning(path: str, part: Partition, table: PartitionTable) -> Diagnostic | None:
    """A warning when the file about to be written into ``part`` is another kind of
    image than the partition holds (an NVS image into an app slot, ...)."""

    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    kind = _sniff(path, part, size)
    if part.type == APP:
        if kind in JUDGED_KINDS and kind != "app":
            return warning(f"'{path}' holds {kind}, not an app image: the bootloader will not "
                           f"start '{part.name}'", SourceLocation(path),
                           "is this the file for another partition?")
        return None
    expected = EXPECTED_CONTENTS.get(part.subtype) if part.type == DATA else None
    if expected and kind in JUDGED_KINDS and kind not in expected:
        return warning(f"'{path}' holds {kind}, but partition '{part.name}' expects "
                       f"{' or '.join(expected)}", SourceLocation(path),
                       "is this the file for another partition?")
    if expected and kind == "data":  # unrecognised: image check rejects it (data-contents)
        source = "VALUES.csv" if expected == ("nvs",) else "DIR"
        return warning(f"'{path}' is not an {' or '.join(expected)} image (its contents are "
                       f"not recognised), yet '{part.name}' expects one; image check will "
                       "reject it", SourceLocation(path),
                       f"build the image first: partkit data build TABLE --partition "
                       f"{part.name} --from {source} -o IMG")
    return None
