"""``partkit gen``: a drop-in for gen_esp32part.py (same arguments, same bytes).

Arguments are parsed by hand: this is the command builds run for every table, and
argparse would cost more start-up time than the whole conversion.
"""

from __future__ import annotations

import sys

from partkit.cli.common import emit, usage_error
from partkit.common.errors import PartkitError

__all__ = ["run"]

HELP = """\
usage: partkit gen [options] INPUT [OUTPUT]
       partkit gen [options] --builtin NAME [OUTPUT]
       partkit gen --check-only [options] INPUT...

Convert a partition table CSV to the binary the bootloader reads, or a binary back to CSV
(the format is detected). Same arguments as ESP-IDF's gen_esp32part.py, so -o here is
--offset (in every other partkit command -o is the output).

positional arguments:
  INPUT                           partition table: a CSV, or a binary to turn back into
                                  CSV; '-' reads stdin; builtin:NAME is a built-in table
                                  (partkit show --list-builtin)
  OUTPUT                          file to write (default '-': stdout)

options:
  -h, --help                      show this help message and exit
  -o, --offset N                  partition table offset (default 0x8000)
  --primary-bootloader-offset N   needed for bootloader rows (or use --chip)
  --recovery-bootloader-offset N  needed for bootloader/recovery rows
  --chip CHIP                     sets the primary bootloader offset for CHIP, one of:
{chips}
  --flash-size SIZE               fail if the table does not fit the flash
                                  (1MB 2MB 4MB 8MB 16MB 32MB 64MB 128MB)
  --disable-md5sum                no MD5 row (and no MD5 check of binary input)
  --no-verify                     skip table verification
  --secure [v1|v2]                secure boot app size alignment (bare flag means v1)
  --extra-partition-subtypes E... subtype names of your own as type,name,hexvalue; end the
                                  list with -- when INPUT follows
  --builtin NAME                  the input is built-in table NAME (same as INPUT builtin:NAME)
  --header FILE                   also write a C header: PARTITION_<NAME>_OFFSET/_SIZE/_TYPE/
                                  _SUBTYPE per partition (rewritten only when it changes)
  --subtypes-header FILE          also write the extra subtypes as ESP_PARTITION_SUBTYPE_<TYPE>_
                                  <NAME> = <value>, lines (ESP-IDF's extra_partition_subtypes.inc)
  --check-only                    only check every INPUT (any number of files) and write
                                  nothing; the pre-commit hook runs this
  --strict                        treat warnings as errors
  --json                          print the table and diagnostics as JSON on stdout
  -q, --quiet                     no status lines
  -v, --verify                    accepted for compatibility (verification is the default)

exit status:
  0  success (warnings may have been printed)
  2  bad input or usage: an unreadable file, an invalid table or option
"""

_FLAGS = {"--disable-md5sum", "--no-verify", "--verify", "-v", "--quiet", "-q", "--strict",
          "--json", "--check-only"}
_VALUED = {"--offset", "-o", "--primary-bootloader-offset", "--recovery-bootloader-offset",
           "--flash-size", "--chip", "--builtin", "--header", "--subtypes-header"}


def _parse(argv: list[str]) -> tuple[dict[str, str], set[str], list[str], list[str]]:
    values: dict[str, str] = {}
    flags: set[str] = set()
    extra: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, inline = arg.partition("=")
        if arg == "--":
            positional.extend(argv[i:])
            break
        if arg in _FLAGS:
            flags.add(arg)
        elif name in _VALUED:
            if eq:
                values[name] = inline
            elif i < len(argv):
                values[name] = argv[i]
                i += 1
            else:
                raise usage_error(f"{name} needs a value", "see 'partkit gen --help'")
        elif name == "--secure":
            # Like the reference, the value is optional and taken greedily.
            if eq:
                values["--secure"] = inline
            elif i < len(argv) and not argv[i].startswith("-"):
                values["--secure"] = argv[i]
                i += 1
            else:
                values["--secure"] = "v1"
        elif arg == "--extra-partition-subtypes":
            while i < len(argv) and not argv[i].startswith("-"):
                extra.append(argv[i])
                i += 1
            if i < len(argv) and argv[i] == "--":
                i += 1
        elif arg.startswith("-") and arg != "-":
            from partkit.common.errors import closest

            guess = closest(name, sorted(_FLAGS | _VALUED | {"--secure",
                                                             "--extra-partition-subtypes"}))
            raise usage_error(f"unknown option '{arg}'",
                              f"did you mean '{guess}'?" if guess else "see 'partkit gen --help'")
        else:
            positional.append(arg)
    return values, flags, extra, positional


def run(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        import textwrap

        from partkit.common.chips import chip_names

        chips = textwrap.fill(", ".join(chip_names()), 90, initial_indent=" " * 34,
                              subsequent_indent=" " * 34)
        sys.stdout.write(HELP.format(chips=chips))
        return 0
    return _run(argv)


def _run(argv: list[str]) -> int:
    from partkit.cli.common import table_options
    from partkit.table.options import FLASH_SIZES
    from partkit.table.source import read_table_input

    values, flags, extra, positional = _parse(argv)
    if "--builtin" in values:
        if len(positional) > 1:
            raise usage_error("with --builtin, expected only [OUTPUT]", "see 'partkit gen --help'")
        positional.insert(0, "builtin:" + values["--builtin"])
    if not positional and extra:
        from partkit.cli.parser import EXTRA_SUBTYPES_HINT, swallowed

        if swallowed(argv):
            raise usage_error("expected INPUT [OUTPUT]", EXTRA_SUBTYPES_HINT)
    if not positional or (len(positional) > 2 and "--check-only" not in flags):
        raise usage_error("expected INPUT [OUTPUT]", "see 'partkit gen --help'")
    flash_size = None
    if "--flash-size" in values:
        text = values["--flash-size"]
        if text not in FLASH_SIZES:
            raise usage_error(f"--flash-size: '{text}' is not one of {', '.join(FLASH_SIZES)}",
                              "flash sizes are written like 4MB")
        flash_size = int(text[:-2]) * 0x100000
    secure = values.get("--secure")
    if secure is not None and secure not in ("v1", "v2"):
        raise usage_error(f"--secure: '{secure}' is not v1 or v2",
                          "--secure takes an optional value v1 or v2 (lower case); put it "
                          "after INPUT or write --secure=v1")
    options = table_options(
        offset=values.get("--offset", values.get("-o")),
        chip=values.get("--chip"),
        primary_bootloader_offset=values.get("--primary-bootloader-offset"),
        recovery_bootloader_offset=values.get("--recovery-bootloader-offset"),
        flash_size=flash_size,
        secure=secure,
        md5="--disable-md5sum" not in flags,
        verify="--no-verify" not in flags,
        strict="--strict" in flags,
        extra_subtypes=extra,
    )
    if "--check-only" in flags:
        return _check_only(positional, options)
    quiet = "--quiet" in flags or "-q" in flags
    source = positional[0]
    output = positional[1] if len(positional) > 1 else "-"
    from partkit.common.fileio import check_outputs

    # every output is checked before the first is written (a --header naming the .bin)
    check_outputs([output, values.get("--header"), values.get("--subtypes-header")], [source])
    data = _read_stdin() if source == "-" else read_table_input(source)
    path = "<stdin>" if source == "-" else source

    from partkit.table import codec
    from partkit.table.binary import looks_binary

    if not quiet:
        kind = "binary partition" if looks_binary(data) else "CSV"
        sys.stderr.write(f"Parsing {kind} input...\n")
        if options.verify:
            sys.stderr.write("Verifying table...\n")
    loaded = codec.load_table(data, path, options)
    emit(loaded.warnings)
    result: bytes = (codec.to_csv(loaded.table, options).encode("utf-8") if loaded.is_binary
                     else codec.encode(loaded.table, options))
    if output == "-":
        if "--json" in flags:
            raise usage_error("--json needs an OUTPUT file (stdout carries the JSON)")
        if not loaded.is_binary and sys.stdout.isatty():
            raise usage_error("not writing a binary table to a terminal",
                              "give OUTPUT (e.g. partition-table.bin), or redirect stdout "
                              "(> file, | partkit show -)")
        sys.stdout.flush()
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
    else:
        from partkit.common.fileio import write_atomic

        write_atomic(output, result)
    _write_headers(values, loaded.table, path, options, extra)
    if "--json" in flags:
        _print_json(loaded, options, output)
    return 0


def _check_only(inputs: list[str], options: object) -> int:
    """Check every input as gen would (including the encoded length) and write nothing."""
    from partkit.table import codec
    from partkit.table.options import TableOptions
    from partkit.table.source import read_table_input

    assert isinstance(options, TableOptions)
    failed = False
    for source in inputs:
        path = "<stdin>" if source == "-" else source
        try:
            data = _read_stdin() if source == "-" else read_table_input(source)
            loaded = codec.load_table(data, path, options)
            emit(loaded.warnings)
            if not loaded.is_binary:
                codec.encode(loaded.table, options)
        except PartkitError as exc:  # not reporting: every input is checked, every error shown
            emit(exc.diagnostics)
            failed = True
    return 2 if failed else 0


def _write_headers(values: dict[str, str], table: object, path: str, options: object,
                   extra: list[str]) -> None:
    """--header / --subtypes-header; unchanged files are left alone so nothing rebuilds."""
    if "--header" not in values and "--subtypes-header" not in values:
        return
    from partkit.table import cheader
    from partkit.table.model import PartitionTable
    from partkit.table.options import TableOptions

    assert isinstance(table, PartitionTable) and isinstance(options, TableOptions)
    if "--header" in values:
        _write_if_changed(values["--header"],
                          cheader.layout_header(table, path, options.table_offset))
    if "--subtypes-header" in values:
        _write_if_changed(values["--subtypes-header"],
                          cheader.subtypes_header(extra, options.subtypes))


def _write_if_changed(path: str, text: str) -> None:
    from partkit.common.fileio import write_if_changed

    write_if_changed(path, text.encode("utf-8"))


def _print_json(loaded: object, options: object, output: str) -> None:
    import json

    from partkit.table.codec import Loaded
    from partkit.table.options import TableOptions
    from partkit.table.render import to_json

    assert isinstance(loaded, Loaded) and isinstance(options, TableOptions)
    doc = to_json(loaded.table, options)
    doc["output"] = output
    doc["warnings"] = [w.format() for w in loaded.warnings]
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _read_stdin() -> bytes:
    """stdin, bounded like a file input (``gen - < /dev/zero`` ends with an error)."""
    from partkit.common.fileio import read_stream

    return read_stream(sys.stdin.buffer, "<stdin>")
