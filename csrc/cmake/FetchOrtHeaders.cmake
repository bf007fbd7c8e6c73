# Finds the onnxruntime C/C++ headers the custom-op library compiles against (it uses the headers only and
# links no onnxruntime library). Sets ORT_INCLUDE_DIR to a directory holding onnxruntime_c_api.h and
# onnxruntime_cxx_api.h of onnxruntime 1.21 or newer, in this order:
#
#   1. ORT_INCLUDE_DIR, as a CMake variable (-DORT_INCLUDE_DIR=...) or an environment variable;
#   2. headers fetched earlier into this build directory;
#   3. an installed libonnxruntime-dev (/usr/include/onnxruntime);
#   4. Debian trixie's libonnxruntime-dev, downloaded at configure time by fetch_ort_headers.sh (apt with a
#      private configuration: no root, no change to the system) and unpacked into the build directory.
#
# Anything else is a configure error that says what to do.

set(_ORT_MIN_API_VERSION 21)
set(_ORT_FETCH_DIR "${CMAKE_BINARY_DIR}/_ort_headers")
set(_ORT_FETCHED_INCLUDE "${_ORT_FETCH_DIR}/root/usr/include/onnxruntime")

# Sets ${result} to TRUE if ${dir} holds usable headers, else FALSE and ${reason} to why not.
function(_ort_headers_usable dir result reason)
  set(${result} FALSE PARENT_SCOPE)
  foreach(header onnxruntime_c_api.h onnxruntime_cxx_api.h onnxruntime_cxx_inline.h)
    if(NOT EXISTS "${dir}/${header}")
      set(${reason} "${dir}/${header} does not exist" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  file(STRINGS "${dir}/onnxruntime_c_api.h" _define REGEX "^#define ORT_API_VERSION [0-9]+")
  string(REGEX MATCH "[0-9]+" _version "${_define}")
  if(NOT _version OR _version LESS ${_ORT_MIN_API_VERSION})
    set(${reason} "${dir}/onnxruntime_c_api.h has ORT_API_VERSION '${_version}', need ${_ORT_MIN_API_VERSION} or newer (onnxruntime >= 1.21)" PARENT_SCOPE)
    return()
  endif()
  set(${result} TRUE PARENT_SCOPE)
endfunction()

set(_ORT_HELP "Set ORT_INCLUDE_DIR (environment variable, or -DORT_INCLUDE_DIR=... for CMake; with pip: \
ORT_INCLUDE_DIR=/path pip install ...) to a directory holding onnxruntime_c_api.h, onnxruntime_cxx_api.h and \
onnxruntime_cxx_inline.h of onnxruntime 1.21 or newer (for example the include/ directory of an onnxruntime \
release archive), or install Debian's libonnxruntime-dev (trixie or newer), which puts them in \
/usr/include/onnxruntime.")

if(NOT ORT_INCLUDE_DIR AND DEFINED ENV{ORT_INCLUDE_DIR} AND NOT "$ENV{ORT_INCLUDE_DIR}" STREQUAL "")
  set(ORT_INCLUDE_DIR "$ENV{ORT_INCLUDE_DIR}")
endif()

if(ORT_INCLUDE_DIR)
  _ort_headers_usable("${ORT_INCLUDE_DIR}" _ok _why)
  if(NOT _ok)
    message(FATAL_ERROR "ORT_INCLUDE_DIR=${ORT_INCLUDE_DIR} is not usable: ${_why}.\n${_ORT_HELP}")
  endif()
  set(_ORT_SOURCE "ORT_INCLUDE_DIR")
else()
  _ort_headers_usable("${_ORT_FETCHED_INCLUDE}" _ok _why)
  if(_ok)
    set(ORT_INCLUDE_DIR "${_ORT_FETCHED_INCLUDE}")
    set(_ORT_SOURCE "fetched earlier into the build directory")
  else()
    _ort_headers_usable("/usr/include/onnxruntime" _ok _why)
    if(_ok)
      set(ORT_INCLUDE_DIR "/usr/include/onnxruntime")
      set(_ORT_SOURCE "installed libonnxruntime-dev")
    else()
      message(STATUS "onnxruntime headers: downloading Debian's libonnxruntime-dev (set ORT_INCLUDE_DIR to skip)")
      execute_process(
        COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/fetch_ort_headers.sh" "${_ORT_FETCH_DIR}"
        RESULT_VARIABLE _fetch_result
        OUTPUT_VARIABLE _fetch_output
        ERROR_VARIABLE _fetch_error
        OUTPUT_STRIP_TRAILING_WHITESPACE
        TIMEOUT 600)
      _ort_headers_usable("${_ORT_FETCHED_INCLUDE}" _ok _why)
      if(NOT _fetch_result EQUAL 0 OR NOT _ok)
        message(FATAL_ERROR "Could not find or download the onnxruntime headers.\n"
                            "Downloading Debian's libonnxruntime-dev failed (${_fetch_result}):\n${_fetch_error}\n"
                            "${_ORT_HELP}")
      endif()
      set(ORT_INCLUDE_DIR "${_ORT_FETCHED_INCLUDE}")
      set(_ORT_SOURCE "downloaded Debian libonnxruntime-dev")
    endif()
  endif()
endif()

file(STRINGS "${ORT_INCLUDE_DIR}/onnxruntime_c_api.h" _define REGEX "^#define ORT_API_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+" ORT_HEADERS_API_VERSION "${_define}")
message(STATUS "onnxruntime headers: ${ORT_INCLUDE_DIR} (API version ${ORT_HEADERS_API_VERSION}; ${_ORT_SOURCE})")
