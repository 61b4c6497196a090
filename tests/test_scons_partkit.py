"""The SCons tool driven by real ``scons``: table bytes, up-to-date behaviour, size checks.

Projects live in tmp_path, laid out like a checkout (``examples/``, with ``plugins`` and
``core`` linked in) so the tool is found through its toolpath and finds the core itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.firmware import app_of_size, bootloader_of_size
from support.tools import require_tool

pytestmark = [pytest.mark.scons, pytest.mark.firmware]

ROOT = Path(__file__).resolve().parents[1]
CSV = """\
# Name,   Type, SubType, Offset,  Size,    Flags
nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x30000,
storage,  data, spiffs,  ,        0x100000,
"""
SLOT = 0x30000  # the factory partition above

SCONSTRUCT = """\
import os
env = Environment(ENV=os.environ, tools=["default", "partkit"],
                  toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")])
env.Decider("content")
table = env.PartitionTable("build/partitions.bin", "partitions.csv",
                           PARTKIT_FLASH_SIZE=ARGUMENTS.get("FLASH_SIZE", "4MB"),
                           PARTKIT_OFFSET=ARGUMENTS.get("OFFSET", "0x8000"))
checks = []
if os.path.exists("app.bin"):
    checks += env.CheckAppSize("app.bin", table)
if os.path.exists("bootloader.bin"):
    checks += env.CheckBootloaderSize("bootloader.bin", table, PARTKIT_CHIP="esp32c3")
import partkit
print("core package:", partkit.__file__)
Default(table, checks)
"""


def _checkout(tmp_path: Path) -> Path:
    """tmp_path/{plugins,core} -> the real ones; returns tmp_path/project."""
    for name in ("plugins", "core"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = _checkout(tmp_path)
    (project / "SConstruct").write_text(SCONSTRUCT)
    (project / "partitions.csv").write_text(CSV)
    return project


def scons(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("scons")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([exe, "-Q", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def oracle_table(csv_text: str) -> bytes:
    defs = pytest.importorskip("esp_idf_defs.partitions")
    table = defs.PartitionTable.from_csv(csv_text)
    table.verify()
    data: bytes = table.to_binary()
    return data + b"\xff" * (0xC00 - len(data))


def partkit_gen(csv: Path, out: Path, *args: str) -> bytes:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    subprocess.run([sys.executable, "-m", "partkit", "gen", "-q", *args, str(csv), str(out)],
                   check=True, env=env)
    return out.read_bytes()


def test_table_bytes_match_reference_and_cli(project: Path, tmp_path: Path) -> None:
    result = scons(project)
    assert result.returncode == 0, result.stdout + result.stderr
    built = (project / "build" / "partitions.bin").read_bytes()
    assert len(built) == 0xC00
    assert built == oracle_table(CSV)
    assert built == partkit_gen(project / "partitions.csv", tmp_path / "cli.bin")
    # `import partkit` in the SConstruct is the core package, not the tool module.
    line = next(x for x in result.stdout.splitlines() if x.startswith("core package:"))
    assert line.endswith(os.path.join("core", "partkit", "__init__.py")), line


def test_noop_rebuild_regenerates_nothing(project: Path) -> None:
    assert scons(project).returncode == 0
    table = project / "build" / "partitions.bin"
    before = table.stat().st_mtime_ns
    again = scons(project)
    assert again.returncode == 0
    assert "partkit: generating" not in again.stdout
    assert "is up to date" in again.stdout
    assert scons(project, "--question").returncode == 0
    assert table.stat().st_mtime_ns == before


def test_csv_edit_and_option_change_regenerate(project: Path) -> None:
    assert scons(project).returncode == 0
    table = project / "build" / "partitions.bin"
    first = table.read_bytes()

    edited = CSV.replace("storage,  data, spiffs,  ,        0x100000,",
                         "storage,  data, fat,     ,        0x80000,")
    (project / "partitions.csv").write_text(edited)
    result = scons(project)
    assert "partkit: generating build/partitions.bin" in result.stdout
    assert table.read_bytes() == oracle_table(edited) != first

    # An option is part of the build signature: a new flash size reruns the builder.
    assert scons(project, "--question").returncode == 0
    assert scons(project, "--question", "FLASH_SIZE=8MB").returncode != 0
    result = scons(project, "FLASH_SIZE=8MB")
    assert "partkit: generating build/partitions.bin" in result.stdout


def test_option_value_reaches_the_core(project: Path) -> None:
    result = scons(project, "FLASH_SIZE=1MB")
    assert result.returncode != 0
    # storage ends at 0x140000, past 1MB; the message names the CSV line of the row.
    assert "partitions.csv:5:" in result.stderr
    assert "does not fit in the flash size 1MB" in result.stderr
    assert not (project / "build" / "partitions.bin").exists()


def test_csv_error_fails_with_file_and_line(project: Path) -> None:
    (project / "partitions.csv").write_text(CSV.replace("0x10000, 0x30000", "0x10800, 0x30000"))
    result = scons(project)
    assert result.returncode != 0
    assert "scons: *** [build/partitions.bin] partitions.csv:4:" in result.stderr
    assert "aligned" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_app_that_fits_exactly_passes(project: Path) -> None:
    app_of_size(project, SLOT, name="app.bin")
    result = scons(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0x0 bytes (0%) free" in result.stdout
    stamp = project / "app.bin.partitions.partkit-check"
    assert "check OK" in stamp.read_text()
    # Nothing changed: the check is up to date too.
    assert "partkit: checking" not in scons(project).stdout


def test_app_too_big_fails_naming_slot_and_overflow(project: Path) -> None:
    # ESP images grow in 16-byte steps: this is the smallest real overflow.
    app_of_size(project, SLOT + 16, name="app.bin")
    result = scons(project)
    assert result.returncode != 0
    assert "scons: *** [app.bin.partitions.partkit-check]" in result.stderr
    assert "Part 'factory' 0/0 @ 0x10000 size 0x30000 (overflow 0x10)" in result.stderr
    assert not (project / "app.bin.partitions.partkit-check").exists()
    # Still failing on the next run: a failed check leaves nothing up to date.
    assert scons(project).returncode != 0


def test_raw_app_one_byte_too_big_fails(project: Path) -> None:
    """A file that is not an ESP image is measured by its size: one byte over fails."""
    (project / "app.bin").write_bytes(b"\x00" * (SLOT + 1))
    result = scons(project)
    assert result.returncode != 0
    assert "Part 'factory' 0/0 @ 0x10000 size 0x30000 (overflow 0x1)" in result.stderr
    assert "not an ESP image" in result.stderr
    (project / "app.bin").write_bytes(b"\x00" * SLOT)
    assert scons(project).returncode == 0


def test_table_change_reruns_the_app_check(project: Path) -> None:
    app_of_size(project, SLOT, name="app.bin")
    assert scons(project).returncode == 0
    (project / "partitions.csv").write_text(CSV.replace("0x10000, 0x30000", "0x10000, 0x20000"))
    result = scons(project)
    assert result.returncode != 0
    assert "(overflow 0x10000)" in result.stderr


def test_bootloader_too_big_fails(project: Path) -> None:
    bootloader_of_size(project, 0x8000 + 16, name="bootloader.bin")
    result = scons(project)
    assert result.returncode != 0
    assert "scons: *** [bootloader.bin.partitions.partkit-check]" in result.stderr
    assert "too large for partition table offset 0x8000" in result.stderr
    # Moving the table up makes room (an option change reruns the check).
    result = scons(project, "OFFSET=0x9000")
    assert result.returncode != 0  # the CSV's fixed offsets now overlap the table
    assert "partitions.csv:" in result.stderr


def test_tool_from_scons_dir_of_the_package(tmp_path: Path) -> None:
    """``partkit --scons-dir`` names a directory that env.Tool("partkit") loads from."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    scons_dir = subprocess.run([sys.executable, "-m", "partkit", "--scons-dir"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "partitions.csv").write_text(CSV)
    (tmp_path / "SConstruct").write_text(
        "env = Environment(tools=[])\n"
        f"env.Tool('partkit', toolpath=[{scons_dir!r}])\n"
        "Default(env.PartitionTable('out.bin', 'partitions.csv'))\n")
    result = subprocess.run([require_tool("scons"), "-Q"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.bin").read_bytes() == oracle_table(CSV)


def test_scons_example_builds_real_firmware(tmp_path: Path) -> None:
    require_tool("riscv64-unknown-elf-gcc")
    _checkout(tmp_path)
    examples = tmp_path / "examples"
    for name in ("scons-esp32c3", "common"):
        shutil.copytree(ROOT / "examples" / name, examples / name)
    project = examples / "scons-esp32c3"
    result = scons(project)
    assert result.returncode == 0, result.stdout + result.stderr
    build = project / "build"
    assert (build / "firmware.bin").read_bytes()[0] == 0xE9  # ESP image magic
    assert (build / "partitions.bin").read_bytes() == oracle_table(
        (project / "partitions.csv").read_text())
    assert "check OK" in (build / "firmware.bin.partitions.partkit-check").read_text()
    assert "check OK" in (build / "bootloader.bin.partitions.partkit-check").read_text()

    too_big = scons(project, "PAD_BYTES=1100000")
    assert too_big.returncode != 0
    assert "scons: *** [build/firmware.bin.partitions.partkit-check]" in too_big.stderr
    assert "Part 'factory'" in too_big.stderr


# --- issue 9: the whole file fits; messages at the CSV line --------------------------------


def test_padded_app_past_its_slot_fails_at_the_csv_line(project: Path) -> None:
    """A real image that fits, padded with 0xFF past the slot: esptool would flash it all."""
    app = app_of_size(project, SLOT - 0x1000, name="app.bin")
    app.write_bytes(app.read_bytes() + b"\xff" * 0x1800)  # 0x800 past the slot
    result = scons(project)
    assert result.returncode != 0
    # The table is a PartitionTable target: the error points at its CSV row, not the binary.
    assert "scons: *** [app.bin.partitions.partkit-check] partitions.csv:4:1: error: " \
        "app partition is too small for binary app.bin size 0x30800" in result.stderr
    assert "Part 'factory' 0/0 @ 0x10000 size 0x30000 (overflow 0x800)" in result.stderr
    assert "the image itself is 0x2f000 bytes and would fit" in result.stderr
    assert "entry 3" not in result.stderr
    # Padded to exactly the slot: passes.
    app.write_bytes(app.read_bytes()[:SLOT])
    ok = scons(project)
    assert ok.returncode == 0, ok.stderr
    assert "6144 trailing bytes" not in ok.stdout and "4096 trailing bytes" in ok.stdout


def test_padded_bootloader_past_the_table_fails(project: Path) -> None:
    bl = bootloader_of_size(project, 0x6000, name="bootloader.bin")
    bl.write_bytes(bl.read_bytes() + b"\xff" * 0x2010)
    result = scons(project)
    assert result.returncode != 0
    assert "[bootloader.bin.partitions.partkit-check]" in result.stderr
    assert "Bootloader binary size 0x8010 bytes is too large" in result.stderr
    assert "it overflows by 16 bytes" in result.stderr


# --- issue 14: parallel builds, two tables, odd paths -------------------------------------

PARALLEL = """\
import os
env = Environment(ENV=os.environ, tools=["default", "partkit"],
                  toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")])
table = env.PartitionTable("build/partitions.bin", "partitions.csv")
small = env.PartitionTable("build/small.bin", "small.csv")

def noisy(target, source, env):
    for i in range(400):
        print("NOISE from", target[0], i)
    with open(str(target[0]), "w") as f:
        f.write("done")
    return 0

out = []
for i in range(6):
    out += env.Command(f"noise{i}.txt", [], noisy)
for i in range(6):
    out += env.CheckAppSize(f"app{i}.bin", table)
# One image against two tables: one stamp each.
out += env.CheckAppSize("app0.bin", small)
Default(out)
"""


def test_parallel_checks_capture_only_their_own_output(project: Path) -> None:
    (project / "SConstruct").write_text(PARALLEL)
    (project / "small.csv").write_text(CSV.replace("0x10000, 0x30000", "0x10000, 0x20000"))
    app = app_of_size(project, 0x18000, name="app0.bin")
    for i in range(1, 6):
        shutil.copy(app, project / f"app{i}.bin")
    result = scons(project, "-j8")
    assert result.returncode == 0, result.stdout + result.stderr
    for i in range(6):
        stamp = (project / f"app{i}.bin.partitions.partkit-check").read_text()
        assert stamp.startswith("table build/partitions.bin: 4 partitions"), stamp[:200]
        assert "NOISE" not in stamp
        assert "check OK" in stamp
    other = (project / "app0.bin.small.partkit-check").read_text()
    assert other.startswith("table build/small.bin") and "NOISE" not in other
    assert "0x8000 bytes (25%) free" in other
    assert result.stdout.count("NOISE") == 6 * 400  # nothing swallowed either


def test_same_table_name_twice_is_a_clear_error(project: Path) -> None:
    (project / "SConstruct").write_text(SCONSTRUCT.replace(
        "Default(table, checks)",
        "other = env.PartitionTable('other/partitions.bin', 'partitions.csv')\n"
        "checks += env.CheckAppSize('app.bin', other)\nDefault(table, checks)"))
    app_of_size(project, SLOT, name="app.bin")
    result = scons(project)
    assert result.returncode != 0
    assert "already checked against another table named partitions.bin" in result.stderr
    assert "Traceback" not in result.stderr


VARIANT = """\
import os
env = Environment(ENV=os.environ, tools=["default", "partkit"],
                  toolpath=[os.path.join(Dir("#").abspath, "..", "plugins", "scons")])
VariantDir("-build", "src", duplicate=1)
table = env.PartitionTable("-build/partitions.bin", "-build/partitions.csv")
Default(env.CheckAppSize("-build/app.bin", table))
"""


def test_dash_build_dir_and_variant_dir_copies(project: Path) -> None:
    (project / "SConstruct").write_text(VARIANT)
    src = project / "src"
    src.mkdir()
    (src / "partitions.csv").write_text(CSV)
    app_of_size(src, SLOT, name="app.bin")
    ok = scons(project)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "check OK" in (project / "-build" / "app.bin.partitions.partkit-check").read_text()
    # Too big: the message names the CSV the user edits, not the copy in -build/.
    app_of_size(src, SLOT + 16, name="app.bin")
    bad = scons(project)
    assert bad.returncode != 0
    assert os.path.join("src", "partitions.csv") + ":4:1: error:" in bad.stderr, bad.stderr
    assert "-build/partitions.csv" not in bad.stderr
    # A CSV error in the table builder points at the source as well.
    (src / "partitions.csv").write_text(CSV.replace("0x10000, 0x30000", "0x10800, 0x30000"))
    broken = scons(project)
    assert broken.returncode != 0
    assert os.path.join("src", "partitions.csv") + ":4:" in broken.stderr, broken.stderr
    assert "-build/partitions.csv" not in broken.stderr


def test_check_argv_runs_the_same_check_on_the_cli(project: Path) -> None:
    """check_argv (for logs / by hand) is a valid `partkit check` command line."""
    app_of_size(project, SLOT + 16, name="-app.bin")
    (project / "SConstruct").write_text(
        SCONSTRUCT.split("checks = []")[0]
        + "import subprocess, sys\n"
        "env['PARTKIT_EXTRA_SUBTYPES'] = ['data,mine,0x40', 'data,yours,0x41']\n"
        "env['PARTKIT_CHIP'] = 'esp32c3'\n"
        "argv = env.PartkitCheckArgv('app', '-app.bin', 'build/partitions.bin',\n"
        "                            'partitions.csv')\n"
        "print('ARGV', argv)\n"
        "Default(table)\n")
    assert scons(project).returncode == 0
    result = scons(project)
    line = next(x for x in result.stdout.splitlines() if x.startswith("ARGV "))
    import ast

    argv = ast.literal_eval(line[5:])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    r = subprocess.run([sys.executable, "-m", "partkit", *argv], cwd=project, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "partitions.csv:4:1: error: app partition is too small for binary -app.bin" \
        in r.stderr
