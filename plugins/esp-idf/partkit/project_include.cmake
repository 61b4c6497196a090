# partkit's ESP-IDF component, project level. ESP-IDF includes this file during project(),
# after Kconfig (CONFIG_* are set) and after partition_table's project_include.cmake
# (this component requires partition_table). Targets that need the app and bootloader
# targets are created by a deferred call, once the project's CMakeLists.txt is done.
#
#   idf.py build            runs partkit's checks (CONFIG_PARTKIT_CHECK_ON_BUILD)
#   idf.py partkit-check    the same check on demand; report in build/partkit/check.json
#   idf.py partkit-map      build/partkit/flash-map.svg
#
# Everything is done by the partkit Python package (`python -m partkit`) in ESP-IDF's
# Python; this file only wires commands to targets.

idf_build_get_property(_partkit_python PYTHON)
idf_build_get_property(_partkit_build_dir BUILD_DIR)

# A missing package is a configure error with the remedy, not a failure deep in the build.
execute_process(
  COMMAND ${_partkit_python} -m partkit --version
  RESULT_VARIABLE _partkit_rc OUTPUT_VARIABLE _partkit_version ERROR_VARIABLE _partkit_err
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
if(NOT _partkit_rc EQUAL 0)
  message(FATAL_ERROR
    "partkit: '${_partkit_python} -m partkit' does not run in ESP-IDF's Python environment"
    " (${_partkit_err}).\n"
    "Hint: install partkit into it: ${_partkit_python} -m pip install partkit")
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
    execute_process(
      COMMAND ${python} -m partkit parttool -q
        --partition-table-offset ${PARTITION_TABLE_OFFSET}
        --primary-bootloader-offset ${BOOTLOADER_OFFSET} ${RECOVERY_BOOTLOADER_OPTION}
        --partition-table-file ${PARTITION_CSV_PATH}
        get_partition_info ${selector} --info ${part_info} ${extra}
      OUTPUT_VARIABLE info RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0 AND NOT rc EQUAL 1)
      message(FATAL_ERROR "partkit: partition lookup in ${PARTITION_CSV_PATH} failed (see above)")
    endif()
    set(${result} "${info}" PARENT_SCOPE)
  endfunction()
endif()

function(_partkit_idf_add_targets)
  idf_build_get_property(python PYTHON)
  idf_build_get_property(build_dir BUILD_DIR)
  set(out_dir "${build_dir}/partkit")
  # Budgets and strictness (CONFIG_PARTKIT_*) are read from build/config/sdkconfig.json.
  set(check_args --idf-build-dir "${build_dir}" -o "${out_dir}/check.json")

  # What the check reads must be built first: the table, the app image (or, on the
  # linux target, the executable) and the bootloader.
  idf_build_get_property(executable EXECUTABLE)
  set(inputs)
  foreach(target partition_table_bin app gen_project_binary bootloader ${executable})
    if(TARGET ${target})
      list(APPEND inputs ${target})
    endif()
  endforeach()

  set(all)
  if(CONFIG_PARTKIT_CHECK_ON_BUILD)
    set(all ALL)
  endif()
  add_custom_target(partkit-check ${all}
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
    COMMAND ${python} -m partkit check ${check_args}
    COMMENT "partkit: checking what the build flashes"
    VERBATIM)
  add_custom_target(partkit-map
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
    COMMAND ${python} -m partkit map --idf-build-dir "${build_dir}" -o "${out_dir}/flash-map.svg"
    COMMENT "partkit: drawing ${out_dir}/flash-map.svg"
    VERBATIM)
  # What idf_ext.py's `idf.py partkit-check --fail-free ...` builds before it checks.
  add_custom_target(partkit-inputs)
  if(inputs)
    add_dependencies(partkit-inputs ${inputs})
    add_dependencies(partkit-check ${inputs})
    add_dependencies(partkit-map ${inputs})
  endif()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _partkit_idf_add_targets)
