#[=[.md
<!-- ANCHOR: partkit-module -->
## The module

Partition tables and size checks as part of any CMake firmware build: the
`idf.py partition-table` flow without ESP-IDF.

```cmake
# from a checkout or a vendored copy
include(path/to/partkit/cmake/partkit.cmake)
# or, after `pip install partkit` (see docs/cmake.md for CMAKE_PREFIX_PATH)
find_package(partkit 0.1 CONFIG REQUIRED)
```

At configure time the module finds a Python interpreter and checks that
`python -m partkit --version` runs; otherwise configuration stops with a hint.
The interpreter is, in order: `PARTKIT_PYTHON` (cache variable, set it to override),
`Python3_EXECUTABLE` if already set, the interpreter of the environment the module was
installed into (a pip-installed copy), else `find_package(Python3 3.9 COMPONENTS Interpreter)`.
Included from a source checkout, the module runs that checkout's `core/` package, so module
and tool always match.

It sets `PARTKIT_PYTHON`, `PARTKIT_VERSION` and `PARTKIT_COMMAND` (a list: the command line
that runs `partkit`, for your own custom commands).
<!-- ANCHOR_END: partkit-module -->
#]=]

include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.16)
  message(FATAL_ERROR "partkit needs CMake 3.16 or newer (this is ${CMAKE_VERSION}).")
endif()
list(APPEND CMAKE_MESSAGE_CONTEXT partkit)

set_property(GLOBAL PROPERTY _PARTKIT_MODULE_DIR "${CMAKE_CURRENT_LIST_DIR}")

# ---------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------

# The interpreter of the Python environment this file was installed into, if any. Layouts:
# <prefix>/lib/pythonX.Y/site-packages/partkit/cmake (POSIX wheel install),
# <prefix>/Lib/site-packages/partkit/cmake (Windows), <prefix>/share/cmake/partkit
# (the wheel's shared-data copy). A source checkout has none.
function(_partkit_env_python out_var)
  get_property(dir GLOBAL PROPERTY _PARTKIT_MODULE_DIR)
  set(prefixes "")
  if(dir MATCHES "/share/cmake/partkit$")
    list(APPEND prefixes "${dir}/../../..")
  elseif(EXISTS "${dir}/../__init__.py")
    list(APPEND prefixes "${dir}/../../../../.." "${dir}/../../../..")
  endif()
  set(found "")
  foreach(prefix IN LISTS prefixes)
    foreach(exe bin/python3 bin/python Scripts/python.exe python.exe)
      if(EXISTS "${prefix}/${exe}" AND NOT IS_DIRECTORY "${prefix}/${exe}")
        get_filename_component(found "${prefix}/${exe}" ABSOLUTE)
        break()
      endif()
    endforeach()
    if(found)
      break()
    endif()
  endforeach()
  set(${out_var} "${found}" PARENT_SCOPE)
endfunction()

# Sets <out_var> to an error text, or to "" when partkit is usable. Publishes the results
# as cache/global state so every function (and every directory scope) sees them.
function(_partkit_discover out_var)
  set(${out_var} "" PARENT_SCOPE)
  set(python "${PARTKIT_PYTHON}")
  set(origin "PARTKIT_PYTHON")
  if(NOT python AND Python3_EXECUTABLE)
    set(python "${Python3_EXECUTABLE}")
    set(origin "Python3_EXECUTABLE")
  endif()
  if(NOT python)
    _partkit_env_python(python)
    set(origin "the environment partkit is installed in")
  endif()
  if(NOT python)
    find_package(Python3 3.9 COMPONENTS Interpreter QUIET)
    set(python "${Python3_EXECUTABLE}")
    set(origin "find_package(Python3)")
  endif()
  if(NOT python)
    string(CONCAT message "no Python 3.9+ interpreter found.\n"
      "Hint: install Python 3 and partkit (pip install partkit), or set PARTKIT_PYTHON "
      "to the interpreter that has partkit installed.")
    set(${out_var} "${message}" PARENT_SCOPE)
    return()
  endif()
  message(DEBUG "using Python ${python} (from ${origin})")

  # From a checkout, run the checkout's package: module and tool then always match.
  set(python_command "${python}")
  get_property(module_dir GLOBAL PROPERTY _PARTKIT_MODULE_DIR)
  get_filename_component(core "${module_dir}/../core" ABSOLUTE)
  if(EXISTS "${core}/partkit/__init__.py")
    set(python_command "${CMAKE_COMMAND}" -E env "PYTHONPATH=${core}" "${python}")
    message(DEBUG "source checkout: PYTHONPATH=${core}")
  endif()

  execute_process(
    COMMAND ${python_command} -m partkit --version
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "^partkit ([0-9][0-9A-Za-z.+-]*)$")
    string(CONCAT message "`${python} -m partkit --version` failed (${rc}): ${err}${out}\n"
      "Hint: install partkit into that interpreter (${python} -m pip install partkit), or set "
      "PARTKIT_PYTHON to an interpreter that has it (this one came from ${origin}).")
    set(${out_var} "${message}" PARENT_SCOPE)
    return()
  endif()
  set(version "${CMAKE_MATCH_1}")

  # The package's own files: generated tables depend on them, so upgrading partkit
  # regenerates and rechecks everything.
  execute_process(
    COMMAND ${python_command} -m partkit buildsys package-dir
    RESULT_VARIABLE rc OUTPUT_VARIABLE package_dir ERROR_VARIABLE err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    set(${out_var} "cannot locate the partkit package with ${python}: ${err}" PARENT_SCOPE)
    return()
  endif()
  file(GLOB_RECURSE sources LIST_DIRECTORIES false "${package_dir}/*.py")
  list(SORT sources)

  set(PARTKIT_PYTHON "${python}" CACHE FILEPATH "Python interpreter that runs partkit")
  set_property(GLOBAL PROPERTY _PARTKIT_COMMAND "${python_command};-m;partkit")
  set_property(GLOBAL PROPERTY _PARTKIT_VERSION "${version}")
  set_property(GLOBAL PROPERTY _PARTKIT_SOURCES "${sources}")
  message(STATUS "Found partkit ${version}: ${python}")
endfunction()

_partkit_discover(_partkit_error)
if(_partkit_error)
  if(_PARTKIT_SOFT_FAIL)  # find_package(partkit): let partkitConfig.cmake report it
    set(PARTKIT_DISCOVERY_ERROR "${_partkit_error}")
    list(POP_BACK CMAKE_MESSAGE_CONTEXT)
    return()
  endif()
  message(FATAL_ERROR "${_partkit_error}")
endif()
get_property(PARTKIT_COMMAND GLOBAL PROPERTY _PARTKIT_COMMAND)
get_property(PARTKIT_VERSION GLOBAL PROPERTY _PARTKIT_VERSION)

# ---------------------------------------------------------------------------------------
# Private helpers
# ---------------------------------------------------------------------------------------

# Unknown keywords, keywords without a value and missing required keywords are errors:
# a typo must never be ignored silently.
macro(_partkit_check_arguments fn)
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(arg_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "${fn}: keyword(s) without a value: ${arg_KEYWORDS_MISSING_VALUES}")
  endif()
  foreach(_partkit_kw ${ARGN})
    if("${arg_${_partkit_kw}}" STREQUAL "")
      message(FATAL_ERROR "${fn}: missing required parameter `${_partkit_kw}`.")
    endif()
  endforeach()
endmacro()

# Offsets are plain integers (decimal or 0x hex), as gen_esp32part's --offset takes them.
function(_partkit_check_integer fn keyword value)
  if(NOT "${value}" STREQUAL "" AND NOT value MATCHES "^(0[xX][0-9a-fA-F]+|[0-9]+)$")
    message(FATAL_ERROR "${fn}: ${keyword} `${value}` is not an integer "
      "(use decimal or 0x-prefixed hex, e.g. 0x8000).")
  endif()
endfunction()

# A `;` in a path would split it into two list items in every command line: refuse it
# here, with the keyword, rather than fail later in the generator with an unclear message.
function(_partkit_check_path fn keyword value)
  string(FIND "${value}" ";" semicolon)
  if(NOT semicolon EQUAL -1)
    message(FATAL_ERROR "${fn}: ${keyword} path `${value}` contains a `;`, which CMake "
      "reads as a list separator, so no command can be given this path.\n"
      "Hint: rename the file or directory without the `;`.")
  endif()
endfunction()

# Rewrite a file only when its content changes: option changes then reach the build as a
# changed input, which Makefiles need (they do not track command lines, Ninja does).
function(_partkit_write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()

function(_partkit_table_property out_var fn table property)
  if(NOT TARGET "${table}")
    message(FATAL_ERROR "${fn}: TABLE `${table}` is not a target. "
      "Hint: pass the target created by partkit_add_partition_table().")
  endif()
  get_target_property(value "${table}" "${property}")
  if(value STREQUAL "value-NOTFOUND")
    message(FATAL_ERROR "${fn}: `${table}` was not created by partkit_add_partition_table().")
  endif()
  set(${out_var} "${value}" PARENT_SCOPE)
endfunction()

# The "how to flash it" lines printed after the table, as idf.py partition-table does.
function(_partkit_flash_hint out_var chip offset binary)
  file(RELATIVE_PATH rel "${CMAKE_BINARY_DIR}" "${binary}")
  # one POSIX shell word (as shlex.quote): a pasted line runs nothing the path names
  if(NOT rel MATCHES "^[A-Za-z0-9@%+=:,./_-]+$")
    string(REPLACE "'" "'\"'\"'" rel "${rel}")
    set(rel "'${rel}'")
  endif()
  set(chip_arg "")
  if(chip)
    set(chip_arg " --chip ${chip}")
  endif()
  set(${out_var}
    COMMAND "${CMAKE_COMMAND}" -E echo "Partition table binary: ${binary}"
    COMMAND "${CMAKE_COMMAND}" -E echo "To flash it, run from ${CMAKE_BINARY_DIR}:"
    COMMAND "${CMAKE_COMMAND}" -E echo
      " python -m esptool${chip_arg} -b 460800 --before default-reset --after hard-reset write-flash ${offset} ${rel}"
    PARENT_SCOPE)
endfunction()

# One size check as a stamped custom command: it reruns exactly when the image, the table,
# an option or partkit changes, and a failure leaves no stamp, so the next build retries.
function(_partkit_add_check name subject_target subject_file table check_args)
  _partkit_table_property(table_bin "${name}" "${table}" PARTKIT_BINARY)
  _partkit_table_property(bin_target "${name}" "${table}" PARTKIT_BIN_TARGET)
  _partkit_table_property(csv "${name}" "${table}" PARTKIT_CSV)
  # The binary is checked; messages point at the CSV line it came from (file:line:col).
  list(APPEND check_args "--table-source=${csv}")
  get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
  get_property(sources GLOBAL PROPERTY _PARTKIT_SOURCES)
  set(work "${CMAKE_CURRENT_BINARY_DIR}/partkit")
  set(stamp "${work}/${name}.stamp")
  set(options_file "${work}/${name}.options")
  string(REPLACE ";" "\n" options_text "${check_args}")
  _partkit_write_if_changed("${options_file}" "${options_text}\n")
  get_filename_component(shown "${subject_file}" NAME)
  add_custom_command(OUTPUT "${stamp}"
    COMMAND ${command} check ${check_args} -- "${table_bin}"
    COMMAND "${CMAKE_COMMAND}" -E touch "${stamp}"
    DEPENDS "${subject_file}" "${table_bin}" "${options_file}" ${sources}
    COMMENT "partkit: checking ${shown} against ${table}"
    VERBATIM)
  add_custom_target("${name}" ALL DEPENDS "${stamp}")
  add_dependencies("${name}" "${subject_target}" "${bin_target}")
endfunction()

# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

#[=[.md
<!-- ANCHOR: partkit_add_partition_table -->
## partkit_add_partition_table

```cmake
partkit_add_partition_table(<target> (CSV <file> | BUILTIN <name>)
    [OUTPUT <bin>] [OFFSET <n>] [CHIP <chip>] [FLASH_SIZE <size>]
    [BOOTLOADER_OFFSET <n>] [RECOVERY_BOOTLOADER_OFFSET <n>] [SECURE v1|v2]
    [NO_MD5] [EXTRA_SUBTYPES <type,name,value>...]
    [HEADER <file>] [EXTRA_SUBTYPES_HEADER <file>] [ALL])
```

Generates the binary partition table from a CSV with `partkit gen` (byte-identical to
`gen_esp32part.py`). The table is regenerated exactly when the CSV, an option or partkit
itself changes; when it is, the build log shows the table and the command to flash it.

Creates three targets:
- `<target>_bin` builds the binary (and the headers), in `ALL` if `ALL` is given. Other
  targets depend on this one.
- `<target>` builds the binary, then prints the table summary and the esptool command
  that flashes it, every time it is built (as `idf.py partition-table` does).
- `<target>-flash` writes only the table to the device (`idf.py partition-table-flash`):
  `python -m esptool --chip <chip> [-p $ESPPORT] -b ${ESPBAUD:-460800} --before default-reset
  --after hard-reset write-flash <offset> <bin>`. `ESPPORT` and `ESPBAUD` are read from the
  environment when the target runs, as idf.py does; without `ESPPORT` esptool finds the port.

Keywords:
- `CSV`: the partition CSV, relative to `CMAKE_CURRENT_SOURCE_DIR`. A path with a `;` is
  refused at configure time (CMake would split it into two list items).
- `BUILTIN`: instead of `CSV`, a built-in table by name: ESP-IDF's menuconfig choices
  (`singleapp`, `two_ota`, `two_ota_large`, ...) or an Arduino-ESP32 scheme (`default`,
  `huge_app`, `min_spiffs`, `no_ota`, ...); `partkit show --list-builtin` lists them. An
  unknown name stops configuration with the known names.
- `OUTPUT`: the binary, relative to `CMAKE_CURRENT_BINARY_DIR`; default
  `${CMAKE_CURRENT_BINARY_DIR}/partition-table.bin`.
- `OFFSET`: flash offset of the table (`CONFIG_PARTITION_TABLE_OFFSET`), default `0x8000`.
- `CHIP`: target chip, e.g. `esp32c3`; sets the bootloader offset unless
  `BOOTLOADER_OFFSET` is given, and appears in the flash command.
- `FLASH_SIZE`: flash size, e.g. `4MB`; the build fails if the partitions do not fit.
- `BOOTLOADER_OFFSET`, `RECOVERY_BOOTLOADER_OFFSET`: offsets for `bootloader` rows.
- `SECURE`: `v1` or `v2`: app partition sizes must suit secure boot.
- `NO_MD5`: no MD5 row (bootloaders older than ESP-IDF v3.1).
- `EXTRA_SUBTYPES`: extra subtype names, each `type,name,value` (value in hex), as
  ESP-IDF's `EXTRA_PARTITION_SUBTYPES`.
- `HEADER`: also write a C header with `#define PARTITION_<NAME>_OFFSET 0x...`, `_SIZE`,
  `_TYPE`, `_SUBTYPE` and `_LABEL` (the name as the table stores it, a C string for
  `esp_partition_find_first()`) per partition (names upper-cased, other characters `_`;
  two names that become the same macro are an error), relative to `CMAKE_CURRENT_BINARY_DIR`.
- `EXTRA_SUBTYPES_HEADER`: also write `ESP_PARTITION_SUBTYPE_<TYPE>_<NAME> = <value>,`
  lines for `EXTRA_SUBTYPES` (ESP-IDF's `extra_partition_subtypes.inc`), relative to
  `CMAKE_CURRENT_BINARY_DIR`.

The headers are written with the table and rewritten only when their text changes, so
code that includes them recompiles exactly when the layout (or the subtypes) changes. Make
the code's target depend on `<target>_bin` so they exist before it compiles:
`add_dependencies(app <target>_bin)` and `target_include_directories(app PRIVATE <dir>)`.
- `ALL`: build the table as part of the default build.

Properties set on `<target>` (read them with `get_target_property`): `PARTKIT_BINARY`,
`PARTKIT_CSV`, `PARTKIT_OFFSET`, `PARTKIT_CHIP`, `PARTKIT_FLASH_SIZE`,
`PARTKIT_BOOTLOADER_OFFSET`, `PARTKIT_RECOVERY_BOOTLOADER_OFFSET`, `PARTKIT_EXTRA_SUBTYPES`,
`PARTKIT_BIN_TARGET`, `PARTKIT_HEADER` and `PARTKIT_EXTRA_SUBTYPES_HEADER`. For a
`BUILTIN` table, `PARTKIT_CSV` is `builtin:<name>`.
<!-- ANCHOR_END: partkit_add_partition_table -->
#]=]
function(partkit_add_partition_table target)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_add_partition_table)
  set(options NO_MD5 ALL)
  set(one_value_keywords CSV OUTPUT OFFSET CHIP FLASH_SIZE BOOTLOADER_OFFSET
    RECOVERY_BOOTLOADER_OFFSET SECURE BUILTIN HEADER EXTRA_SUBTYPES_HEADER)
  set(multi_value_keywords EXTRA_SUBTYPES)
  cmake_parse_arguments(PARSE_ARGV 1 arg "${options}" "${one_value_keywords}"
    "${multi_value_keywords}")
  set(fn partkit_add_partition_table)
  _partkit_check_arguments(${fn})
  if(NOT DEFINED arg_CSV AND NOT DEFINED arg_BUILTIN)
    message(FATAL_ERROR "${fn}: missing required parameter `CSV` (or `BUILTIN <name>`).")
  elseif(DEFINED arg_CSV AND DEFINED arg_BUILTIN)
    message(FATAL_ERROR "${fn}: give CSV <file> or BUILTIN <name>, not both.")
  endif()
  if(TARGET "${target}-flash")
    message(FATAL_ERROR "${fn}: a target named `${target}-flash` already exists.")
  endif()
  foreach(name "${target}" "${target}_bin")
    if(TARGET "${name}")
      message(FATAL_ERROR "${fn}: a target named `${name}` already exists.")
    endif()
  endforeach()
  foreach(kw OFFSET BOOTLOADER_OFFSET RECOVERY_BOOTLOADER_OFFSET)
    _partkit_check_integer(${fn} ${kw} "${arg_${kw}}")
  endforeach()
  if(DEFINED arg_SECURE)
    string(TOLOWER "${arg_SECURE}" arg_SECURE)
    if(NOT arg_SECURE MATCHES "^v[12]$")
      message(FATAL_ERROR "${fn}: SECURE must be v1 or v2, not `${arg_SECURE}`.")
    endif()
  endif()

  _partkit_check_path(${fn} CSV "${arg_CSV}")
  _partkit_check_path(${fn} OUTPUT "${arg_OUTPUT}")
  if(DEFINED arg_BUILTIN)
    # Resolved by partkit itself (partkit.table.builtin); a bad name fails here, not later.
    set(csv "builtin:${arg_BUILTIN}")
    set(csv_depends "")
    get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
    execute_process(COMMAND ${command} gen -q "${csv}" OUTPUT_QUIET RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${fn}: BUILTIN `${arg_BUILTIN}` is not a built-in table (see above).")
    endif()
  else()
    get_filename_component(csv "${arg_CSV}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    get_source_file_property(csv_generated "${csv}" GENERATED)
    if(NOT EXISTS "${csv}" AND NOT csv_generated)
      message(FATAL_ERROR "${fn}: partition CSV `${csv}` does not exist.\n"
        "Hint: CSV paths are relative to ${CMAKE_CURRENT_SOURCE_DIR}.")
    endif()
    set(csv_depends "${csv}")
  endif()
  if(NOT arg_OUTPUT)
    set(arg_OUTPUT partition-table.bin)
  endif()
  get_filename_component(binary "${arg_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  if(NOT arg_OFFSET)
    set(arg_OFFSET 0x8000)
  endif()

  set(gen_args --offset "${arg_OFFSET}")
  set(show_args --offset "${arg_OFFSET}")
  if(arg_CHIP)
    list(APPEND gen_args --chip "${arg_CHIP}")
    list(APPEND show_args --chip "${arg_CHIP}")
  endif()
  if(NOT "${arg_BOOTLOADER_OFFSET}" STREQUAL "")
    list(APPEND gen_args --primary-bootloader-offset "${arg_BOOTLOADER_OFFSET}")
  endif()
  if(NOT "${arg_RECOVERY_BOOTLOADER_OFFSET}" STREQUAL "")
    list(APPEND gen_args --recovery-bootloader-offset "${arg_RECOVERY_BOOTLOADER_OFFSET}")
  endif()
  if(arg_NO_MD5)
    list(APPEND gen_args --disable-md5sum)
    list(APPEND show_args --disable-md5sum)
  endif()
  if(arg_FLASH_SIZE)
    list(APPEND gen_args --flash-size "${arg_FLASH_SIZE}")
    list(APPEND show_args --flash-size "${arg_FLASH_SIZE}")
  endif()
  if(arg_SECURE)
    list(APPEND gen_args --secure "${arg_SECURE}")
  endif()
  set(extra "")
  foreach(entry IN LISTS arg_EXTRA_SUBTYPES)
    string(REPLACE " " "" entry "${entry}")  # as ESP-IDF does
    list(APPEND extra "${entry}")
  endforeach()
  if(extra)
    list(APPEND gen_args --extra-partition-subtypes ${extra})
    list(APPEND show_args --extra-partition-subtypes ${extra})
  endif()
  # Headers are byproducts: rewritten only when their text changes, so with Ninja (restat)
  # and Makefiles alike only code that includes a changed header recompiles.
  set(headers "")
  foreach(kw HEADER EXTRA_SUBTYPES_HEADER)
    set(header_${kw} "")
    if(arg_${kw})
      get_filename_component(header_${kw} "${arg_${kw}}" ABSOLUTE
        BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
      list(APPEND headers "${header_${kw}}")
    endif()
  endforeach()
  if(header_HEADER)
    list(APPEND gen_args --header "${header_HEADER}")
  endif()
  if(header_EXTRA_SUBTYPES_HEADER)
    list(APPEND gen_args --subtypes-header "${header_EXTRA_SUBTYPES_HEADER}")
  endif()
  set(byproducts "")
  if(headers)
    set(byproducts BYPRODUCTS ${headers})
  endif()
  message(DEBUG "${target}: ${csv} -> ${binary} (${gen_args})")

  get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
  get_property(sources GLOBAL PROPERTY _PARTKIT_SOURCES)
  set(options_file "${CMAKE_CURRENT_BINARY_DIR}/partkit/${target}.options")
  string(REPLACE ";" "\n" options_text "${gen_args}")
  _partkit_write_if_changed("${options_file}" "${options_text}\n")
  _partkit_flash_hint(flash_hint "${arg_CHIP}" "${arg_OFFSET}" "${binary}")
  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${binary}")

  add_custom_command(OUTPUT "${binary}" ${byproducts}
    COMMAND ${command} gen -q ${gen_args} -- "${csv}" "${binary}"
    COMMAND ${command} show ${show_args} -- "${binary}"
    ${flash_hint}
    DEPENDS ${csv_depends} "${options_file}" ${sources}
    COMMENT "partkit: generating partition table ${shown}"
    VERBATIM)
  set(all "")
  if(arg_ALL)
    set(all ALL)
  endif()
  add_custom_target("${target}_bin" ${all} DEPENDS "${binary}")
  add_custom_target("${target}"
    COMMAND ${command} show ${show_args} -- "${binary}"
    ${flash_hint}
    COMMENT "partkit: partition table ${shown}"
    VERBATIM)
  add_dependencies("${target}" "${target}_bin")
  get_property(module_dir GLOBAL PROPERTY _PARTKIT_MODULE_DIR)
  add_custom_target("${target}-flash"
    COMMAND "${CMAKE_COMMAND}" "-DPYTHON=${PARTKIT_PYTHON}" "-DCHIP=${arg_CHIP}"
      "-DOFFSET=${arg_OFFSET}" "-DFILE=${binary}" -P "${module_dir}/partkit-esptool.cmake"
    COMMENT "esptool: writing ${shown} at ${arg_OFFSET}"
    USES_TERMINAL
    VERBATIM)
  add_dependencies("${target}-flash" "${target}_bin")
  set_target_properties("${target}" PROPERTIES
    PARTKIT_BINARY "${binary}"
    PARTKIT_CSV "${csv}"
    PARTKIT_OFFSET "${arg_OFFSET}"
    PARTKIT_CHIP "${arg_CHIP}"
    PARTKIT_FLASH_SIZE "${arg_FLASH_SIZE}"
    PARTKIT_BOOTLOADER_OFFSET "${arg_BOOTLOADER_OFFSET}"
    PARTKIT_RECOVERY_BOOTLOADER_OFFSET "${arg_RECOVERY_BOOTLOADER_OFFSET}"
    PARTKIT_EXTRA_SUBTYPES "${extra}"
    PARTKIT_BIN_TARGET "${target}_bin"
    PARTKIT_HEADER "${header_HEADER}"
    PARTKIT_EXTRA_SUBTYPES_HEADER "${header_EXTRA_SUBTYPES_HEADER}")
endfunction()

#[=[.md
<!-- ANCHOR: partkit_check_app_size -->
## partkit_check_app_size

```cmake
partkit_check_app_size(<app-target> APP_BIN <file> TABLE <table-target>
    [TYPE <type>] [SUBTYPE <subtype>]
    [WARN_FREE <pct%|bytes>] [FAIL_FREE <pct%|bytes>])
```

After `<app-target>` has produced the app image `APP_BIN`, runs `partkit check` on it
against the table's app slots: the whole file (padding included: esptool flashes all of
it) against every candidate slot, as ESP-IDF's `check_sizes.py` does. An app that fits no
slot fails the build with partkit's message naming the slot and the overflow, at the
slot's line in the table's CSV (`partitions.csv:6:1: error: ...`). An app built for
another chip than the table's `CHIP` fails too. The check is the target
`<app-target>_check_app_size` (in `ALL`); it reruns exactly when the image, the table or an
option changes.

- `APP_BIN`: the app `.bin`, relative to `CMAKE_CURRENT_BINARY_DIR` (required).
- `TABLE`: a target from `partkit_add_partition_table` (required).
- `TYPE`, `SUBTYPE`: which slots to check against, by name or number (default: all app
  slots except TEE).
- `WARN_FREE`, `FAIL_FREE`: free-space budgets, e.g. `10%` or `64K` (a bare number is refused: write `%` or a unit, `B` for bytes): warn, or fail the
  build, when the smallest candidate slot has less free space left.
<!-- ANCHOR_END: partkit_check_app_size -->
#]=]
function(partkit_check_app_size app_target)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_check_app_size)
  set(one_value_keywords APP_BIN TABLE TYPE SUBTYPE WARN_FREE FAIL_FREE)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "${one_value_keywords}" "")
  _partkit_check_arguments(partkit_check_app_size APP_BIN TABLE)
  if(NOT TARGET "${app_target}")
    message(FATAL_ERROR "partkit_check_app_size: `${app_target}` is not a target.")
  endif()
  _partkit_check_path(partkit_check_app_size APP_BIN "${arg_APP_BIN}")
  get_filename_component(app "${arg_APP_BIN}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  _partkit_table_property(offset partkit_check_app_size "${arg_TABLE}" PARTKIT_OFFSET)
  _partkit_table_property(extra partkit_check_app_size "${arg_TABLE}" PARTKIT_EXTRA_SUBTYPES)
  _partkit_table_property(chip partkit_check_app_size "${arg_TABLE}" PARTKIT_CHIP)
  _partkit_table_property(bl_offset partkit_check_app_size "${arg_TABLE}"
    PARTKIT_BOOTLOADER_OFFSET)
  _partkit_table_property(recovery partkit_check_app_size "${arg_TABLE}"
    PARTKIT_RECOVERY_BOOTLOADER_OFFSET)
  set(args "--app=${app}" "--offset=${offset}")
  # The table's chip: an app built for another chip fails the check.
  if(chip)
    list(APPEND args "--chip=${chip}")
  elseif(NOT "${bl_offset}" STREQUAL "")
    list(APPEND args "--bootloader-offset=${bl_offset}")
  endif()
  if(NOT "${recovery}" STREQUAL "")
    list(APPEND args "--recovery-bootloader-offset=${recovery}")
  endif()
  foreach(kw TYPE SUBTYPE WARN_FREE FAIL_FREE)
    if(NOT "${arg_${kw}}" STREQUAL "")
      string(TOLOWER "--${kw}" option)
      string(REPLACE "_" "-" option "${option}")
      list(APPEND args "${option}" "${arg_${kw}}")
    endif()
  endforeach()
  if(extra)
    list(APPEND args --extra-partition-subtypes ${extra})
  endif()
  _partkit_add_check("${app_target}_check_app_size" "${app_target}" "${app}" "${arg_TABLE}"
    "${args}")
endfunction()

#[=[.md
<!-- ANCHOR: partkit_check_bootloader_size -->
## partkit_check_bootloader_size

```cmake
partkit_check_bootloader_size(<bl-target> BOOTLOADER_BIN <file> TABLE <table-target>
    [CHIP <chip> | BOOTLOADER_OFFSET <n>])
```

After `<bl-target>` has produced the bootloader image, checks that the file ends before the
partition table (and before a recovery bootloader, if the table has one configured); a
bootloader that is too big fails the build. The check is the target
`<bl-target>_check_bootloader_size` (in `ALL`).

- `BOOTLOADER_BIN`: the bootloader `.bin`, relative to `CMAKE_CURRENT_BINARY_DIR`
  (required).
- `TABLE`: a target from `partkit_add_partition_table` (required); its offset is the limit.
- `CHIP` or `BOOTLOADER_OFFSET`: where the bootloader starts (default: the table's
  `BOOTLOADER_OFFSET`, else its `CHIP`).
<!-- ANCHOR_END: partkit_check_bootloader_size -->
#]=]
function(partkit_check_bootloader_size bl_target)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_check_bootloader_size)
  set(fn partkit_check_bootloader_size)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "BOOTLOADER_BIN;TABLE;CHIP;BOOTLOADER_OFFSET" "")
  _partkit_check_arguments(${fn} BOOTLOADER_BIN TABLE)
  if(NOT TARGET "${bl_target}")
    message(FATAL_ERROR "${fn}: `${bl_target}` is not a target.")
  endif()
  if(arg_CHIP AND NOT "${arg_BOOTLOADER_OFFSET}" STREQUAL "")
    message(FATAL_ERROR "${fn}: give CHIP or BOOTLOADER_OFFSET, not both.")
  endif()
  _partkit_check_integer(${fn} BOOTLOADER_OFFSET "${arg_BOOTLOADER_OFFSET}")
  _partkit_check_path(${fn} BOOTLOADER_BIN "${arg_BOOTLOADER_BIN}")
  get_filename_component(bl "${arg_BOOTLOADER_BIN}" ABSOLUTE BASE_DIR
    "${CMAKE_CURRENT_BINARY_DIR}")
  _partkit_table_property(offset ${fn} "${arg_TABLE}" PARTKIT_OFFSET)
  _partkit_table_property(recovery ${fn} "${arg_TABLE}" PARTKIT_RECOVERY_BOOTLOADER_OFFSET)
  if(NOT arg_CHIP AND "${arg_BOOTLOADER_OFFSET}" STREQUAL "")
    _partkit_table_property(arg_BOOTLOADER_OFFSET ${fn} "${arg_TABLE}" PARTKIT_BOOTLOADER_OFFSET)
    _partkit_table_property(arg_CHIP ${fn} "${arg_TABLE}" PARTKIT_CHIP)
  endif()
  set(args "--bootloader=${bl}" "--offset=${offset}")
  if(NOT "${arg_BOOTLOADER_OFFSET}" STREQUAL "")
    list(APPEND args "--bootloader-offset=${arg_BOOTLOADER_OFFSET}")
  elseif(arg_CHIP)
    list(APPEND args "--chip=${arg_CHIP}")
  else()
    message(FATAL_ERROR "${fn}: where does the bootloader start? "
      "Hint: pass CHIP or BOOTLOADER_OFFSET here or to partkit_add_partition_table().")
  endif()
  if(NOT "${recovery}" STREQUAL "")
    list(APPEND args "--recovery-bootloader-offset=${recovery}")
  endif()
  _partkit_add_check("${bl_target}_check_bootloader_size" "${bl_target}" "${bl}"
    "${arg_TABLE}" "${args}")
endfunction()

#[=[.md
<!-- ANCHOR: partkit_get_partition_info -->
## partkit_get_partition_info

```cmake
partkit_get_partition_info(<var> TABLE <table-target|csv>
    (NAME <name> | TYPE <type> [SUBTYPE <subtype>] | BOOT_DEFAULT)
    [INFO <field>...] [PART_LIST]
    [OFFSET <n>] [BOOTLOADER_OFFSET <n>] [RECOVERY_BOOTLOADER_OFFSET <n>] [CHIP <chip>]
    [EXTRA_SUBTYPES <type,name,value>...])
```

Looks a partition up at configure time and stores the requested fields in `<var>`, joined
by single spaces, exactly as ESP-IDF's `partition_table_get_partition_info` (parttool's
`get_partition_info`) returns them; `<var>` is empty when no partition matches. Editing
the CSV re-runs CMake so the value stays current.

- `TABLE`: a target from `partkit_add_partition_table` (its CSV and options are used), or a
  CSV/binary file relative to `CMAKE_CURRENT_SOURCE_DIR`, or `builtin:<name>`. For a file, `OFFSET` (default
  `0x8000`), `BOOTLOADER_OFFSET`, `RECOVERY_BOOTLOADER_OFFSET`, `CHIP` and `EXTRA_SUBTYPES`
  describe how to read it.
- `NAME`: the first partition with exactly this name.
- `TYPE` [`SUBTYPE`]: by exact keyword, else number (`app`, `data`, `0x40`; `ota_0`, `nvs`,
  `0x81`); without `SUBTYPE`, any subtype of the type matches (parttool requires one).
- `BOOT_DEFAULT`: the app the bootloader starts with empty otadata: factory, else the
  lowest `ota_N`.
- `INFO`: fields among `name type subtype offset size encrypted readonly`; default
  `offset size`. `type`/`subtype` are decimal, `offset`/`size` are `0x` hex,
  `encrypted`/`readonly` are `True`/`False`.
- `PART_LIST`: with `TYPE`, report every match (in table order), not just the first.

```cmake
partkit_get_partition_info(app_offset TABLE partition-table BOOT_DEFAULT INFO offset)
partkit_get_partition_info(otadata TABLE partition-table TYPE data SUBTYPE ota)  # "0xd000 0x2000"
```
<!-- ANCHOR_END: partkit_get_partition_info -->
#]=]
function(partkit_get_partition_info out_var)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_get_partition_info)
  set(fn partkit_get_partition_info)
  set(options BOOT_DEFAULT PART_LIST)
  set(one_value_keywords TABLE NAME TYPE SUBTYPE OFFSET BOOTLOADER_OFFSET
    RECOVERY_BOOTLOADER_OFFSET CHIP)
  set(multi_value_keywords INFO EXTRA_SUBTYPES)
  cmake_parse_arguments(PARSE_ARGV 1 arg "${options}" "${one_value_keywords}"
    "${multi_value_keywords}")
  _partkit_check_arguments(${fn} TABLE)
  set(selectors 0)
  foreach(kw NAME TYPE)
    if(DEFINED arg_${kw})
      math(EXPR selectors "${selectors} + 1")
    endif()
  endforeach()
  if(arg_BOOT_DEFAULT)
    math(EXPR selectors "${selectors} + 1")
  endif()
  if(NOT selectors EQUAL 1)
    message(FATAL_ERROR "${fn}: select the partition with exactly one of NAME, "
      "TYPE [SUBTYPE] or BOOT_DEFAULT.")
  endif()
  if(DEFINED arg_SUBTYPE AND NOT DEFINED arg_TYPE)
    message(FATAL_ERROR "${fn}: SUBTYPE needs TYPE.")
  endif()

  if(TARGET "${arg_TABLE}")
    foreach(kw OFFSET BOOTLOADER_OFFSET RECOVERY_BOOTLOADER_OFFSET CHIP EXTRA_SUBTYPES)
      if(DEFINED arg_${kw})
        message(FATAL_ERROR "${fn}: ${kw} comes from the table target `${arg_TABLE}`; "
          "it can only be given with a CSV file as TABLE.")
      endif()
    endforeach()
    _partkit_table_property(table ${fn} "${arg_TABLE}" PARTKIT_CSV)
    foreach(kw OFFSET BOOTLOADER_OFFSET RECOVERY_BOOTLOADER_OFFSET CHIP EXTRA_SUBTYPES)
      _partkit_table_property(arg_${kw} ${fn} "${arg_TABLE}" PARTKIT_${kw})
    endforeach()
  else()
    get_filename_component(table "${arg_TABLE}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(arg_TABLE MATCHES "^builtin:")
      set(table "${arg_TABLE}")
    else()
      _partkit_check_path(${fn} TABLE "${table}")  # it is passed on as one argument
    endif()
    if(NOT arg_TABLE MATCHES "^builtin:" AND NOT EXISTS "${table}")
      message(FATAL_ERROR "${fn}: TABLE `${arg_TABLE}` is neither a target nor an existing "
        "file (${table}).")
    endif()
    foreach(kw OFFSET BOOTLOADER_OFFSET RECOVERY_BOOTLOADER_OFFSET)
      _partkit_check_integer(${fn} ${kw} "${arg_${kw}}")
    endforeach()
  endif()
  if(NOT table MATCHES "^builtin:")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${table}")
  endif()

  set(tokens "table=${table}")
  foreach(kw OFFSET BOOTLOADER_OFFSET RECOVERY_BOOTLOADER_OFFSET CHIP NAME TYPE SUBTYPE)
    if(DEFINED arg_${kw} AND NOT "${arg_${kw}}" STREQUAL "")
      string(TOLOWER "${kw}" key)
      list(APPEND tokens "${key}=${arg_${kw}}")
    endif()
  endforeach()
  if(arg_BOOT_DEFAULT)
    list(APPEND tokens boot_default=1)
  endif()
  if(arg_PART_LIST)
    list(APPEND tokens part_list=1)
  endif()
  foreach(field IN LISTS arg_INFO)
    list(APPEND tokens "info=${field}")
  endforeach()
  foreach(entry IN LISTS arg_EXTRA_SUBTYPES)
    string(REPLACE " " "" entry "${entry}")
    list(APPEND tokens "extra=${entry}")
  endforeach()

  get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
  # partkit's diagnostics go straight to stderr, unwrapped, so `file:line:` stays clickable.
  execute_process(COMMAND ${command} buildsys partition-info ${tokens}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${fn}: partition lookup in ${table} failed (see above).")
  endif()
  message(DEBUG "${out_var} = '${out}' (${tokens})")
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

#[=[.md
<!-- ANCHOR: partkit_add_data_image -->
## partkit_add_data_image

```cmake
partkit_add_data_image(<target> TABLE <table-target> PARTITION <name> FROM <dir|csv>
    [FORMAT nvs|littlefs|fat|fat-wl] [OUTPUT <img>] [FLASH])
```

Builds the image of a data partition with `partkit data build`, at exactly the size the
table gives the partition: LittleFS or FAT from a directory, NVS from an NVS CSV
(`key,type,encoding,value`). Needs partkit's file-system extra (`pip install partkit[fs]`).
The image is rebuilt when a file in the directory (or the CSV), the table or partkit
changes: `partkit data build` writes a depfile naming every file and directory it read, so
added and removed files count too (with Makefiles this needs CMake 3.20; older versions
see the files present at configure time).

- `TABLE`: a target from `partkit_add_partition_table` (required).
- `PARTITION`: the data partition's name (required); checked at configure time.
- `FROM`: the directory or NVS CSV, relative to `CMAKE_CURRENT_SOURCE_DIR` (required).
- `FORMAT`: `nvs`, `littlefs`, `fat` (raw) or `fat-wl` (ESP-IDF's wear-levelled layout,
  what FFat mounts); default from the partition's subtype (`nvs`, `littlefs`, `fat`; a
  `spiffs` partition needs `FORMAT`). SPIFFS images are not built.
- `OUTPUT`: the image, relative to `CMAKE_CURRENT_BINARY_DIR`; default `<target>.bin`.
- `FLASH`: list the image in `flash_args` / `flasher_args.json` at the partition's offset.
  Call `partkit_add_data_image` before `partkit_add_flash_args` for this.

Creates `<target>` (in `ALL`), and sets `PARTKIT_DATA_IMAGE` (the image path),
`PARTKIT_DATA_OFFSET` and `PARTKIT_DATA_SIZE` on it.
<!-- ANCHOR_END: partkit_add_data_image -->
#]=]
function(partkit_add_data_image target)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_add_data_image)
  set(fn partkit_add_data_image)
  cmake_parse_arguments(PARSE_ARGV 1 arg "FLASH" "TABLE;PARTITION;FROM;FORMAT;OUTPUT" "")
  _partkit_check_arguments(${fn} TABLE PARTITION FROM)
  _partkit_check_path(${fn} FROM "${arg_FROM}")
  _partkit_check_path(${fn} OUTPUT "${arg_OUTPUT}")
  if(TARGET "${target}")
    message(FATAL_ERROR "${fn}: a target named `${target}` already exists.")
  endif()
  if(NOT "${arg_FORMAT}" STREQUAL "" AND NOT arg_FORMAT MATCHES "^(nvs|littlefs|fat|fat-wl)$")
    message(FATAL_ERROR "${fn}: FORMAT must be nvs, littlefs, fat or fat-wl, not `${arg_FORMAT}`.")
  endif()
  foreach(kw BINARY BIN_TARGET OFFSET EXTRA_SUBTYPES)
    _partkit_table_property(table_${kw} ${fn} "${arg_TABLE}" PARTKIT_${kw})
  endforeach()
  get_property(flashed TARGET "${arg_TABLE}" PROPERTY _PARTKIT_FLASH_ARGS_WRITTEN)
  if(arg_FLASH AND flashed)
    message(FATAL_ERROR "${fn}: partkit_add_flash_args() for `${arg_TABLE}` already ran. "
      "Hint: call partkit_add_data_image(... FLASH) before partkit_add_flash_args().")
  endif()
  partkit_get_partition_info(where TABLE "${arg_TABLE}" NAME "${arg_PARTITION}"
    INFO offset size)
  if(NOT where)
    message(FATAL_ERROR "${fn}: the table of `${arg_TABLE}` has no partition named "
      "`${arg_PARTITION}`.")
  endif()
  separate_arguments(where UNIX_COMMAND "${where}")
  list(GET where 0 part_offset)
  list(GET where 1 part_size)

  get_filename_component(from "${arg_FROM}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${from}")
    message(FATAL_ERROR "${fn}: FROM `${from}` does not exist.\n"
      "Hint: FROM is relative to ${CMAKE_CURRENT_SOURCE_DIR}.")
  endif()
  if(NOT arg_OUTPUT)
    set(arg_OUTPUT "${target}.bin")
  endif()
  get_filename_component(image "${arg_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  # What the image is made of is known when it is built: partkit writes a depfile naming
  # every file and directory under FROM (so added, changed and removed files count).
  # Makefile generators read depfiles from CMake 3.20 on; before, the files found now are
  # the dependencies (re-run CMake after adding files).
  set(inputs "")
  set(depfile_args "")
  set(depfile_option "")
  if(CMAKE_GENERATOR MATCHES "Ninja" OR NOT CMAKE_VERSION VERSION_LESS 3.20)
    set(depfile "${CMAKE_CURRENT_BINARY_DIR}/partkit/${target}.d")
    set(depfile_args DEPFILE "${depfile}")
    # Ninja matches the depfile's target against its own output path: relative to the
    # top build directory, or to this one when CMake rewrites depfiles (CMP0116 NEW).
    set(relative_to "${CMAKE_BINARY_DIR}")
    if(POLICY CMP0116)
      cmake_policy(GET CMP0116 depfile_policy)
      if(depfile_policy STREQUAL "NEW")
        set(relative_to "${CMAKE_CURRENT_BINARY_DIR}")
      endif()
    endif()
    file(RELATIVE_PATH depfile_target "${relative_to}" "${image}")
    set(depfile_option --depfile "${depfile}" --depfile-target "${depfile_target}")
  elseif(IS_DIRECTORY "${from}")
    file(GLOB_RECURSE inputs LIST_DIRECTORIES true "${from}/*")
    list(APPEND inputs "${from}")
  else()
    set(inputs "${from}")
  endif()
  set(args --partition "${arg_PARTITION}" --from "${from}" --offset "${table_OFFSET}")
  if(arg_FORMAT)
    list(APPEND args --format "${arg_FORMAT}")
  endif()
  if(table_EXTRA_SUBTYPES)
    list(APPEND args --extra-partition-subtypes ${table_EXTRA_SUBTYPES})
  endif()
  get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
  get_property(sources GLOBAL PROPERTY _PARTKIT_SOURCES)
  set(options_file "${CMAKE_CURRENT_BINARY_DIR}/partkit/${target}.options")
  string(REPLACE ";" "\n" options_text "${args}")
  _partkit_write_if_changed("${options_file}" "${options_text}\n")
  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${image}")
  add_custom_command(OUTPUT "${image}"
    COMMAND ${command} data build "${table_BINARY}" ${args} -o "${image}"
      ${depfile_option}
    ${depfile_args}
    DEPENDS ${inputs} "${table_BINARY}" "${options_file}" ${sources}
    COMMENT "partkit: data image ${shown} for partition ${arg_PARTITION}"
    VERBATIM)
  add_custom_target("${target}" ALL DEPENDS "${image}")
  add_dependencies("${target}" "${table_BIN_TARGET}")
  set_target_properties("${target}" PROPERTIES PARTKIT_DATA_IMAGE "${image}"
    PARTKIT_DATA_OFFSET "${part_offset}" PARTKIT_DATA_SIZE "${part_size}")
  if(arg_FLASH)
    set_property(TARGET "${arg_TABLE}" APPEND PROPERTY _PARTKIT_DATA_TARGETS "${target}")
    set_property(TARGET "${arg_TABLE}" APPEND PROPERTY _PARTKIT_DATA_NAMES
      "${arg_PARTITION}")
  endif()
endfunction()

#[=[.md
<!-- ANCHOR: partkit_add_flash_args -->
## partkit_add_flash_args

```cmake
partkit_add_flash_args(TABLE <table-target>
    [APP <file>] [BOOTLOADER <file>] [NO_OTADATA]
    [FLASH_MODE <mode>] [FLASH_FREQ <freq>] [FLASH_SIZE <size>]
    [DEPENDS <target>...])
```

Writes ESP-IDF's `flash_args` and `flasher_args.json` (ESP-IDF `components/esptool_py/flasher_args.json.in`) in
`CMAKE_CURRENT_BINARY_DIR`, so `python -m esptool --chip <chip> write-flash @flash_args`
(run there) flashes everything, and tools that read `flasher_args.json` work unchanged.
Files are listed as ESP-IDF lists them: bootloader, app, partition table, then
`ota_data_initial.bin` (an erased otadata image, built here) when the table has an otadata
partition, then the data images of `partkit_add_data_image(... FLASH)`. Also adds a `flash` target (not in `ALL`) that runs that esptool command
(`python -m esptool --chip <chip> [-p $ESPPORT] -b ${ESPBAUD:-460800} --before default-reset
--after hard-reset write-flash @flash_args`); as with idf.py, `ESPPORT` and `ESPBAUD` are
read from the environment when it runs.

- `TABLE`: a target from `partkit_add_partition_table` (required); its chip and offset
  are used.
- `APP`: the app image, flashed at the table's boot app (factory, else `ota_0`).
- `BOOTLOADER`: the bootloader image, flashed at the chip's bootloader offset.
- `NO_OTADATA`: do not build and list `ota_data_initial.bin`.
- `FLASH_MODE` (default `dio`), `FLASH_FREQ` (default `80m`), `FLASH_SIZE` (default: the
  table's `FLASH_SIZE`, else `keep`).
- `DEPENDS`: the targets that build `APP` and `BOOTLOADER`; `flash` builds them first.

Paths are relative to `CMAKE_CURRENT_BINARY_DIR`. In `flash_args` a path with a space or
another shell character is single-quoted, since esptool splits each line of an `@file` as
a shell would; plain paths are written as ESP-IDF writes them.
<!-- ANCHOR_END: partkit_add_flash_args -->
#]=]
function(partkit_add_flash_args)
  list(APPEND CMAKE_MESSAGE_CONTEXT partkit_add_flash_args)
  set(fn partkit_add_flash_args)
  cmake_parse_arguments(PARSE_ARGV 0 arg "NO_OTADATA"
    "TABLE;APP;BOOTLOADER;FLASH_MODE;FLASH_FREQ;FLASH_SIZE" "DEPENDS")
  _partkit_check_arguments(${fn} TABLE)
  _partkit_check_path(${fn} APP "${arg_APP}")
  _partkit_check_path(${fn} BOOTLOADER "${arg_BOOTLOADER}")
  foreach(kw BINARY BIN_TARGET CHIP OFFSET FLASH_SIZE BOOTLOADER_OFFSET)
    _partkit_table_property(table_${kw} ${fn} "${arg_TABLE}" PARTKIT_${kw})
  endforeach()
  set(mode dio)
  set(freq 80m)
  set(size keep)
  if(arg_FLASH_MODE)
    set(mode "${arg_FLASH_MODE}")
  endif()
  if(arg_FLASH_FREQ)
    set(freq "${arg_FLASH_FREQ}")
  endif()
  if(arg_FLASH_SIZE)
    set(size "${arg_FLASH_SIZE}")
  elseif(table_FLASH_SIZE)
    set(size "${table_FLASH_SIZE}")
  endif()
  set(chip "${table_CHIP}")
  if(NOT chip)
    set(chip auto)
  endif()

  # (name, offset, file) per image, in ESP-IDF's order.
  set(names "")
  set(depends "")
  if(arg_BOOTLOADER)
    set(bl_offset "${table_BOOTLOADER_OFFSET}")
    if("${bl_offset}" STREQUAL "")
      if(NOT table_CHIP)
        message(FATAL_ERROR "${fn}: the bootloader offset is unknown. "
          "Hint: give the table a CHIP or BOOTLOADER_OFFSET.")
      endif()
      # Same per-chip facts as the tool itself.
      get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
      execute_process(COMMAND ${command} buildsys bootloader-offset "${table_CHIP}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE bl_offset
        OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${fn}: unknown chip `${table_CHIP}`.")
      endif()
    endif()
    list(APPEND names bootloader)
    list(APPEND depends "${arg_BOOTLOADER}")
    set(image_bootloader_offset "${bl_offset}")
    set(image_bootloader_file "${arg_BOOTLOADER}")
  endif()
  if(arg_APP)
    partkit_get_partition_info(app_offset TABLE "${arg_TABLE}" BOOT_DEFAULT INFO offset)
    if(NOT app_offset)
      message(FATAL_ERROR "${fn}: the table has no factory or OTA app partition for APP.")
    endif()
    list(APPEND names app)
    list(APPEND depends "${arg_APP}")
    set(image_app_offset "${app_offset}")
    set(image_app_file "${arg_APP}")
  endif()
  list(APPEND names partition-table)
  set(image_partition-table_offset "${table_OFFSET}")
  set(image_partition-table_file "${table_BINARY}")
  list(APPEND depends "${table_BINARY}")
  if(NOT arg_NO_OTADATA)
    partkit_get_partition_info(otadata TABLE "${arg_TABLE}" TYPE data SUBTYPE ota
      INFO offset size)
    if(otadata)
      separate_arguments(otadata UNIX_COMMAND "${otadata}")
      list(GET otadata 0 otadata_offset)
      list(GET otadata 1 otadata_size)
      math(EXPR otadata_bytes "${otadata_size}")
      set(otadata_file "${CMAKE_CURRENT_BINARY_DIR}/ota_data_initial.bin")
      get_property(command GLOBAL PROPERTY _PARTKIT_COMMAND)
      add_custom_command(OUTPUT "${otadata_file}"
        COMMAND ${command} buildsys erased-file "${otadata_file}" "${otadata_bytes}"
        COMMENT "partkit: erased otadata image ota_data_initial.bin"
        VERBATIM)
      list(APPEND names otadata)
      set(image_otadata_offset "${otadata_offset}")
      set(image_otadata_file "${otadata_file}")
      list(APPEND depends "${otadata_file}")
    endif()
  endif()
  # Data images from partkit_add_data_image(... FLASH), at their partitions' offsets.
  get_property(data_targets TARGET "${arg_TABLE}" PROPERTY _PARTKIT_DATA_TARGETS)
  get_property(data_names TARGET "${arg_TABLE}" PROPERTY _PARTKIT_DATA_NAMES)
  set_property(TARGET "${arg_TABLE}" PROPERTY _PARTKIT_FLASH_ARGS_WRITTEN TRUE)
  list(LENGTH data_targets data_count)
  math(EXPR data_last "${data_count} - 1")
  foreach(index RANGE 0 ${data_last})  # CMake 3.16: no ZIP_LISTS
    if(index EQUAL data_count)  # RANGE 0 -1 still yields 0
      break()
    endif()
    list(GET data_targets ${index} data_target)
    list(GET data_names ${index} data_name)
    list(APPEND names "${data_name}")
    get_target_property(image_${data_name}_offset "${data_target}" PARTKIT_DATA_OFFSET)
    get_target_property(image_${data_name}_file "${data_target}" PARTKIT_DATA_IMAGE)
    list(APPEND depends "${image_${data_name}_file}")
  endforeach()

  set(args_lines "--flash-mode ${mode} --flash-freq ${freq} --flash-size ${size}")
  set(pairs "")
  set(entries "")
  foreach(name IN LISTS names)
    get_filename_component(file "${image_${name}_file}" ABSOLUTE
      BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
    file(RELATIVE_PATH rel "${CMAKE_CURRENT_BINARY_DIR}" "${file}")
    set(offset "${image_${name}_offset}")
    math(EXPR offset "${offset}" OUTPUT_FORMAT HEXADECIMAL)
    # esptool splits each argfile line as a POSIX shell would (shlex): quote unusual paths,
    # as partkit.flash.flashargs.argfile_quote does.
    set(word "${rel}")
    if(word STREQUAL "" OR word MATCHES "[^A-Za-z0-9@%+=:,./_-]")
      string(REPLACE "'" "'\"'\"'" word "${word}")
      set(word "'${word}'")
    endif()
    string(APPEND args_lines "\n${offset} ${word}")
    list(APPEND pairs "        \"${offset}\" : \"${rel}\"")
    string(APPEND entries "    \"${name}\" : { \"offset\" : \"${offset}\", \"file\" : \"${rel}\", "
      "\"encrypted\" : \"false\" },\n")
  endforeach()
  string(REPLACE ";" ",\n" pairs "${pairs}")
  string(CONCAT json
    "{\n"
    "    \"write_flash_args\" : [ \"--flash-mode\", \"${mode}\",\n"
    "                           \"--flash-size\", \"${size}\",\n"
    "                           \"--flash-freq\", \"${freq}\" ],\n"
    "    \"flash_settings\" : {\n"
    "        \"flash_mode\": \"${mode}\",\n"
    "        \"flash_size\": \"${size}\",\n"
    "        \"flash_freq\": \"${freq}\"\n"
    "    },\n"
    "    \"flash_files\" : {\n${pairs}\n    },\n"
    "${entries}"
    "    \"extra_esptool_args\" : {\n"
    "        \"after\"  : \"hard-reset\",\n"
    "        \"before\" : \"default-reset\",\n"
    "        \"stub\"   : true,\n"
    "        \"chip\"   : \"${chip}\"\n"
    "    }\n"
    "}\n")
  _partkit_write_if_changed("${CMAKE_CURRENT_BINARY_DIR}/flash_args" "${args_lines}")
  _partkit_write_if_changed("${CMAKE_CURRENT_BINARY_DIR}/flasher_args.json" "${json}")

  get_property(module_dir GLOBAL PROPERTY _PARTKIT_MODULE_DIR)
  add_custom_target(flash
    COMMAND "${CMAKE_COMMAND}" "-DPYTHON=${PARTKIT_PYTHON}" "-DCHIP=${chip}" -DFILE=@flash_args
      -P "${module_dir}/partkit-esptool.cmake"
    DEPENDS ${depends}
    WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}"
    COMMENT "esptool: flashing the images listed in flash_args"
    VERBATIM)
  add_dependencies(flash "${table_BIN_TARGET}" ${arg_DEPENDS} ${data_targets})
  if(otadata)
    add_custom_target(ota_data_initial ALL DEPENDS "${otadata_file}")
  endif()
endfunction()

list(POP_BACK CMAKE_MESSAGE_CONTEXT)
