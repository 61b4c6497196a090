"""Reading a JSON object a build tool wrote (build.options.json, project_description.json).

The files are kilobytes; the read is bounded so a foreign file cannot exhaust memory. Every
failure is a diagnostic at the file (malformed JSON at its line:col) with the caller's hint
on how to get a good one again.
"""

from __future__ import annotations

import json

from partkit.common.errors import PartkitError, SourceLocation, error

__all__ = ["MAX_JSON", "read_json_object"]

MAX_JSON = 64 << 20


def read_json_object(path: str, hint: str, limit: int = MAX_JSON) -> dict[str, object] | None:
    """The object in ``path``, or None when the file does not exist (the caller decides
    whether that is an error). Raises PartkitError when it cannot be read, is not UTF-8,
    is malformed JSON or holds something other than an object; ``hint`` goes with the
    errors a rebuild fixes."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror}", SourceLocation(path))) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PartkitError(error("not a JSON file (not UTF-8 text)", SourceLocation(path),
                                 hint=hint)) from None
    except json.JSONDecodeError as exc:
        raise PartkitError(error(f"malformed JSON: {exc.msg}",
                                 SourceLocation(path, exc.lineno, exc.colno),
                                 hint=hint)) from None
    if not isinstance(data, dict):
        raise PartkitError(error("expected a JSON object", SourceLocation(path, 1, 1)))
    return data
