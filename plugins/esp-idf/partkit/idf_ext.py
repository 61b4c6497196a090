"""``idf.py partkit-check`` with options (ESP-IDF v6.0+ loads this from the component).

The ninja target of the same name checks with the project's Kconfig budgets; this action
adds command-line options on top (``idf.py partkit-check --fail-free 5% -o report.json``).
Older ESP-IDF versions skip this file and run the target; v6.0 loads it only with
IDF_EXTENSION_ALLOW_UNTRUSTED=1 (components outside its trusted sources).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any


def action_extensions(base_actions: dict[str, Any], project_path: str) -> dict[str, Any]:
    def partkit_check(subcommand_name: str, ctx: Any, global_args: Any,
                      **options: Any) -> None:
        from idf_py_actions.tools import ensure_build_directory, run_target

        ensure_build_directory(global_args, ctx.info_name)
        run_target("partkit-inputs", global_args)  # the table, the app, the bootloader
        command = [sys.executable, "-m", "partkit", "check",
                   "--idf-build-dir", os.path.abspath(global_args.build_dir)]
        for name in ("warn_free", "fail_free", "output"):
            if options.get(name):
                value = options[name]
                if name == "output":  # as typed, from where idf.py runs
                    value = os.path.abspath(value)
                command += [f"--{name.replace('_', '-')}", value]
        command += [f"--{flag}" for flag in ("strict", "json") if options.get(flag)]
        # Not from the build directory: `-m` would import build/partkit/ as the package.
        out_dir = os.path.join(os.path.abspath(global_args.build_dir), "partkit")
        os.makedirs(out_dir, exist_ok=True)
        code = subprocess.call(command, cwd=out_dir)
        if code:
            raise SystemExit(code)

    return {
        "version": "1",
        "actions": {
            "partkit-check": {
                "callback": partkit_check,
                "short_help": "Check that everything the build flashes fits (partkit).",
                "help": "Build the partition table, app and bootloader, then run "
                        "'partkit check --idf-build-dir' on the build. Options override "
                        "the project's CONFIG_PARTKIT_* settings. Exit 1 when a check "
                        "fails, 2 on bad input.",
                "options": [
                    {"names": ["--warn-free"], "help": "warn below this free space "
                     "in the app's smallest slot (10% or 64K)"},
                    {"names": ["--fail-free"], "help": "fail below this free space "
                     "in the app's smallest slot (2% or 16K)"},
                    {"names": ["--strict"], "is_flag": True,
                     "help": "partkit's rule warnings fail the check"},
                    {"names": ["--json"], "is_flag": True,
                     "help": "the report as JSON on stdout (after idf.py's own lines: "
                     "for a file to parse, use -o)"},
                    {"names": ["--output", "-o"], "help": "also write the JSON report "
                     "to this file (a relative path is taken from where idf.py runs)"},
                ],
            },
        },
    }
