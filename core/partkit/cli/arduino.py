"""``partkit arduino``: the esp32 Arduino core's build checked against its real table.

``check`` and ``size`` run inside the IDE's build (a postobjcopy hook and arduino-cli's
``recipe.advanced_size.pattern``); ``install``/``uninstall``/``status`` manage partkit's
block in the cores' ``platform.local.txt``. ``partkit check --arduino-build-dir`` is the
CI form of ``check``. See docs/arduino.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from textwrap import fill

from partkit.arduino.builddir import (
    TABLE_CSV,
    TABLE_OFFSET,
    BoardOverrides,
    not_checked,
    read_build_dir,
)
from partkit.arduino.cores import CoreInstall, find_cores, is_core_dir
from partkit.arduino.install import core_state, install, uninstall
from partkit.arduino.properties import is_unexpanded, read_properties
from partkit.arduino.size import advanced_size, bad_input, ram_used, run_size_tool, summary_line
from partkit.check.buildfolder import check_build, to_json, to_text
from partkit.check.files import load_table_for_check
from partkit.cli.common import add_budget_options, budgets_from_args, emit, int_option, verdict_only
from partkit.cli.dispatch import Subcommand, Subcommands
from partkit.cli.parser import EXIT_CHECK, EXIT_PLAIN
from partkit.cli.reporting import Reporting, set_reporting
from partkit.common.chips import chip_names
from partkit.common.fileio import write_atomic
from partkit.table.options import TableOptions, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from partkit.arduino.builddir import ArduinoBuild, BoardOverrides
    from partkit.arduino.cores import CoreInstall
    from partkit.check.buildfolder import BuildCheck

__all__ = ["add_build_argument", "run", "run_check"]

BUILD_HELP = ("an Arduino (esp32 core) build folder, after 'arduino-cli compile --build-path "
              "DIR' or the IDE: the table, the images and the board's options are read from it "
              "(partitions.csv, *.partitions.bin, *.bin, *.bootloader.bin, build.options.json)")

_DESCRIPTION = """\
The esp32 Arduino core builds the table from the sketch's partitions.csv (else the variant's,
else the board menu scheme's) but sizes the sketch against the board's fixed maximum. These
commands check the real app image against the table the build made, and install partkit's
hook and size recipe in esp32 cores' platform.local.txt."""

# arduino-cli reads only the JSON of an exit 0: bad input is an answer too (see _size)
_EXIT_SIZE = """\
exit status:
  0  the JSON answer, also for bad input and a sketch that does not fit (severity 'error')
  2  usage: an unknown option, a missing BUILD_DIR
"""

_LOCATIONS = """\
Cores are looked for in ~/.arduino15, ~/Library/Arduino15 and %LOCALAPPDATA%\\Arduino15
(packages/esp32/hardware/esp32/<version>), IDE 1.8 portable folders (--ide-dir,
$ARDUINO_IDE_PATH), arduino-cli's directories.data and the sketchbook's
hardware/espressif/esp32 (git installs).
"""


def add_build_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arduino-build-dir", metavar="DIR", help=BUILD_HELP)


def _add_board_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("build_dir", metavar="BUILD_DIR", help="the build folder ({build.path})")
    p.add_argument("--project-name", metavar="NAME",
                   help="the sketch's output stem, NAME.bin ({build.project_name}; default: "
                        "from build.options.json)")

    p.add_argument("--chip", metavar="CHIP", help="{build.mcu} (default: from the board; one "
                   f"of: {', '.join(chip_names())})")
    p.add_argument("--flash-size", metavar="SIZE",
                   help="{build.flash_size} (default: from the board and its menu)")
    p.add_argument("--bootloader-offset", metavar="N",
                   help="{build.bootloader_addr} (default: from the board, else the chip's)")
    p.add_argument("--core-dir", metavar="DIR",
                   help="the esp32 core's folder ({runtime.platform.path}; default: from the "
                        "board's hardware folders): its boot_app0.bin is checked at 0xe000")
    add_budget_options(p)
    p.add_argument("--strict", action="store_true", help="rule warnings become errors")


def _add_core_options(p: argparse.ArgumentParser, *, all_help: str) -> None:
    p.add_argument("--core-dir", action="append", default=[], metavar="DIR",
                   help="this core folder (the one with platform.txt) instead of searching; "
                        "repeatable")
    p.add_argument("--ide-dir", action="append", default=[], metavar="DIR",
                   help="also search this Arduino IDE 1.8 folder's portable/ (repeatable)")
    p.add_argument("--all", action="store_true", help=all_help)
    p.add_argument("--python", metavar="PATH", default=sys.executable,
                   help="the interpreter the IDE runs partkit with (default: this one, "
                        f"{sys.executable})")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def _add_size_options(p: argparse.ArgumentParser) -> None:
    _add_board_options(p)
    p.add_argument("--size-tool", metavar="TOOL",
                   help="the core's size program ({compiler.path}{compiler.size.cmd}); "
                        "without it no dynamic-memory line")
    p.add_argument("--ram-max", metavar="BYTES",
                   help="dynamic memory ({upload.maximum_data_size}; default: from the board)")


def _add_table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("sketch_dir", metavar="SKETCH_DIR", help="the sketch's folder "
                   "({build.source.path})")

    p.add_argument("--chip", metavar="CHIP", help="{build.mcu} (default: no chip rules; one "
                   f"of: {', '.join(chip_names())})")


def _core_options(all_help: str) -> Callable[[argparse.ArgumentParser], None]:
    return lambda p: _add_core_options(p, all_help=all_help)


def _subcommands() -> Subcommands:
    manage = tuple(
        Subcommand(action, summary, _core_options(all_help), _manage, EXIT_PLAIN,
                   summary + ".\n\n" + _LOCATIONS)
        for action, summary, all_help in (
            ("install", "add partkit's block to esp32 cores' platform.local.txt",
             "every version found (default: the newest core in each place)"),
            ("uninstall", "remove partkit's block from esp32 cores",
             "accepted for symmetry: uninstall always covers every core found"),
            ("status", "list the esp32 cores found and partkit's state in each",
             "accepted for symmetry: status always lists every core found"),
        ))
    return Subcommands("partkit arduino", _DESCRIPTION, (
        Subcommand("check", "the build hook: one line and any errors on stderr, exit 1 when "
                   "it does not fit", _add_board_options, _hook, EXIT_CHECK, fill(
                       "Check the app, bootloader and table of an esp32 Arduino build "
                       "folder; print one size line and every problem to stderr (the IDE "
                       "always shows a hook's stderr).")),
        Subcommand("size", "recipe.advanced_size.pattern (arduino-cli >= 0.21, IDE 2): the "
                   "JSON size report", _add_size_options, _size, _EXIT_SIZE, fill(
                       "Print arduino-cli's size JSON {output, severity, sections, error}: "
                       "the app image against its slot in the table the build made "
                       "(severity 'error' fails the compile), global variables from "
                       "'size -A' as the core's classic size recipe counts them.")),
        Subcommand("table", "the prebuild hook: the sketch's partitions.csv validated, "
                   "errors at file:line", _add_table_options, _table, EXIT_PLAIN, fill(
                       "Validate SKETCH_DIR/partitions.csv as the core's table generator "
                       "will, with every error at its file:line (the generator names "
                       "none); nothing to do when the sketch has no partitions.csv.")),
        *manage,
    ), epilog=_LOCATIONS + "\n" + EXIT_CHECK)


def _overrides(args: argparse.Namespace) -> BoardOverrides:
    return BoardOverrides(chip=args.chip, flash_size=args.flash_size,
                          bootloader_offset=args.bootloader_offset,
                          project_name=args.project_name, core_dir=args.core_dir)


def _check(args: argparse.Namespace, build: ArduinoBuild) -> BuildCheck:
    warn, fail = budgets_from_args(args)
    return check_build(build, warn_free=warn, fail_free=fail, strict=args.strict,
                       verify=getattr(args, "verify", True))


def run_check(args: argparse.Namespace, report_path: str | None) -> int:
    """``partkit check --arduino-build-dir DIR``; raises PartkitError for bad input."""

    build = read_build_dir(args.arduino_build_dir, BoardOverrides(
        chip=args.chip, flash_size=args.flash_size, bootloader_offset=args.bootloader_offset))
    result = _check(args, build)
    doc = to_json(result)
    info = doc["arduino_build"]
    assert isinstance(info, dict)
    unchecked = not_checked(build)
    info.update(fqbn=build.fqbn, size_line=summary_line(build, result), not_checked=unchecked)
    doc["not_checked"] = unchecked  # as an ESP-IDF build's report has them
    doc["complete"] = not unchecked
    if report_path is not None:
        write_atomic(report_path, (json.dumps(doc, indent=2) + "\n").encode())
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        notes = "".join(f"not checked: {n}\n" for n in unchecked)
        text = to_text(result) + summary_line(build, result) + "\n" + notes
        sys.stdout.write(verdict_only(text) if getattr(args, "quiet", False) else text)
    sys.stdout.flush()
    emit(f.diagnostic for f in result.findings)
    return result.exit_code


def _hook(args: argparse.Namespace) -> int:
    build = read_build_dir(args.build_dir, _overrides(args))
    result = _check(args, build)
    sys.stderr.write(f"partkit: {summary_line(build, result)}\n")
    sys.stderr.write("".join(f"partkit: not checked: {n}\n" for n in not_checked(build)))
    emit(f.diagnostic for f in result.findings)
    if result.exit_code:
        sys.stderr.write("partkit: the sketch does not fit the partition table the build "
                         f"made ({build.table_source or build.table})\n")
    return result.exit_code


def _size(args: argparse.Namespace) -> int:
    """arduino-cli reads only the JSON of an exit 0 (else "Error while determining sketch
    size: exit status 2"), so bad input is a JSON error too: the compile fails with
    partkit's message."""

    set_reporting(Reporting(as_json=lambda problems: json.dumps(bad_input(problems)),
                            json_exit=0))

    build = read_build_dir(args.build_dir, _overrides(args))
    if args.ram_max is not None and not is_unexpanded(args.ram_max):
        build = build.replace(ram_max=int_option("--ram-max", args.ram_max))
    result = _check(args, build)
    ram = None
    if args.size_tool and not is_unexpanded(args.size_tool):
        elf = os.path.join(build.build_dir, f"{build.project_name}.elf")
        ram = ram_used(run_size_tool(args.size_tool, elf))
    sys.stdout.write(json.dumps(advanced_size(build, result, ram)) + "\n")
    return 0


def _table(args: argparse.Namespace) -> int:
    path = os.path.join(args.sketch_dir, TABLE_CSV)
    if not os.path.isfile(path):
        return 0  # the variant's or the scheme's table: the core's own
    chip = None if is_unexpanded(args.chip) or args.chip not in chip_names() else args.chip
    loaded = load_table_for_check(path, TableOptions(table_offset=TABLE_OFFSET, chip=chip))
    emit(loaded.warnings)
    return 0


def _cores(args: argparse.Namespace, *, newest_only: bool) -> list[CoreInstall]:
    if args.core_dir:
        cores = []
        for path in args.core_dir:
            if not is_core_dir(path):
                raise usage_error(f"{path}: no platform.txt here: not an Arduino core folder",
                                  "give the folder that holds the esp32 core's platform.txt")

            version = read_properties(os.path.join(path, "platform.txt")).get("version", "?")
            cores.append(CoreInstall(os.path.abspath(path), version, "--core-dir"))
        return cores
    found = find_cores(os.path.expanduser("~"), os.environ, tuple(args.ide_dir))
    if not newest_only:
        return found
    newest: dict[str, CoreInstall] = {}
    for core in found:  # versions come in ascending order per place
        newest[os.path.dirname(core.path) if core.found_in != "sketchbook hardware folder"
               else core.path] = core
    return list(newest.values())


def _manage(args: argparse.Namespace) -> int:
    python = os.path.abspath(args.python)
    cores = _cores(args, newest_only=args.command == "install" and not args.all)
    if not cores and args.command != "status":
        raise usage_error("no esp32 Arduino core found", "install the esp32 core with the "
                          "boards manager, or give --core-dir DIR (or --ide-dir for a portable "
                          "IDE 1.8)")
    if args.command == "install":
        states = [install(c, python) for c in cores]
    elif args.command == "uninstall":
        states = [uninstall(c) for c in cores]
    else:
        states = [core_state(c, python) for c in cores]
    if args.json:
        sys.stdout.write(json.dumps({"cores": [{
            "path": s.core.path, "version": s.core.version, "found_in": s.core.found_in,
            "state": s.state, "backup": s.backup} for s in states], "python": python},
            indent=2) + "\n")
        return 0
    for s in states:
        sys.stdout.write(f"{s.state:<9} {s.core.path} ({s.core.version}, {s.core.found_in})\n")
        if s.backup:
            sys.stdout.write(f"          your previous platform.local.txt: {s.backup}\n")
    if not states:
        sys.stdout.write("no esp32 Arduino core found\n")
    if args.command == "install":
        sys.stdout.write("A core update installs a new folder without partkit's hook: run "
                         "'partkit arduino install' again after updating the esp32 core.\n")
    return 0


def run(argv: list[str]) -> int:
    return _subcommands().run(argv)
