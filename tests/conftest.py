from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Tests import helpers as ``support.*``.
sys.path.insert(0, str(Path(__file__).parent))

# Stable output for CLI tests.
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "100")
os.environ.pop("GITHUB_ACTIONS", None)
