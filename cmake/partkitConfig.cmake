# Package configuration for find_package(partkit CONFIG).
#
# Installed with the Python package (site-packages/partkit/cmake, printed by
# `partkit --cmake-dir`) and as <prefix>/share/cmake/partkit, which CMake searches on its
# own when the environment's bin/ directory is on PATH. Discovery problems make
# find_package() report "not found" (an error only with REQUIRED) instead of stopping.

set(_PARTKIT_SOFT_FAIL TRUE)
include("${CMAKE_CURRENT_LIST_DIR}/partkit.cmake")
unset(_PARTKIT_SOFT_FAIL)

if(PARTKIT_DISCOVERY_ERROR)
  set(partkit_FOUND FALSE)
  set(partkit_NOT_FOUND_MESSAGE "${PARTKIT_DISCOVERY_ERROR}")
  unset(PARTKIT_DISCOVERY_ERROR)
  return()
endif()
