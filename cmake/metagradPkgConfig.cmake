# SPDX-License-Identifier: MIT
# Generates and installs metagrad.pc and metagrad-openblas.pc (pkg-config) next to the CMake
# package. Their prefix is ${pcfiledir} plus a relative path, so a moved prefix still works.
# -fno-tree-slp-vectorize is the GCC 12 work-around of the top-level CMakeLists.txt: pkg-config
# cannot ask for the compiler version, and the flag costs nothing measurable (Clang takes it as
# -fno-slp-vectorize), so it is always there.
set(metagrad_pc_dir ${CMAKE_INSTALL_DATADIR}/pkgconfig)
file(RELATIVE_PATH metagrad_pc_to_prefix "/metagrad-prefix/${metagrad_pc_dir}" "/metagrad-prefix")
string(REGEX REPLACE "/$" "" metagrad_pc_to_prefix "${metagrad_pc_to_prefix}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "metagrad.pc needs a relative CMAKE_INSTALL_INCLUDEDIR (got ${CMAKE_INSTALL_INCLUDEDIR})")
endif()
set(metagrad_pc_openmp "")
if(METAGRAD_WITH_OPENMP)
  set(metagrad_pc_openmp " -fopenmp")
endif()
file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/metagrad.pc CONTENT
"prefix=\${pcfiledir}/${metagrad_pc_to_prefix}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: metagrad
Description: Header-only C++20 tensors and any-order reverse-mode autodiff (Eigen GEMM)
Version: ${PROJECT_VERSION}
Requires: eigen3 >= 3.3, nlohmann_json >= 3.2, zlib
Cflags: -std=c++20${metagrad_pc_openmp} -fno-tree-slp-vectorize -I\${includedir}
Libs:${metagrad_pc_openmp}
")
file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/metagrad-openblas.pc CONTENT
"Name: metagrad-openblas
Description: metagrad with large GEMMs through OpenBLAS
Version: ${PROJECT_VERSION}
Requires: metagrad = ${PROJECT_VERSION}, openblas
Cflags: -DMETAGRAD_WITH_OPENBLAS=1
")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/metagrad.pc ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/metagrad-openblas.pc
        DESTINATION ${metagrad_pc_dir})
unset(metagrad_pc_openmp)
