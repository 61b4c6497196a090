"""``partkit diff``: one test per rule on pairs made from real tables of the corpus.

Each case is a pair that breaks exactly one rule (exit 1, the rule named) and the same
change made safe (a fixed NEW, the right --running, or --erase): exit 0. The same pairs
are then read as CSV, binary and flash image in every combination: same verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.diff import RULES

REAL = Path(__file__).parent / "data" / "conformance" / "real"
IDF = "espressif__esp-idf/components__partition_table__"
WLED = "Aircoookie__WLED/tools__WLED_ESP32_4MB_1MB_FS.csv"
WLED_256K = "Aircoookie__WLED/tools__WLED_ESP32_4MB_256KB_FS.csv"
WLED_NO_OTA = "Aircoookie__WLED/tools__WLED_ESP32_2MB_noOTA.csv"
TWO_OTA_LARGE = IDF + "partitions_two_ota_large.csv"
TWO_OTA = IDF + "partitions_two_ota.csv"
SINGLE = IDF + "partitions_singleapp.csv"
JADE = "Blockstream__Jade/partitions.csv"
STORAGE = "espressif__arduino-esp32/tools__partitions__storage_4MB_noota.csv"


def real(rel: str) -> str:
    return (REAL / rel).read_text()


def edit(rel: str, rows: dict[str, str | None] | None = None, add: tuple[str, ...] = ()) -> str:
    """A real table with rows replaced (by partition name), removed (None) or added."""
    rows = rows or {}
    out = []
    for line in real(rel).splitlines():
        name = line.split(",")[0].strip()
        if not line.lstrip().startswith("#") and name in rows:
            replacement = rows[name]
            if replacement is not None:
                out.append(replacement)
        else:
            out.append(line)
    for row in add:  # keep offsets increasing down the file; rows without one go last
        at = _offset(row)
        index = len(out) if not at else next(
            (i for i, line in enumerate(out) if _offset(line) > at), len(out))
        out.insert(index, row)
    return "\n".join(out) + "\n"


def _offset(row: str) -> int:
    cells = row.split(",")
    if row.lstrip().startswith("#") or len(cells) < 4 or not cells[3].strip():
        return 0
    return int(cells[3].strip(), 0)


class Case:
    def __init__(self, rule: str, old: str, new: str, broken: tuple[str, ...],
                 fixed_new: str | None = None, fixed: tuple[str, ...] | None = None) -> None:
        self.rule, self.old, self.new, self.broken = rule, old, new, broken
        self.fixed_new = fixed_new if fixed_new is not None else new
        self.fixed = fixed if fixed is not None else broken


CASES = [
    Case("table-offset", real(JADE), real(JADE), ("--old-offset", "0x8000", "--new-offset",
                                                  "0x9000"),
         fixed=("--old-offset", "0x8000", "--new-offset", "0x8000")),
    # spiffs at the end grown past a 4 MB flash (erased on purpose)
    Case("flash-size", real(WLED), edit(WLED, {"spiffs": "spiffs, data, spiffs, 0x310000, "
                                               "0x1F0000,"}),
         ("--erase", "spiffs", "--flash-size", "4MB"),
         fixed=("--erase", "spiffs", "--flash-size", "8MB")),
    # app slots grown into the free space: ota_1 moves, which only the non-running slot may
    Case("running-slot-moved", real(TWO_OTA_LARGE),
         edit(TWO_OTA_LARGE, {"ota_0": "ota_0, app, ota_0, , 1900K,",
                              "ota_1": "ota_1, app, ota_1, , 1900K,"}),
         ("--running", "ota_1"), fixed=("--running", "ota_0")),
    Case("running-slot-shrunk", real(TWO_OTA_LARGE),
         edit(TWO_OTA_LARGE, {"ota_0": "ota_0, app, ota_0, , 1600K,",
                              "ota_1": "ota_1, app, ota_1, 0x1D0000, 1700K,"}),
         ("--running", "ota_0"), fixed=("--running", "ota_1")),
    # dropping OTA (WLED's 2 MB layout) loses the second slot
    Case("ota-slots", real(WLED), real(WLED_NO_OTA), ("--running", "app0", "--erase", "spiffs"),
         fixed_new=real(WLED_256K)),
    Case("otadata", real(TWO_OTA),
         edit(TWO_OTA, {"otadata": "phy_init, data, phy, 0xd000, 0x1000,",
                        "phy_init": "otadata, data, ota, 0xe000, 0x2000,"}),
         ("--running", "factory", "--erase", "phy_init"),
         fixed_new=edit(TWO_OTA, {"phy_init": None},
                        ("phy_init, data, phy, 0x310000, 0x1000,",))),
    # ota_0 and ota_1 trade subtypes: the running offset is another slot index in NEW
    Case("ota-reindex", real(TWO_OTA),
         edit(TWO_OTA, {"ota_0": "ota_0, app, ota_1, , 1M,", "ota_1": "ota_1, app, ota_0, , 1M,"}),
         ("--running", "ota_0"), fixed=("--running", "factory")),
    # nvs renamed: nvs_flash_init() finds it by that label
    Case("nvs-label", real(TWO_OTA),
         edit(TWO_OTA, {"nvs": "nvs_data, data, nvs, , 0x4000,"}), ("--running", "ota_0"),
         fixed_new=edit(TWO_OTA, {"phy_init": "phy_data, data, phy, , 0x1000,"})),
    Case("boot-default", real(STORAGE),
         edit(STORAGE, {"spiffs": "spiffs, data, spiffs, 0x310000, 0x70000,"},
              ("factory, app, factory, 0x380000, 0x70000,",)),
         ("--erase", "spiffs"),
         fixed_new=edit(STORAGE, {"spiffs": "spiffs, data, spiffs, 0x310000, 0x70000,"},
                        ("app1, app, ota_1, 0x380000, 0x70000,",))),
    # factory-to-OTA conversion (ESP-IDF's own two layouts): nvs shrinks for otadata
    Case("system-data", real(SINGLE), real(TWO_OTA), (), fixed=("--erase", "nvs")),
    # moved nvs
    Case("system-data", real(STORAGE),
         edit(STORAGE, {"nvs": None, "spiffs": "spiffs, data, spiffs, 0x210000, 0xE0000,"},
              ("nvs, data, nvs, 0x2F0000, 0x100000,",)),
         ("--erase", "spiffs"), fixed=("--erase", "spiffs", "nvs")),
    # resized fs at the end
    Case("data-moved", real(WLED), edit(WLED, {"spiffs": "spiffs, data, spiffs, 0x310000, "
                                               "0x80000,"}),
         ("--running", "app0"), fixed=("--running", "app0", "--erase", "spiffs")),
    Case("readonly", real(JADE),
         edit(JADE, {"otadata": "otadata, data, ota, 0xE000, 0x2000, encrypted:readonly"}), (),
         fixed_new=edit(JADE, {"nvs_key": "nvs_key, data, nvs_keys, , 4K, encrypted:readonly"})),
    Case("secure-alignment", real(TWO_OTA_LARGE), real(TWO_OTA_LARGE), ("--secure", "v1"),
         fixed=("--secure", "v2")),
    Case("type-changed", real(WLED), edit(WLED, {"spiffs": "spiffs, data, littlefs, 0x310000,"
                                                 " 0xF0000,"}),
         ("--running", "app0"), fixed=("--running", "app0", "--erase", "spiffs")),
    Case("encryption-changed", real(WLED), edit(WLED, {"spiffs": "spiffs, data, spiffs, "
                                                       "0x310000, 0xF0000, encrypted"}),
         ("--running", "app0"), fixed=("--running", "app0", "--erase", "spiffs")),
]


def _diff(tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str | Path, new: str | Path,
          *args: str) -> tuple[int, dict[str, object]]:
    paths = []
    for name, table in (("old.csv", old), ("new.csv", new)):
        if isinstance(table, Path):
            paths.append(str(table))
        else:
            path = tmp_path / name
            path.write_text(table)
            paths.append(str(path))
    capsys.readouterr()
    code = main(["diff", *paths, "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 2:
        return code, {"stderr": err}
    return code, json.loads(out)


def _codes(report: dict[str, object]) -> set[str]:
    violations = report["violations"]
    assert isinstance(violations, list)
    return {v["code"] for v in violations}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_rule_broken_then_safe(case: Case, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _diff(tmp_path, capsys, case.old, case.new, *case.broken)
    assert code == 1, report
    assert _codes(report) == {case.rule}
    assert report["safe"] is False
    code, report = _diff(tmp_path, capsys, case.old, case.fixed_new, *case.fixed)
    assert code == 0, report
    assert report["violations"] == [] and report["safe"] is True


def test_every_rule_has_a_case() -> None:
    tested = {c.rule for c in CASES} | {"md5-row", "app-does-not-fit"}  # below
    assert tested == {r.code for r in RULES}


def test_md5_row_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "jade.csv"
    csv.write_text(real(JADE))
    with_md5, without = tmp_path / "md5.bin", tmp_path / "nomd5.bin"
    assert main(["gen", "-q", str(csv), str(with_md5)]) == 0
    assert main(["gen", "-q", "--disable-md5sum", str(csv), str(without)]) == 0
    code, report = _diff(tmp_path, capsys, with_md5, without)
    assert code == 1 and _codes(report) == {"md5-row"}
    code, report = _diff(tmp_path, capsys, without, with_md5)
    assert code == 1 and _codes(report) == {"md5-row"}
    code, _ = _diff(tmp_path, capsys, with_md5, with_md5)
    assert code == 0
    # a CSV side says what it will be encoded with
    code, _ = _diff(tmp_path, capsys, without, csv, "--disable-md5sum")
    assert code == 0


@pytest.mark.firmware
def test_app_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import app_of_size

    app = app_of_size(tmp_path, 0x100000 + 0x10000)  # a real image 64 KiB over 1 MiB
    code, report = _diff(tmp_path, capsys, real(SINGLE), real(SINGLE), "--app", str(app))
    assert code == 1 and _codes(report) == {"app-does-not-fit"}
    violations = report["violations"]
    assert isinstance(violations, list) and violations[0]["partitions"] == ["factory"]
    # the factory slot grows in place (ESP-IDF's large single-app layout): it fits
    large = real(IDF + "partitions_singleapp_large.csv")
    code, report = _diff(tmp_path, capsys, real(SINGLE), large, "--app", str(app))
    assert code == 0, report
    code, report = _diff(tmp_path, capsys, real(SINGLE), real(SINGLE), "--app", str(app),
                         "--chip", "esp32")
    assert code == 2 and "esp32c3" in str(report["stderr"])


# --- the scenarios users hit, with their plans ----------------------------------------------


def _plan(report: dict[str, object]) -> list[tuple[str, object]]:
    plan = report["plan"]
    assert isinstance(plan, list)
    return [(s["action"], s["partition"]) for s in plan]


def test_added_coredump_in_free_space_is_safe(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    new = edit(TWO_OTA_LARGE, add=("coredump, data, coredump, 0x380000, 64K,",))
    code, report = _diff(tmp_path, capsys, real(TWO_OTA_LARGE), new)
    assert code == 0, report
    assert _plan(report) == [("write-table", None), ("erase", "coredump")]
    changes = report["changes"]
    assert isinstance(changes, list)
    assert [c["changes"] for c in changes if c["name"] == "coredump"] == [["added"]]


def test_app_slots_grown_while_running_ota_0(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.rule == "running-slot-moved")
    code, report = _diff(tmp_path, capsys, case.old, case.new, "--running", "ota_0")
    assert code == 0
    # the otadata on the devices selects ota_0 under both tables: nothing to rewrite
    assert _plan(report) == [("write-table", None), ("erase", "ota_1")]
    plan = report["plan"]
    assert isinstance(plan, list) and plan[0]["reboot"] and not plan[1]["reboot"]
    # not knowing which slot runs, ota_1 may be the one: moving it is unsafe
    code, report = _diff(tmp_path, capsys, case.old, case.new)
    assert code == 1 and _codes(report) == {"running-slot-moved"}


def test_factory_to_ota_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _diff(tmp_path, capsys, real(SINGLE), real(TWO_OTA), "--erase", "nvs")
    assert code == 0
    # otadata is blanked while OLD's bootloader ignores it, before NEW points at it
    assert _plan(report) == [("write-otadata", "otadata"), ("write-table", None),
                             ("erase", "nvs"), ("erase", "ota_0"), ("erase", "ota_1")]
    plan = report["plan"]
    assert isinstance(plan, list) and "blank otadata" in plan[0]["note"]


def test_moved_data_same_size_is_copied(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.rule == "system-data" and "0x2F0000" in c.new)
    code, report = _diff(tmp_path, capsys, case.old, case.new, *case.broken)
    assert code == 1  # nvs moves: unsafe, but the plan says how to carry it over
    plan = report["plan"]
    assert isinstance(plan, list)
    assert plan[0]["action"] == "copy" and plan[0]["partition"] == "nvs"
    assert (plan[0]["source"], plan[0]["offset"]) == (0x210000, 0x2F0000)
    assert ("erase", "spiffs") in _plan(report)  # --erase spiffs: erased, not copied


def test_text_report_names_rule_reason_and_plan(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.csv").write_text(real(WLED))
    (tmp_path / "new.csv").write_text(real(WLED_256K))
    code = main(["diff", str(tmp_path / "old.csv"), str(tmp_path / "new.csv"),
                 "--running", "app0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "spiffs    moved,resized" in out
    assert "coredump  added" in out
    assert "data-moved [spiffs]" in out and "why: " in out and "--erase spiffs" in out
    assert "migration plan:" in out and "write-table" in out
    assert "restart the app before it uses a partition again" in out and "not covered:" in out
    assert out.rstrip().endswith("diff UNSAFE (data-moved)")


def test_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _diff(tmp_path, capsys, real(WLED),
                         edit(WLED, {"app1": "app1, app, ota_1, 0x180000, 0x180000,"}))
    assert code == 2 and "overlaps" in str(report["stderr"])
    code, report = _diff(tmp_path, capsys, real(WLED), real(WLED), "--running", "app9")
    assert code == 2 and "did you mean 'app" in str(report["stderr"])
    code, report = _diff(tmp_path, capsys, real(WLED), real(WLED), "--erase", "spifs")
    assert code == 2 and "did you mean 'spiffs'" in str(report["stderr"])
    code, report = _diff(tmp_path, capsys, tmp_path / "missing.csv", real(WLED))
    assert code == 2 and "no such file" in str(report["stderr"])
    many = edit(WLED, add=tuple(f"p{i}, data, 0x99, , 0x1000," for i in range(95)))
    code, report = _diff(tmp_path, capsys, real(WLED), many)
    assert code == 2 and "at most 94 fit" in str(report["stderr"])


# --- CSV, binary and flash images give the same verdicts -------------------------------------


def _as(form: str, csv_text: str, path: Path, offset: str) -> Path:
    csv = path.with_suffix(".csv")
    csv.write_text(csv_text)
    if form == "csv":
        return csv
    if form == "binary":
        out = path.with_suffix(".bin")
        assert main(["gen", "-q", "--offset", offset, str(csv), str(out)]) == 0
        return out
    out = path.with_suffix(".img")
    assert main(["image", "create", str(out), "--table", str(csv), "--offset", offset,
                 "--flash-size", "4MB", "--no-flash-args"]) == 0
    return out


FORMS = ("csv", "binary", "image")
INTERCHANGE = [c for c in CASES if c.rule in ("table-offset", "running-slot-moved",
                                              "system-data", "data-moved", "type-changed")]


@pytest.mark.parametrize("case", INTERCHANGE, ids=[c.rule for c in INTERCHANGE])
def test_same_verdicts_from_csv_binary_and_images(case: Case, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def offset(args: tuple[str, ...], which: str) -> str:
        return args[args.index(which) + 1] if which in args else "0x8000"

    verdicts = set()
    for old_form in FORMS:
        for new_form in FORMS:
            for new_text, args, want in ((case.new, case.broken, 1),
                                         (case.fixed_new, case.fixed, 0)):
                old = _as(old_form, case.old, tmp_path / f"old-{old_form}",
                          offset(args, "--old-offset"))
                new = _as(new_form, new_text, tmp_path / f"new-{new_form}-{want}",
                          offset(args, "--new-offset"))
                code, report = _diff(tmp_path, capsys, old, new, *args)
                assert code == want, (old_form, new_form, report)
                verdicts.add((want, tuple(sorted(_codes(report)))))
                changes = report["changes"]
                assert isinstance(changes, list)
    assert verdicts == {(1, (case.rule,)), (0, ())}


def test_table_read_out_of_an_image_alike_by_diff_and_image(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    # One reader (flash.tablearea) for both commands: same refusals, same empty-table reading.
    good = _as("image", real(WLED), tmp_path / "wled", "0x8000")
    short = tmp_path / "short.img"
    short.write_bytes(good.read_bytes()[:0x8400])
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\xff" * 0x10000)
    for bad, words in ((short, "truncated image: 33792 bytes (0x8400), too short to hold the "
                        "partition table at 0x8000 (needs 0x8c00)"),
                       (blank, "no partition table at 0x8000 (found bytes ff ff ff ff, "
                        "expected aa 50)")):
        code, report = _diff(tmp_path, capsys, bad, good)
        assert code == 2 and words in str(report["stderr"]), report
        assert main(["image", "info", str(bad)]) == 2
        assert words in capsys.readouterr().err
    # gen writes an empty table as the MD5 row alone: a table, with no partitions.
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("# no partitions\n")
    assert main(["gen", "-q", str(empty_csv), str(tmp_path / "empty.bin")]) == 0
    image = bytearray(blank.read_bytes())
    table = (tmp_path / "empty.bin").read_bytes()
    image[0x8000:0x8000 + len(table)] = table
    empty = tmp_path / "empty.img"
    empty.write_bytes(bytes(image))
    code, report = _diff(tmp_path, capsys, empty, empty)
    assert code == 0 and report["changes"] == [], report
    assert main(["image", "info", str(empty), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["partitions"] == []
