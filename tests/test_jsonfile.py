"""The one bounded JSON-object reader both build-directory readers (ESP-IDF, Arduino) use:
each way a build tool's JSON file can be bad is a diagnostic at the file, with the hint of
the build system that wrote it."""

from __future__ import annotations

from pathlib import Path

import pytest
from partkit.arduino import builddir as arduino
from partkit.common.errors import PartkitError
from partkit.common.jsonfile import read_json_object
from partkit.idf import builddir as idf

BAD = {
    "latin1": (b'{"fqbn": "caf\xe9"}', "1:1", "not a JSON file (not UTF-8 text)", True),
    "malformed": (b'{\n  "fqbn": \n}\n', "3:1", "malformed JSON: Expecting value", True),
    "array": (b"[1, 2]", "1:1", "expected a JSON object", False),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_json_is_located_with_the_callers_hint(tmp_path: Path, case: str) -> None:
    raw, where, message, hinted = BAD[case]
    path = tmp_path / "x.json"
    path.write_bytes(raw)
    with pytest.raises(PartkitError) as exc:
        read_json_object(str(path), "rebuild it")
    (diag,) = exc.value.diagnostics
    rendered = diag.format()
    assert message in rendered and ("rebuild it" in rendered) == hinted, rendered
    if case != "latin1":
        assert f"{path}:{where}: error:" in rendered


def test_missing_is_none_and_unreadable_is_an_error(tmp_path: Path) -> None:
    assert read_json_object(str(tmp_path / "absent.json"), "hint") is None
    with pytest.raises(PartkitError) as exc:
        read_json_object(str(tmp_path), "hint")  # a directory: open() fails
    assert "cannot read" in exc.value.diagnostics[0].format()
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert read_json_object(str(tmp_path / "ok.json"), "hint") == {"a": 1}


def test_build_dir_readers_pass_their_own_hint(tmp_path: Path) -> None:
    (tmp_path / "build.options.json").write_bytes(b"\xff\xfe")
    with pytest.raises(PartkitError) as exc:
        arduino.read_build_dir(str(tmp_path))
    assert "arduino-cli compile" in exc.value.diagnostics[0].format()
    (tmp_path / "project_description.json").write_bytes(b"\xff\xfe")
    with pytest.raises(PartkitError) as exc:
        idf.read_build_dir(str(tmp_path))
    assert "idf.py build" in exc.value.diagnostics[0].format()
