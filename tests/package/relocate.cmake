# SPDX-License-Identifier: MIT
# The installed package works after its prefix is moved: installs BUILD_DIR to WORK_DIR/stage,
# renames that to WORK_DIR/moved, checks that no installed CMake or pkg-config file names an
# absolute path, then builds and runs tests/cmake_import against the moved copy with
# find_package(metagrad COMPONENTS OpenBLAS) and without it, and the same main.cpp with
# pkg-config's metagrad and metagrad-openblas. Each program must report the GEMM it was built with
# and link OpenBLAS exactly when it asked for it. Any failure stops with FATAL_ERROR.
#   cmake -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DGENERATOR= -DCXX_COMPILER= [-DLAUNCHER=]
#         -DPKG_CONFIG= -P relocate.cmake
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER PKG_CONFIG)
  if(NOT ${var})
    message(FATAL_ERROR "relocate.cmake: -D${var}= is missing or not found (${${var}}); PKG_CONFIG needs "
                        "pkg-config (Debian: pkgconf)")
  endif()
endforeach()
string(TIMESTAMP start "%s")
# The same paths on every run, so that ccache (LAUNCHER) hits when nothing changed.
set(stage ${WORK_DIR}/stage)
set(moved ${WORK_DIR}/moved)
set(consumer_src ${SOURCE_DIR}/tests/cmake_import)

# since_start(<var>): seconds since the script started, for the progress lines.
function(since_start var)
  string(TIMESTAMP now "%s")
  math(EXPR s "${now} - ${start}")
  set(${var} ${s} PARENT_SCOPE)
endfunction()

# run(<what> COMMAND...): runs it; stops with its output when it fails; its stdout is in run_out.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "FAILED: ${what} (exit ${rc})\n  ${cmd}\n${out}${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

# check_program(<exe> <expected GEMM line> <links OpenBLAS: ON|OFF>)
function(check_program exe gemm openblas)
  run("running ${exe}" ${exe})
  since_start(t)
  message(STATUS "[${t} s] ${exe}:\n${run_out}")
  if(NOT run_out MATCHES "GEMM: ${gemm}\n")
    message(FATAL_ERROR "FAILED: ${exe} should report \"GEMM: ${gemm}\"; it printed:\n${run_out}")
  endif()
  file(GET_RUNTIME_DEPENDENCIES EXECUTABLES ${exe} RESOLVED_DEPENDENCIES_VAR deps UNRESOLVED_DEPENDENCIES_VAR missing)
  set(linked OFF)
  if(deps MATCHES "openblas")
    set(linked ON)
  endif()
  if(NOT linked STREQUAL openblas)
    message(FATAL_ERROR "FAILED: ${exe} links OpenBLAS: ${linked}, expected ${openblas}; it loads:\n  ${deps}")
  endif()
endfunction()

# ---- install, move, and look for absolute paths ----
file(REMOVE_RECURSE ${WORK_DIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${stage})
file(RENAME ${stage} ${moved})
file(GLOB installed ${moved}/share/cmake/metagrad/* ${moved}/share/pkgconfig/*)
foreach(name metagradConfig.cmake metagradConfigVersion.cmake metagradTargets.cmake metagradOpenBLASTargets.cmake
             metagradOpenBLAS.cmake)
  if(NOT EXISTS ${moved}/share/cmake/metagrad/${name})
    message(FATAL_ERROR "FAILED: the install has no share/cmake/metagrad/${name}")
  endif()
endforeach()
foreach(name metagrad.pc metagrad-openblas.pc)
  if(NOT EXISTS ${moved}/share/pkgconfig/${name})
    message(FATAL_ERROR "FAILED: the install has no share/pkgconfig/${name}")
  endif()
endforeach()
foreach(file IN LISTS installed)
  file(STRINGS ${file} lines)
  foreach(line IN LISTS lines)
    # An absolute path starts a line, a string or a list item; "/" alone is CMake's root test.
    if(line MATCHES "(^|[\" ;(=:])/[A-Za-z_.]")
      message(FATAL_ERROR "FAILED: ${file} names an absolute path, so the prefix cannot be moved:\n  ${line}")
    endif()
  endforeach()
endforeach()
list(LENGTH installed n)
message(STATUS "installed to ${stage}, moved to ${moved}; ${n} CMake and pkg-config files, no absolute paths")

# ---- CMake consumers, with and without the OpenBLAS component; the one without also builds
# its own instantiation library from the installed sources (metagrad_add_instantiated) ----
set(launcher "")
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
foreach(openblas ON OFF)
  set(dir ${WORK_DIR}/cmake-openblas-${openblas})
  set(instantiated ON)
  if(openblas)
    set(instantiated OFF)
  endif()
  run("configuring tests/cmake_import with USE_OPENBLAS=${openblas}"
      ${CMAKE_COMMAND} -S ${consumer_src} -B ${dir} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${launcher} -DCMAKE_PREFIX_PATH=${moved} -DUSE_OPENBLAS=${openblas}
      -DUSE_INSTANTIATED=${instantiated} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  # It must have found the moved copy, not some other metagrad on this machine.
  file(STRINGS ${dir}/CMakeCache.txt found REGEX "^metagrad_DIR:")
  if(NOT found STREQUAL "metagrad_DIR:PATH=${moved}/share/cmake/metagrad")
    message(FATAL_ERROR "FAILED: the consumer found another metagrad: ${found}")
  endif()
  run("building tests/cmake_import with USE_OPENBLAS=${openblas}" ${CMAKE_COMMAND} --build ${dir})
  if(openblas)
    check_program(${dir}/metagrad_consumer OpenBLAS ON)
  else()
    check_program(${dir}/metagrad_consumer Eigen OFF)
  endif()
endforeach()

# ---- pkg-config consumers: g++ $(pkg-config --cflags --libs metagrad) main.cpp ----
foreach(pc metagrad metagrad-openblas)
  run("pkg-config ${pc}" ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${moved}/share/pkgconfig
      ${PKG_CONFIG} --cflags --libs ${pc})
  string(STRIP "${run_out}" flags)
  message(STATUS "pkg-config --cflags --libs ${pc}: ${flags}")
  string(FIND " ${flags} " " -I${moved}/share/pkgconfig/../../include " at)
  if(at EQUAL -1)
    message(FATAL_ERROR "FAILED: pkg-config ${pc} does not point into the moved prefix: ${flags}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(exe ${WORK_DIR}/pkgconfig-${pc})
  # Compiled and linked in two steps: ccache does not cache a compile that also links. -O0: the
  # flags and the link are under test here (the CMake consumers are Release), and it compiles 30 % faster.
  run("compiling main.cpp with pkg-config ${pc}" ${LAUNCHER} ${CXX_COMPILER} -O0 ${flags} -c ${consumer_src}/main.cpp
      -o ${exe}.o)
  run("linking main.o with pkg-config ${pc}" ${CXX_COMPILER} ${exe}.o ${flags} -o ${exe})
  if(pc STREQUAL "metagrad")
    check_program(${exe} Eigen OFF)
  else()
    check_program(${exe} OpenBLAS ON)
  endif()
endforeach()

since_start(seconds)
message(STATUS "relocate: the moved prefix works with CMake (with and without OpenBLAS) and pkg-config, in ${seconds} s")
