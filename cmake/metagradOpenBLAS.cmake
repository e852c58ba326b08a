# SPDX-License-Identifier: MIT
# Defines the imported target OpenBLAS::OpenBLAS on the machine that runs it and sets
# metagrad_OpenBLAS_FOUND. Included by the top-level CMakeLists.txt and, installed, by
# metagradConfig.cmake for COMPONENTS OpenBLAS, so OpenBLAS's paths are always those of the machine
# that configures, never baked in by the one that installed metagrad. Debian 12's OpenBLASConfig.cmake
# (0.3.21) sets only OpenBLAS_INCLUDE_DIRS and OpenBLAS_LIBRARIES; newer ones define the target.
set(metagrad_OpenBLAS_FOUND FALSE)
if(NOT TARGET OpenBLAS::OpenBLAS)
  find_package(OpenBLAS CONFIG QUIET)
endif()
if(NOT TARGET OpenBLAS::OpenBLAS)
  if(OpenBLAS_FOUND)
    set(metagrad_openblas_library "${OpenBLAS_LIBRARIES}")
    set(metagrad_openblas_include "${OpenBLAS_INCLUDE_DIRS}")
  else()
    # Distributions without OpenBLAS's CMake config: the library and its cblas.h by name.
    find_library(metagrad_OpenBLAS_LIBRARY NAMES openblas)
    find_path(metagrad_OpenBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
    set(metagrad_openblas_library "${metagrad_OpenBLAS_LIBRARY}")
    set(metagrad_openblas_include "${metagrad_OpenBLAS_INCLUDE_DIR}")
  endif()
  if(metagrad_openblas_library AND metagrad_openblas_include)
    add_library(OpenBLAS::OpenBLAS INTERFACE IMPORTED)
    set_target_properties(OpenBLAS::OpenBLAS PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${metagrad_openblas_include}"
                                                        INTERFACE_LINK_LIBRARIES "${metagrad_openblas_library}")
  endif()
  unset(metagrad_openblas_library)
  unset(metagrad_openblas_include)
endif()
if(TARGET OpenBLAS::OpenBLAS)
  set(metagrad_OpenBLAS_FOUND TRUE)
endif()
