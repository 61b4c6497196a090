"""File access for the CLI and plugins (the codec itself never touches files).

Outputs are written atomically: a temp file in the target directory, fsync, then rename,
so an interrupted build never leaves a truncated table and a failed write never damages
an existing file.
"""

from __future__ import annotations

import contextlib
import os

from partkit.common.errors import PartkitError, SourceLocation, error

__all__ = ["read_input", "write_atomic"]


def read_input(path: str) -> bytes:
    """Read a whole input file, turning OS errors into a clean diagnostic."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise PartkitError(error("is a directory, expected a file", SourceLocation(path))) from None
    except FileNotFoundError:
        raise PartkitError(
            error("no such file", SourceLocation(path), hint="check the path (relative paths "
                  f"resolve from {os.getcwd()})")
        ) from None
    except OSError as exc:
        raise PartkitError(error(f"cannot read: {exc.strerror}", SourceLocation(path))) from None


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + rename, creating parent directories."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise PartkitError(
            error(f"cannot write: {exc.strerror or exc}", SourceLocation(path))
        ) from None
