"""Every output partkit generates is byte-identical across runs, directories, time zones
and clock times (build caches, release checksums and CI artefacts compare bytes); FAT
timestamps follow SOURCE_DATE_EPOCH."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from partkit.cli import main

pytest.importorskip("littlefs", reason="littlefs-python (partkit[fs]) missing")
pytest.importorskip("pyfatfs", reason="pyfatfs missing")
pytest.importorskip("esp_idf_nvs_partition_gen", reason="esp-idf-nvs-partition-gen missing")

INPUTS = {
    "files/index.html": b"<h1>partkit</h1>\n",
    "files/www/app.js": bytes(range(256)) * 20,
    "nvs.csv": b"key,type,encoding,value\nwifi,namespace,,\nssid,data,string,home\n",
}


def produce(root: Path, tz: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Run every generating command in ``root`` (relative paths, as a build does) and
    return what they wrote."""
    root.mkdir(parents=True)
    for name, data in INPUTS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    monkeypatch.chdir(root)
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    commands = [
        ["new", "--flash-size", "4MB", "--ota", "2", "--app-size", "1M", "--fs",
         "fat:ffat=256K", "--fs", "littlefs=rest", "-o", "p.csv"],
        ["gen", "-q", "p.csv", "pt.bin", "--header", "p.h"],
        ["gen", "-q", "pt.bin", "back.csv"],
        ["data", "build", "p.csv", "--partition", "nvs", "--from", "nvs.csv", "-o", "nvs.bin",
         "--depfile", "nvs.d"],
        ["data", "build", "p.csv", "--partition", "littlefs", "--from", "files", "-o",
         "lfs.bin"],
        ["data", "build", "p.csv", "--partition", "ffat", "--from", "files", "-o", "fat.bin"],
        ["image", "create", "flash.bin", "--table", "p.csv", "--flash-size", "4MB",
         "--chip", "esp32c3", "--ota-slot", "0", "--data", "nvs=nvs.bin", "--data",
         "littlefs=lfs.bin", "--data", "ffat=fat.bin"],
        ["map", "p.csv", "--flash-size", "4MB", "-o", "map.svg"],
        ["show", "p.csv", "--flash-size", "4MB", "-o", "show.txt"],
        ["show", "p.csv", "--json", "-o", "show.json"],
        ["resize", "p.csv", "--set", "littlefs=512K", "--flash-size", "4MB",
         "-o", "resized.csv"],
    ]
    for argv in commands:
        assert main(argv) in (0, 1), argv
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and str(p.relative_to(root)) not in INPUTS}


def test_outputs_are_identical_across_runs_directories_and_clocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = produce(tmp_path / "a", "UTC", monkeypatch)
    time.sleep(2.1)  # FAT times have 2 s steps: a clock-dependent byte would change
    second = produce(tmp_path / "elsewhere" / "b", "Asia/Tokyo", monkeypatch)
    assert {"p.csv", "pt.bin", "p.h", "nvs.bin", "lfs.bin", "fat.bin", "flash.bin",
            "flash_args", "flasher_args.json", "map.svg", "show.txt", "show.json",
            "resized.csv", "nvs.d"} <= set(first), sorted(first)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert differ == []


def test_fat_timestamps_follow_source_date_epoch(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pyfatfs.PyFatFS import PyFatFS

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outputs = produce(tmp_path / "sde", "UTC", monkeypatch)
    fat = tmp_path / "sde" / "fat.bin"
    fs = PyFatFS(str(fat))
    try:
        assert fs.getinfo("/index.html", namespaces=["details"]).modified.timestamp() \
            == 1700000000
    finally:
        fs.close()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    plain = produce(tmp_path / "plain", "UTC", monkeypatch)
    assert outputs["fat.bin"] != plain["fat.bin"]  # the time is in the image ...
    assert outputs["lfs.bin"] == plain["lfs.bin"]  # ... LittleFS stores none
