"""Issue 20: every command x every file-valued argument x every hostile input kind.

ROWS lists each command line with one argument replaced by ``{X}`` and that argument's
class: ``table`` (a partition table: streams allowed, bounded), ``file`` (an image, app
or data file: a regular file, its size known), ``tree`` (a directory of files) or ``out``
(an output). KINDS makes ``{X}`` hostile in one way each. EXPECT, the one table of
expectations, says per (class, kind) which exit code and message follow; ``SAME`` means
"as with a plain copy of the valid file" (the row's baseline, run in the same process).

One child process per kind runs every row in-process through ``partkit.cli.main`` (FIFO
waits shortened), so a hang is a timeout and its peak RSS (``VmHWM`` from /proc, which
counts from the child's exec only) bounds every hostile case at once (< 64 MB). Every
printed command line naming ``{X}`` must survive ``shlex.split`` with ``{X}`` as one word.
A new command or option is one row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero, symlinks")
pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")
pytest.importorskip("esp_idf_nvs_partition_gen", reason="esp-idf-nvs-partition-gen missing")

# {T} table CSV, {I} flash image, {N} NVS CSV, {S} small data file, {D} a tree of files,
# {O} an output name unique to the case. Third field: what a valid {X} holds (baseline);
# for outputs, the input it is pointed at in "same-as-input" ("-": none; for image write,
# erase and set-boot "-o IMAGE" is the documented in-place write).
ROWS: list[tuple[str, str, str]] = [
    ("table", "gen {X} {O}.bin", "T"),
    ("table", "show {X}", "T"),
    ("table", "check {X} --flash-size 4MB", "T"),
    ("table", "map {X} -o {O}.svg", "T"),
    ("table", "diff {X} {T}", "T"),
    ("table", "diff {T} {X}", "T"),
    ("table", "resize {X} --set storage=0x90000 -o {O}.csv", "T"),
    ("table", "image create {O}.img --table {X} --flash-size 4MB --chip esp32c3 "
              "--no-flash-args", "T"),
    ("table", "data build {X} --partition nvs --from {N} -o {O}.bin", "T"),
    ("file", "image info {X} -n nvs", "I"),
    ("file", "image inspect {X}", "I"),
    ("file", "image check {X}", "I"),
    ("file", "image otadata {X}", "I"),
    ("file", "image read {X} -n nvs -o {O}.bin", "I"),
    ("file", "image write {X} -n storage {S} -o {O}.img", "I"),
    ("file", "image write {I} -n storage {X} -o {O}.img", "S"),
    ("file", "image erase {X} -n storage -o {O}.img", "I"),
    ("file", "image set-boot {X} --slot factory --force -o {O}.img", "I"),
    ("file", "check {T} --flash-size 4MB --app {X}", "S"),
    ("file", "check {T} --flash-size 4MB --bootloader {X}", "S"),
    ("file", "check {T} --flash-size 4MB --data storage={X}", "S"),
    ("file", "image create {O}.img --table {T} --flash-size 4MB --chip esp32c3 "
             "--no-flash-args --data storage={X}", "S"),
    ("file", "diff {T} {T} --app {X}", "S"),
    ("file", "data build {T} --partition nvs --from {X} -o {O}.bin", "N"),
    ("tree", "data build {T} --partition storage --format littlefs --from {X} -o {O}.bin",
     "D"),
    ("out", "gen {T} {X}", "T"),
    ("out", "gen {T} {O}.bin --header {X}", "T"),
    ("out", "map {T} -o {X}", "T"),
    ("out", "image read {I} -n nvs -o {X}", "I"),
    ("out", "image write {I} -n storage {S} -o {X}", "S"),
    ("out", "image erase {I} -n storage -o {X}", "-"),
    ("out", "image set-boot {I} --slot factory --force -o {X}", "-"),
    ("out", "image create {X} --table {T} --flash-size 4MB --chip esp32c3 --no-flash-args",
     "T"),
    ("out", "data build {T} --partition nvs --from {N} -o {X}", "N"),
    ("out", "data build {T} --partition storage --format littlefs --from {D} -o {O}.bin "
            "--depfile {X}", "T"),
    ("out", "resize {T} --set storage=0x90000 -o {X}", "T"),
    ("out", "new --flash-size 4MB -o {X}", "-"),
]

KINDS = ["missing", "directory", "fifo", "dev-zero", "dev-full", "loop", "dangling", "pipe",
         "unreadable", "sparse", "same-as-input", "odd-name"]

SAME = None  # exit code and output as with the plain, valid argument
NA = "n/a"  # the kind does not apply to the class
# root reads anything: as root (CI), this kind's child runs as the unprivileged 'nobody'
ROOT_SEES_ALL = "unreadable"
NOBODY = 65534

# (class, kind) -> (exit codes, a piece of the message on stderr) | SAME | NA
EXPECT: dict[tuple[str, str], tuple[set[int], str] | str | None] = {
    ("table", "missing"): ({2}, "no such file"),
    ("table", "directory"): ({2}, "is a directory"),
    ("table", "fifo"): ({2}, "nothing to read for"),
    ("table", "dev-zero"): ({2}, "too large for"),
    ("table", "dev-full"): ({2}, "too large for"),
    ("table", "loop"): ({2}, "symbolic link loop"),
    ("table", "dangling"): ({2}, "dangling symbolic link"),
    ("table", "pipe"): SAME,  # read once, bounded
    ("table", "unreadable"): ({2}, "Permission denied"),
    ("table", "sparse"): ({2}, ""),  # too large for a table (diff: an image without one)
    ("table", "same-as-input"): NA,
    ("table", "odd-name"): SAME,
    ("file", "missing"): ({2}, "no such file"),
    ("file", "directory"): ({2}, "directory"),  # "is a directory" or "..., not a directory"
    ("file", "fifo"): ({2}, "not a regular file"),
    ("file", "dev-zero"): ({2}, "not a regular file"),
    ("file", "dev-full"): ({2}, "not a regular file"),
    ("file", "loop"): ({2}, "symbolic link loop"),
    ("file", "dangling"): ({2}, "dangling symbolic link"),
    ("file", "pipe"): ({2}, "not a regular file"),
    ("file", "unreadable"): ({2}, "Permission denied"),
    ("file", "sparse"): ({1, 2}, ""),  # 10 GiB of zeros: never fits, never a valid image
    ("file", "same-as-input"): NA,
    ("file", "odd-name"): SAME,
    ("tree", "missing"): ({2}, "no such file"),
    ("tree", "directory"): ({0}, ""),  # an empty directory: an empty file system
    ("tree", "fifo"): ({2}, "built from a directory"),
    ("tree", "dev-zero"): ({2}, "built from a directory"),
    ("tree", "dev-full"): ({2}, "built from a directory"),
    ("tree", "loop"): ({2}, "symbolic link loop"),
    ("tree", "dangling"): ({2}, "dangling symbolic link"),
    ("tree", "pipe"): ({2}, "built from a directory"),
    ("tree", "unreadable"): ({2}, "Permission denied"),
    ("tree", "sparse"): ({2}, "do not fit"),  # a directory holding a 10 GiB sparse file
    ("tree", "same-as-input"): NA,
    ("tree", "odd-name"): SAME,
    ("out", "missing"): SAME,  # a missing parent directory is created
    ("out", "directory"): ({2}, "is a directory"),
    ("out", "fifo"): ({2}, "nobody reads this FIFO"),
    ("out", "dev-zero"): SAME,  # a device is written, not replaced
    ("out", "dev-full"): ({2}, "No space left on device"),
    ("out", "loop"): ({2}, "symbolic links"),
    ("out", "dangling"): SAME,  # written through the link, like a shell redirection
    ("out", "pipe"): SAME,
    ("out", "unreadable"): ({2}, "Permission denied"),  # a read-only directory
    ("out", "sparse"): SAME,  # an existing 10 GiB file is replaced, never read
    ("out", "same-as-input"): ({2}, "refusing to overwrite it"),
    ("out", "odd-name"): SAME,
}

ODD = "dir with space/it's \"q\" $HOME `x` back\\slash é"
MEMORY_BOUND_KB = 64 * 1024

CSV = """\
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x100000,
ota_0,    app,  ota_0,   ,        0x100000,
ota_1,    app,  ota_1,   ,        0x100000,
storage,  data, spiffs,  ,        0x80000,
"""
NVS_CSV = "key,type,encoding,value\nns,namespace,,\nanswer,data,u8,42\n"

# The child: builds the fixtures once, then runs every row for one kind in-process.
RUNNER = r'''
import io, json, os, shlex, shutil, sys, threading
from partkit.cli import main
from partkit.common import fileio

fileio.FIFO_WAIT = 0.3
kind, work, rows_json = sys.argv[1], sys.argv[2], sys.argv[3]
rows = json.loads(rows_json)
os.chdir(work)
fix = {"T": os.path.abspath("t.csv"), "I": os.path.abspath("flash.img"),
       "N": os.path.abspath("nvs.csv"), "S": os.path.abspath("small.bin"),
       "D": os.path.abspath("tree")}
pristine = {k: open(v, "rb").read() for k, v in fix.items() if k != "D"}

def restore():
    for k, data in pristine.items():
        with open(fix[k], "wb") as f:
            f.write(data)

class Kept(io.BytesIO):
    def close(self):  # a command may close stdout; keep what it wrote
        pass

def call(argv):
    out, err = Kept(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.TextIOWrapper(out, encoding="utf-8"), err
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:
        code, _ = 99, err.write(f"Traceback: {exc!r}\n")
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        sys.stdout, sys.stderr = saved
    return code, out.getvalue().decode("utf-8", "replace") + err.getvalue()

def argv_of(template, x, case):
    subst = dict(fix, X=x, O=os.path.abspath(f"o{case}"))
    return [part.format(**subst) for part in shlex.split(template)]

def feed(fd, data):
    with open(fd, "wb", closefd=True) as f:
        try:
            f.write(data)
        except BrokenPipeError:
            pass

def drain(fd):
    with open(fd, "rb", closefd=True) as f:
        while f.read(1 << 16):
            pass

def hostile(klass, valid, case):
    """Path of the hostile {X}, and a cleanup."""
    base = os.path.abspath(f"x{case}")
    if kind == "missing":
        return os.path.join(base, "no", "such") if klass == "out" else base, None
    if kind == "directory":
        os.mkdir(base)
        return base, None
    if kind == "fifo":
        os.mkfifo(base)
        return base, None
    if kind in ("dev-zero", "dev-full"):
        return "/dev/" + kind[4:], None
    if kind == "loop":
        os.symlink(base, base)
        return base, None
    if kind == "dangling":
        os.symlink(base + ".nowhere", base)
        return base, None
    if kind == "pipe":
        r, w = os.pipe()
        if klass == "out":
            t = threading.Thread(target=drain, args=(r,), daemon=True)
            t.start()
            return f"/dev/fd/{w}", (lambda: (os.close(w), t.join(5)))
        data = open(fix[valid], "rb").read() if valid in pristine else b""
        t = threading.Thread(target=feed, args=(w, data), daemon=True)
        t.start()
        return f"/dev/fd/{r}", (lambda: (os.close(r), t.join(5)))
    if kind == "unreadable":
        if klass == "out":
            os.mkdir(base, 0o555)
            return os.path.join(base, "out"), None
        if klass == "tree":
            os.mkdir(base)
            os.mkdir(os.path.join(base, "locked"), 0)
            return base, None
        shutil.copy(fix[valid], base)
        os.chmod(base, 0)
        return base, None
    if kind == "sparse":
        path = base
        if klass == "tree":
            os.mkdir(base)
            path = os.path.join(base, "big.bin")
        with open(path, "wb") as f:
            f.truncate(10 << 30)
        return base, None
    if kind == "odd-name":
        path = os.path.join(base, ODD)
        os.makedirs(os.path.dirname(path))
        if klass == "tree":
            shutil.copytree(fix["D"], path)
        elif klass != "out":
            shutil.copy(fix[valid], path)
        return path, None
    raise AssertionError(kind)

ODD = sys.argv[4]
results = []
for case, (klass, template, valid) in enumerate(rows):
    if kind == "same-as-input":
        victim = valid
        if klass != "out" or victim == "-":
            continue
        x, cleanup = fix[victim], None
    else:
        x, cleanup = hostile(klass, valid, case)
    baseline = os.path.abspath(f"b{case}.out") if klass == "out" else fix[valid]
    print(f"case {case}: {template}", file=sys.stderr, flush=True)  # names a hang
    code, text = call(argv_of(template, x, case))
    if cleanup:
        cleanup()
    intact = kind != "same-as-input" or open(x, "rb").read() == pristine[victim]
    restore()
    base_code, base_text = call(argv_of(template, baseline, f"b{case}"))
    restore()
    commands = [line for line in text.splitlines() if "esptool" in line and x in line]
    quoted = []
    for line in commands:
        try:
            words = shlex.split(line.split("with: ", 1)[-1])
            quoted.append(x in words)
        except ValueError:
            quoted.append(False)
    results.append({"row": template, "class": klass, "x": x, "code": code, "text": text,
                    "base_code": base_code, "intact": intact, "quoted": quoted})
# peak RSS of this process since its exec (VmHWM is per address space; ru_maxrss of a
# forked child would start from the parent's, the whole pytest process)
with open("/proc/self/status") as f:
    peak = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
print(json.dumps({"results": results, "peak_kb": peak}))
'''


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from partkit.cli import main

    work = tmp_path_factory.mktemp("matrix")
    (work / "t.csv").write_text(CSV)
    (work / "nvs.csv").write_text(NVS_CSV)
    (work / "small.bin").write_bytes(os.urandom(3000))
    tree = work / "tree"
    (tree / "www").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>\n")
    (tree / "www" / "app.js").write_text("let x = 1;\n")
    assert main(["image", "create", str(work / "flash.img"), "--table", str(work / "t.csv"),
                 "--flash-size", "4MB", "--chip", "esp32c3", "--no-flash-args"]) == 0
    return work


def _unprivileged(case_dir: Path) -> list[str]:
    """The command prefix that runs the child as 'nobody' (root reads every file, so
    permissions are tested only without it); ``case_dir`` becomes nobody's."""
    import shutil

    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux; under CI=true a skip is a failure
        pytest.skip("setpriv (util-linux) missing: cannot drop root for the unreadable kind")
    for top, dirs, files in os.walk(case_dir):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, NOBODY, NOBODY)
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _run_kind(work: Path, kind: str) -> tuple[list[dict[str, object]], int]:
    """Every row for ``kind`` in one child process: (results, peak RSS in KiB)."""
    import shutil
    import tempfile

    as_root = kind == ROOT_SEES_ALL and os.geteuid() == 0
    # nobody cannot enter pytest's private (0700) temp tree: a directory of its own in /tmp
    case_dir = Path(tempfile.mkdtemp(prefix="partkit-matrix-")) if as_root else work / kind
    case_dir.mkdir(exist_ok=True)
    for name in ("t.csv", "nvs.csv", "small.bin", "flash.img"):
        (case_dir / name).write_bytes((work / name).read_bytes())
    shutil.copytree(work / "tree", case_dir / "tree")
    prefix = _unprivileged(case_dir) if as_root else []
    out = case_dir / "results.json"
    err = case_dir / "stderr.txt"
    try:
        return _run_child(prefix, kind, case_dir, out, err)
    finally:
        if as_root:
            shutil.rmtree(case_dir, ignore_errors=True)


def _run_child(prefix: list[str], kind: str, case_dir: Path, out: Path, err: Path,
               ) -> tuple[list[dict[str, object]], int]:
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([*prefix, sys.executable, "-c", RUNNER, kind, str(case_dir),
                                 json.dumps(ROWS), ODD], stdout=o, stderr=e)
        timer = threading.Timer(120, proc.kill)  # a hang fails the kind, never the suite
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
    assert proc.returncode == 0, f"{kind}: runner died ({proc.returncode}): " \
                                 f"{err.read_text()[-3000:]}"
    report = json.loads(out.read_text())
    return report["results"], report["peak_kb"]


@pytest.mark.parametrize("kind", KINDS)
def test_matrix(fixtures: Path, kind: str) -> None:
    results, peak_kb = _run_kind(fixtures, kind)
    print(f"[{kind}] {len(results)} cases, peak RSS {peak_kb} KiB")  # shown with -s
    problems = []
    for r in results:
        expect = EXPECT[(str(r["class"]), kind)]
        if expect == NA:
            continue
        where = f"[{kind}] {r['row']}: exit {r['code']}"
        text = str(r["text"])
        if "Traceback" in text:
            problems.append(f"{where}: traceback: {text[-400:]}")
        if expect is SAME:
            if r["code"] != r["base_code"]:
                problems.append(f"{where}, but {r['base_code']} with a plain argument: "
                                f"{text[-300:]}")
        else:
            assert isinstance(expect, tuple)
            codes, words = expect
            if r["code"] not in codes or words not in text:
                problems.append(f"{where}, expected {sorted(codes)} and {words!r}: "
                                f"{text[-300:]}")
        if not r["intact"]:
            problems.append(f"{where}: the input it named as output was changed")
        if not all(r["quoted"]):  # type: ignore[arg-type]
            problems.append(f"{where}: a printed command does not keep {r['x']!r} one word")
    assert not problems, "\n".join(problems)
    assert results, "no case ran"
    assert peak_kb < MEMORY_BOUND_KB, f"[{kind}] peak RSS {peak_kb} KiB"
