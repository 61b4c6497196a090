"""The partition table model: immutable records that remember where they came from."""

from __future__ import annotations

from partkit.common.record import Record
from partkit.table.names import (
    APP,
    SUBTYPE_APP_FACTORY,
    SUBTYPE_APP_OTA_COUNT,
    SUBTYPE_APP_OTA_MIN,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from partkit.common.errors import SourceLocation

__all__ = ["FLAG_ENCRYPTED", "FLAG_READONLY", "Partition", "PartitionTable"]

FLAG_ENCRYPTED = 1 << 0
FLAG_READONLY = 1 << 1


class Partition(Record):
    """One partition entry. Equality follows gen_esp32part: name, type, subtype, offset, size."""

    __slots__ = ("encrypted", "loc", "name", "offset", "readonly", "size", "subtype", "type")

    name: str
    type: int
    subtype: int
    offset: int
    size: int
    encrypted: bool
    readonly: bool
    loc: SourceLocation | None

    def __init__(
        self,
        name: str,
        type: int,
        subtype: int,
        offset: int,
        size: int,
        encrypted: bool = False,
        readonly: bool = False,
        loc: SourceLocation | None = None,
    ) -> None:
        self._init(
            name=name,
            type=type,
            subtype=subtype,
            offset=offset,
            size=size,
            encrypted=encrypted,
            readonly=readonly,
            loc=loc,
        )



    @property
    def end(self) -> int:
        """First byte after the partition."""
        return self.offset + self.size

    @property
    def flags(self) -> int:
        return (FLAG_ENCRYPTED if self.encrypted else 0) | (FLAG_READONLY if self.readonly else 0)

    def _key(self) -> tuple[str, int, int, int, int]:
        return (self.name, self.type, self.subtype, self.offset, self.size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Partition) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Partition({self.name!r}, type=0x{self.type:x}, subtype=0x{self.subtype:x}, "
            f"offset=0x{self.offset:x}, size=0x{self.size:x}, flags={self.flags})"
        )

    def __str__(self) -> str:
        # check_sizes.py prints partitions this way; keep it for parity.
        return (
            f"Part '{self.name}' {self.type}/{self.subtype} "
            f"@ 0x{self.offset:x} size 0x{self.size:x}"
        )


class PartitionTable(Record):
    """An ordered, immutable sequence of partitions (file order, as the binary stores it)."""

    __slots__ = ("partitions", "path")

    partitions: tuple[Partition, ...]
    path: str

    def __init__(self, partitions: tuple[Partition, ...] | list[Partition], path: str = "") -> None:
        self._init(partitions=tuple(partitions), path=path)

    def __iter__(self) -> Iterator[Partition]:
        return iter(self.partitions)

    def __len__(self) -> int:
        return len(self.partitions)

    def __getitem__(self, index: int) -> Partition:
        return self.partitions[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionTable) and self.partitions == other.partitions

    def __hash__(self) -> int:
        return hash(self.partitions)

    def __repr__(self) -> str:
        return f"PartitionTable({list(self.partitions)!r})"

    def find_by_name(self, name: str) -> Partition | None:
        """First partition with exactly this name (case-sensitive)."""
        for p in self.partitions:
            if p.name == name:
                return p
        return None

    def find(self, ptype: int, subtype: int | None = None) -> tuple[Partition, ...]:
        """All partitions of a type (and subtype), in table order."""
        return tuple(
            p
            for p in self.partitions
            if p.type == ptype and (subtype is None or p.subtype == subtype)
        )

    def boot_default(self) -> Partition | None:
        """The app the bootloader starts with blank otadata: factory, else lowest ota_N."""
        for subtype in (
            SUBTYPE_APP_FACTORY,
            *range(SUBTYPE_APP_OTA_MIN, SUBTYPE_APP_OTA_MIN + SUBTYPE_APP_OTA_COUNT),
        ):
            found = self.find(APP, subtype)
            if found:
                return found[0]
        return None

    def sorted_by_offset(self) -> tuple[Partition, ...]:
        return tuple(sorted(self.partitions, key=lambda p: p.offset))

    def highest_end(self) -> int:
        """The end of the partition reaching furthest into flash (0 for an empty table)."""
        return max((p.end for p in self.partitions), default=0)
