# Version check for find_package(partkit <version> CONFIG).
#
# The version is read from the package's __init__.py, its single source, wherever this
# file lives: the installed package (partkit/cmake), a source checkout (cmake/), or the
# shared-data copy (<prefix>/share/cmake/partkit). 0.x releases are compatible within
# the same minor version, later ones within the same major version.

set(_partkit_inits
  "${CMAKE_CURRENT_LIST_DIR}/../__init__.py"
  "${CMAKE_CURRENT_LIST_DIR}/../core/partkit/__init__.py")
file(GLOB _partkit_shared_inits
  "${CMAKE_CURRENT_LIST_DIR}/../../../lib/python3*/site-packages/partkit/__init__.py"
  "${CMAKE_CURRENT_LIST_DIR}/../../../Lib/site-packages/partkit/__init__.py")
list(APPEND _partkit_inits ${_partkit_shared_inits})

set(PACKAGE_VERSION "")
foreach(_partkit_init IN LISTS _partkit_inits)
  if(EXISTS "${_partkit_init}")
    file(STRINGS "${_partkit_init}" _partkit_line REGEX "^__version__ *= *")
    if(_partkit_line MATCHES "\"([^\"]+)\"")
      set(PACKAGE_VERSION "${CMAKE_MATCH_1}")
      break()
    endif()
  endif()
endforeach()

if(PACKAGE_VERSION STREQUAL "")
  # A vendored copy of the module alone: partkitConfig.cmake checks the version of the
  # partkit it finds instead.
  set(PACKAGE_VERSION "unknown")
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _partkit_have "${PACKAGE_VERSION}")
  set(_partkit_have_major "${CMAKE_MATCH_1}")
  set(_partkit_have_minor "${CMAKE_MATCH_2}")
  if(PACKAGE_FIND_VERSION_MAJOR EQUAL 0)
    if(_partkit_have_major EQUAL 0 AND _partkit_have_minor EQUAL PACKAGE_FIND_VERSION_MINOR)
      set(PACKAGE_VERSION_COMPATIBLE TRUE)
    endif()
  elseif(_partkit_have_major EQUAL PACKAGE_FIND_VERSION_MAJOR)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()

unset(_partkit_inits)
unset(_partkit_shared_inits)
unset(_partkit_init)
unset(_partkit_line)
unset(_partkit_have)
unset(_partkit_have_major)
unset(_partkit_have_minor)
