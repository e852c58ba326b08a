# SPDX-License-Identifier: MIT
# Compiles SOURCE with -fsyntax-only (cmake -P). With EXPECT empty the compile must succeed;
# otherwise it must fail with a diagnostic matching the regex EXPECT, so a failure for an
# unrelated reason does not count as the expected rejection.
# Inputs: COMPILER, SOURCE, INCLUDES (directories joined by '|'), EXPECT.
string(REPLACE "|" ";" include_dirs "${INCLUDES}")
set(args -std=c++20 -fsyntax-only)
foreach(dir IN LISTS include_dirs)
  list(APPEND args "-I${dir}")
endforeach()
execute_process(COMMAND "${COMPILER}" ${args} "${SOURCE}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(EXPECT STREQUAL "")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} must compile but did not:\n${err}")
  endif()
  message(STATUS "compiled, as required: ${SOURCE}")
else()
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} compiled but must not")
  endif()
  if(NOT err MATCHES "${EXPECT}")
    message(FATAL_ERROR "${SOURCE} failed to compile, but not with a diagnostic matching '${EXPECT}':\n${err}")
  endif()
  message(STATUS "rejected, as required: ${SOURCE}")
endif()
