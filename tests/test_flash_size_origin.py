"""check, show and map say where the flash size they judge against came from, by the one
rule diff uses (issue 25): the bootloader header of an image or dump, else --flash-size,
else a full dump's length; a build's own setting for a build directory. A --flash-size the
header overrules is named in a warning, not dropped silently.

Images are real: ``esptool merge-bin`` of real ESP32-C3 bootloader and app images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main

pytestmark = pytest.mark.firmware

# Ends at 0x320000: past 2MB, within 4MB.
CSV = ("nvs,      data, nvs,     0x9000,   0x6000,\n"
       "phy_init, data, phy,     0xf000,   0x1000,\n"
       "factory,  app,  factory, 0x10000,  1M,\n"
       "storage,  data, fat,     0x110000, 0x210000,\n")


def _merge(out: Path, flash_size: str, *pairs: tuple[int, Path], pad: bool = False,
           chip: str = "esp32c3") -> Path:
    args = [x for offset, path in pairs for x in (hex(offset), str(path))]
    extra = ["--pad-to-size", "4MB"] if pad else []
    subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "merge-bin", "-o",
                    str(out), "--flash-size", flash_size, *extra, *args], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from support.firmware import build_app, build_bootloader

    root = tmp_path_factory.mktemp("origin")
    csv = root / "t.csv"
    csv.write_text(CSV)
    table = root / "t.bin"
    assert main(["gen", "-q", str(csv), str(table)]) == 0
    bl = build_bootloader(root, name="bl.bin")
    app = build_app(root, 2000, name="app.bin")
    return {
        "csv": csv,
        # merge-bin writes --flash-size into the bootloader header (byte 3): 2MB here
        "image": _merge(root / "merged.bin", "2MB", (0, bl), (0x8000, table), (0x10000, app)),
        # no bootloader: nothing but the dump's length says how big the flash is
        "dump": _merge(root / "dump.bin", "4MB", (0x8000, table), (0x10000, app), pad=True),
    }


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    _, out, _ = _run(capsys, "check", *argv, "--json")
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def _diff_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    _, out, _ = _run(capsys, "diff", *argv, "--json")
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def _codes(doc: dict[str, object]) -> set[str]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return {f["code"] for f in findings}


def test_a_table_file_names_flash_size_option(files: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    csv = str(files["csv"])
    code, out, _ = _run(capsys, "check", csv, "--flash-size", "4MB")
    assert code == 0
    assert ("flash 0x400000 bytes (4MB, from --flash-size): partitions end at 0x320000"
            in out)
    doc = _check_json(capsys, csv, "--flash-size", "4MB")
    assert doc["flash"]["flash_size_origin"] == "--flash-size"  # type: ignore[index]
    _, out, _ = _run(capsys, "show", csv, "--flash-size", "4MB")
    assert "flash 4 MiB (from --flash-size): partitions end at 0x320000" in out
    _, out, _ = _run(capsys, "show", csv, "--flash-size", "4MB", "--json")
    assert json.loads(out)["flash_size_origin"] == "--flash-size"
    svg = files["csv"].parent / "t.svg"
    assert main(["map", csv, "--flash-size", "4MB", "-o", str(svg)]) == 0
    assert "4M flash (from --flash-size)" in svg.read_text()
    # without a size there is no origin to name
    _, out, _ = _run(capsys, "show", csv)
    assert "from" not in out.splitlines()[-1] and "partitions end at 0x320000" in out


def test_the_bootloader_header_overrules_flash_size_and_says_so(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    image = str(files["image"])
    header = f"the bootloader header at {image}@0x0, byte 3"
    code, out, err = _run(capsys, "check", image, "--flash-size", "4MB")
    assert code == 1  # judged at 2MB: 'storage' ends past it
    assert f"flash 0x200000 bytes (2MB, from {header}): partitions end at 0x320000" in out
    assert f"--flash-size 4MB is not used: {header} says 2MB (0x200000)" in err
    assert "2nd-stage bootloader checks the partitions against its own header" in err
    assert f"beyond the 2MB flash (0x200000 bytes, from {header})" in err
    doc = _check_json(capsys, image, "--flash-size", "4MB")
    flash = doc["flash"]
    assert isinstance(flash, dict)
    assert flash["flash_size"] == 0x200000 and flash["flash_size_origin"] == header
    assert {"flash-size-overruled", "table-exceeds-flash"} <= _codes(doc)
    # -q keeps to the verdict line
    _, out, _ = _run(capsys, "check", image, "--flash-size", "4MB", "-q")
    assert out == "check FAILED: 1 error, 1 warning\n"
    # show and map name the header too, and warn the same way
    _, out, err = _run(capsys, "show", image, "--flash-size", "4MB")
    assert f"flash 2 MiB (from {header}): partitions end at 0x320000" in out
    assert "--flash-size 4MB is not used" in err
    svg = files["image"].parent / "m.svg"
    code, _, err = _run(capsys, "map", image, "--flash-size", "4MB", "-o", str(svg))
    assert code == 1
    assert f"the flash at 0x200000 (from {header})" in err
    assert "--flash-size 4MB is not used" in err
    assert f"2M flash (from {header})" in svg.read_text()
    # diff judges OLD by the same rule, and warns the same way
    code, _, err = _run(capsys, "diff", image, str(files["csv"]), "--flash-size", "4MB")
    assert f"--flash-size 4MB is not used: {header} says 2MB" in err
    # the same size given, or none: nothing to warn about
    for extra in ((), ("--flash-size", "2MB")):
        doc = _check_json(capsys, image, *extra)
        assert "flash-size-overruled" not in _codes(doc)
        assert "is not used" not in _run(capsys, "diff", image, str(files["csv"]), *extra)[2]
        assert doc["flash"]["flash_size_origin"] == header  # type: ignore[index]


def test_a_full_dump_without_a_bootloader_is_its_length(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(files["dump"])
    code, out, err = _run(capsys, "check", dump)
    assert code == 0, err
    assert (f"flash 0x400000 bytes (4MB, from the length of {dump}): partitions end at "
            "0x320000") in out
    _, out, _ = _run(capsys, "show", dump)
    assert f"flash 4 MiB (from the length of {dump}):" in out


@pytest.mark.parametrize(("name", "extra"), [
    ("csv", ("--flash-size", "4MB")),
    ("image", ("--flash-size", "4MB")),
    ("image", ()),
    ("dump", ()),
])
def test_diff_and_check_name_the_same_origin(files: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str],
                                             name: str, extra: tuple[str, ...]) -> None:
    spec = str(files[name])
    checked = _check_json(capsys, spec, *extra)["flash"]
    diffed = _diff_json(capsys, spec, str(files["csv"]), *extra)
    assert isinstance(checked, dict)
    assert checked["flash_size_origin"] is not None
    assert (checked["flash_size"], checked["flash_size_origin"]) == (
        diffed["flash_size"], diffed["flash_size_source"])


def test_a_build_dir_names_the_file_that_set_the_size(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.idf_build import make_idf_build

    fx = make_idf_build(tmp_path)
    doc = _check_json(capsys, "--idf-build-dir", str(fx.build))
    assert doc["flash"]["flash_size_origin"] == "the build's flasher_args.json"  # type: ignore[index]
    _, out, _ = _run(capsys, "check", "--idf-build-dir", str(fx.build))
    assert "flash 0x400000 bytes (4MB, from the build's flasher_args.json)" in out
    (fx.build / "flasher_args.json").unlink()
    doc = _check_json(capsys, "--idf-build-dir", str(fx.build))
    assert doc["flash"]["flash_size_origin"] == "the build's flash_args"  # type: ignore[index]
    _, out, _ = _run(capsys, "show", "--idf-build-dir", str(fx.build))
    assert "flash 4 MiB (from the build's flash_args):" in out


@pytest.mark.parametrize("code", [0x8, 0xF])
def test_an_unknown_size_code_is_the_2mb_the_bootloader_takes(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        code: int) -> None:
    # ESP-IDF's update_flash_config (bootloader_flash_config_<chip>.c, every chip) takes
    # 2MB for a size code it does not know: a table past 2MB is rejected at boot.
    image = tmp_path / "odd.bin"
    data = bytearray(files["image"].read_bytes())
    data[3] = code << 4 | data[3] & 0xF
    image.write_bytes(bytes(data))
    origin = (f"the bootloader header at {image}@0x0, byte 3 (unknown size code 0x{code:x}, "
              "taken as 2MB)")
    for extra in ((), ("--flash-size", "4MB")):
        doc = _check_json(capsys, str(image), *extra)
        flash = doc["flash"]
        assert isinstance(flash, dict)
        assert (flash["flash_size"], flash["flash_size_origin"]) == (0x200000, origin)
        assert "table-exceeds-flash" in _codes(doc)
        assert ("flash-size-overruled" in _codes(doc)) == bool(extra)
        diffed = _diff_json(capsys, str(image), str(files["csv"]), *extra)
        assert (diffed["flash_size"], diffed["flash_size_source"]) == (0x200000, origin)


@pytest.fixture(scope="module")
def esp32_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ESP32 images (the ROM loads the bootloader from 0x1000): one correct (2MB header
    at 0x1000) but with an ESP32-C3 bootloader saying 4MB left in sector 0, and one with
    its bootloader wrongly at 0x0 (esptool then leaves its 1MB header alone)."""
    from support.firmware import build_bootloader, build_chip_app

    root = tmp_path_factory.mktemp("esp32")
    csv = root / "t.csv"
    csv.write_text(CSV)
    table = root / "t.bin"
    assert main(["gen", "-q", str(csv), str(table)]) == 0
    bl = build_bootloader(root, name="bl.bin")
    app = build_chip_app(root, "esp32", name="app.bin")

    def merge(out: str, chip: str, size: str, *pairs: tuple[int, Path]) -> Path:
        return _merge(root / out, size, *pairs, chip=chip)

    good = merge("good.bin", "esp32", "2MB", (0x1000, bl), (0x8000, table), (0x10000, app))
    c3 = merge("c3.bin", "esp32c3", "4MB", (0, bl))
    both = root / "both.bin"
    data = bytearray(good.read_bytes())
    data[:c3.stat().st_size] = c3.read_bytes()
    both.write_bytes(bytes(data))
    at0 = merge("at0.bin", "esp32", "2MB", (0, bl), (0x8000, table), (0x10000, app))
    return {"both": both, "at0": at0, "csv": csv}


def test_the_chip_says_where_the_bootloader_header_is(
        esp32_images: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    both, at0 = str(esp32_images["both"]), str(esp32_images["at0"])
    # without --chip the first header found is all partkit has
    flash = _check_json(capsys, both)["flash"]
    assert flash["flash_size_origin"] == f"the bootloader header at {both}@0x0, byte 3"  # type: ignore[index]
    # an ESP32's bootloader reads its header at 0x1000, whatever sector 0 holds
    header = f"the bootloader header at {both}@0x1000, byte 3"
    for option in (("--chip", "esp32"), ("--bootloader-offset", "0x1000")):
        doc = _check_json(capsys, both, *option)
        flash = doc["flash"]
        assert isinstance(flash, dict)
        assert (flash["flash_size"], flash["flash_size_origin"]) == (0x200000, header)
        assert "table-exceeds-flash" in _codes(doc)
    diffed = _diff_json(capsys, both, str(esp32_images["csv"]), "--chip", "esp32")
    assert (diffed["flash_size"], diffed["flash_size_source"]) == (0x200000, header)
    _, out, _ = _run(capsys, "show", both, "--chip", "esp32")
    assert f"flash 2 MiB (from {header}):" in out
    # a bootloader at 0x0 is not what an ESP32 runs: --flash-size decides, nothing overruled
    doc = _check_json(capsys, at0, "--chip", "esp32", "--flash-size", "4MB")
    flash = doc["flash"]
    assert isinstance(flash, dict)
    assert (flash["flash_size"], flash["flash_size_origin"]) == (0x400000, "--flash-size")
    assert not {"flash-size-overruled", "table-exceeds-flash"} & _codes(doc)


def test_the_hint_grows_the_flash_where_its_size_came_from(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.idf_build import DEFAULT_CSV, make_idf_build

    bigger = "use a bigger --flash-size"
    # --flash-size cannot grow what the bootloader header says
    image = str(files["image"])
    for argv in (("check", image, "--flash-size", "4MB"),
                 ("map", image, "-o", str(tmp_path / "m.svg"))):
        code, _, err = _run(capsys, *argv)
        assert code == 1
        assert "write the bootloader with that size" in err and bigger not in err
    # nor the build's own flash size (check takes it from the build, not the command line)
    fx = make_idf_build(tmp_path, flash_size="1MB",
                        csv=DEFAULT_CSV.replace("0x70000, 0x10000", "0x70000, 0x100000"))
    for argv in (("check", "--idf-build-dir", str(fx.build)),
                 ("map", "--idf-build-dir", str(fx.build), "-o", str(tmp_path / "b.svg"))):
        code, _, err = _run(capsys, *argv)
        assert code == 1
        assert "set the project's flash size (CONFIG_ESPTOOLPY_FLASHSIZE)" in err
        assert bigger not in err
    # where --flash-size is the answer, the hint says so
    code, _, err = _run(capsys, "check", str(files["csv"]), "--flash-size", "2MB")
    assert code == 1 and bigger in err


def test_show_exits_alike_whatever_overruled_flash_size_is_given(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # the header says 2MB and the table ends at 0x320000: show draws it, whatever
    # --flash-size it was told and did not use (it validated against that size before)
    image = str(files["image"])
    for extra in ((), ("--flash-size", "1MB"), ("--flash-size", "2MB"),
                  ("--flash-size", "4MB")):
        code, out, err = _run(capsys, "show", image, *extra)
        assert code == 0, err
        assert ("partitions end at 0x320000, 1.1 MiB (1179648 bytes) past the end of the "
                "flash") in out
    # a size the command line set is validated as gen does
    code, _, err = _run(capsys, "show", str(files["csv"]), "--flash-size", "2MB")
    assert code == 2 and "does not fit in the flash size 2MB" in err


def test_a_header_bigger_than_flash_size_says_the_app_would_stop(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # ESP-IDF's flash init (esp_flash_spi_init.c) refuses a chip smaller than the header
    probe = ("on a 1MB chip the app stops at start-up ('Detected size(1024k) smaller than "
             "the size in the binary image header(2048k). Probe failed.')")
    code, _, err = _run(capsys, "check", str(files["image"]), "--flash-size", "1MB")
    assert "--flash-size 1MB is not used" in err and probe in err
    # the verdict is a promise: an app that cannot start on the chip is a failed check
    assert code == 1 and "error: --flash-size 1MB" in err
    doc = _check_json(capsys, str(files["image"]), "--flash-size", "1MB")
    assert "flash-smaller-than-header" in _codes(doc)
    code, _, err = _run(capsys, "check", str(files["image"]), "--flash-size", "4MB")
    assert "--flash-size 4MB is not used" in err and "Probe failed" not in err
    assert "warning: --flash-size 4MB" in err  # (exit 1: its table ends past 2MB)
    # image check, the other verdict on a whole image, says the same
    code, _, err = _run(capsys, "image", "check", str(files["image"]), "--flash-size", "1MB")
    assert code == 1 and "Detected size(1024k) smaller than the size in the binary image " \
        "header(2048k)" in err, err
    # show and map only draw: the same words, as a warning
    code, _, err = _run(capsys, "show", str(files["image"]), "--flash-size", "1MB")
    assert code == 0 and probe in err and "warning:" in err


def test_image_check_reads_an_unknown_size_code_as_the_bootloader_does(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: image check had its own size-code table, read 0x9 as no size at all and
    passed a table that ends past the 2MB the bootloader takes."""
    import hashlib

    from partkit.flash.appimage import read_image_file

    image = tmp_path / "odd.bin"
    data = bytearray(files["image"].read_bytes())
    bootloader = tmp_path / "bl.bin"
    bootloader.write_bytes(bytes(data[:0x8000]))
    end = read_image_file(str(bootloader)).measured_size - 32  # where its SHA-256 sits
    assert hashlib.sha256(data[:end]).digest() == data[end:end + 32]
    data[3] = 0x9 << 4 | data[3] & 0xF
    data[end:end + 32] = hashlib.sha256(data[:end]).digest()  # as esptool rewrites it
    image.write_bytes(bytes(data))
    code, out, err = _run(capsys, "image", "check", str(image), "--json")
    doc = json.loads(out)
    assert doc["header_flash_size"] == 2 << 20
    assert code == 1 and "(unknown size code 0x9, taken as 2MB)" in err, err
    # the text's bootloader line says it too (before: a bare '2MB', the code hidden)
    code, out, _ = _run(capsys, "image", "check", str(image))
    assert ("header flash size 2MB (unknown size code 0x9, taken as 2MB)\n" in out
            and code == 1), out


def test_an_image_nothing_gives_the_size_of_says_what_was_not_checked(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import build_app

    # an unpadded merge-bin output without a bootloader: nothing says how big the flash is
    table = tmp_path / "t.bin"
    assert main(["gen", "-q", str(files["csv"]), str(table)]) == 0
    app = build_app(tmp_path, 2000, name="app.bin")
    image = _merge(tmp_path / "bare.bin", "4MB", (0x8000, table), (0x10000, app))
    # (the app says the chip: an ESP32-C3, whose ROM loads the bootloader from 0x0)
    note = (f"not checked: the partitions against the flash size: {image} has no bootloader "
            "header at 0x0 and is no full dump (a power of two from 1MB); give --flash-size\n")
    no_bootloader = (f"not checked: the bootloader: {image} holds none at 0x0, where the "
                     "esp32c3 ROM loads it; which app boots assumes one is flashed (partkit "
                     "image check IMAGE says what a device would do with this image alone)\n")
    for quiet in ((), ("-q",)):
        code, out, _ = _run(capsys, "check", str(image), *quiet)
        assert code == 0
        assert out.endswith("check OK (partly): 0 errors, 0 warnings\n" + note
                            + no_bootloader)
    doc = _check_json(capsys, str(image))
    assert doc["complete"] is False and doc["not_checked"] == [
        note[len("not checked: "):-1], no_bootloader[len("not checked: "):-1]]
    code, out, _ = _run(capsys, "check", str(files["image"]), "-q")
    assert "not checked" not in out  # its header says, and it has a bootloader
    assert _check_json(capsys, str(files["image"]))["complete"] is True
    code, out, _ = _run(capsys, "check", str(image), "--flash-size", "4MB")
    assert out.endswith("check OK (partly): 0 errors, 0 warnings\n" + no_bootloader)


def test_an_image_with_a_broken_bootloader_says_the_boot_was_not_checked(
        tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a magic byte at the chip's offset counted as a bootloader, so an image whose
    bootloader the ROM refuses (nothing boots) was 'check OK' and complete, while
    'partkit image check' failed it (bootloader-invalid)."""
    broken = tmp_path / "broken.bin"
    data = bytearray(files["image"].read_bytes())
    data[1] = 0xFF  # 255 segments: the ROM and read_image refuse the header
    broken.write_bytes(bytes(data))
    # (its 2MB header is too small for CSV's partitions: FAILED either way)
    code, out, _ = _run(capsys, "check", str(broken), "-q")
    assert code == 1 and out.startswith("check FAILED: 1 error, 0 warnings\n")
    assert f"not checked: the bootloader: the one at {broken}@0x0 is broken (" in out
    assert "255 segments" in out
    doc = _check_json(capsys, str(broken))
    assert doc["complete"] is False and doc["exit_code"] == 1
    import jsonschema  # a failed image report with not_checked is a report the schema takes

    jsonschema.validate(doc, json.loads((Path(__file__).parents[1] / "docs"
                                         / "check-report.schema.json").read_text()))
    assert main(["image", "check", str(broken)]) == 1  # the same bootloader, one verdict


def test_a_bootloader_where_its_own_chip_never_loads_it_says_no_flash_size(
        tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Before: an ESP32-C3 dump with its (C3) bootloader at the ESP32's 0x1000 was judged by
    that header's size while the same report said no bootloader sits at 0x0, where the C3
    ROM loads it: a size no device ever reads. A header counts where its own chip id's ROM
    loads it; this dump is judged by its length, as a dump without a bootloader is."""
    from support.firmware import build_app, build_bootloader

    table = tmp_path / "t.bin"
    assert main(["gen", "-q", str(files["csv"]), str(table)]) == 0
    bl = build_bootloader(tmp_path, name="bl.bin")  # its header says 1MB (code 0)
    app = build_app(tmp_path, 2000, name="app.bin")
    dump = _merge(tmp_path / "moved.bin", "4MB", (0x1000, bl), (0x8000, table),
                  (0x10000, app), pad=True)
    code, out, _ = _run(capsys, "check", str(dump))
    assert f"(4MB, from the length of {dump})" in out and "@0x1000" not in out, out
    assert code == 0 and f"the bootloader: {dump} holds none at 0x0" in out
    code, out, _ = _run(capsys, "show", str(dump))
    assert code == 0 and f"from the length of {dump}" in out and "@0x1000" not in out


def test_a_dump_cut_inside_its_table_is_truncated_for_every_command(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(files["image"].read_bytes()[:0x8100])  # bootloader, half the table
    said = f"{cut}: error: truncated image: 33024 bytes (0x8100), too short to hold the partition"
    for argv in (("check", str(cut), "--flash-size", "4MB"), ("show", str(cut)),
                 ("map", str(cut), "-o", str(tmp_path / "m.svg")),
                 ("diff", str(cut), str(files["csv"]))):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and err.startswith(said), argv
