# Runs `esptool write-flash` for partkit's flash targets (cmake -P this file), honouring the
# ESPPORT and ESPBAUD environment variables at build time, as idf.py's flash targets do.
#
#   cmake -DPYTHON=<python> -DCHIP=<chip|auto> [-DOFFSET=<offset>] -DFILE=<file|@argfile>
#         -P partkit-esptool.cmake
#
# Without ESPPORT, esptool picks the port itself (or from its own ESPTOOL_PORT); the baud
# rate is ESPBAUD, else 460800 (idf.py's default).

cmake_minimum_required(VERSION 3.16)
foreach(var PYTHON FILE)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "partkit-esptool.cmake: ${var} is not set")
  endif()
endforeach()
if("${CHIP}" STREQUAL "")
  set(CHIP auto)
endif()
set(baud 460800)
if(NOT "$ENV{ESPBAUD}" STREQUAL "")
  set(baud "$ENV{ESPBAUD}")
endif()
set(port_args "")
if(NOT "$ENV{ESPPORT}" STREQUAL "")
  set(port_args -p "$ENV{ESPPORT}")
endif()
set(flash_args ${OFFSET} "${FILE}")
set(command "${PYTHON}" -m esptool --chip "${CHIP}" ${port_args} -b "${baud}"
  --before default-reset --after hard-reset write-flash ${flash_args})
list(JOIN command " " shown)
message(STATUS "Running: ${shown}")
execute_process(COMMAND ${command} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "esptool failed (${rc}).\n"
    "Hint: set ESPPORT to the serial port (and ESPBAUD to a slower rate if the link is "
    "unreliable).")
endif()
