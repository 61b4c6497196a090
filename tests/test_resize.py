"""``partkit resize``: offsets stay where they are unless a grown partition must push the
ones behind it; the printed change is 'safe' exactly when nothing moved or shrank; the CSV
keeps its comments and layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partkit.cli import main
from partkit.common.errors import PartkitError
from partkit.diff.changes import compute_changes
from partkit.plan.csvedit import rewrite
from partkit.plan.new import Request, Want, plan, render_csv
from partkit.plan.resize import Edit, resize
from partkit.table import codec
from partkit.table.names import BOOTLOADER, BUILTIN_SUBTYPES, PARTITION_TABLE
from partkit.table.options import TableOptions

DATA = Path(__file__).parent / "data"
K = 1024
M = 1024 * K

TABLE = """\
# Our product's table -- keep this comment
# Name,   Type, SubType, Offset,   Size,    Flags
nvs,      data, nvs,     0x9000,   0x6000,
phy_init, data, phy,     0xf000,   0x1000,
factory,  app,  factory, 0x10000,  1M,

# user data follows
storage,  data, spiffs,  ,         256K,
"""


def load(text: str, flash: int | None = None) -> codec.Loaded:
    return codec.load_table(text.encode(), "t.csv", TableOptions(flash_size=flash))


@st.composite
def tables_and_edits(draw: st.DrawFn) -> tuple[str, str, int, int]:
    flash = draw(st.sampled_from([4 * M, 8 * M, 16 * M]))
    data = tuple(Want(f"d{i}", 0x40 + i, draw(st.integers(1, 32)) * 4 * K)
                 for i in range(draw(st.integers(0, 3))))
    table = plan(Request(flash_size=flash, ota=draw(st.sampled_from([0, 2, 3])),
                         app_size=draw(st.integers(1, 8)) * 64 * K,
                         coredump=draw(st.sampled_from([0, 64 * K])), data=data))
    text = render_csv(table, BUILTIN_SUBTYPES, "t")
    movable = [p for p in table if p.type == 0 or p.subtype >= 0x40]
    name = draw(st.sampled_from([p.name for p in movable]))
    size = draw(st.integers(1, 40)) * (64 * K if table.find_by_name(name).type == 0 else 4 * K)  # type: ignore[union-attr]
    return text, name, size, flash


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tables_and_edits())
def test_set_keeps_offsets_except_pushed(case: tuple[str, str, int, int]) -> None:
    text, name, size, flash = case
    old = load(text, flash).table
    try:
        new = resize(old, Edit(sizes=((name, size),)), flash)
    except PartkitError as exc:
        assert exc.diagnostics[0].message  # refused (pushes nvs/otadata/..., or too big)
        return
    target = old.find_by_name(name)
    assert target is not None
    for before, after in zip(old, new):
        assert before.name == after.name and before.type == after.type
        if before.name == name:
            assert after.size == size and after.offset == before.offset
            continue
        assert after.size == before.size
        if after.offset != before.offset:
            # Only partitions behind the grown one move, and only down, to stay clear.
            assert size > target.size and before.offset > target.offset
            assert after.offset > before.offset
            assert not (after.type == 1 and after.subtype in (0, 1, 2, 3))
    # No overlaps, fits the flash, and the rewritten CSV lays out to exactly this table.
    ordered = new.sorted_by_offset()
    assert all(a.end <= b.offset for a, b in zip(ordered, ordered[1:]))
    out = rewrite(text, old, new, "t.csv", TableOptions())
    assert load(out, flash).table == new
    for c in compute_changes(old, new):
        if c.has("moved"):
            assert c.old is not None and c.new is not None and c.new.offset > c.old.offset


APP_LAST = """\
# Name,   Type, SubType, Offset,   Size,  Flags
nvs,      data, nvs,     0x9000,   24K,
otadata,  data, ota,     0xf000,   8K,
ota_0,    app,  ota_0,   0x20000,  1M,
ota_1,    app,  ota_1,   ,         1M,
"""


def test_set_last_partition_into_free_space_is_safe(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(APP_LAST)
    assert main(["resize", str(path), "--set", "ota_1=1536K", "--flash-size", "4MB"]) == 0
    out = capsys.readouterr().out
    # partkit diff's report: only ota_1 changed, in place, and the verdict is SAFE.
    assert out.rstrip().endswith("diff SAFE"), out
    assert "rules broken" not in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  ota_")]
    assert rows[0][:2] == ["ota_0", "unchanged"]
    assert rows[1][:2] == ["ota_1", "resized"]
    assert rows[1][3] == rows[1][6] == "0x120000"  # same offset
    assert rows[1][4:] == ["0x100000", "app/ota_1", "0x120000", "0x180000"]
    text = path.read_text()
    # Only the size field changed; the empty offset and the columns stay.
    assert text == APP_LAST.replace("ota_1,    app,  ota_1,   ,         1M,",
                                    "ota_1,    app,  ota_1,   ,         1536K,")
    old, new = load(APP_LAST).table, load(text).table
    assert [p.offset for p in old] == [p.offset for p in new]


def test_data_partition_grown_in_place_keeps_comments(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(TABLE)
    assert main(["resize", str(path), "--set", "storage=1M", "--flash-size", "4MB"]) == 0
    out = capsys.readouterr().out
    # A file system at a new size does not mount its old contents: diff says so.
    assert "data-moved [storage]" in out and "diff UNSAFE" in out
    text = path.read_text()
    assert text == TABLE.replace("storage,  data, spiffs,  ,         256K,",
                                 "storage,  data, spiffs,  ,         1M,")
    old, new = load(TABLE).table, load(text).table
    assert [p.offset for p in old] == [p.offset for p in new]


def test_push_is_reported_and_pins_nothing_it_need_not(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(TABLE)
    assert main(["resize", str(path), "--set", "factory=1088K"]) == 0
    out = capsys.readouterr().out
    assert "storage   moved" in out and "0x120000" in out
    assert "diff UNSAFE" in out
    text = path.read_text()
    assert "factory,  app,  factory, 0x10000,  1088K," in text
    assert "storage,  data, spiffs,  ,         256K," in text  # still follows factory


def test_fill_and_bigger_flash_keep_every_offset(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(TABLE)
    assert main(["resize", str(path), "--flash-size", "8MB", "--fill", "storage"]) == 0
    assert "storage   resized" in capsys.readouterr().out
    old, new = load(TABLE).table, load(path.read_text(), 8 * M).table
    assert [p.offset for p in old] == [p.offset for p in new]
    storage = new.find_by_name("storage")
    assert storage is not None and storage.end == 8 * M


def test_fill_grows_to_the_next_partition() -> None:
    text = TABLE.replace("factory,  app,  factory, 0x10000,  1M,",
                         "factory,  app,  factory, 0x10000,  512K,").replace(
        "storage,  data, spiffs,  ,         256K,", "storage,  data, spiffs,  0x110000, 256K,")
    old = load(text).table
    new = resize(old, Edit(fill=("factory",)), None)
    assert new.find_by_name("factory").size == 1 * M  # type: ignore[union-attr]
    assert [p.offset for p in old] == [p.offset for p in new]


@pytest.mark.parametrize("argv, words", [
    (["--set", "nvs=64K"], ["would move 'phy_init' (phy)", "--allow-move"]),
    (["--set", "storage=4M", "--flash-size", "4MB"], ["does not fit the 4 MiB flash",
                                                      "past the end"]),
    (["--set", "storag=1M"], ["no partition named 'storag'", "did you mean 'storage'"]),
    (["--set", "storage=1001"], ["not a positive multiple of 4K"]),
    (["--fill", "storage"], ["flash size is unknown"]),
    (["--set", "storage"], ["is not NAME=SIZE"]),
    ([], ["nothing to do"]),
    (["--flash-size", "1MB"], ["does not fit"]),
])
def test_refusals_exit_2_and_leave_the_file(tmp_path, capsys, argv: list[str],  # type: ignore[no-untyped-def]
                                             words: list[str]) -> None:
    path = tmp_path / "p.csv"
    path.write_text(TABLE)
    assert main(["resize", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert path.read_text() == TABLE


def test_allow_move_moves_protected(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(TABLE)
    assert main(["resize", str(path), "--set", "nvs=24K", "--allow-move", "--dry-run"]) == 0
    assert "diff SAFE" in capsys.readouterr().out
    assert main(["resize", str(path), "--set", "nvs=28K", "--allow-move", "-o",
                 str(tmp_path / "out.csv")]) == 0
    out = capsys.readouterr().out
    assert "phy_init  moved" in out and "system-data [phy_init]" in out
    new = load((tmp_path / "out.csv").read_text()).table
    assert new.find_by_name("factory").offset == 0x20000  # type: ignore[union-attr]
    assert path.read_text() == TABLE  # -o leaves the input alone


def test_binary_input_needs_output(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    binary = tmp_path / "p.bin"
    binary.write_bytes(codec.encode(load(TABLE).table, TableOptions()))
    assert main(["resize", str(binary), "--set", "storage=512K"]) == 2
    assert "give -o" in capsys.readouterr().err
    out = tmp_path / "p.csv"
    assert main(["resize", str(binary), "--set", "storage=512K", "-o", str(out)]) == 0
    assert load(out.read_text()).table.find_by_name("storage").size == 512 * K  # type: ignore[union-attr]


@st.composite
def last_app_growth(draw: st.DrawFn) -> tuple[str, int, int]:
    """A table whose last partition is an app slot with free flash after it, and a size
    for that slot that stays inside the free space."""
    flash = draw(st.sampled_from([4 * M, 8 * M, 16 * M]))
    slots = draw(st.sampled_from([0, 2, 3]))
    unit = 64 * K
    app = draw(st.integers(1, 8)) * unit
    table = plan(Request(flash_size=flash, ota=slots, app_size=app, otadata=slots == 0,
                         nvs=16 * K))  # nvs and otadata then fit before the first app
    text = render_csv(table, BUILTIN_SUBTYPES, "t")
    last = table.sorted_by_offset()[-1]
    room = flash - last.end
    assert last.type == 0 and room > 0
    grow = draw(st.integers(1, room // 0x1000)) * 0x1000
    return text, last.size + grow, flash


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=last_app_growth())
def test_set_last_app_into_free_space_diff_is_safe(case: tuple[str, int, int]) -> None:
    from partkit.diff import DiffOptions, diff_tables, side_of

    text, size, flash = case
    old = load(text, flash).table
    last = old.sorted_by_offset()[-1]
    new = resize(old, Edit(sizes=((last.name, size),)), flash)
    assert [p.offset for p in new] == [p.offset for p in old]
    report = diff_tables(side_of(old), side_of(new), DiffOptions(flash_size=flash))
    assert report.safe, report.broken_codes


# --- every --set/--fill of a call is one request (issue 24, items 1 and 2) ---------------

ARDUINO_LFS = """\
# Name,   Type, SubType,  Offset,   Size,     Flags
nvs,      data, nvs,      0x9000,   0x5000,
otadata,  data, ota,      0xe000,   0x2000,
ota_0,    app,  ota_0,    0x10000,  0x140000,
ota_1,    app,  ota_1,    0x150000, 0x140000,
littlefs, data, littlefs, 0x290000, 0x160000,
coredump, data, coredump, 0x3F0000, 0x10000,
"""
GROW_BOTH = ["--set", "ota_0=0x1C0000", "--set", "ota_1=0x1C0000", "--set", "littlefs=0x60000"]


@pytest.mark.parametrize("allow_move", [False, True])
def test_sets_are_laid_out_together(tmp_path, capsys, allow_move: bool) -> None:  # type: ignore[no-untyped-def]
    """Growing both slots and shrinking the file system fits exactly with coredump where it
    is; applied one --set at a time it was refused, or with --allow-move put coredump past
    the 4 MB flash."""
    path = tmp_path / "p.csv"
    path.write_text(ARDUINO_LFS)
    argv = ["resize", str(path), *GROW_BOTH, "--flash-size", "4MB"]
    assert main(argv + (["--allow-move"] if allow_move else [])) == 0, capsys.readouterr().err
    new = load(path.read_text(), 4 * M).table
    assert [(p.name, p.offset, p.size) for p in new] == [
        ("nvs", 0x9000, 0x5000), ("otadata", 0xE000, 0x2000),
        ("ota_0", 0x10000, 0x1C0000), ("ota_1", 0x1D0000, 0x1C0000),
        ("littlefs", 0x390000, 0x60000), ("coredump", 0x3F0000, 0x10000)]


def test_allow_move_never_places_past_the_flash(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.csv"
    path.write_text(ARDUINO_LFS)
    assert main(["resize", str(path), "--set", "ota_0=0x1C0000", "--set", "ota_1=0x1C0000",
                 "--allow-move", "--flash-size", "4MB"]) == 2
    err = capsys.readouterr().err
    assert "does not fit the 4 MiB flash" in err and "past the end" in err, err
    assert path.read_text() == ARDUINO_LFS


def test_fill_blocked_names_the_blocker_and_offers_the_move(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Arduino's default table on 8 MB: coredump right after spiffs. The fill used to print
    'diff SAFE' and exit 0 having done nothing."""
    path = tmp_path / "p.csv"
    text = (DATA / "builtin" / "arduino-esp32" / "default.csv").read_text()
    path.write_text(text)
    assert main(["resize", str(path), "--flash-size", "8MB", "--fill", "spiffs"]) == 2
    err = capsys.readouterr().err
    assert "cannot grow: 'coredump' at 0x3f0000 directly follows it" in err, err
    assert "--allow-move, 'coredump' to 0x7f0000" in err and "0x560000" in err, err
    assert path.read_text() == text
    assert main(["resize", str(path), "--flash-size", "8MB", "--fill", "spiffs",
                 "--allow-move"]) == 0
    out = capsys.readouterr().out
    assert "coredump  moved" in out, out
    new = load(path.read_text(), 8 * M).table
    spiffs, coredump = new.find_by_name("spiffs"), new.find_by_name("coredump")
    assert spiffs is not None and coredump is not None
    assert (spiffs.offset, spiffs.size) == (0x290000, 0x560000)
    assert (coredump.offset, coredump.end) == (0x7F0000, 8 * M)


def test_fill_at_the_flash_end_is_refused() -> None:
    old = load(TABLE).table
    full = resize(old, Edit(fill=("storage",)), 4 * M)
    with pytest.raises(PartkitError, match="cannot grow: it already ends at the flash end"):
        resize(full, Edit(fill=("storage",)), 4 * M)


def _corpus() -> list[tuple[str, codec.Loaded, int]]:
    out = []
    for path in sorted((DATA / "conformance" / "real").rglob("*.csv")):
        try:
            loaded = codec.load_table(path.read_bytes(), str(path), TableOptions())
        except PartkitError:
            continue
        rows = [p for p in loaded.table if p.type not in (BOOTLOADER, PARTITION_TABLE)]
        if not rows:
            continue
        end = max(p.end for p in rows)
        flash = next(s for s in (1 << n for n in range(20, 28)) if s >= end)
        out.append((path.name, loaded, flash))
    return out


CORPUS = _corpus()


@st.composite
def corpus_requests(draw: st.DrawFn) -> tuple[codec.Loaded, int, Edit]:
    _, loaded, flash = draw(st.sampled_from(CORPUS))
    rows = [p for p in loaded.table if p.type not in (BOOTLOADER, PARTITION_TABLE)]
    names = draw(st.lists(st.sampled_from([p.name for p in rows]), min_size=1, max_size=4,
                          unique=True))
    fills = names[-1:] if draw(st.integers(0, 2)) == 0 else []
    sets = tuple((n, draw(st.integers(1, 0x400)) * 0x1000) for n in names if n not in fills)
    flash = draw(st.sampled_from([flash, flash * 2]))
    return loaded, flash, Edit(sizes=sets, fill=tuple(fills), allow_move=draw(st.booleans()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=corpus_requests())
def test_corpus_requests_keep_untouched_offsets_and_stay_inside_the_flash(
        case: tuple[codec.Loaded, int, Edit]) -> None:
    loaded, flash, edit = case
    old = loaded.table
    try:
        new = resize(old, edit, flash)
    except PartkitError as exc:
        assert exc.diagnostics and all(d.message for d in exc.diagnostics)  # with a reason
        return
    sizes = dict(edit.sizes)
    moved_by_fill = {p.name for p in old if edit.allow_move and edit.fill}
    in_front: dict[str, int] = {}  # each partition's predecessor end in the new layout
    ordered = [p for p in new.sorted_by_offset() if p.type not in (BOOTLOADER, PARTITION_TABLE)]
    for a, b in zip(ordered, ordered[1:]):
        assert a.end <= b.offset, (a, b)  # no overlaps
        in_front[b.name] = a.end
    for before, after in zip(old, new):
        assert before.name == after.name and before.type == after.type
        if after.type in (BOOTLOADER, PARTITION_TABLE):
            assert after == before
            continue
        assert after.end <= flash, after  # nothing past the flash
        if before.name in sizes:
            assert after.size == sizes[before.name]
        elif before.name in edit.fill:
            assert after.size > before.size  # a fill that cannot grow is refused
        else:
            assert after.size == before.size
        if after.offset != before.offset:
            # Untouched offsets stay: a partition moves only when what is now in front of
            # it reaches into its old place, or a --fill --allow-move packs it at the end.
            assert after.offset > before.offset
            assert (in_front.get(after.name, 0) > before.offset
                    or after.name in moved_by_fill), (before, after)
            if not edit.allow_move:
                assert not (after.type == 1 and after.subtype in (0, 1, 2, 3)), after
