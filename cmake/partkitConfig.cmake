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

# The partkit that will actually run must satisfy the request too (it can differ from
# this file's package when PARTKIT_PYTHON points elsewhere, or for a vendored module).
if(partkit_FIND_VERSION AND PARTKIT_VERSION VERSION_LESS partkit_FIND_VERSION)
  set(partkit_FOUND FALSE)
  string(CONCAT partkit_NOT_FOUND_MESSAGE "partkit ${PARTKIT_VERSION} (${PARTKIT_PYTHON}) "
    "is older than the requested ${partkit_FIND_VERSION}.\n"
    "Hint: upgrade it (pip install -U partkit) or set PARTKIT_PYTHON.")
endif()
