"""Running the partkit command line in-process, as a user would, for tests."""

from __future__ import annotations

import pytest
from partkit.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``partkit ARGV``; a traceback fails the test."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
