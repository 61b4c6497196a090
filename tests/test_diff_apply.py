"""``partkit image apply`` and ``partkit device apply``: partkit diff's plan run on a flash
image assembled from real ESP32-C3 images, and on esp32-mock-bootloader over esptool's
protocol (read back with esptool). Round trip: after apply, ``image check`` passes and
``diff`` of the result against NEW reports no change."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.flash.otadata import active_entry, decode

pytestmark = pytest.mark.firmware

OLD = (Path(__file__).parent / "data" / "conformance" / "real" / "espressif__esp-idf"
       / "components__partition_table__partitions_two_ota.csv").read_text()
# nvs 0x9000, otadata 0xd000, phy_init 0xf000, factory 0x10000, ota_0 0x110000,
# ota_1 0x210000 (1 MiB each); 0x310000..0x400000 free on a 4 MB flash
THREE_OTA = OLD.rstrip("\n") + "\nota_2,    app,  ota_2,   0x310000, 0xF0000,\n"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from support.firmware import build_app, build_bootloader
    from support.tools import require_tool

    require_tool("riscv64-unknown-elf-gcc")
    root = tmp_path_factory.mktemp("apply-fw")
    app = build_app(root, 20000, name="app.bin")
    elf = build_bootloader(root, name="bl.bin").with_suffix(".elf")
    bootloader = root / "bl-4mb.bin"
    subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "elf2image",
                    "--flash-size", "4MB", "-o", str(bootloader), str(elf)], check=True,
                   capture_output=True)
    old = root / "old.csv"
    old.write_text(OLD)
    return {"app": app, "bootloader": bootloader, "old": old, "root": root}


def image(parts: dict[str, Path], tmp: Path, *boots: str) -> Path:
    """OLD with apps in factory, ota_0 and ota_1; otadata set by ``set-boot`` in turn."""
    out = tmp / "flash.bin"
    assert main(["image", "create", str(out), "--table", str(parts["old"]), "--flash-size",
                 "4MB", "--bootloader", str(parts["bootloader"]), "--no-flash-args",
                 "--app", f"factory={parts['app']}", "--app", f"ota_0={parts['app']}",
                 "--app", f"ota_1={parts['app']}", "--ota-slot", "0"]) == 0
    for slot in boots:
        assert main(["image", "set-boot", str(out), "--slot", slot]) == 0
    return out


def csv(tmp: Path, text: str, name: str = "new.csv") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def diff_json(capsys: pytest.CaptureFixture[str], old: Path, new: Path) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["diff", str(old), str(new), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_round_trip_with_an_otadata_rewrite_before_the_table(
        parts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # seq 3 selects ota_0 of 2 slots, but ota_2 of 3: the plan must re-sequence first
    flash = image(parts, tmp_path, "ota_1", "ota_0")
    new = csv(tmp_path, THREE_OTA)
    code, report = diff_json(capsys, flash, new)
    assert code == 0 and report["running_from"] == "otadata" and report["running"] == ["ota_0"]
    actions = [s["action"] for s in report["plan"]]
    assert actions == ["write-otadata", "write-table", "erase"]
    capsys.readouterr()
    assert main(["image", "apply", str(flash), str(new)]) == 0
    out, err = capsys.readouterr()
    assert "migration plan:" in out and "applying 1. write-otadata" in err
    assert main(["image", "check", str(flash)]) == 0
    code, again = diff_json(capsys, flash, new)
    assert code == 0 and again["plan"] == [] and all(not c["changes"] for c in again["changes"])
    with open(flash, "rb") as f:
        f.seek(0xD000)
        entry = active_entry(decode(f.read(0x2000)))
    assert entry is not None and entry.seq == 7  # (7 - 1) % 2 == 0 and (7 - 1) % 3 == 0
    assert entry.index == 1  # the sector that did not hold the active record


def test_unsafe_is_refused_and_nothing_changes(parts: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    flash = image(parts, tmp_path)
    before = hashlib.sha256(flash.read_bytes()).hexdigest()
    renamed = csv(tmp_path, OLD.replace("nvs,      data", "nvs2,     data"))
    capsys.readouterr()
    assert main(["image", "apply", str(flash), str(renamed)]) == 1
    out, err = capsys.readouterr()
    assert "nvs-label" in out and "refusing to apply an UNSAFE change" in err
    assert "Traceback" not in err
    assert hashlib.sha256(flash.read_bytes()).hexdigest() == before
    # --force runs it and says what it ran
    assert main(["image", "apply", str(flash), str(renamed), "--force"]) == 0
    assert "migration plan:" in capsys.readouterr().out


def test_output_copy_leaves_the_image_alone(parts: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    flash = image(parts, tmp_path)
    before = flash.read_bytes()
    out = tmp_path / "out.bin"
    new = csv(tmp_path, OLD.rstrip("\n") + "\nstorage, data, spiffs, 0x310000, 0xF0000,\n")
    assert main(["image", "apply", str(flash), str(new), "-o", str(out)]) == 0
    assert flash.read_bytes() == before
    assert main(["image", "check", str(out)]) == 0
    code, report = diff_json(capsys, out, new)
    assert code == 0 and report["plan"] == []
    assert not list(tmp_path.glob(".partkit-apply-*"))


def test_grow_to_a_bigger_flash_updates_the_bootloader_header(
        parts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flash = image(parts, tmp_path)
    new = csv(tmp_path, OLD.rstrip("\n") + "\nstorage, data, spiffs, 0x400000, 0x400000,\n")
    capsys.readouterr()
    assert main(["image", "apply", str(flash), str(new)]) == 1  # the header says 4MB
    assert "flash-size" in capsys.readouterr().out
    assert main(["image", "apply", str(flash), str(new), "--flash-size", "8MB"]) == 0
    data = flash.read_bytes()
    assert len(data) == 8 << 20 and data[3] >> 4 == 3  # 8MB
    assert main(["image", "check", str(flash)]) == 0  # bootloader SHA-256 still matches
    code, report = diff_json(capsys, flash, new)
    assert code == 0 and report["plan"] == [] and report["flash_size"] == 8 << 20
    assert "byte 3" in report["flash_size_source"]


def test_grow_leaves_a_header_no_rom_reads_as_the_flash_size_rule_does(
        parts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ESP32-C3 bootloader moved to 0x1000 (an ESP32's offset) is run by no device: the
    flash size is not judged by it (flash.tablearea), so --flash-size must not patch it
    either. Before: grow_image patched the first image below the table, this one."""
    flash = image(parts, tmp_path)
    data = bytearray(flash.read_bytes())
    bootloader = bytes(data[:0x1000])
    data[:0x1000] = b"\xff" * 0x1000
    data[0x1000:0x2000] = bootloader
    flash.write_bytes(bytes(data))
    new = csv(tmp_path, OLD.rstrip("\n") + "\nstorage, data, spiffs, 0x400000, 0x400000,\n")
    capsys.readouterr()
    main(["diff", str(flash), str(new), "--flash-size", "8MB", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert (report["flash_size"], report["flash_size_source"]) == (8 << 20, "--flash-size")
    assert main(["image", "apply", str(flash), str(new), "--flash-size", "8MB"]) == 0
    grown = flash.read_bytes()
    assert len(grown) == 8 << 20 and grown[0x1000:0x2000] == bootloader  # left as it was


def test_device_apply_against_the_mock(parts: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from support.mock_device import MockDevice

    flash = image(parts, tmp_path, "ota_1", "ota_0")
    mock = MockDevice(tmp_path / "state")
    try:
        data = flash.read_bytes()
        mock.write(tmp_path, 0, data[:0x10000])  # bootloader, table, otadata
        app_end = 0x110000 + len(parts["app"].read_bytes())
        mock.write(tmp_path, 0x110000, data[0x110000:(app_end + 0xFFF) & ~0xFFF])
        new = csv(tmp_path, THREE_OTA)
        capsys.readouterr()
        assert main(["device", "apply", "--port", mock.url, str(new), "-q"]) == 0
        out = capsys.readouterr().out
        assert "write-otadata" in out and "write-table" in out
        expected = tmp_path / "new.bin"
        assert main(["gen", str(new), str(expected)]) == 0
        assert mock.read(tmp_path, 0x8000, 0xC00) == expected.read_bytes()
        entry = active_entry(decode(mock.read(tmp_path, 0xD000, 0x2000)))
        assert entry is not None and entry.seq == 7
        assert mock.read(tmp_path, 0x110000, 0x20) == data[0x110000:0x110020]  # untouched
        # the same again: nothing to do
        capsys.readouterr()
        assert main(["device", "apply", "--port", mock.url, str(new), "-q", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["plan"] == []
    finally:
        mock.stop()


def test_a_step_that_fails_is_reported_exactly(tmp_path: Path) -> None:
    """A target failing in the third step: the error names it, what was done and verified,
    and what was not started; the table step was done, so the hint says to go on."""
    from partkit.common.errors import CheckFailed, PartkitError, error
    from partkit.device.target import ImageTarget
    from partkit.diff import DiffOptions, diff_tables, load_side, side_of
    from partkit.diff.apply import apply_plan
    from partkit.table.binary import encode
    from partkit.table.codec import load_table
    from partkit.table.options import TableOptions

    old = load_table(OLD.encode(), "old.csv", TableOptions()).table
    new = load_table((OLD.rstrip("\n") + "\nstore, data, spiffs, 0x310000, 0x10000,\n"
                      "more, data, spiffs, 0x320000, 0x10000,\n").encode(), "new.csv",
                     TableOptions()).table
    report = diff_tables(side_of(old), side_of(new), DiffOptions(running=("ota_0",)))
    assert [s.action for s in report.plan] == ["write-table", "erase", "erase"]
    flash = tmp_path / "flash.bin"
    flash.write_bytes(b"\xff" * 0x400000)

    class Failing(ImageTarget):
        calls = 0

        def erase_partition(self, part, **kw):  # type: ignore[no-untyped-def]
            Failing.calls += 1
            if Failing.calls == 2:
                raise PartkitError(error("erasing partition 'more' failed: 0x320000..0x330000 "
                                         "may be partly erased"))
            super().erase_partition(part, **kw)

    with pytest.raises(CheckFailed) as info:
        apply_plan(Failing(str(flash)), report, encode(new, True))
    d = info.value.diagnostics[0]
    assert d.message.startswith("step 3. erase 'more' 0x320000..0x330000 stopped: erasing")
    notes = " | ".join(n for _, n in d.notes)
    assert "done and verified: 1. write-table" in notes and "2. erase 'store'" in notes
    assert "not started: nothing" in notes
    assert d.hint is not None and "the table is NEW's" in d.hint
    # the hint does not send the user to diff, which sees nothing left once the table is NEW's
    assert "redo step 3" in d.hint and "partkit diff against NEW shows" not in d.hint
    again = diff_tables(load_side(str(flash), TableOptions()), side_of(new),
                        DiffOptions(running=("ota_0",)))
    assert again.plan == ()
