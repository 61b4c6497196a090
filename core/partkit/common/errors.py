"""Diagnostics: what went wrong, where, and what to do about it.

Every user-facing failure is a :class:`PartkitError` carrying one or more
:class:`Diagnostic` records. They render in the GCC style (``path:line:col: error: msg``)
so CMake, SCons, PlatformIO logs and IDEs make the location clickable.
"""

from __future__ import annotations

from partkit.common.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CheckFailed", "Diagnostic", "PartkitError", "SourceLocation", "closest",
           "github_annotation"]


class SourceLocation(Record):
    """Where a record came from: a CSV line/column or a binary entry/byte offset."""

    __slots__ = ("byte", "column", "entry", "line", "path")

    path: str
    line: int | None
    column: int | None
    entry: int | None
    byte: int | None

    def __init__(
        self,
        path: str,
        line: int | None = None,
        column: int | None = None,
        *,
        entry: int | None = None,
        byte: int | None = None,
    ) -> None:
        self._init(path=path, line=line, column=column, entry=entry, byte=byte)

    def _key(self) -> tuple[object, ...]:
        return (self.path, self.line, self.column, self.entry, self.byte)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceLocation) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"SourceLocation({self})"

    def with_column(self, column: int) -> SourceLocation:
        return SourceLocation(self.path, self.line, column, entry=self.entry, byte=self.byte)

    def __str__(self) -> str:
        if self.line is not None:
            col = f":{self.column}" if self.column is not None else ""
            return f"{self.path}:{self.line}{col}"
        if self.entry is not None:
            where = f"entry {self.entry}"
            if self.byte is not None:
                where += f" (byte 0x{self.byte:x})"
            return f"{self.path}: {where}"
        return self.path


class Diagnostic(Record):
    """One error or warning, with its location and an optional remedy."""

    __slots__ = ("code", "hint", "location", "message", "notes", "severity")

    severity: str  # "error" or "warning"
    message: str
    location: SourceLocation | None
    hint: str | None
    notes: tuple[tuple[SourceLocation | None, str], ...]
    code: str | None  # stable identifier of the rule, for tools that match diagnostics

    def __init__(
        self,
        severity: str,
        message: str,
        location: SourceLocation | None = None,
        hint: str | None = None,
        notes: tuple[tuple[SourceLocation | None, str], ...] = (),
        code: str | None = None,
    ) -> None:
        self._init(
            severity=severity,
            message=message,
            location=location,
            hint=hint,
            notes=notes,
            code=code,
        )

    def __repr__(self) -> str:
        return f"Diagnostic({self.severity!r}, {self.message!r}, {self.location!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Diagnostic) and (
            self.severity,
            self.message,
            self.location,
            self.hint,
            self.notes,
        ) == (other.severity, other.message, other.location, other.hint, other.notes)

    def __hash__(self) -> int:
        return hash((self.severity, self.message, self.location))

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        head = f"{self.location}: " if self.location is not None else ""
        lines = [f"{head}{self.severity}: {self.message}"]
        for loc, note in self.notes:
            where = f"{loc}: " if loc is not None else ""
            lines.append(f"{where}note: {note}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    __str__ = format


def error(
    message: str,
    location: SourceLocation | None = None,
    hint: str | None = None,
    notes: tuple[tuple[SourceLocation | None, str], ...] = (),
    code: str | None = None,
) -> Diagnostic:
    return Diagnostic("error", message, location, hint, notes, code)


def warning(
    message: str,
    location: SourceLocation | None = None,
    hint: str | None = None,
    notes: tuple[tuple[SourceLocation | None, str], ...] = (),
    code: str | None = None,
) -> Diagnostic:
    return Diagnostic("warning", message, location, hint, notes, code)


class PartkitError(Exception):
    """Bad input: the CLI maps this to exit code 2 and prints every diagnostic."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = error(diagnostics)
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class CheckFailed(PartkitError):
    """A size or budget check failed: exit code 1 (the input itself was fine)."""

    exit_code = 1


def _annotation_data(text: str) -> str:
    """GitHub workflow-command escaping of a message: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _annotation_property(text: str) -> str:
    """A property value (``file=``) also escapes the separators ``:`` and ``,``."""
    return _annotation_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(d: Diagnostic) -> str:
    """``::error file=...,line=N,col=N::message``, escaped by GitHub's workflow-command rules."""
    kind = "error" if d.is_error else "warning"
    props = []
    loc = d.location
    if loc is not None:
        props.append(f"file={_annotation_property(loc.path)}")
        if loc.line is not None:
            props.append(f"line={loc.line}")
        if loc.column is not None:
            props.append(f"col={loc.column}")
    message = _annotation_data(d.message + (f" (hint: {d.hint})" if d.hint else ""))
    return f"::{kind} {','.join(props)}::{message}" if props else f"::{kind}::{message}"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The most similar valid keyword, for 'did you mean' hints."""
    import difflib  # only on the error path

    found = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None
