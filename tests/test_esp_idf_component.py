"""The partkit ESP-IDF component inside a real ``idf.py build`` (linux target), on a
MINIMAL_BUILD project like ESP-IDF's own examples; and on esp32c3, partkit's bootloader
message before ESP-IDF's.

Runs only where ``IDF_PATH`` names an ESP-IDF checkout whose Python environment is active
(``. $IDF_PATH/export.sh``) with partkit installed in it; CI can never have one (ESP-IDF
is neither on PyPI nor in Debian), so there these tests skip and say why. The esp32c3 test
also needs ``riscv32-esp-elf-gcc`` on PATH. Tried with ESP-IDF v6.0.2 (docs/esp-idf.md);
what CI can check without ESP-IDF is in test_idf_recorded.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from partkit.common.resources import resource_dir

pytestmark = [pytest.mark.esp_idf, pytest.mark.slow]

PROJECT = Path(__file__).parent / "data" / "idf_project"
IDF_PATH = os.environ.get("IDF_PATH", "")


def _idf_python() -> str:
    env = os.environ.get("IDF_PYTHON_ENV_PATH")
    if env and Path(env, "bin", "python").exists():
        return str(Path(env, "bin", "python"))
    return shutil.which("python") or sys.executable


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not IDF_PATH or not Path(IDF_PATH, "tools", "idf.py").is_file():
        pytest.skip("needs a real ESP-IDF checkout: set IDF_PATH and activate its Python "
                    "environment (. $IDF_PATH/export.sh); CI cannot download ESP-IDF")
    probe = subprocess.run([_idf_python(), "-m", "partkit", "--version"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, (
        f"partkit is not installed in ESP-IDF's Python ({_idf_python()}): {probe.stderr}")
    root = tmp_path_factory.mktemp("idf") / "pktest"
    shutil.copytree(PROJECT, root)
    return root


def _idf(project: Path, *args: str,
         extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PARTKIT_COMPONENT_DIRS"] = os.path.dirname(resource_dir("idf"))
    env.setdefault("IDF_COMPONENT_MANAGER", "0")  # no network for the component manager
    env.setdefault("IDF_EXTENSION_ALLOW_UNTRUSTED", "1")  # v6.0 loads idf_ext.py only so
    env.update(extra_env or {})
    return subprocess.run([_idf_python(), os.path.join(IDF_PATH, "tools", "idf.py"),
                           "--preview", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)


def _set_config(project: Path, *lines: str) -> None:
    base = (PROJECT / "sdkconfig.defaults").read_text()
    (project / "sdkconfig.defaults").write_text(base + "".join(f"{line}\n" for line in lines))
    (project / "sdkconfig").unlink(missing_ok=True)  # re-read the defaults


def test_build_runs_partkit_check(project: Path) -> None:
    # A MINIMAL_BUILD project whose main requires partkit (docs/esp-idf.md, set-up route 2).
    result = _idf(project, "set-target", "linux")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-- partkit: partkit" in result.stdout + result.stderr
    result = _idf(project, "build")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "partkit: checking what the build flashes" in out
    # linux: no flash size in its sdkconfig, so never a plain OK
    assert "check OK (partly): " in out and "not checked: the partitions against" in out
    report = json.loads((project / "build" / "partkit" / "check.json").read_text())
    assert report["ok"] is True
    assert report["idf_build"]["target"] == "linux"
    assert report["app"]["slots"][0]["partition"]["name"] == "factory"
    # A second, no-op build checks again (nothing is cached) in one line, no report.
    again = _idf(project, "build")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "partkit: checking what the build flashes" in out
    assert out.count("check OK") == 1 and "flashed files:" not in out


def test_partkit_map_target(project: Path) -> None:
    result = _idf(project, "partkit-map")
    assert result.returncode == 0, result.stdout + result.stderr
    svg = (project / "build" / "partkit" / "flash-map.svg").read_text()
    assert "<svg" in svg and "factory" in svg


def test_kconfig_fail_budget_fails_the_build(project: Path) -> None:
    _set_config(project, 'CONFIG_PARTKIT_FAIL_FREE="99%"')
    try:
        result = _idf(project, "build")
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert f"{project / 'partitions.csv'}:3:1: error:" in out
        # named as the project sets it (menuconfig / sdkconfig), not as a CLI option
        assert "below the CONFIG_PARTKIT_FAIL_FREE budget of 99%" in out
    finally:
        _set_config(project)


def test_slot_too_small_fails_at_the_csv_line(project: Path) -> None:
    csv = project / "partitions.csv"
    original = csv.read_text()
    csv.write_text(original.replace("1M,", "0x10000,"))
    try:
        result = _idf(project, "build")
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert f"{csv}:3:1: error:" in out and "factory" in out
    finally:
        csv.write_text(original)


def _idf_major() -> int:
    import re

    text = Path(IDF_PATH, "tools", "cmake", "version.cmake").read_text()
    found = re.search(r"IDF_VERSION_MAJOR\s+(\d+)", text)
    return int(found.group(1)) if found else 0


def test_idf_py_extension_takes_options(project: Path) -> None:
    # ESP-IDF v6.0+ loads the component's idf_ext.py: options on top of the Kconfig.
    if _idf_major() < 6:
        pytest.skip("ESP-IDF before v6.0 loads no idf_ext.py from components (documented: "
                    "there `idf.py partkit-check` is the plain target, with Kconfig budgets)")
    # idf.py finds component extensions through the configured build (its component list).
    configured = _idf(project, "reconfigure")
    assert configured.returncode == 0, configured.stdout + configured.stderr
    failing = _idf(project, "partkit-check", "--fail-free", "99%")
    assert failing.returncode != 0, failing.stdout + failing.stderr
    assert "--fail-free budget of 99%" in failing.stdout + failing.stderr
    as_json = _idf(project, "partkit-check", "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    start = as_json.stdout.index('{\n  "schema"')
    doc = json.loads(as_json.stdout[start:as_json.stdout.rindex("}") + 1])
    assert doc["ok"] is True and doc["idf_build"]["target"] == "linux"
    # idf.py prints its own lines on stdout too: -o is the way to a file to parse,
    # relative to where idf.py runs.
    to_file = _idf(project, "partkit-check", "-o", "report.json")
    assert to_file.returncode == 0, to_file.stdout + to_file.stderr
    assert json.loads((project / "report.json").read_text())["ok"] is True


def test_partition_lookups_answered_by_partkit(project: Path) -> None:
    # Same answer as ESP-IDF's parttool.py for a good table ...
    _set_config(project, "CONFIG_PARTKIT_PARTITION_INFO=y")
    csv = project / "partitions.csv"
    original = csv.read_text()
    try:
        result = _idf(project, "reconfigure")
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "factory partition offset: '0x10000'" in out
        # ... and a broken table stops configuration at its line, where ESP-IDF's lookup
        # answers '' and warns.
        csv.write_text(original + "broken,   data, nosuch,  ,        4K,\n")
        result = _idf(project, "reconfigure")
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert f"{csv}:4:" in out and "nosuch" in out
    finally:
        csv.write_text(original)
        _set_config(project)


def test_check_can_be_switched_off(project: Path) -> None:
    _set_config(project, "CONFIG_PARTKIT_CHECK_ON_BUILD=n", 'CONFIG_PARTKIT_FAIL_FREE="99%"')
    try:
        result = _idf(project, "build")
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "partkit: checking" not in out
        on_demand = _idf(project, "partkit-check")
        assert on_demand.returncode != 0  # the budget still holds when asked
    finally:
        _set_config(project)


def test_minimal_build_takes_partkit_from_the_component_manager(
        project: Path, tmp_path: Path) -> None:
    # Set-up route 1: main/idf_component.yml names the component; main's CMakeLists.txt
    # does not mention partkit, and the project has no EXTRA_COMPONENT_DIRS.
    probe = subprocess.run([_idf_python(), "-c", "import idf_component_manager"],
                           capture_output=True)
    if probe.returncode != 0:  # ESP-IDF's requirements install it; a trimmed env may not
        pytest.skip(f"the component manager is not installed in {_idf_python()}")
    copy = tmp_path / "managed"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build", "sdkconfig*"))
    shutil.copy(PROJECT / "sdkconfig.defaults", copy / "sdkconfig.defaults")
    cmake = (copy / "CMakeLists.txt").read_text()
    (copy / "CMakeLists.txt").write_text(cmake.replace(
        'set(EXTRA_COMPONENT_DIRS "$ENV{PARTKIT_COMPONENT_DIRS}")\n', ""))
    main = (copy / "main" / "CMakeLists.txt").read_text()
    (copy / "main" / "CMakeLists.txt").write_text(main.replace(" PRIV_REQUIRES partkit", ""))
    (copy / "main" / "idf_component.yml").write_text(
        f"dependencies:\n  partkit:\n    path: {resource_dir('idf')}\n")
    version = subprocess.run([_idf_python(), os.path.join(IDF_PATH, "tools", "idf.py"),
                              "--version"], capture_output=True, text=True).stdout
    env = {"IDF_COMPONENT_MANAGER": "1",
           "ESP_IDF_VERSION": version.split("v")[-1].strip()[:3] or "6.0"}
    result = _idf(copy, "set-target", "linux", extra_env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "-- partkit: partkit" in out
    assert "partkit-check" in (copy / "build" / "build.ninja").read_text()


@pytest.mark.parametrize("config", [
    (),
    # The check_sizes replacement alone (no on-build check) covers the bootloader too.
    ("CONFIG_PARTKIT_CHECK_ON_BUILD=n", "CONFIG_PARTKIT_REPLACE_CHECK_SIZES=y"),
], ids=["on-build-check", "replace-check-sizes-only"])
def test_esp32c3_oversized_bootloader_stops_at_partkits_message(
        tmp_path: Path, config: tuple[str, ...]) -> None:
    # The bootloader subproject checks its size itself; partkit's hook must speak first.
    if not IDF_PATH or not Path(IDF_PATH, "tools", "idf.py").is_file():
        pytest.skip("needs a real ESP-IDF checkout (IDF_PATH)")
    if shutil.which("riscv32-esp-elf-gcc") is None:
        pytest.skip("needs riscv32-esp-elf-gcc on PATH to build the esp32c3 bootloader")
    root = tmp_path / "c3"
    shutil.copytree(PROJECT, root)
    if not Path(IDF_PATH, "components", "mbedtls", "mbedtls", "include").is_dir():
        # A checkout without its mbedtls submodule cannot configure a chip target; the
        # bootloader needs none of it, so an empty project component stands in.
        (root / "components" / "mbedtls").mkdir(parents=True)
        (root / "components" / "mbedtls" / "CMakeLists.txt").write_text(
            "idf_component_register()\n")
    (root / "sdkconfig.defaults").write_text(
        "CONFIG_PARTITION_TABLE_CUSTOM=y\n"
        'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"\n'
        "CONFIG_PARTITION_TABLE_OFFSET=0x4000\n"  # 16K: no ESP32-C3 bootloader fits
        + "".join(f"{line}\n" for line in config))
    result = _idf(root, "set-target", "esp32c3")
    assert result.returncode == 0, result.stdout + result.stderr
    result = _idf(root, "bootloader")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    ours = out.index("error: bootloader bootloader.bin")
    assert f"{root / 'sdkconfig'}:" in out[out.rindex("\n", 0, ours):ours + 1]
    assert ours < out.index("Error: Bootloader binary size")
    assert "components/partition_table/check_sizes.py --offset" not in out  # never ran
