"""docs/diff.md says what the code does: every diff rule (code, title, reason), every
image-check code, and the JSON schema that real reports validate against."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.diff import RULES
from partkit.flash.preflight import CODES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "diff.md").read_text()
SCHEMA = ROOT / "docs" / "diff-report.schema.json"
REAL = ROOT / "tests" / "data" / "conformance" / "real"


def _table_rows(marker: str) -> list[list[str]]:
    """The rows of the markdown table that follows an HTML comment mentioning ``marker``."""
    start = DOC.index(marker)
    rows = []
    for line in DOC[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not set(cells[0]) <= set("-") and cells[0] not in ("Code",):
            rows.append(cells)
    return rows


def test_rules_table_matches_code() -> None:
    rows = _table_rows("partkit.diff.rules.RULES")
    assert [r[0] for r in rows] == [f"`{r.code}`" for r in RULES]
    for row, rule in zip(rows, RULES):
        assert row[1] == rule.title
        assert row[2] == rule.reason


def test_image_check_codes_match_code() -> None:
    rows = _table_rows("partkit.flash.preflight.CODES")
    assert {r[0]: r[1] for r in rows} == {f"`{c}`": d for c, d in CODES.items()}


def test_schema_enums_match_code() -> None:
    schema = json.loads(SCHEMA.read_text())
    codes = schema["properties"]["violations"]["items"]["properties"]["code"]["enum"]
    assert codes == [r.code for r in RULES]
    from partkit.diff.changes import CHANGE_KINDS
    from partkit.diff.plan import ACTIONS

    kinds = schema["properties"]["changes"]["items"]["properties"]["changes"]["items"]["enum"]
    assert tuple(kinds) == CHANGE_KINDS
    actions = schema["properties"]["plan"]["items"]["properties"]["action"]["enum"]
    assert set(actions) == set(ACTIONS)


@pytest.mark.parametrize("new, args", [
    ("Aircoookie__WLED/tools__WLED_ESP32_4MB_256KB_FS.csv", ["--running", "app0"]),
    ("Aircoookie__WLED/tools__WLED_ESP32_2MB_noOTA.csv", []),
    ("Aircoookie__WLED/tools__WLED_ESP32_4MB_1MB_FS.csv", []),
])
def test_real_reports_validate_against_schema(new: str, args: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import jsonschema
    except ImportError:
        from support.tools import missing

        missing("jsonschema (test extra) is not installed")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    old = REAL / "Aircoookie__WLED/tools__WLED_ESP32_4MB_1MB_FS.csv"
    code = main(["diff", str(old), str(REAL / new), "--json", *args])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    jsonschema.validate(doc, schema)


def test_readme_points_here() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/diff.md" in readme
    assert re.search(r"partkit diff \S+ \S+", readme)
