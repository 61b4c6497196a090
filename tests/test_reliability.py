"""Issue 14: faults, hostile input and parallel runs against the real CLI and image code.

Kill, race and Ctrl-C tests run partkit in a child process; a few lines of harness (HARNESS)
wrap one internal function to pause or report at a chosen point, then call the real
``partkit.cli.main``. Memory bounds are asserted with ``ru_maxrss`` of a child process
(under an address-space limit, so a regression fails fast instead of eating the machine).
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.flash import imagefile
from partkit.table.model import Partition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals, FIFOs, flock")

CSV = """\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x100000,
ota_0,    app,  ota_0,   ,        0x100000,
ota_1,    app,  ota_1,   ,        0x100000,
storage,  data, spiffs,  ,        0x80000,
"""
STORAGE = (0x310000, 0x80000)
MB = 1 << 20
MEMORY_BOUND_KB = 64 * 1024


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _storage(path: Path) -> bytes:
    offset, size = STORAGE
    return path.read_bytes()[offset:offset + size]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "parts.csv"
    path.write_text(CSV)
    return path


@pytest.fixture
def image(tmp_path: Path, table: Path) -> Path:
    img = tmp_path / "flash.bin"
    assert main(["image", "create", str(img), "--table", str(table), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--no-flash-args"]) == 0
    with open(img, "r+b") as f:  # recognisable old contents in the partition written below
        f.seek(STORAGE[0])
        f.write(os.urandom(STORAGE[1]))
    return img


def _cli(*argv: str | bytes, env: dict[str, str] | None = None,
         **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "partkit", *argv], capture_output=True,
                          env=env, timeout=120, **kw)  # type: ignore[call-overload,no-any-return]


# --- harness: pause or die at a chosen point, then run the real CLI ------------------------

HARNESS = """
import os, sys, time, signal
from partkit.flash import imagefile, contents
from partkit.cli import main

modules = {"imagefile": imagefile, "contents": contents}

def install(module, name, mode):
    target = modules[module]
    real = getattr(target, name)
    calls = [0]
    ready = os.environ["HARNESS_READY"] + "." + name

    def hooked(*args, **kwargs):
        calls[0] += 1
        first = calls[0] == 1
        if mode == "before" and first:  # pause before the first call until HARNESS_GO exists
            open(ready, "w").close()
            while not os.path.exists(os.environ["HARNESS_GO"]):
                time.sleep(0.01)
        result = real(*args, **kwargs)
        if mode != "before" and first:
            open(ready, "w").close()
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)  # "pause": wait here for the test's signal
        return result

    setattr(target, name, hooked)

for spec in os.environ["HARNESS_HOOKS"].split(","):
    install(*spec.split(":"))
sys.exit(main(sys.argv[1:]))
"""


def _start(tmp_path: Path, hooks: str, *argv: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Run ``partkit ARGV`` with HOOKS (``module:function:before|pause|kill``, comma-separated).

    Returns the process and the ready-file prefix (``<prefix>.<function>`` appears when the
    hook is reached).
    """
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    env = dict(os.environ, HARNESS_READY=str(ready), HARNESS_HOOKS=hooks,
               HARNESS_GO=str(tmp_path / "go"))
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, ready


def _reached(ready: Path, function: str) -> Path:
    return ready.with_name(f"{ready.name}.{function}")


def _wait_for(path: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.01)


def _kill_mid_write(tmp_path: Path, image: Path, *, name: str | None = None,
                    sync: bool = False) -> bytes:
    """SIGKILL ``image write`` after its first chunk landed; returns the new data."""
    src = tmp_path / "new.bin"
    data = os.urandom(STORAGE[1])
    src.write_bytes(data)
    proc, ready = _start(tmp_path, "imagefile:_write_chunk:kill", "image", "write",
                         name or str(image), "-n", "storage", str(src),
                         *(["--sync"] if sync else []))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _reached(ready, "_write_chunk").exists()
    return data


# --- 1. the undo journal belongs to one file ------------------------------------------------


@pytest.mark.parametrize("sync", [False, True])
def test_recovery_says_what_it_restored(tmp_path: Path, image: Path, sync: bool) -> None:
    old = _storage(image)
    new = _kill_mid_write(tmp_path, image, sync=sync)
    torn = _storage(image)
    assert torn[:0x20000] == new[:0x20000] and torn[0x20000:] == old[0x20000:]
    proc = _cli("image", "info", str(image), "-n", "storage")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    assert "restored 524288 bytes (0x80000) of partition 'storage' (0x310000..0x390000)" in err
    assert "after changing 1 of 4 blocks of 128 KiB" in err
    assert _storage(image) == old


def test_journal_found_through_a_symlink(tmp_path: Path, image: Path) -> None:
    """A write killed through a link is rolled back when the real name is used, and back."""
    link = tmp_path / "link.bin"
    link.symlink_to(image.name)
    old = _storage(image)
    _kill_mid_write(tmp_path, image, name=str(link))
    assert imagefile.journal_path(str(link)) == imagefile.journal_path(str(image))
    proc = _cli("image", "info", str(image), "-n", "storage")
    assert proc.returncode == 0 and b"restored" in proc.stderr
    assert _storage(image) == old
    # a later successful write through the real name is never reverted through the link
    new = tmp_path / "v2.bin"
    new.write_bytes(b"\x42" * 0x1000)
    assert _cli("image", "write", str(image), "-n", "storage", str(new)).returncode == 0
    proc = _cli("image", "info", str(link), "-n", "storage")
    assert proc.returncode == 0 and proc.stderr == b""
    assert _storage(image)[:0x1000] == b"\x42" * 0x1000


def test_create_discards_the_journal_of_the_file_it_replaces(tmp_path: Path, image: Path,
                                                            table: Path) -> None:
    _kill_mid_write(tmp_path, image)
    assert os.path.exists(imagefile.journal_path(str(image)))
    proc = _cli("image", "create", str(image), "--table", str(table), "--flash-size", "4MB",
                "--chip", "esp32c3", "--no-flash-args")
    assert proc.returncode == 0, proc.stderr
    assert b"discarded the undo journal" in proc.stderr
    assert not os.path.exists(imagefile.journal_path(str(image)))
    fresh = _digest(image)
    proc = _cli("image", "info", str(image), "-n", "storage")
    assert proc.returncode == 0 and proc.stderr == b""
    assert _digest(image) == fresh  # the new image is never rolled back to old bytes


def test_copy_output_discards_the_journal_of_the_file_it_replaces(tmp_path: Path,
                                                                  image: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(image.read_bytes())
    _kill_mid_write(tmp_path, other)
    src = tmp_path / "small.bin"
    src.write_bytes(b"\x01" * 16)
    proc = _cli("image", "write", str(image), "-n", "storage", str(src), "-o", str(other))
    assert proc.returncode == 0, proc.stderr
    assert b"discarded the undo journal" in proc.stderr
    written = _digest(other)
    assert _cli("image", "info", str(other)).returncode == 0
    assert _digest(other) == written


def test_journal_of_a_rewritten_file_is_stale(tmp_path: Path, image: Path) -> None:
    """Same inode and size (``cp`` over it), different bytes: never rolled back."""
    _kill_mid_write(tmp_path, image)
    replacement = bytearray(image.read_bytes())
    replacement[STORAGE[0]:STORAGE[0] + STORAGE[1]] = os.urandom(STORAGE[1])
    inode = image.stat().st_ino
    with open(image, "r+b") as f:  # like cp: truncate and rewrite the same inode
        f.truncate(0)
        f.write(replacement)
    assert image.stat().st_ino == inode
    proc = _cli("image", "info", str(image), "-n", "storage")
    assert proc.returncode == 0, proc.stderr
    assert b"removed a stale undo journal" in proc.stderr
    assert b"holds neither the saved nor the new bytes" in proc.stderr
    assert image.read_bytes() == bytes(replacement)
    assert not os.path.exists(imagefile.journal_path(str(image)))


@pytest.mark.parametrize("change", ["replace", "resize"])
def test_journal_of_a_replaced_or_resized_file_is_stale(tmp_path: Path, image: Path,
                                                       change: str) -> None:
    _kill_mid_write(tmp_path, image)
    content = image.read_bytes()
    if change == "replace":  # a new inode at the same name, same size
        fresh = tmp_path / "fresh.bin"
        fresh.write_bytes(content)
        os.replace(fresh, image)
        expected = b"the file was replaced since"
    else:
        with open(image, "ab") as f:
            f.write(b"\xff" * MB)
        content = image.read_bytes()
        expected = b"the file was resized since"
    proc = _cli("image", "info", str(image), "-n", "storage")
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stderr and b"nothing restored" in proc.stderr
    assert b"partially written" not in proc.stderr
    assert image.read_bytes() == content


# --- 2. outputs write through symlinks, devices and FIFOs -----------------------------------


def _char_device(tmp_path: Path) -> Path:
    """A null device node: a private one as root, else the real /dev/null (not replaceable)."""
    if os.geteuid() == 0:
        node = tmp_path / "null"
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return node
    return Path(os.devnull)


def _read_fifo(fifo: Path, into: list[bytes]) -> threading.Thread:
    def reader() -> None:
        with open(fifo, "rb") as f:
            into.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def test_gen_writes_into_a_device_and_a_fifo(tmp_path: Path, table: Path) -> None:
    node = _char_device(tmp_path)
    proc = _cli("gen", "-q", str(table), str(node))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(node.stat().st_mode)  # still the device, not a regular file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    thread = _read_fifo(fifo, got)
    proc = _cli("gen", "-q", str(table), str(fifo))
    thread.join(30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got and got[0][:2] == b"\xaa\x50" and len(got[0]) == 0xC00


def test_create_into_a_device_keeps_it_and_writes_pieces_here(tmp_path: Path,
                                                              table: Path) -> None:
    node = _char_device(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = _cli("image", "create", str(node), "--table", str(table), "--flash-size", "4MB",
                "--chip", "esp32c3", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(node.stat().st_mode)
    assert (work / "flash_args").exists() and (work / "partition_table").is_dir()


def test_gen_to_dev_stdout_reaches_the_pipe(tmp_path: Path, table: Path) -> None:
    # a private link like /dev/stdout (-> /proc/self/fd/1): a regression replaces only it
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    proc = _cli("gen", "-q", str(table), str(stdout))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) == 0xC00 and proc.stdout[:2] == b"\xaa\x50"
    assert stdout.is_symlink()


@pytest.mark.parametrize("command", ["gen", "map", "create", "read", "write-copy"])
def test_outputs_write_through_symlinks(tmp_path: Path, table: Path, image: Path,
                                        command: str) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "target.out"
    target.write_bytes(b"old")
    link = tmp_path / "link.out"
    link.symlink_to(target)
    argv = {
        "gen": ["gen", "-q", str(table), str(link)],
        "map": ["map", str(table), "-o", str(link)],
        "create": ["image", "create", str(link), "--table", str(table), "--flash-size", "4MB",
                   "--chip", "esp32c3", "--no-flash-args"],
        "read": ["image", "read", str(image), "-n", "nvs", "-o", str(link)],
        "write-copy": ["image", "erase", str(image), "-n", "nvs", "-o", str(link)],
    }[command]
    proc = _cli(*argv)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != b"old" and target.stat().st_size > 3
    assert sorted(p.name for p in real_dir.iterdir()) == ["target.out"]  # no temp left


def test_image_read_into_a_fifo(tmp_path: Path, image: Path) -> None:
    fifo = tmp_path / "part.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    thread = _read_fifo(fifo, got)
    proc = _cli("image", "read", str(image), "-n", "storage", "-o", str(fifo))
    thread.join(30)
    assert proc.returncode == 0, proc.stderr
    assert got == [_storage(image)]


def test_image_erase_copy_to_stdout(tmp_path: Path, image: Path) -> None:
    """A copy to a stream is written front to back (no seeks, no read-back)."""
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    proc = _cli("image", "erase", str(image), "-n", "nvs", "-o", str(stdout))
    assert proc.returncode == 0, proc.stderr
    expected = bytearray(image.read_bytes())
    expected[0x9000:0xD000] = b"\xff" * 0x4000
    assert proc.stdout == bytes(expected)


# --- 5. a reader checks for an interrupted write after it holds the lock --------------------


def _blocked_on_flock(pid: int) -> bool:
    with open("/proc/locks") as f:
        return any("->" in line and f" {pid} " in line for line in f)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="Linux /proc/locks")
def test_reader_waiting_for_the_lock_never_sees_a_half_written_partition(
    tmp_path: Path, image: Path
) -> None:
    old = _storage(image)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(STORAGE[1]))
    # the writer holds the lock and pauses before it saves the journal; once let go it
    # saves the journal, writes one chunk and dies there
    writer, ready = _start(tmp_path, "imagefile:_check_inside:before,imagefile:_write_chunk:kill",
                           "image", "write", str(image), "-n", "storage", str(src))
    _wait_for(_reached(ready, "_check_inside"), writer)
    assert not os.path.exists(imagefile.journal_path(str(image)))
    out = tmp_path / "read.bin"
    reader_code = ("import sys\nfrom partkit.flash import imagefile\n"
                   "from partkit.table.model import Partition\n"
                   "imagefile.read_partition(sys.argv[1], "
                   "Partition('storage', 1, 0x82, 0x310000, 0x80000), sys.argv[2])\n")
    reader = subprocess.Popen([sys.executable, "-c", reader_code, str(image), str(out)],
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _blocked_on_flock(reader.pid):  # the reader waits for the writer's lock
        assert reader.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / "go").touch()
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert _reached(ready, "_write_chunk").exists()
    _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert out.read_bytes() == old
    assert not os.path.exists(imagefile.journal_path(str(image)))


# --- 6. Ctrl-C and a closed stdout ------------------------------------------------------------


def _interrupt(proc: subprocess.Popen[bytes], ready: Path) -> tuple[int, str]:
    _wait_for(ready, proc)
    time.sleep(0.05)  # into the sleep after the hook
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode()


def test_ctrl_c_during_write_rolls_back_and_says_so(tmp_path: Path, image: Path) -> None:
    before = _digest(image)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(STORAGE[1]))
    proc, ready = _start(tmp_path, "imagefile:_write_chunk:pause", "image", "write",
                         str(image), "-n", "storage", str(src))
    code, err = _interrupt(proc, _reached(ready, "_write_chunk"))
    assert code == 130
    # random bytes into a spiffs slot: the contents warning (image write's, before it
    # writes) comes first; the interrupt is reported last, once, without a traceback
    assert err.splitlines()[-1] == (f"partkit: interrupted; '{image}' is unchanged: the "
                                    "partial write to partition 'storage' was rolled back")
    assert err.count("interrupted") == 1 and "Traceback" not in err
    assert _digest(image) == before
    assert not os.path.exists(imagefile.journal_path(str(image)))


def test_ctrl_c_during_create_leaves_no_output(tmp_path: Path, table: Path) -> None:
    out = tmp_path / "new.bin"
    proc, ready = _start(tmp_path, "imagefile:fill:pause", "image", "create", str(out),
                         "--table", str(table), "--flash-size", "4MB", "--chip", "esp32c3",
                         "--no-flash-args")
    code, err = _interrupt(proc, _reached(ready, "fill"))
    assert code == 130
    assert err.splitlines() == [f"partkit: interrupted; '{out}' not created"]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ctrl_c_during_inspect(tmp_path: Path, image: Path) -> None:
    proc, ready = _start(tmp_path, "contents:_used_bytes:pause", "image", "inspect", str(image))
    code, err = _interrupt(proc, _reached(ready, "_used_bytes"))
    assert code == 130
    assert len(err.splitlines()) == 1 and err.startswith("partkit: interrupted; ")
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["show", "{table}"], ["check", "{table}", "--flash-size",
                                                        "4MB", "--json"]])
def test_closed_stdout_exits_quietly(table: Path, argv: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before partkit writes a byte
    try:
        proc = subprocess.run([sys.executable, "-m", "partkit",
                               *(a.format(table=table) for a in argv)],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert proc.stderr == b""
    assert proc.returncode == 141  # like a tool killed by SIGPIPE; never 1 ("check failed")


# --- 7. file names that are not UTF-8 ------------------------------------------------------


def test_non_utf8_file_names(tmp_path: Path, table: Path) -> None:
    bad = os.fsencode(tmp_path) + b"/bad\xff.csv"
    with open(bad, "wb") as f:
        f.write(table.read_bytes())
    env = dict(os.environ, PYTHONIOENCODING="utf-8")  # strict, as in a UTF-8 locale
    out = os.fsencode(tmp_path) + b"/map.svg"
    for argv in ([b"map", bad, b"-o", out], [b"show", bad], [b"check", bad, b"--flash-size",
                                                              b"4MB"],
                 [b"show", bad[:-4] + b"-missing.csv"]):
        proc = _cli(*argv, env=env)
        assert b"Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 2), proc.stderr
    assert b"bad\\udcff.csv" in Path(os.fsdecode(out)).read_bytes()


# --- 8. file names that start with '-' -------------------------------------------------------


def test_dash_file_names_after_double_dash(tmp_path: Path, table: Path) -> None:
    (tmp_path / "-t.csv").write_text(CSV)
    run = {"cwd": tmp_path}
    assert _cli("image", "create", "--table", str(table), "--flash-size", "4MB", "--chip",
                "esp32c3", "--no-flash-args", "--", "-img.bin", **run).returncode == 0
    assert (tmp_path / "-img.bin").stat().st_size == 4 * MB
    proc = _cli("image", "info", "-n", "nvs", "--", "-img.bin", **run)
    assert (proc.returncode, proc.stdout) == (0, b"0x9000 0x4000\n"), proc.stderr
    (tmp_path / "-in.bin").write_bytes(b"\x07" * 100)
    proc = _cli("image", "write", "-n", "nvs", "--", "-img.bin", "-in.bin", **run)
    assert proc.returncode == 0, proc.stderr
    proc = _cli("image", "read", "-n", "nvs", "-o", "out.bin", "--", "-img.bin", **run)
    assert proc.returncode == 0 and (tmp_path / "out.bin").read_bytes()[:100] == b"\x07" * 100
    proc = _cli("image", "inspect", "--", "-img.bin", **run)
    assert proc.returncode == 0 and b"nvs" in proc.stdout, proc.stderr
    assert _cli("gen", "-q", "--", "-t.csv", "-t.bin", **run).returncode == 0
    assert (tmp_path / "-t.bin").read_bytes()[:2] == b"\xaa\x50"
    assert _cli("show", "--", "-t.csv", **run).returncode == 0
    assert _cli("check", "--flash-size", "4MB", "--", "-t.csv", **run).returncode == 0
    assert _cli("map", "--output", "m.svg", "--", "-t.csv", **run).returncode == 0


# --- 9. bounded memory on huge inputs ------------------------------------------------------

RSS_PROBE = """
import resource, subprocess, sys
limit = 1 << 30  # address space: a regression fails fast instead of swapping the machine
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
proc = subprocess.run(sys.argv[1:], preexec_fn=cap, capture_output=True)
sys.stdout.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {proc.returncode}\\n")
sys.stdout.write(proc.stderr.decode(errors="replace"))
"""


def _peak_kb(*argv: str, cwd: Path | None = None) -> tuple[int, int, str]:
    """(peak RSS in KiB, exit code, stderr) of ``partkit ARGV`` in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, sys.executable, "-m", "partkit",
                           *argv], capture_output=True, text=True, cwd=cwd, timeout=300)
    first, _, err = proc.stdout.partition("\n")
    rss, code = first.split()
    return int(rss), int(code), err


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_gen_from_an_endless_device_stops_with_an_error(tmp_path: Path) -> None:
    rss, code, err = _peak_kb("gen", "/dev/zero", str(tmp_path / "out.bin"))
    assert code == 2, err
    assert "too large for a partition table" in err and "Traceback" not in err
    assert rss < MEMORY_BOUND_KB
    assert not (tmp_path / "out.bin").exists()


def test_check_app_of_one_gib_reads_only_its_headers(tmp_path: Path, table: Path) -> None:
    # an ESP image header whose first segment runs past the end: reported, not loaded
    header = bytes([0xE9, 1, 2, 0x20]) + bytes(20) + (0x3C000020).to_bytes(4, "little") + \
        (0x7FFFFFFF).to_bytes(4, "little")
    app = _sparse(tmp_path / "app.bin", 1 << 30, header)
    rss, code, err = _peak_kb("check", str(table), "--app", str(app))
    assert code in (1, 2) and "Traceback" not in err, err
    assert rss < MEMORY_BOUND_KB
    plain = _sparse(tmp_path / "zeros.bin", 1 << 30)
    rss, code, err = _peak_kb("check", str(table), "--app", str(plain))
    assert code == 1 and "Traceback" not in err, err
    assert rss < MEMORY_BOUND_KB


def test_create_with_a_one_gib_app_checks_the_size_first(tmp_path: Path, table: Path) -> None:
    app = _sparse(tmp_path / "app.bin", 1 << 30, bytes([0xE9, 1, 2, 0x20]) + bytes(8)
                  + bytes([5, 0]))  # chip id 5 (esp32c3)
    rss, code, err = _peak_kb("image", "create", str(tmp_path / "img.bin"), "--table",
                              str(table), "--flash-size", "4MB", "--app", f"factory={app}",
                              "--no-flash-args")
    assert code == 1 and "do not fit partition 'factory'" in err, err
    assert rss < MEMORY_BOUND_KB


def test_inspect_streams_a_64_gib_sparse_dump(tmp_path: Path, image: Path) -> None:
    dump = tmp_path / "dump.bin"
    dump.write_bytes(image.read_bytes())
    with open(dump, "r+b") as f:
        f.truncate(64 << 30)
    rss, code, err = _peak_kb("image", "inspect", str(dump))
    assert code == 0, err
    assert rss < MEMORY_BOUND_KB


OPEN_COUNTER = """
import os, sys
from partkit.cli import main
image = os.path.abspath(sys.argv[-1])
real_open, count = os.open, [0]
def counting(path, *args, **kwargs):
    if isinstance(path, str) and os.path.abspath(path) == image:
        count[0] += 1
    return real_open(path, *args, **kwargs)
os.open = counting
code = main(sys.argv[1:])
sys.stderr.write(f"opens={count[0]}\\n")
sys.exit(code)
"""


def test_inspect_opens_the_image_once(tmp_path: Path, image: Path) -> None:
    dump = tmp_path / "dump.bin"
    dump.write_bytes(image.read_bytes() + b"\xff" * (60 * MB))
    proc = subprocess.run([sys.executable, "-c", OPEN_COUNTER, "image", "inspect", str(dump)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    opens = int(proc.stderr.decode().rsplit("opens=", 1)[1])
    assert opens == 1


# --- 10. killed runs leave no temp files ------------------------------------------------------


def test_killed_create_leaves_no_temp(tmp_path: Path, table: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc, ready = _start(tmp_path, "imagefile:fill:kill", "image", "create",
                         str(out_dir / "img.bin"), "--table", str(table), "--flash-size", "4MB",
                         "--chip", "esp32c3", "--no-flash-args")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and _reached(ready, "fill").exists()
    assert list(out_dir.iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_temps_of_dead_processes_are_removed(tmp_path: Path, table: Path) -> None:
    out = tmp_path / "t.bin"
    stale = tmp_path / f".t.bin.{_dead_pid()}.tmp"
    stale.write_bytes(b"x" * 1000)
    # a temp whose writer is alive (it holds the temp's flock) is left alone
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"),
        str(tmp_path / ".t.bin.PID.tmp")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        live = tmp_path / f".t.bin.{holder.pid}.tmp"
        os.rename(tmp_path / ".t.bin.PID.tmp", live)
        assert _cli("gen", "-q", str(table), str(out)).returncode == 0
        assert not stale.exists()
        assert live.exists()
    finally:
        holder.kill()
        holder.wait()


# --- 11. long file names ----------------------------------------------------------------------


def test_249_character_names(tmp_path: Path, table: Path) -> None:
    name = "n" * 245 + ".bin"
    assert len(name) == 249
    img = tmp_path / name
    proc = _cli("image", "create", str(img), "--table", str(table), "--flash-size", "4MB",
                "--chip", "esp32c3", "--no-flash-args")
    assert proc.returncode == 0, proc.stderr
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x05" * 64)
    proc = _cli("image", "write", str(img), "-n", "storage", str(src))
    assert proc.returncode == 0, proc.stderr
    copy = tmp_path / ("c" * 245 + ".bin")
    assert _cli("image", "read", str(img), "-n", "storage", "-o", str(copy)).returncode == 0
    assert copy.read_bytes()[:64] == b"\x05" * 64
    assert _cli("gen", "-q", str(table), str(tmp_path / ("g" * 249))).returncode == 0
    assert all(len(p.name) <= 255 for p in tmp_path.iterdir())
    assert sorted(p.name[0] for p in tmp_path.iterdir()) == ["c", "g", "i", "n", "p"]


def test_huge_csvs_stay_bounded_and_never_pass(tmp_path: Path) -> None:
    # 100 000 lines of comments around a real table: read and converted as before.
    comments = tmp_path / "commented.csv"
    comments.write_text("".join(f"# note {i}: {'x' * 30}\n" for i in range(100_000))
                        + "nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 1M,\n")
    rss, code, err = _peak_kb("gen", str(comments), str(tmp_path / "c.bin"))
    assert code == 0, err
    assert rss < MEMORY_BOUND_KB
    # 100 000 partition rows: one clear error at the row where it stops, bounded memory.
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"p{i}, data, 0x40, , 4K,\n" for i in range(100_000)))
    for argv in (["gen", str(rows), str(tmp_path / "r.bin")], ["show", str(rows)],
                 ["map", str(rows), "-o", str(tmp_path / "r.svg")]):
        rss, code, err = _peak_kb(*argv)
        assert code == 2 and f"{rows}:1001:1: error: more than 1000 partition rows" in err, err
        assert rss < MEMORY_BOUND_KB


def test_a_table_with_too_many_entries_never_checks_ok(tmp_path: Path) -> None:
    # gen cannot encode 100 entries (94 fit with the MD5 row): check must not say "OK".
    csv = tmp_path / "t.csv"
    csv.write_text("nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 1M,\n"
                   + "".join(f"p{i}, data, 0x40, , 4K,\n" for i in range(98)))
    proc = subprocess.run([sys.executable, "-m", "partkit", "check", str(csv), "--flash-size",
                           "4MB"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout
    assert "check OK" not in proc.stdout
    assert "100 entries; at most 94 fit with the MD5 row" in proc.stderr


# --- issue 20, item 1: recovery itself survives any number of kills -------------------------


def _forked(work: Callable[[], None]) -> int:
    """Run ``work`` in a forked child (the real code, this process's imports); its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            imagefile.set_notice_handler(lambda _d: None)
            work()
        finally:
            os._exit(0)
    return pid


def _torn_write(image: Path, part: Partition, new: bytes, block: int) -> None:
    """A write SIGKILLed half-way through block ``block``: the in-flight block is torn."""

    def work() -> None:
        real = imagefile._write_chunk
        calls = [0]

        def chunk(fd: int, data: bytearray, offset: int) -> None:
            if calls[0] == block:
                real(fd, data[: len(data) // 2], offset)
                os.kill(os.getpid(), signal.SIGKILL)
            calls[0] += 1
            real(fd, data, offset)

        imagefile._write_chunk = chunk  # type: ignore[assignment]
        src = image.with_name("new.bin")
        src.write_bytes(new)
        imagefile.write_partition(str(image), part, str(src))

    _, status = os.waitpid(_forked(work), 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_recovery_killed_any_number_of_times_restores_the_original_bytes(
        tmp_path: Path) -> None:
    """SIGKILL recovery again and again at delays that track its run: the saved bytes win.

    The torn write leaves new blocks, one half-written block, then old blocks; a restore
    cut short adds restored blocks and a half-restored one in front: a range no
    classification can read, so the decision to restore must already be in the journal.
    The delay adapts (longer after a kill that came before the restore started, shorter
    after one that came too late), so most of the 30 kills land inside restores.
    """
    size = 24 * MB
    image = tmp_path / "flash.img"
    journal = imagefile.journal_path(str(image))
    part = Partition("storage", 1, 0x82, 0x10000, size - 0x10000)
    original = os.urandom(size)
    landed = {"before": 0, "inside": 0, "after": 0}
    delay, torn, rounds = 0.01, b"", 0
    for kill in range(30):
        if not os.path.exists(journal):  # (re)start: a fresh torn write
            image.write_bytes(original)
            _torn_write(image, part, os.urandom(part.size), block=40 + 17 * (rounds % 6))
            torn = hashlib.sha256(image.read_bytes()).digest()
            rounds += 1
        pid = _forked(lambda: imagefile.recover(str(image)))
        time.sleep(delay * (0.75 + 0.5 * (kill % 3) / 2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if not os.path.exists(journal):
            landed["after"] += 1
            assert image.read_bytes() == original, f"kill {kill}: original bytes lost"
            delay *= 0.6
        elif hashlib.sha256(image.read_bytes()).digest() == torn:
            landed["before"] += 1
            delay *= 1.5
        else:
            landed["inside"] += 1
    _, status = os.waitpid(_forked(lambda: imagefile.recover(str(image))), 0)
    assert os.WIFEXITED(status)
    assert image.read_bytes() == original, f"original bytes lost ({landed})"
    assert not os.path.exists(journal)
    assert landed["inside"] >= 3, f"too few kills inside a restore to test anything: {landed}"


# --- issue 20, item 4: an output that is an input is refused, nothing written ---------------

NVS_CSV = "key,type,encoding,value\nns,namespace,,\nanswer,data,u8,42\n"


@pytest.mark.parametrize("case", ["header-is-bin", "header-is-csv", "read-into-image",
                                  "data-into-its-csv", "data-into-table", "map-into-table",
                                  "map-through-link", "write-copy-onto-source"])
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, table: Path, image: Path,
                                               case: str, capsys: pytest.CaptureFixture[str],
                                               ) -> None:
    pytest.importorskip("esp_idf_nvs_partition_gen") if case.startswith("data") else None
    bin_ = tmp_path / "t.bin"
    assert main(["gen", "-q", str(table), str(bin_)]) == 0
    nvs = tmp_path / "d.csv"
    nvs.write_text(NVS_CSV)
    link = tmp_path / "link.csv"
    link.symlink_to(table.name)
    argv, victim = {
        "header-is-bin": (["gen", str(table), str(bin_), "--header", str(bin_)], bin_),
        "header-is-csv": (["gen", str(table), str(tmp_path / "o.bin"), "--header",
                           str(table)], table),
        "read-into-image": (["image", "read", str(image), "-n", "storage", "-o",
                             str(image)], image),
        "data-into-its-csv": (["data", "build", str(table), "--partition", "nvs", "--from",
                               str(nvs), "-o", str(nvs)], nvs),
        "data-into-table": (["data", "build", str(table), "--partition", "nvs", "--from",
                             str(nvs), "-o", str(table)], table),
        "map-into-table": (["map", str(table), "-o", str(table)], table),
        "map-through-link": (["map", str(table), "-o", str(link)], table),
        "write-copy-onto-source": (["image", "write", str(image), "-n", "nvs", str(bin_),
                                    "-o", str(bin_)], bin_),
    }[case]
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite it" in err and "Traceback" not in err, err
    assert victim.read_bytes() == before[victim]
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("argv", [["gen", "-", "{t}"], ["show", "-", "-o", "{t}"],
                                  ["resize", "-", "--set", "storage=0x90000", "-o", "{t}"]])
def test_stdin_redirected_from_the_output_is_an_input(table: Path, argv: list[str]) -> None:
    """`partkit gen - t.csv < t.csv` replaced the table with its binary (exit 0): '-' was
    never compared with the outputs. The shell's '<' does not truncate; partkit must not."""
    before = table.read_bytes()
    with open(table, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-m", "partkit",
                               *(a.format(t=table) for a in argv)],
                              stdin=stdin, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "output is an input of this command ('<stdin>')" in proc.stderr, proc.stderr
    assert table.read_bytes() == before


def test_data_build_depfile_colliding_with_the_image_writes_nothing(
        tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 19's rule for data build: the image was written, then the depfile refused."""
    pytest.importorskip("esp_idf_nvs_partition_gen")
    nvs = tmp_path / "nvs.csv"
    nvs.write_text(NVS_CSV)
    out = tmp_path / "nvs.bin"
    link = tmp_path / "nvs.d"
    link.symlink_to(out.name)
    for depfile in (out, link):
        capsys.readouterr()
        assert main(["data", "build", str(table), "--partition", "nvs", "--from", str(nvs),
                     "-o", str(out), "--depfile", str(depfile)]) == 2
        assert "refusing to overwrite it" in capsys.readouterr().err
        assert not out.exists()


# --- issue 20, items 5, 8, 10, 16: the tree a LittleFS/FAT image is built from --------------

FS_TABLE = """\
nvs,      data, nvs,      0x9000,   16K
storage,  data, littlefs, 0x10000,  128K
ffat,     data, fat,      0x30000,  256K
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    pytest.importorskip("littlefs")
    pytest.importorskip("pyfatfs")
    (tmp_path / "fs.csv").write_text(FS_TABLE)
    web = tmp_path / "web"
    (web / "css").mkdir(parents=True)
    (web / "index.html").write_text("<h1>hi</h1>\n")
    (web / "css" / "site.css").write_text("body{}\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "top.txt").write_text("top\n")
    (data / "www").symlink_to("../web")
    return data


def _build(tmp_path: Path, part: str, source: Path, out: str = "out.img") -> int:
    return main(["data", "build", str(tmp_path / "fs.csv"), "--partition", part, "--from",
                 str(source), "-o", str(tmp_path / out)])


def test_symlinked_directories_are_followed_not_dropped(tmp_path: Path, tree: Path) -> None:
    import littlefs
    from pyfatfs.PyFatFS import PyFatFS

    assert _build(tmp_path, "storage", tree, "lfs.img") == 0
    fs = littlefs.LittleFS(block_size=4096, block_count=32, mount=False)
    fs.context.buffer = bytearray((tmp_path / "lfs.img").read_bytes())
    fs.mount()
    assert sorted(fs.listdir("www")) == ["css", "index.html"]
    with fs.open("www/css/site.css", "r") as f:
        assert f.read() == "body{}\n"
    assert _build(tmp_path, "ffat", tree, "fat.img") == 0
    fat = PyFatFS(str(tmp_path / "fat.img"))
    try:
        assert fat.readtext("/www/index.html") == "<h1>hi</h1>\n"
    finally:
        fat.close()


@pytest.mark.parametrize("kind", ["loop-dir", "self-link", "dangling", "fifo", "dev-zero",
                                  "sparse-1g"])
@pytest.mark.parametrize("part", ["storage", "ffat"])
def test_hostile_tree_entries_are_errors_before_reading(
        tmp_path: Path, tree: Path, kind: str, part: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Each used to be dropped silently, hang, traceback or read without bound."""
    bad = tree / "bad"
    if kind == "loop-dir":
        bad.symlink_to(".")
    elif kind == "self-link":
        bad.symlink_to("bad")
    elif kind == "dangling":
        bad.symlink_to("nowhere")
    elif kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dev-zero":
        bad.symlink_to("/dev/zero")
    else:
        _sparse(bad, 1 << 30)
    capsys.readouterr()
    assert _build(tmp_path, part, tree) == 2
    err = capsys.readouterr().err
    expected = {"loop-dir": "symbolic link loop", "self-link": "symbolic link loop",
                "dangling": "dangling symbolic link", "fifo": "a FIFO, not a regular file",
                "dev-zero": "a device, not a regular file",
                "sparse-1g": "this file alone has 1073741824 bytes"}[kind]
    assert f"{bad}: error: " in err and expected in err, err
    assert not (tmp_path / "out.img").exists()


def test_tree_of_a_huge_sparse_file_stays_small(tmp_path: Path, tree: Path) -> None:
    _sparse(tree / "big.bin", 10 << 30)
    rss, code, err = _peak_kb("data", "build", str(tmp_path / "fs.csv"), "--partition",
                              "ffat", "--from", str(tree), "-o", str(tmp_path / "o.img"))
    assert code == 2 and "do not fit a 256 KiB FAT partition" in err, err
    assert rss < MEMORY_BOUND_KB


def test_fat_name_errors_hint_at_the_name_not_the_size(
        tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20 item 22: a name FAT cannot hold was met with 'make the partition bigger'."""
    (tree / ("n" * 250 + ".txt")).write_text("x")
    capsys.readouterr()
    assert _build(tmp_path, "ffat", tree) == 2
    err = capsys.readouterr().err
    assert "at most 255 characters: rename" in err and "bigger" not in err, err
    assert not (tmp_path / "out.img").exists()


def test_depfile_names_the_files_ninja_sees(tmp_path: Path, tree: Path) -> None:
    """Backslashes are part of POSIX names: before, they became '/', so the depfile named
    files that do not exist and Ninja rebuilt on every run."""
    import shlex
    import shutil

    ninja = shutil.which("ninja")
    if ninja is None:
        pytest.skip("ninja not installed")
    odd = tree / "dir with space"
    odd.mkdir()
    (odd / "back\\slash $x.txt").write_text("odd\n")
    cmd = shlex.join([sys.executable, "-m", "partkit", "data", "build", str(tmp_path / "fs.csv"),
                      "--partition", "storage", "--from", str(tree), "-o", "out.img",
                      "--depfile", "out.img.d"])
    (tmp_path / "build.ninja").write_text(
        f"rule img\n  command = {cmd.replace('$', '$$')}\n  depfile = out.img.d\n"
        "  deps = gcc\nbuild out.img: img\n")

    def ninja_run() -> str:
        proc = subprocess.run([ninja, "-C", str(tmp_path)], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "partkit" in ninja_run() or (tmp_path / "out.img").exists()
    assert "no work to do" in ninja_run()
    time.sleep(1.1)  # file systems with 1 s timestamps
    (odd / "back\\slash $x.txt").write_text("changed\n")
    assert "no work to do" not in ninja_run()


# --- issue 20, items 6, 7, 10: non-regular images, apps and data images ---------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["dir", "dev-zero", "fifo"])
@pytest.mark.parametrize("option", ["--data", "--app", "--bootloader"])
def test_check_refuses_inputs_that_are_not_files(tmp_path: Path, table: Path, fifo: Path,
                                                 kind: str, option: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before: '--data storage=DIR' said fits (exit 0); '--app FIFO' hung for ever."""
    path = {"dir": str(tmp_path), "dev-zero": "/dev/zero", "fifo": str(fifo)}[kind]
    value = f"storage={path}" if option == "--data" else path
    capsys.readouterr()
    assert main(["check", str(table), "--flash-size", "4MB", option, value]) == 2
    err = capsys.readouterr().err
    expected = "is a directory" if kind == "dir" else "not a regular file"
    assert f"{path}: error: " in err and expected in err, err


@pytest.mark.parametrize("command", [["image", "inspect"], ["image", "check"],
                                     ["image", "info"]])
def test_image_commands_refuse_a_fifo_instead_of_hanging(fifo: Path, command: list[str],
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    capsys.readouterr()
    assert main([*command, str(fifo)]) == 2
    err = capsys.readouterr().err
    assert "a FIFO or pipe, not a regular file: a flash image must be a file" in err, err


def test_image_check_on_a_dump_cut_inside_a_partition(tmp_path: Path, image: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      ) -> None:
    """Before: the cut partition was "ok, erased" while inspect said beyond the end."""
    import json

    cut = tmp_path / "cut.bin"
    cut.write_bytes(b"\xff" * (STORAGE[0] + 0x1000))  # ends inside storage: all 0xFF there
    with open(image, "rb") as f:
        head = f.read(STORAGE[0])
    with open(cut, "r+b") as f:
        f.write(head)
    capsys.readouterr()
    main(["image", "check", str(cut), "--json"])
    rows = {p["name"]: p for p in json.loads(capsys.readouterr().out)["partitions"]}
    assert rows["storage"]["status"] == "absent", rows["storage"]
    main(["image", "inspect", str(cut)])
    assert "beyond the end of the image" in capsys.readouterr().out


# --- issue 20, item 9: one runaway line ------------------------------------------------------


@pytest.mark.parametrize("command", ["gen", "show", "check", "diff"])
def test_one_huge_line_is_refused_quickly_and_small(tmp_path: Path, table: Path,
                                                    command: str) -> None:
    """Before: an 8 MB line of commas took 920 MB and seconds in every table command."""
    huge = tmp_path / "commas.csv"
    huge.write_bytes(b"nvs, data, nvs, 0x9000, 0x4000\n" + b"," * (8 * MB - 100) + b"\n")
    argv = {"gen": ["gen", str(huge), str(tmp_path / "o.bin")], "show": ["show", str(huge)],
            "check": ["check", str(huge), "--flash-size", "4MB"],
            "diff": ["diff", str(table), str(huge)]}[command]
    rss, code, err = _peak_kb(*argv)
    assert code == 2, err
    assert f"{huge}:2:1: error: line of {8 * MB - 100} characters" in err, err
    assert rss < MEMORY_BOUND_KB


# --- issue 20, item 14: stdout and stderr that fail or are closed ----------------------------


@pytest.mark.parametrize("case", ["stdout-full", "stdout-closed", "stderr-closed-ok",
                                  "stderr-closed-bad-input"])
def test_broken_standard_streams_keep_exit_codes(tmp_path: Path, table: Path,
                                                 case: str) -> None:
    """Before: ENOSPC and AttributeError tracebacks, and a closed stderr turned 2 into 1."""
    target = str(table) if case != "stderr-closed-bad-input" else str(tmp_path / "none.csv")
    shell = {"stdout-full": "> /dev/full", "stdout-closed": ">&-",
             "stderr-closed-ok": "2>&- > /dev/null",
             "stderr-closed-bad-input": "2>&-"}[case]
    proc = subprocess.run(f"{shlex_quote(sys.executable)} -m partkit show "
                          f"{shlex_quote(target)} {shell}", shell=True, capture_output=True,
                          text=True, timeout=120)
    expected = {"stdout-full": 2, "stdout-closed": 0, "stderr-closed-ok": 0,
                "stderr-closed-bad-input": 2}[case]
    assert proc.returncode == expected, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    if case == "stdout-full":
        assert "partkit: error: cannot write to stdout: No space left on device" in proc.stderr


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --- issue 20, item 11: backslashes in flash_args and flasher_args.json ---------------------


def test_flash_args_keep_backslashes_in_posix_names(tmp_path: Path, table: Path) -> None:
    """Before: 'a\\b.bin' became 'a/b.bin' in flash_args: another file would be flashed."""
    import json
    import shlex

    odd = tmp_path / "dir\\x"
    odd.mkdir()
    data = odd / "st\\orage $1.bin"
    data.write_bytes(b"\x42" * 1000)
    out = tmp_path / "img.bin"
    assert main(["image", "create", str(out), "--table", str(table), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--data", f"storage={data}",
                 "--args-dir", str(tmp_path)]) == 0
    words = shlex.split((tmp_path / "flash_args").read_text())
    named = [w for w in words if "storage" in w or "orage" in w]
    assert named and all(Path(w).exists() or (tmp_path / w).exists() for w in named), words
    files = json.loads((tmp_path / "flasher_args.json").read_text())["flash_files"].values()
    assert any("st\\orage $1.bin" in f for f in files), files


# --- issue 20, item 23: diff OLD that no device can hold ----------------------------------


@pytest.mark.parametrize("case", ["duplicate-names", "1000-rows"])
def test_diff_refuses_an_old_table_no_device_runs(tmp_path: Path, table: Path, case: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a verdict (exit 0/1) about a table gen_esp32part would never have built."""
    old = tmp_path / "old.csv"
    if case == "duplicate-names":
        old.write_text(CSV + "nvs, data, nvs, , 0x4000,\n")
    else:
        old.write_text("".join(f"p{i}, data, 0x40, , 0x1000,\n" for i in range(1000)))
    capsys.readouterr()
    assert main(["diff", str(old), str(table), "--flash-size", "16MB"]) == 2
    err = capsys.readouterr().err
    assert ("is used twice" if case == "duplicate-names" else "entries") in err, err


# --- issue 20, items 16 and 17: deep trees; Ctrl-C inside the file-system library ----------


def test_sixty_nested_directories_are_an_error_not_a_traceback(
        tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tree
    for i in range(60):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_text("leaf\n")
    capsys.readouterr()
    assert _build(tmp_path, "storage", tree) == 2
    err = capsys.readouterr().err
    assert "directories nested more than 32 deep" in err and "Traceback" not in err, err


def test_ctrl_c_inside_a_littlefs_callback_is_not_swallowed(
        tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: SIGINT landing in littlefs-python's block-device callback was lost inside
    the library and the build exited 0 with an image."""
    from littlefs.context import UserContext

    real = UserContext.prog
    sent = [False]

    def prog(self: object, *args: object) -> object:
        if not sent[0]:
            sent[0] = True
            os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: in here
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(UserContext, "prog", prog)
    capsys.readouterr()
    assert _build(tmp_path, "storage", tree) == 130
    assert sent[0]
    assert "interrupted; the data image was not written" in capsys.readouterr().err
    assert not (tmp_path / "out.img").exists()


# --- issue 20, item 22: wording ----------------------------------------------------------


def test_same_partition_given_twice_says_so(tmp_path: Path, table: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Before: "'storage' overlaps 'storage'"."""
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    capsys.readouterr()
    assert main(["image", "create", str(tmp_path / "o.img"), "--table", str(table),
                 "--flash-size", "4MB", "--chip", "esp32c3", "--no-flash-args",
                 "--data", f"storage={a}", "--data", f"storage={b}"]) == 2
    err = capsys.readouterr().err
    assert f"--data: partition 'storage' is given twice ('{a}' and '{b}')" in err, err
    assert "overlaps" not in err


def test_block_or_char_device_image_is_refused_not_truncated(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a device image read as "truncated image: 0 bytes"."""
    capsys.readouterr()
    assert main(["image", "inspect", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "a device, not a regular file: a flash image must be a file" in err, err


def test_a_directory_in_the_journals_place_is_named_as_such(
        image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path(imagefile.journal_path(str(image))).mkdir()
    capsys.readouterr()
    assert main(["image", "info", str(image), "-n", "nvs"]) == 2
    err = capsys.readouterr().err
    assert "the undo journal's name for" in err and "is taken by a directory" in err, err


# --- issue 20, items 18 and 21: when putting the old bytes back fails too -------------------


@pytest.mark.parametrize("fault", ["disk-full", "second-ctrl-c"])
def test_failed_rollback_says_what_state_the_image_is_in(
        tmp_path: Path, image: Path, fault: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: 'cannot roll back interrupted write' without the cause (disk full), or
    'outputs are only replaced whole' (second Ctrl-C) over a half-written image."""
    from partkit.flash import journal

    old = _storage(image)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(STORAGE[1]))
    make = {"disk-full": lambda: OSError(28, "No space left on device"),
            "second-ctrl-c": KeyboardInterrupt}[fault]
    real_chunk, real_copy = imagefile._write_chunk, journal.copy
    calls = [0]

    def chunk(fd: int, data: bytearray, offset: int) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise make()
        real_chunk(fd, data, offset)

    def copy(*args: int) -> None:
        if calls[0] >= 2:  # restoring, not saving: fails as well
            raise make()
        real_copy(*args)

    monkeypatch.setattr(imagefile, "_write_chunk", chunk)
    monkeypatch.setattr(journal, "copy", copy)
    capsys.readouterr()
    code = main(["image", "write", str(image), "-n", "storage", str(src)])
    err = capsys.readouterr().err
    assert code == (2 if fault == "disk-full" else 130), err
    assert "is partly written; the undo journal" in err, err
    assert "next partkit command on the image restores them" in err
    if fault == "disk-full":
        assert "cannot write: No space left on device; rolling back failed too" in err
    else:
        assert "outputs are only replaced whole" not in err
    monkeypatch.undo()
    assert main(["image", "info", str(image), "-n", "storage"]) == 0
    assert "restored 524288 bytes" in capsys.readouterr().err
    assert _storage(image) == old


# --- issue 20, item 19: validate everything, then write -------------------------------------


def test_create_with_an_args_dir_that_is_a_file_writes_nothing(
        tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the image was replaced, then the flash_args write failed (exit 2)."""
    not_dir = tmp_path / "args"
    not_dir.write_text("a file\n")
    out = tmp_path / "new.img"
    capsys.readouterr()
    assert main(["image", "create", str(out), "--table", str(table), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--args-dir", str(not_dir)]) == 2
    assert "--args-dir: not a directory" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("failure", ["disk-full", "ctrl-c"])
def test_create_failing_after_the_image_says_what_was_written(
        tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """Item 19: a failure while writing flash_args (after the image was replaced) reported
    only the failed file; the image's state and the stale argument files went unsaid."""
    from partkit.common.errors import PartkitError, SourceLocation, error
    from partkit.flash import assemble

    real = assemble.write_atomic

    def failing(path: str, data: bytes) -> None:
        if path.endswith("flasher_args.json"):
            if failure == "ctrl-c":
                raise KeyboardInterrupt
            raise PartkitError(error("cannot write: No space left on device",
                                     SourceLocation(path)))
        real(path, data)

    monkeypatch.setattr(assemble, "write_atomic", failing)
    out = tmp_path / "new.img"
    capsys.readouterr()
    code = main(["image", "create", str(out), "--table", str(table), "--flash-size", "4MB",
                 "--chip", "esp32c3"])
    err = capsys.readouterr().err
    assert code == (130 if failure == "ctrl-c" else 2), err
    assert out.stat().st_size == 4 << 20
    assert f"{out} was written whole; flash_args and flasher_args.json" in err, err
    assert "may still describe an earlier run" in err, err


@pytest.mark.parametrize("kind", ["dev-zero", "sparse-1g"])
def test_nvs_file_entry_is_checked_before_it_is_read(tmp_path: Path, kind: str) -> None:
    """Item 8: an NVS 'file' entry pointing at /dev/zero grew without bound."""
    pytest.importorskip("esp_idf_nvs_partition_gen")
    (tmp_path / "fs.csv").write_text(FS_TABLE)
    blob = tmp_path / "blob.bin"
    if kind == "dev-zero":
        blob.symlink_to("/dev/zero")
    else:
        _sparse(blob, 1 << 30)
    nvs = tmp_path / "nvs.csv"
    nvs.write_text(f"key,type,encoding,value\nns,namespace,,\ncert,file,binary,{blob}\n")
    rss, code, err = _peak_kb("data", "build", str(tmp_path / "fs.csv"), "--partition", "nvs",
                              "--from", str(nvs), "-o", str(tmp_path / "o.bin"))
    assert code == 2, err
    assert ("not a regular file" if kind == "dev-zero" else "more than an NVS value holds") \
        in err, err
    assert rss < MEMORY_BOUND_KB
