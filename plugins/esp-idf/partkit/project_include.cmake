# partkit's ESP-IDF component, project level. ESP-IDF includes this file during project(),
# after Kconfig (CONFIG_* are set) and after partition_table's project_include.cmake
# (this component requires partition_table). Targets that need the app and bootloader
# targets are created by a deferred call, once the project's CMakeLists.txt is done.
# ESP-IDF includes it only when the component is in the build: on a MINIMAL_BUILD project
# main must require it (main/idf_component.yml or PRIV_REQUIRES partkit; docs/esp-idf.md).
#
#   idf.py build            runs partkit's checks (CONFIG_PARTKIT_CHECK_ON_BUILD), before
#                           ESP-IDF's app and bootloader size checks
#   idf.py partkit-check    the same check on demand; report in build/partkit/check.json
#   idf.py partkit-map      build/partkit/flash-map.svg
#
# Everything is done by the partkit Python package (`python -m partkit`) in ESP-IDF's
# Python; this file only wires commands to targets.

idf_build_get_property(_partkit_python PYTHON)
idf_build_get_property(_partkit_build_dir BUILD_DIR)

# A missing package is a configure error with the remedy, not a failure deep in the build.
# Every `python -m partkit` runs in build/partkit (the reports' directory): from the build
# directory itself, `-m` would import build/partkit as the package and fail.
set(_partkit_out_dir "${_partkit_build_dir}/partkit")
file(MAKE_DIRECTORY "${_partkit_out_dir}")
execute_process(
  COMMAND ${_partkit_python} -m partkit --version
  WORKING_DIRECTORY "${_partkit_out_dir}"
  RESULT_VARIABLE _partkit_rc OUTPUT_VARIABLE _partkit_version ERROR_VARIABLE _partkit_err
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
if(NOT _partkit_rc EQUAL 0)
  message(FATAL_ERROR
    "partkit: '${_partkit_python} -m partkit' does not run in ESP-IDF's Python environment"
    " (${_partkit_err}).\n"
    "Hint: install partkit into it: ${_partkit_python} -m pip install partkit.")
endif()
message(STATUS "partkit: ${_partkit_version} (ESP-IDF component ${CMAKE_CURRENT_LIST_DIR})")

if(CONFIG_PARTKIT_REPLACE_CHECK_SIZES)
  # Read by partition_table_add_check_size_target and friends when IDF creates
  # app_check_size / bootloader_check_size (same command line as check_sizes.py).
  set(PARTITION_TABLE_CHECK_SIZES_TOOL_PATH "${CMAKE_CURRENT_LIST_DIR}/check_sizes.py")
endif()

if(CONFIG_PARTKIT_PARTITION_INFO)
  # Same contract as ESP-IDF's function: parttool's selector arguments in, parttool's
  # get_partition_info line out (empty when nothing matches).
  function(partition_table_get_partition_info result get_part_info_args part_info)
    idf_build_get_property(python PYTHON)
    idf_build_get_property(extra_subtypes EXTRA_PARTITION_SUBTYPES)
    separate_arguments(selector UNIX_COMMAND "${get_part_info_args}")
    set(extra)
    if(extra_subtypes)
      string(REPLACE " " "" extra_subtypes "${extra_subtypes}")
      set(extra --extra-partition-subtypes ${extra_subtypes})
    endif()
    idf_build_get_property(build_dir BUILD_DIR)
    set(bootloader)
    if(NOT "${BOOTLOADER_OFFSET}" STREQUAL "")  # ESP-IDF v5.1 leaves it unset here
      set(bootloader --primary-bootloader-offset ${BOOTLOADER_OFFSET})
    endif()
    execute_process(
      WORKING_DIRECTORY "${build_dir}/partkit"
      COMMAND ${python} -m partkit parttool
        --partition-table-offset ${PARTITION_TABLE_OFFSET}
        ${bootloader} ${RECOVERY_BOOTLOADER_OPTION}
        --partition-table-file ${PARTITION_CSV_PATH}
        get_partition_info ${selector} --info ${part_info} ${extra}
      OUTPUT_VARIABLE info ERROR_VARIABLE why RESULT_VARIABLE rc
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0 AND NOT rc EQUAL 1)
      # partkit's diagnostic in the message itself: idf.py v5.x does not always show
      # a child's stderr when configuration fails.
      message(FATAL_ERROR "partkit: partition lookup in ${PARTITION_CSV_PATH} failed:\n${why}")
    elseif(why)
      message(NOTICE "${why}")  # as the tool printed it (warnings about the table)
    endif()
    set(${result} "${info}" PARENT_SCOPE)
  endfunction()
endif()

function(_partkit_idf_add_targets)
  idf_build_get_property(python PYTHON)
  idf_build_get_property(build_dir BUILD_DIR)
  set(out_dir "${build_dir}/partkit")
  # Budgets and strictness (CONFIG_PARTKIT_*) are read from build/config/sdkconfig.json,
  # extra subtypes from build/config/extra_partition_subtypes.inc.
  set(check_args --idf-build-dir "${build_dir}" -o "${out_dir}/check.json")

  # What the check reads must be built first: the table, the app image (or, on the
  # linux target, the executable), the bootloader, the extra-subtypes header. Not `app`:
  # it comes after ESP-IDF's app_check_size, which must come after partkit's check.
  idf_build_get_property(executable EXECUTABLE)
  set(app_input gen_project_binary)
  if(NOT TARGET gen_project_binary)
    set(app_input app)
  endif()
  set(inputs)
  foreach(target partition_table_bin ${app_input} bootloader extra_subtype_hdr ${executable})
    if(TARGET ${target})
      list(APPEND inputs ${target})
    endif()
  endforeach()

  set(all)
  if(CONFIG_PARTKIT_CHECK_ON_BUILD)
    set(all ALL)
  endif()
  add_custom_target(partkit-check ${all}
    COMMAND ${python} -m partkit check -q ${check_args}
    WORKING_DIRECTORY "${out_dir}"
    COMMENT "partkit: checking what the build flashes"
    VERBATIM)
  add_custom_target(partkit-map
    COMMAND ${python} -m partkit map --idf-build-dir "${build_dir}" -o "${out_dir}/flash-map.svg"
    WORKING_DIRECTORY "${out_dir}"
    COMMENT "partkit: drawing ${out_dir}/flash-map.svg"
    VERBATIM)
  # What idf_ext.py's `idf.py partkit-check --fail-free ...` builds before it checks.
  add_custom_target(partkit-inputs)
  if(inputs)
    add_dependencies(partkit-inputs ${inputs})
    add_dependencies(partkit-check ${inputs})
    add_dependencies(partkit-map ${inputs})
  endif()

  if(CONFIG_PARTKIT_CHECK_ON_BUILD)
    # partkit speaks first: ESP-IDF's app size check (ESP-IDF's text, no CSV line) runs
    # only after partkit's check passed.
    if(TARGET app_check_size)
      add_dependencies(app_check_size partkit-check)
    endif()
  endif()
  if(CONFIG_PARTKIT_CHECK_ON_BUILD OR CONFIG_PARTKIT_REPLACE_CHECK_SIZES)
    # ESP-IDF's bootloader check lives in the subproject, out of reach of
    # PARTITION_TABLE_CHECK_SIZES_TOOL_PATH: the replacement needs the hook as well.
    _partkit_idf_hook_bootloader()
  endif()
endfunction()

# The bootloader is a separate CMake project (an ExternalProject) that checks its own size
# while it builds, before anything in this project runs. A step between its configure and
# build steps reconfigures it with bootloader_hook.cmake as CMAKE_PROJECT_INCLUDE, which
# puts partkit's bootloader check before ESP-IDF's bootloader_check_size there. The step
# runs only when the subproject's configure step has run (first build, reconfigure).
function(_partkit_idf_hook_bootloader)
  if(NOT TARGET bootloader)
    return()  # linux target, or a project without the bootloader subproject
  endif()
  get_property(is_external TARGET bootloader PROPERTY _EP_BINARY_DIR SET)
  if(NOT is_external)
    return()
  endif()
  include(ExternalProject)
  ExternalProject_Get_Property(bootloader BINARY_DIR)
  get_property(component_dir GLOBAL PROPERTY PARTKIT_IDF_COMPONENT_DIR)
  ExternalProject_Add_Step(bootloader partkit_hook
    COMMAND ${CMAKE_COMMAND}
      "-DCMAKE_PROJECT_INCLUDE=${component_dir}/bootloader_hook.cmake"
      "-DPARTKIT_CHECK_SIZES=${component_dir}/check_sizes.py"
      "${BINARY_DIR}"
    COMMENT "partkit: adding its bootloader check to the bootloader subproject"
    DEPENDEES configure
    DEPENDERS build
    WORKING_DIRECTORY "${BINARY_DIR}")
endfunction()

set_property(GLOBAL PROPERTY PARTKIT_IDF_COMPONENT_DIR "${CMAKE_CURRENT_LIST_DIR}")
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _partkit_idf_add_targets)
