"""``partkit image check`` / ``set-boot`` / ``otadata`` on images that ``image create``
assembled from real ESP32-C3 images (Debian's RISC-V gcc + esptool elf2image), each broken
in exactly one way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.cli import main
from partkit.common.errors import PartkitError

pytestmark = pytest.mark.firmware

TABLE = (Path(__file__).parent / "data" / "conformance" / "real" / "espressif__esp-idf"
         / "components__partition_table__partitions_two_ota.csv")
# nvs 0x9000, otadata 0xd000, phy_init 0xf000, factory 0x10000, ota_0 0x110000,
# ota_1 0x210000 (1 MiB each): ESP-IDF's own two-OTA layout.
OTADATA = 0xD000


class Firmware:
    def __init__(self, root: Path) -> None:
        from support.firmware import build_app, build_bootloader

        self.root = root
        self.app = build_app(root, 20000, name="app.bin")
        bootloader = build_bootloader(root, name="bl.bin")
        self.bootloader = self.elf2image(bootloader.with_suffix(".elf"), "bl-4mb.bin",
                                         "--flash-size", "4MB")
        self.bootloader_2mb = self.elf2image(bootloader.with_suffix(".elf"), "bl-2mb.bin",
                                             "--flash-size", "2MB")

    def elf2image(self, elf: Path, name: str, *args: str, chip: str = "esp32c3") -> Path:
        out = self.root / name
        subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "elf2image", *args,
                        "-o", str(out), str(elf)], check=True, capture_output=True)
        return out

    def image(self, name: str, *args: str, bootloader: Path | None = None,
              slot: int | None = 0) -> Path:
        out = self.root / name
        argv = ["image", "create", str(out), "--table", str(TABLE), "--flash-size", "4MB",
                "--bootloader", str(bootloader or self.bootloader), "--no-flash-args",
                "--app", f"factory={self.app}", "--app", f"ota_0={self.app}", *args]
        if slot is not None:
            argv += ["--ota-slot", str(slot)]
        assert main(argv) == 0
        return out


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Firmware:
    from support.tools import require_tool

    require_tool("riscv64-unknown-elf-gcc")
    return Firmware(tmp_path_factory.mktemp("fw"))


def check(capsys: pytest.CaptureFixture[str], image: Path, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["image", "check", str(image), "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def codes(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"] if f["severity"] == "error"}


def test_good_image_passes(fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    image = fw.image("good.bin")
    code, report = check(capsys, image)
    assert code == 0, report["findings"]
    assert report["ok"] is True and report["chip"] == "esp32c3"
    assert report["header_flash_size"] == 4 << 20
    states = {p["name"]: (p["status"], p["contents"]["kind"]) for p in report["partitions"]}
    assert states["factory"] == ("ok", "app") and states["ota_1"] == ("ok", "erased")
    capsys.readouterr()
    assert main(["image", "check", str(image)]) == 0
    assert "image check OK: 0 errors" in capsys.readouterr().out


def test_esptool_merge_bin(fw: Firmware, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """merge-bin writes no padding and patches the bootloader header's flash size."""
    table = tmp_path / "pt.bin"
    assert main(["gen", "-q", str(TABLE), str(table)]) == 0
    bootloader = fw.root / "bl.bin"  # elf2image's default header: 1MB
    for size, want in (("4MB", set()), ("2MB", {"flash-size"})):
        merged = tmp_path / f"merged-{size}.bin"
        subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "merge-bin",
                        "-o", str(merged), "--flash-size", size, "0x0", str(bootloader),
                        "0x8000", str(table), "0x10000", str(fw.app)],
                       check=True, capture_output=True)
        code, report = check(capsys, merged)
        assert codes(report) == want and code == (1 if want else 0)
        status = {p["name"]: p["status"] for p in report["partitions"]}
        assert status["factory"] == "ok" and status["ota_1"] == "absent"


def test_wrong_chip_app(fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    c6 = fw.elf2image(fw.app.with_suffix(".elf"), "app-c6.bin", chip="esp32c6")
    # image create refuses it; --force places it, as esptool merge-bin would without asking
    code, report = check(capsys, fw.image("c6.bin", "--app", f"ota_1={c6}", "--force"))
    assert code == 1 and codes(report) == {"app-chip"}
    finding = next(f for f in report["findings"] if f["code"] == "app-chip")
    assert finding["partition"] == "ota_1" and "esp32c6" in finding["message"]


def test_bootloader_header_flash_size_too_small(fw: Firmware,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # image create sets the header to the image's 4MB, as esptool merge-bin does ...
    image = fw.image("2mb.bin", bootloader=fw.bootloader_2mb)
    code, report = check(capsys, image)
    assert code == 0 and report["header_flash_size"] == 4 << 20
    # ... a bootloader written as is (esptool --flash-size keep) keeps its 2MB.
    with image.open("r+b") as f:
        f.write(fw.bootloader_2mb.read_bytes())
    code, report = check(capsys, image)
    assert code == 1 and codes(report) == {"flash-size"}
    assert report["header_flash_size"] == 2 << 20
    assert "0x310000" in report["findings"][0]["message"]  # where the partitions end


def test_corrupted_otadata_crc(fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    image = fw.image("crc.bin")
    with open(image, "r+b") as f:  # the CRC is the last word of the 32-byte record
        f.seek(OTADATA + 28)
        f.write(b"\x00\x00\x00\x00")
    code, report = check(capsys, image)
    assert code == 1 and codes(report) == {"otadata-crc"}
    capsys.readouterr()
    assert main(["image", "otadata", str(image)]) == 0
    out = capsys.readouterr().out
    assert "sector 0: ota_seq 1 -> ignored" in out and "BAD (expected 0x" in out
    assert "boots: factory (no valid record: the boot default)" in out


def test_otadata_points_at_erased_slot(fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(capsys, fw.image("erased-target.bin", slot=1))
    assert code == 1 and codes(report) == {"otadata-target"}
    assert "ota_1" in report["findings"][0]["message"]


def test_app_overflowing_into_next_partition(fw: Firmware,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from support.firmware import app_of_size

    big = app_of_size(fw.root, 0x100000 + 0x2000, name="big.bin")  # 8 KiB over factory
    image = fw.image("overflow.bin", "--app", f"ota_1={fw.app}", slot=1)
    with open(image, "r+b") as f:  # as a merge-bin of an oversized app would place it
        f.seek(0x10000)
        f.write(big.read_bytes())
    code, report = check(capsys, image)
    assert code == 1 and codes(report) == {"app-overflow"}
    finding = report["findings"][0]
    assert finding["partition"] == "factory" and "into 'ota_0'" in finding["message"]
    assert {p["name"]: p["status"] for p in report["partitions"]}["ota_0"] == "error"


def test_data_contents_must_match_subtype(fw: Firmware, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from littlefs import LittleFS
    except ImportError:
        from support.tools import missing

        missing("littlefs-python (test extra) is not installed")
    fs = LittleFS(block_size=4096, block_count=4)
    with fs.open("wifi.txt", "w") as f:
        f.write("ssid")
    blob = tmp_path / "lfs.bin"
    blob.write_bytes(bytes(fs.context.buffer))
    code, report = check(capsys, fw.image("lfs-in-nvs.bin", "--data", f"nvs={blob}"))
    assert code == 1 and codes(report) == {"data-contents"}
    assert "LittleFS" in report["findings"][0]["message"]


def test_nvs_contents(fw: Firmware, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import esp_idf_nvs_partition_gen  # noqa: F401
    except ImportError:
        from support.tools import missing

        missing("esp-idf-nvs-partition-gen (test extra) is not installed")
    csv = tmp_path / "nvs.csv"
    csv.write_text("key,type,encoding,value\nwifi,namespace,,\nssid,data,string,home\n")
    nvs = tmp_path / "nvs.bin"
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(csv),
                    str(nvs), "0x4000", "--outdir", str(tmp_path)], check=True,
                   capture_output=True)
    code, report = check(capsys, fw.image("nvs.bin", "--data", f"nvs={nvs}"))
    assert code == 0, report["findings"]
    # NVS recycles pages: a used partition may have a blank page 0 and live pages after it
    recycled = tmp_path / "recycled.bin"
    recycled.write_bytes(b"\xff" * 0x1000 + nvs.read_bytes()[:0x3000])
    code, report = check(capsys, fw.image("recycled.bin", "--data", f"nvs={recycled}"))
    assert code == 0, report["findings"]
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff" * 0x1000 + bytes(range(256)) * 16)
    code, report = check(capsys, fw.image("garbage.bin", "--data", f"nvs={garbage}"))
    assert code == 1 and codes(report) == {"data-contents"}


def test_missing_bootloader(fw: Firmware, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "nobl.bin"
    assert main(["image", "create", str(image), "--table", str(TABLE), "--flash-size", "4MB",
                 "--chip", "esp32c3", "--app", f"factory={fw.app}", "--no-flash-args"]) == 0
    code, report = check(capsys, image, "--chip", "esp32c3")
    assert code == 1 and codes(report) == {"bootloader-missing"}


def test_set_boot_selects_slot_crash_safe(fw: Firmware, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from partkit.flash.imagefile import journal_path

    image = fw.image("setboot.bin", "--app", f"ota_1={fw.app}", slot=0)

    def boots(path: Path) -> tuple[object, object]:
        capsys.readouterr()
        assert main(["image", "otadata", str(path), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        return doc["boots"], doc["active_slot"]

    assert boots(image) == ("ota_0", 0)
    assert main(["image", "set-boot", str(image), "--slot", "ota_1"]) == 0
    assert boots(image) == ("ota_1", 1)
    assert not Path(journal_path(str(image))).exists()
    assert check(capsys, image)[0] == 0
    # a copy: the original keeps its selection
    copy = tmp_path / "copy.bin"
    assert main(["image", "set-boot", str(image), "--slot", "0", "-o", str(copy)]) == 0
    assert boots(copy) == ("ota_0", 0) and boots(image) == ("ota_1", 1)
    # blank otadata boots the factory app
    assert main(["image", "set-boot", str(image), "--slot", "factory"]) == 0
    assert boots(image) == ("factory", None)


def test_set_boot_refuses_slot_without_app(fw: Firmware,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    image = fw.image("refuse.bin", slot=0)
    before = image.read_bytes()
    capsys.readouterr()
    assert main(["image", "set-boot", str(image), "--slot", "ota_1"]) == 1
    assert "holds no valid app" in capsys.readouterr().err
    assert image.read_bytes() == before
    assert main(["image", "set-boot", str(image), "--slot", "ota_7"]) == 2
    assert main(["image", "set-boot", str(image), "--slot", "ota_1", "--force"]) == 0
    code, report = check(capsys, image)
    assert code == 1 and codes(report) == {"otadata-target"}


REGIONS = ((0x0, 0x40), (0x8000, 0x8100), (OTADATA, OTADATA + 0x20),
           (OTADATA + 0x1000, OTADATA + 0x1020), (0x10000, 0x10040))


def test_damaged_images_never_traceback(fw: Firmware, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Byte damage where the checks look (headers, table, otadata): exit 0 or 1 and a
    report, never an exception; the image is only read."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    good = fw.image("fuzz-base.bin").read_bytes()
    damaged = tmp_path / "damaged.bin"

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(REGIONS), st.integers(0, 0xFF),
                              st.integers(0, 0xFF)), min_size=1, max_size=6))
    def run(edits: list[tuple[tuple[int, int], int, int]]) -> None:
        data = bytearray(good)
        for (start, end), at, value in edits:
            data[start + at % (end - start)] = value
        damaged.write_bytes(data)
        capsys.readouterr()
        code = main(["image", "check", str(damaged), "--json"])
        out, _ = capsys.readouterr()
        assert code in (0, 1)
        assert json.loads(out)["ok"] is (code == 0)
        assert damaged.read_bytes() == data

    run()


# --- one flash size for every command: the bootloader header's (issue 25) ---------------------


def _diff(capsys: pytest.CaptureFixture[str], old: Path, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["diff", str(old), str(TABLE), "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def test_diff_and_image_check_take_the_flash_size_from_the_bootloader_header(
        fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    # A 4 MB file whose bootloader says 2MB: the bootloader refuses partitions past 2 MB.
    image = fw.image("2mb-diff.bin", bootloader=fw.bootloader_2mb)
    with image.open("r+b") as f:  # written as is (esptool --flash-size keep): 2MB header
        f.write(fw.bootloader_2mb.read_bytes())
    assert image.stat().st_size == 4 << 20
    code, report = check(capsys, image)
    assert code == 1 and codes(report) == {"flash-size"}
    code, report = _diff(capsys, image)
    assert code == 1 and "flash-size" in {v["code"] for v in report["violations"]}
    assert report["flash_size"] == 2 << 20
    assert report["flash_size_source"] == f"the bootloader header at {image}@0x0, byte 3"


def test_an_unpadded_image_is_not_judged_by_its_length(
        fw: Firmware, capsys: pytest.CaptureFixture[str]) -> None:
    # esptool merge-bin without padding: the file ends after the last image written.
    image = fw.image("short.bin")
    with open(image, "r+b") as f:
        f.truncate(0x120000)
    code, report = check(capsys, image)
    assert "flash-size" not in codes(report)
    code, report = _diff(capsys, image)
    assert code == 0, report["violations"]
    assert report["flash_size"] == 4 << 20


def test_open_table_says_where_the_flash_size_came_from(fw: Firmware) -> None:
    from partkit.device.ops import ALL_READERS
    from partkit.table.options import table_options
    from partkit.table.source import open_table

    image = fw.image("origin.bin", bootloader=fw.bootloader_2mb)
    with image.open("r+b") as f:  # the bootloader as built for 2MB, header unchanged
        f.write(fw.bootloader_2mb.read_bytes())
    header = f"the bootloader header at {image}@0x0, byte 3"
    found = open_table(str(image), table_options(), ALL_READERS)
    assert (found.kind, found.flash_size, found.flash_size_origin) == ("image", 2 << 20, header)
    # The header is what the bootloader checks against: it beats --flash-size.
    given = open_table(str(image), table_options(flash_size=4 << 20), ALL_READERS)
    assert (given.flash_size, given.flash_size_origin) == (2 << 20, header)
    csv = open_table(str(TABLE), table_options(flash_size=4 << 20))
    assert (csv.kind, csv.flash_size, csv.flash_size_origin) == ("csv", 4 << 20, "--flash-size")
    assert open_table(str(TABLE), table_options()).flash_size is None
    # Without an image reader a file is a CSV or binary table, as 'partkit show' reads it.
    with pytest.raises(PartkitError):
        open_table(str(image), table_options())
    # No bootloader: a full dump's length (a power of two) counts, an unpadded one's not.
    blank = fw.root / "no-bootloader.bin"
    data = bytearray(image.read_bytes())
    data[0:0x8000] = b"\xff" * 0x8000
    blank.write_bytes(bytes(data))
    full = open_table(str(blank), table_options(), ALL_READERS)
    assert (full.flash_size, full.flash_size_origin) == (4 << 20, f"the length of {blank}")
    blank.write_bytes(bytes(data[:0x120000]))
    short = open_table(str(blank), table_options(), ALL_READERS)
    assert (short.flash_size, short.flash_size_origin) == (None, None)
