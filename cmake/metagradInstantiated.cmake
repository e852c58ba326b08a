# metagrad_add_instantiated(<name> LINK <targets>... [PRIVATE <targets>...]) adds a STATIC library
# <name> with metagrad's ops, creation functions and autograd engine compiled once for float and
# double (metagrad/instantiate_{float,double}.hpp, one TU each so they build in parallel). Its
# users get METAGRAD_EXTERN_TEMPLATES and a force-included metagrad/extern_templates.hpp, so
# their TUs call these copies instead of instantiating every op again. It is built in the calling
# project, with that project's flags: its copies replace the ones every user TU would have made,
# so they must agree on -march and METAGRAD_WITH_OPENBLAS (LINK metagrad::openblas for OpenBLAS).
# Works in this source tree and from an installed package (the sources sit next to this file).
# The sources sit in instantiate/ beside this file, in the source tree and when installed.
set(_metagrad_instantiate_dir "${CMAKE_CURRENT_LIST_DIR}/instantiate")

function(metagrad_add_instantiated name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "LINK;PRIVATE")
  if(NOT arg_LINK)
    message(FATAL_ERROR "metagrad_add_instantiated(${name}): LINK metagrad::metagrad or metagrad::openblas is required")
  endif()
  add_library(${name} STATIC EXCLUDE_FROM_ALL "${_metagrad_instantiate_dir}/float.cpp" "${_metagrad_instantiate_dir}/double.cpp")
  target_link_libraries(${name} PUBLIC ${arg_LINK} PRIVATE ${arg_PRIVATE})
  target_compile_definitions(${name} INTERFACE METAGRAD_EXTERN_TEMPLATES)
  target_compile_options(${name} INTERFACE "$<IF:$<CXX_COMPILER_ID:MSVC>,/FI,-include>metagrad/extern_templates.hpp")
endfunction()
