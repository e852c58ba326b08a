# Run by ctest: fails when README.md does not show examples/01_readme_example.cpp's code (the
# lines between its README-BEGIN and README-END markers) verbatim, so the README cannot drift from
# the program that is compiled and run.
#   cmake -DREADME=<README.md> -DEXAMPLE=<01_readme_example.cpp> -P check_readme_example.cmake
file(READ "${EXAMPLE}" source)
string(REGEX MATCH "// README-BEGIN\n(.*)// README-END" block "${source}")
if(NOT block)
  message(FATAL_ERROR "${EXAMPLE} has no README-BEGIN ... README-END block")
endif()
file(READ "${README}" readme)
string(FIND "${readme}" "${CMAKE_MATCH_1}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md's example is not the code in ${EXAMPLE} (between README-BEGIN and README-END); "
                      "paste that block into README.md's ```cpp section")
endif()
message(STATUS "README.md shows ${EXAMPLE} verbatim")
