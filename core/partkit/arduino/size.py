"""The esp32 core's size line, from the table the build actually made.

arduino-cli (IDE 2) runs ``recipe.advanced_size.pattern`` instead of the classic size
recipe and reads its JSON: ``output`` is shown, ``severity`` ``error`` fails the build with
``error``, and ``sections`` feed the size report. partkit's answer: the program is the
real ``.bin`` against the app slot of the built table (the check of
:mod:`partkit.check.buildfolder`), and dynamic memory is what the classic
``recipe.size.regex.data`` of the esp32 core adds up from ``size -A``: the DRAM data, bss
and noinit sections.
"""

from __future__ import annotations

import re
import subprocess

from partkit.common.errors import PartkitError, SourceLocation, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from partkit.arduino.builddir import ArduinoBuild
    from partkit.check.buildfolder import BuildCheck
    from partkit.common.errors import Diagnostic

__all__ = ["RAM_SECTIONS", "advanced_size", "bad_input", "ram_used", "run_size_tool",
           "summary_line"]

# the esp32 core's recipe.size.regex.data alternatives: what "Global variables use" counts
RAM_SECTIONS = frozenset({".dram0.data", ".dram0.bss", ".dram1.data", ".dram1.bss",
                          ".noinit"})
_SIZE_LINE = re.compile(r"^(\S+)\s+([0-9]+)\b")


def ram_used(size_output: str) -> int:
    """Bytes of dynamic memory in a ``size -A`` listing (a section counts each time it is
    listed, as the IDE sums every matching line)."""
    total = 0
    for line in size_output.splitlines():
        m = _SIZE_LINE.match(line.strip())
        if m and m.group(1) in RAM_SECTIONS:
            total += int(m.group(2))
    return total


def run_size_tool(tool: str, elf: str) -> str:
    """``<tool> -A <elf>``'s output. Raises PartkitError (exit 2) when it cannot run."""

    try:
        proc = subprocess.run([tool, "-A", elf], capture_output=True, text=True,
                              errors="replace", check=False)
    except OSError as exc:
        raise PartkitError(error(f"cannot run the size tool: {exc.strerror}",
                                 SourceLocation(tool),
                                 hint="--size-tool is the core's {compiler.path}"
                                      "{compiler.size.cmd}")) from None
    if proc.returncode != 0:
        raise PartkitError(error(f"'{tool} -A' failed ({proc.returncode}): "
                                 f"{proc.stderr.strip() or proc.stdout.strip()}",
                                 SourceLocation(elf)))
    return proc.stdout


def _percent(used: int, room: int) -> int:
    return used * 100 // room if room > 0 else 100


def summary_line(build: ArduinoBuild, result: BuildCheck) -> str:
    """"Sketch uses N bytes (P%) of the 'app0' partition (M bytes, from partitions.csv)"."""
    app = result.report.app
    slot = app.smallest if app is not None else None
    if app is None or slot is None:
        return ("Sketch size unknown: no app image in the build folder"
                if app is None else "Sketch has no app partition to go to in the table")
    return (f"Sketch uses {slot.used} bytes ({_percent(slot.used, slot.partition.size)}%) "
            f"of the '{slot.partition.name}' partition ({slot.partition.size} bytes, from "
            f"{build.table_origin})")


def _ram_line(used: int, room: int | None) -> str:
    if room is None:
        return f"Global variables use {used} bytes of dynamic memory."
    return (f"Global variables use {used} bytes ({_percent(used, room)}%) of dynamic memory, "
            f"leaving {room - used} bytes for local variables. Maximum is {room} bytes.")


def advanced_size(build: ArduinoBuild, result: BuildCheck,
                  ram: int | None) -> dict[str, object]:
    """The ``recipe.advanced_size.pattern`` JSON: output, severity, sections, error."""
    app = result.report.app
    slot = app.smallest if app is not None else None
    lines = [summary_line(build, result)]
    if ram is not None:
        lines.append(_ram_line(ram, build.ram_max))
    errors = [f.diagnostic for f in result.findings if f.is_error]
    warnings = [f.diagnostic for f in result.findings if not f.is_error]
    messages = [d.message for d in errors]
    if ram is not None and build.ram_max is not None and ram > build.ram_max:
        messages.append(f"global variables use {ram} bytes, over the {build.ram_max} bytes of "
                        "dynamic memory the board has")  # the classic data-size failure
    lines += [d.format() for d in (*errors, *warnings)]
    sections: list[dict[str, object]] = []
    if slot is not None:
        sections.append({"name": "text", "size": slot.used, "max_size": slot.partition.size})
    if ram is not None:
        sections.append({"name": "data", "size": ram, "max_size": build.ram_max or 0})
    severity = "error" if messages else "warning" if warnings else "info"
    return {
        "output": "\n".join(lines),
        "severity": severity,
        "sections": sections,
        "error": "; ".join(messages),
    }


def bad_input(diagnostics: Sequence[Diagnostic]) -> dict[str, object]:
    """The JSON for input partkit could not read: severity error, every diagnostic shown."""
    return {
        "output": "\n".join(d.format() for d in diagnostics),
        "severity": "error",
        "sections": [],
        "error": "; ".join(d.message for d in diagnostics if d.is_error)
        or "partkit could not size the sketch",
    }
