"""flash_args as real esptool reads it (``@flash_args``: each line split like a POSIX shell)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.flash.flashargs import FlashFile, argfile_quote, flash_args

ODD_NAMES = ["plain.bin", "with space.bin", "it's.bin", 'say "hi".bin', "dollar $HOME.bin",
             "ünïcode.bin", "semi;colon.bin", "back\\slash.bin", "tab\there.bin", "-dash.bin"]


def test_plain_paths_stay_bare_as_esp_idf_writes_them() -> None:
    files = [FlashFile("bootloader", 0, "bootloader/bootloader.bin"),
             FlashFile("app", 0x10000, "app.bin")]
    assert flash_args(files, "dio", "80m", "4MB") == (
        "--flash-mode dio --flash-freq 80m --flash-size 4MB\n"
        "0x0 bootloader/bootloader.bin\n0x10000 app.bin")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_quoted_word_splits_back_to_the_path(name: str) -> None:
    import shlex

    assert shlex.split(f"0x1000 {argfile_quote(name)}") == ["0x1000", name]


def test_esptool_reads_every_odd_path(tmp_path: Path) -> None:
    """Real esptool merges the images listed in a flash_args with awkward file names."""
    pytest.importorskip("esptool")
    work = tmp_path / "build dir"
    (work / "sub dir").mkdir(parents=True)
    files = []
    for i, name in enumerate(ODD_NAMES):
        if name.startswith("-") or "\\" in name:
            # esptool's parser would take "-dash" for an option; FlashFile turns a
            # backslash into "/" (Windows separators), so it cannot name a POSIX file.
            continue
        path = work / "sub dir" / name
        path.write_bytes(bytes([i + 1]) * 0x100)
        files.append(FlashFile(f"image{i}", 0x1000 * (i + 1), f"sub dir/{name}"))
    (work / "flash_args").write_text(flash_args(files, "dio", "80m", "4MB"))
    merged = work / "merged.bin"
    env = {k: v for k, v in os.environ.items() if k != "ESPTOOL_PORT"}
    r = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin",
                        "-o", str(merged), "@flash_args"], cwd=work, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    data = merged.read_bytes()
    for f in files:
        expected = (work / f.path).read_bytes()
        assert data[f.offset:f.offset + len(expected)] == expected, f.path
