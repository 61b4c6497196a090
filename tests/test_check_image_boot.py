"""``partkit check`` on a merged flash image or dump says which app boots (otadata, and the
bootloader's fallback past an empty slot) and, without ``--app``, checks that running app in
its own slot (issue 24 item 9). Images are real: ``esptool merge-bin`` of real ESP32-C3
apps, otadata written by ``partkit image set-boot``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main

pytestmark = pytest.mark.firmware

ROOT = Path(__file__).resolve().parents[1]
# builtin:two_ota: nvs 0x9000, otadata 0xd000, phy 0xf000, factory 0x10000, ota_0 0x110000,
# ota_1 0x210000 (1 MiB each).
OTA_0, OTA_1 = 0x110000, 0x210000


def merge(out: Path, *pairs: tuple[int, Path], pad: bool = False) -> Path:
    """esptool merge-bin; without ``pad`` the image ends after the last file, inside its
    slot (merge-bin's default)."""
    args = [x for offset, path in pairs for x in (hex(offset), str(path))]
    extra = ["--pad-to-size", "4MB"] if pad else []
    subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin", "-o",
                    str(out), "--flash-size", "4MB", *extra, *args], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from support.firmware import build_app, build_bootloader

    root = tmp_path_factory.mktemp("boot")
    table = root / "pt.bin"
    assert main(["gen", "-q", "builtin:two_ota", str(table)]) == 0
    return {"root": root, "table": table, "bl": build_bootloader(root, name="bl.bin"),
            "v1": build_app(root, 2000, version="1.0.0", name="v1.bin"),
            "v2": build_app(root, 300_000, version="2.0.0", name="v2.bin")}


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def codes(doc: dict[str, object]) -> dict[str, str]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return {f["code"]: f["severity"] for f in findings}


def test_checks_the_app_otadata_boots(parts: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    image = merge(parts["root"] / "both.bin", (0, parts["bl"]), (0x8000, parts["table"]),
                  (OTA_0, parts["v1"]), (OTA_1, parts["v2"]))
    # Blank otadata: factory first, erased; the bootloader falls back to ota_0 (v1).
    code, doc = check_json(capsys, str(image))
    assert code == 0 and codes(doc) == {"boot-fallback": "warning"}, doc["findings"]
    boot = doc["boot"]
    assert isinstance(boot, dict) and boot["start"] == "factory" and boot["boots"] == "ota_0"
    app = doc["app"]
    assert isinstance(app, dict)
    assert [s["partition"]["name"] for s in app["slots"]] == ["ota_0"]
    assert app["image"]["description"]["version"] == "1.0.0"
    assert app["image"]["flashed_size"] == parts["v1"].stat().st_size  # cut to the image

    # otadata selects ota_1: the v2 app there is the one checked, against ota_1 only.
    # (set-boot accepts the app although merge-bin's image ends inside ota_1.)
    assert main(["image", "set-boot", str(image), "--slot", "ota_1"]) == 0
    code, doc = check_json(capsys, str(image))
    assert code == 0 and codes(doc) == {}, doc["findings"]
    assert doc["boot"] == {**doc["boot"], "start": "ota_1", "boots": "ota_1",
                           "falls_back": False}
    app = doc["app"]
    assert isinstance(app, dict) and app["image"]["description"]["version"] == "2.0.0"
    slot = app["slots"][0]
    assert slot["partition"]["name"] == "ota_1"
    assert slot["used"] == parts["v2"].stat().st_size

    # Budgets apply to the running app in its slot.
    code, doc = check_json(capsys, str(image), "--fail-free", "80%")
    assert code == 1 and codes(doc).get("budget-fail") == "error", doc["findings"]

    # The text report names the slot that boots.
    capsys.readouterr()
    assert main(["check", str(image)]) == 0
    out = capsys.readouterr().out
    assert "ota_sequence" not in out and "selects ota_1: 'ota_1' boots" in out, out


def test_selected_slot_erased_falls_back(parts: dict[str, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """otadata still selects ota_1, whose app was erased: the bootloader tries ota_1, falls
    back to ota_0, and that is the app checked."""
    image = merge(parts["root"] / "erased.bin", (0, parts["bl"]), (0x8000, parts["table"]),
                  (OTA_0, parts["v1"]), (OTA_1, parts["v2"]), pad=True)
    assert main(["image", "set-boot", str(image), "--slot", "ota_1"]) == 0
    assert main(["image", "erase", str(image), "-n", "ota_1"]) == 0
    code, doc = check_json(capsys, str(image))
    boot = doc["boot"]
    assert isinstance(boot, dict)
    assert boot["start"] == "ota_1" and boot["boots"] == "ota_0" and boot["falls_back"]
    assert boot["tried"] == ["ota_1"]
    assert code == 0 and codes(doc) == {"boot-fallback": "warning"}, doc["findings"]
    app = doc["app"]
    assert isinstance(app, dict) and app["image"]["description"]["version"] == "1.0.0"


def test_image_without_a_loadable_app_fails(parts: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    image = merge(parts["root"] / "none.bin", (0, parts["bl"]), (0x8000, parts["table"]))
    code, doc = check_json(capsys, str(image))
    assert code == 1 and codes(doc) == {"no-bootable-app": "error"}, doc["findings"]
    assert doc["app"] is None and doc["boot"]["boots"] is None  # type: ignore[index]
    # An explicit --app is still checked against every slot, and the boot is reported.
    code, doc = check_json(capsys, str(image), "--app", str(parts["v1"]))
    assert code == 1 and "no-bootable-app" in codes(doc)
    app = doc["app"]
    assert isinstance(app, dict) and len(app["slots"]) == 3


def test_cli_json_matches_the_schema(parts: dict[str, Path]) -> None:
    import jsonschema

    image = merge(parts["root"] / "cli.bin", (0, parts["bl"]), (0x8000, parts["table"]),
                  (OTA_0, parts["v1"]))
    proc = subprocess.run([sys.executable, "-m", "partkit", "check", str(image), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    schema = json.loads((ROOT / "docs" / "check-report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["boot"]["boots"] == "ota_0"
