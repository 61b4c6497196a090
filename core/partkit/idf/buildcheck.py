"""Check everything an ESP-IDF build will flash: the shared build-folder checker
(:mod:`partkit.check.buildfolder`) fed by :mod:`partkit.idf.builddir`, said in the
project's terms: budgets by their Kconfig names, remedies for ESP-IDF's built-in tables,
the extra subtypes the build declared, and what the build did not show (never a plain OK
then)."""

from __future__ import annotations

from partkit.check import buildfolder
from partkit.check.buildfolder import BuildCheck, Placement, load_build_table
from partkit.idf.builddir import IdfBuild

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.check.checks import Budget, Finding
    from partkit.idf.builddir import IdfBuild

__all__ = ["BuildCheck", "Placement", "check_build", "load_build_table", "to_json", "to_text"]


def _in_idf_terms(finding: Finding, build: IdfBuild, budget_names: dict[str, str]) -> Finding:
    """Say it as the ESP-IDF project spells it: budgets by their Kconfig name when they came
    from sdkconfig, and a remedy that does not send the user into $IDF_PATH."""
    d = finding.diagnostic
    message, hint = d.message, d.hint
    for option, name in budget_names.items():
        message = message.replace(f"the {option} budget", f"the {name} budget")
    if build.table_builtin and finding.code in ("app-too-small", "some-slots-too-small",
                                                "budget-fail", "budget-warn"):
        hint = (f"the table is ESP-IDF's built-in {build.table_builtin}: choose a larger "
                "built-in table (menuconfig > Partition Table, e.g. 'Single factory app "
                "(large), no OTA') or your own CSV (CONFIG_PARTITION_TABLE_CUSTOM) with a "
                "bigger app partition, or shrink the app")
    if (message, hint) == (d.message, d.hint):
        return finding
    return finding.replace(diagnostic=d.replace(message=message, hint=hint))


def check_build(build: IdfBuild, *, warn_free: Budget | None = None,
                fail_free: Budget | None = None, verify: bool = True,
                strict: bool = False,
                budget_names: dict[str, str] | None = None) -> BuildCheck:
    """Check the table, the app and bootloader, and where every flashed file lands.

    ``budget_names`` renames a budget option in messages (``{"--fail-free":
    "CONFIG_PARTKIT_FAIL_FREE"}`` when the budget came from the project's Kconfig).
    Raises PartkitError (exit 2) for missing or malformed inputs; failed checks are in the
    result (``exit_code`` 1).
    """
    result = buildfolder.check_build(build, warn_free=warn_free, fail_free=fail_free,
                                     verify=verify, strict=strict)
    report = result.report
    if report.app is None:
        return result
    names = budget_names or {}
    return result.replace(report=report.replace(app=report.app.replace(findings=tuple(
        _in_idf_terms(f, build, names) for f in report.app.findings))))


def _idf_build(result: BuildCheck) -> IdfBuild:
    assert isinstance(result.build, IdfBuild)
    return result.build


def to_text(result: BuildCheck) -> str:
    """``partkit check --idf-build-dir``: the build, the check report, the flashed files,
    and what the build did not show."""
    text = buildfolder.to_text(result)
    build = _idf_build(result)
    if not build.not_checked:
        return text
    # Never an unqualified OK: say what this run could not look at.
    return text.replace("check OK: ", "check OK (partly): ", 1) + "".join(
        f"not checked: {what}\n" for what in build.not_checked)


def to_json(result: BuildCheck) -> dict[str, object]:
    """The shared report plus ``idf_build.extra_partition_subtypes``, ``not_checked`` (the
    same sentences as the text) and ``complete`` (see docs/esp-idf.md)."""
    doc = buildfolder.to_json(result)
    build = _idf_build(result)
    section = doc.get(build.json_key)
    if isinstance(section, dict):
        section["extra_partition_subtypes"] = list(build.extra_subtypes)
    doc["not_checked"] = list(build.not_checked)
    doc["complete"] = not build.not_checked
    return doc
