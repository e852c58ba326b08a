# cmake -DNM=... -DHEADER_ONLY=exe -DEXTERN=exe -DHEADER_ONLY_OBJECTS=o -DEXTERN_OBJECTS=o -P this:
# both programs succeed and print the same; the header-only object defines ops instantiated for
# float/double (metagrad::tanh<double>(...), metagrad::detail::...) and the extern one none.
foreach(var NM HEADER_ONLY EXTERN HEADER_ONLY_OBJECTS EXTERN_OBJECTS)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_extern_templates.cmake: -D${var}=... is required")
  endif()
endforeach()

foreach(mode HEADER_ONLY EXTERN)
  execute_process(COMMAND ${${mode}} RESULT_VARIABLE rc OUTPUT_VARIABLE out_${mode} ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${${mode}} failed (${rc}):\n${out_${mode}}${err}")
  endif()
endforeach()
if(NOT out_HEADER_ONLY STREQUAL out_EXTERN)
  message(FATAL_ERROR "extern-template build prints\n${out_EXTERN}\nbut the header-only build prints\n${out_HEADER_ONLY}")
endif()
message(STATUS "both builds print:\n${out_EXTERN}")

# Function templates of namespace metagrad (or metagrad::detail) specialised for float or double.
set(op_instance " metagrad::(detail::)?[a-z_0-9]+<(float|double)>\\(")
foreach(mode HEADER_ONLY EXTERN)
  execute_process(COMMAND ${NM} -C --defined-only ${${mode}_OBJECTS} RESULT_VARIABLE rc OUTPUT_VARIABLE syms ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${${mode}_OBJECTS}: ${err}")
  endif()
  string(REGEX MATCHALL "[^\n]*${op_instance}[^\n]*" found_${mode} "${syms}")
  list(LENGTH found_${mode} n_${mode})
endforeach()
if(n_HEADER_ONLY EQUAL 0)
  message(FATAL_ERROR "the header-only object defines no op instances: the symbol pattern no longer matches, so this check would pass vacuously")
endif()
if(NOT n_EXTERN EQUAL 0)
  list(JOIN found_EXTERN "\n" found)
  message(FATAL_ERROR "the extern-template object still instantiates ${n_EXTERN} ops itself (add them to "
                      "include/metagrad/instantiation_list.inc, or they were made inline):\n${found}")
endif()
message(STATUS "op instances defined: header-only ${n_HEADER_ONLY}, extern-template 0")
