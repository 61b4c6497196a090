"""The error for a missing ``partkit[fs]`` package, apart from ``partkit.data``'s
dispatcher: the format modules it loads by name raise it, and importing it from the
package that loads them would make a circle."""

from __future__ import annotations

from partkit.common.errors import PartkitError, error

__all__ = ["missing_extra"]


def missing_extra(package: str, what: str) -> PartkitError:
    return PartkitError(error(f"building {what} images needs the '{package}' package", None,
                              "install partkit's file-system extra: pip install partkit[fs]"))
