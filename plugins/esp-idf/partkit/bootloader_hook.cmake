# partkit's check inside ESP-IDF's bootloader subproject (CMAKE_PROJECT_INCLUDE, added by the
# partkit component's project_include.cmake when it reconfigures the subproject).
#
# ESP-IDF checks the bootloader's size in the subproject (bootloader_check_size), so a check
# in the main project would come after ESP-IDF's message. This file makes partkit's check
# (its CSV/sdkconfig-line message plus ESP-IDF's own lines) a prerequisite of that target:
# when the bootloader does not fit, partkit's message is the first and the build stops there.
# When it fits, partkit's check prints nothing: ESP-IDF's check runs next and prints the
# size line (same file size, same room), once per build.

include_guard(GLOBAL)  # CMake includes it at every project() call; one hook is enough

function(_partkit_bootloader_hook)
  if(NOT TARGET bootloader_check_size OR NOT TARGET gen_project_binary)
    return()  # an ESP-IDF without the bootloader size check: nothing to precede
  endif()
  idf_build_get_property(python PYTHON)
  idf_build_get_property(build_dir BUILD_DIR)
  idf_build_get_property(project_bin PROJECT_BIN)  # v6.0; a variable in v5.x
  if(NOT project_bin)
    set(project_bin "${PROJECT_BIN}")
  endif()
  if(NOT project_bin)
    set(project_bin "${CMAKE_PROJECT_NAME}.bin")
  endif()
  set(offset "${BOOTLOADER_OFFSET}")  # what ESP-IDF's own bootloader check is given
  if("${offset}" STREQUAL "")
    set(offset "${CONFIG_BOOTLOADER_OFFSET_IN_FLASH}")
  endif()
  add_custom_target(partkit_bootloader_check
    COMMAND ${python} "${PARTKIT_CHECK_SIZES}" --offset ${PARTITION_TABLE_OFFSET}
      bootloader --partkit-quiet --partkit-sdkconfig "${SDKCONFIG}" ${offset}
      "${build_dir}/${project_bin}"
    DEPENDS gen_project_binary
    WORKING_DIRECTORY "${build_dir}"
    VERBATIM)
  add_dependencies(bootloader_check_size partkit_bootloader_check)
endfunction()

if(PARTKIT_CHECK_SIZES AND BOOTLOADER_BUILD)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _partkit_bootloader_hook)
endif()
