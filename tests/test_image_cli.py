"""``partkit image`` on generated images: selectors, info format, faults, a real SIGKILL."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.flash import imagefile
from partkit.cli import main

CSV = """\
# Name, Type, SubType, Offset, Size, Flags
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x100000,
ota_0,    app,  ota_0,   ,        0x100000,
ota_1,    app,  ota_1,   ,        0x100000,
storage,  data, spiffs,  ,        0x80000,
cfg,      data, 0x99,    ,        0x1000, readonly
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    table = tmp_path / "parts.csv"
    table.write_text(CSV)
    img = tmp_path / "flash.bin"
    assert main(["image", "create", str(img), "--table", str(table), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--no-flash-args"]) == 0
    return img


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["image", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_matches_get_partition_info_format(image: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "info", str(image), "-n", "nvs") == (0, "0x9000 0x4000\n", "")
    code, out, _ = _run(capsys, "info", str(image), "--type", "data", "--subtype", "0x99",
                        "--info", "name", "type", "subtype", "offset", "size", "encrypted",
                        "readonly")
    assert (code, out) == (0, "cfg 1 153 0x390000 0x1000 False True\n")
    code, out, _ = _run(capsys, "info", str(image), "-d", "--info", "name")
    assert (code, out) == (0, "factory\n")
    code, out, _ = _run(capsys, "info", str(image), "-t", "app", "--part-list", "--info", "name")
    assert (code, out) == (0, "factory ota_0 ota_1\n")
    code, out, _ = _run(capsys, "info", str(image))
    assert code == 0 and out.splitlines()[0].split() == ["Name", "Type", "SubType", "Offset",
                                                         "Size", "Flags"]
    assert "storage   data  spiffs   0x310000  0x80000" in out


def test_info_with_table_file(image: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "info", str(image), "--table", str(tmp_path / "parts.csv"),
                        "-n", "ota_1")
    assert (code, out) == (0, "0x210000 0x100000\n")


def test_write_read_roundtrip_and_copy(image: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(0x12340))
    code, _, err = _run(capsys, "write", str(image), "-n", "storage", str(data))
    assert code == 0 and "verified" in err
    out = tmp_path / "back.bin"
    assert _run(capsys, "read", str(image), "-n", "storage", "-o", str(out))[0] == 0
    back = out.read_bytes()
    assert len(back) == 0x80000
    assert back[:0x12340] == data.read_bytes() and set(back[0x12340:]) == {0xFF}
    # -o COPY: the original stays byte-identical
    digest = _digest(image)
    copy = tmp_path / "copy.bin"
    assert _run(capsys, "erase", str(image), "-n", "storage", "-o", str(copy))[0] == 0
    assert _digest(image) == digest
    assert copy.read_bytes()[0x310000:0x390000] == b"\xff" * 0x80000


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["write", "{img}", "-n", "storage", "{big}"], 1, "do not fit partition 'storage'"),
        (["write", "{img}", "-n", "storag", "{small}"], 2, "did you mean 'storage'"),
        (["write", "{img}", "-n", "cfg", "{small}"], 2, "partition 'cfg' is read-only"),
        (["erase", "{img}", "-n", "cfg"], 2, "is read-only"),
        (["write", "{img}", "-t", "data", "{small}"], 2, "--subtype is required with --type"),
        (["write", "{img}", "{small}"], 2, "no partition selected"),
        (["write", "{img}", "-n", "storage", "{missing}"], 2, "no such file"),
        (["read", "{img}", "-n", "nvs", "-o", "{out}", "--offset", "0x9000"], 2,
         "no partition table at 0x9000"),
    ],
)
def test_faults_leave_image_identical(image: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], argv: list[str],
                                      code: int, message: str) -> None:
    (tmp_path / "big.bin").write_bytes(b"\0" * (0x80000 + 1))
    (tmp_path / "small.bin").write_bytes(b"\0" * 16)
    paths = {"img": image, "big": tmp_path / "big.bin", "small": tmp_path / "small.bin",
             "missing": tmp_path / "nope.bin", "out": tmp_path / "out.bin"}
    digest = _digest(image)
    got, _out, err = _run(capsys, *[a.format(**paths) for a in argv])
    assert got == code, err
    assert message in err and "Traceback" not in err
    assert "error:" in err
    assert _digest(image) == digest
    assert not os.path.exists(imagefile.journal_path(str(image)))


def test_force_allows_readonly(image: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "cfg.bin"
    src.write_bytes(b"cfg!")
    assert _run(capsys, "write", str(image), "-n", "cfg", str(src), "--force")[0] == 0
    assert image.read_bytes()[0x390000:0x390004] == b"cfg!"


def test_truncated_image(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(image.read_bytes()[:0x8400])
    digest = _digest(short)
    code, _, err = _run(capsys, "info", str(short), "-n", "nvs")
    assert code == 2 and "truncated image" in err
    half = tmp_path / "half.bin"
    half.write_bytes(image.read_bytes()[:0x320000])  # cuts through 'storage'
    src = tmp_path / "s.bin"
    src.write_bytes(b"x")
    digest = _digest(half)
    code, _, err = _run(capsys, "write", str(half), "-n", "storage", str(src))
    assert code == 2 and "beyond the end of the image" in err
    assert _digest(half) == digest


def test_corrupted_table(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = bytearray(image.read_bytes())
    raw[0x8000 + 32 + 5] ^= 0x40  # inside entry 1: MD5 no longer matches
    image.write_bytes(bytes(raw))
    digest = _digest(image)
    code, _, err = _run(capsys, "erase", str(image), "-n", "storage")
    assert code == 2 and "MD5" in err and "Traceback" not in err
    assert _digest(image) == digest


# --- a real SIGKILL in the middle of a write ---------------------------------------------

KILLER = """
import os, signal, sys
from partkit.flash import imagefile
from partkit.cli import main
real = imagefile._write_chunk
count = [0]
def write_then_die(fd, data, offset):
    real(fd, data, offset)
    count[0] += 1
    if count[0] == int(os.environ["KILL_AFTER_CHUNKS"]):
        os.kill(os.getpid(), signal.SIGKILL)
imagefile._write_chunk = write_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("to_copy", [False, True])
def test_sigkill_mid_write_keeps_original(image: Path, tmp_path: Path, to_copy: bool,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(0x80000))
    original = image.read_bytes()
    copy = tmp_path / "copy.bin"
    argv = ["image", "write", str(image), "-n", "storage", str(src)]
    if to_copy:
        argv += ["-o", str(copy)]
    env = dict(os.environ, KILL_AFTER_CHUNKS="2")
    proc = subprocess.run([sys.executable, "-c", KILLER, *argv], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if to_copy:
        assert image.read_bytes() == original  # never touched
        assert not copy.exists()
        return
    journal = Path(imagefile.journal_path(str(image)))
    assert journal.exists()
    torn = image.read_bytes()
    assert torn != original  # two chunks of new data had landed
    assert torn[0x310000:0x310000 + 0x20000] == src.read_bytes()[:0x20000]
    # the next partkit command on the image rolls the interrupted write back
    code, out, _ = _run(capsys, "info", str(image), "-n", "storage")
    assert (code, out) == (0, "0x310000 0x80000\n")
    assert image.read_bytes() == original
    assert not journal.exists()
