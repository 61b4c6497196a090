"""What every check reports: a :class:`Finding` (stable code + diagnostic) and a free-space
:class:`Budget` (``--warn-free 10%``).

A leaf module: it imports nothing from ``partkit.check``, so the data-image checks
(:mod:`partkit.data.check`) and the build checks use it without importing the size checks.
"""

from __future__ import annotations

from partkit.common.errors import Diagnostic, PartkitError, error
from partkit.common.numbers import parse_size
from partkit.common.record import Record

__all__ = ["Budget", "Finding"]


class Finding(Record):
    """One warning or error from a check, with a stable machine-readable code."""

    __slots__ = ("code", "diagnostic")

    code: str
    diagnostic: Diagnostic

    def __init__(self, code: str, diagnostic: Diagnostic) -> None:
        self._init(code=code, diagnostic=diagnostic)

    @property
    def is_error(self) -> bool:
        return self.diagnostic.is_error

    def __repr__(self) -> str:
        return f"Finding({self.code!r}, {self.diagnostic!r})"


class Budget(Record):
    """A free-space threshold: a percentage of the slot (``10%``) or a byte count."""

    __slots__ = ("percent", "value")

    value: float
    percent: bool

    def __init__(self, value: float, percent: bool) -> None:
        self._init(value=value, percent=percent)

    @classmethod
    def parse(cls, text: str, option: str = "budget") -> Budget:
        raw = text.strip()
        if raw.isdigit():  # 30 means 30% to some and 30 bytes to others: say which
            raise PartkitError(error(
                f"{option}: '{text}' has no unit", hint=f"write {raw}% (of the slot) or "
                f"{raw}B (bytes); or a size such as 64K or 0x10000"))
        bad = PartkitError(error(f"{option}: '{text}' is not a percentage or a size",
                                 hint="use e.g. 10% or 64K or 0x10000"))
        if raw.endswith("%"):
            try:
                pct = float(raw[:-1])
            except ValueError:
                raise bad from None
            if pct != pct:  # nan%
                raise bad
            if not 0 <= pct <= 100:
                raise PartkitError(error(
                    f"{option}: '{text}' is out of range: a share of the slot is 0% to 100%",
                    hint="use e.g. 10% or 64K or 0x10000"))
            return cls(pct, True)
        try:
            return cls(parse_size(raw), False)
        except (ValueError, PartkitError):
            raise bad from None

    @staticmethod
    def check_order(warn: Budget | None, fail: Budget | None) -> None:
        """Refuse a warning budget below the failing one (of the same unit): the warning
        would never come before the failure."""
        if warn is None or fail is None or warn.percent != fail.percent:
            return
        if warn.value < fail.value:
            raise PartkitError(error(
                f"--warn-free {warn} is less than --fail-free {fail}: the build would fail "
                "before it ever warns", hint="swap them: warn at the larger free space "
                "(e.g. --warn-free 10% --fail-free 2%)"))

    def threshold(self, size: int) -> float:
        """Bytes of free space this budget requires in a slot of ``size`` bytes."""
        return size * self.value / 100 if self.percent else self.value

    def __str__(self) -> str:
        if self.percent:
            return f"{self.value:g}%"
        return f"{int(self.value):#x} bytes"

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": "percent" if self.percent else "bytes"}
