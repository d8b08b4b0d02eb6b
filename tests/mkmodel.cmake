# r1-mkmodel: runs the generator on small cases and reads the checkpoints back with an
# independent safetensors reader; element values are compared with tools/mkmodel/mkgen.c.
if(TARGET r1-mkmodel)
  set(R1_MKMODEL_DIR ${CMAKE_SOURCE_DIR}/tools/mkmodel)
  r1_add_test_exe(test_mkmodel ${CMAKE_CURRENT_LIST_DIR}/test_mkmodel.c
    ${R1_MKMODEL_DIR}/mkgen.c ${R1_MKMODEL_DIR}/mklayout.c)
  target_include_directories(test_mkmodel PRIVATE ${R1_MKMODEL_DIR})
  add_dependencies(test_mkmodel r1-mkmodel)
  foreach(case units tiny_small sharded_asym_actorder tiny_default real_shapes bad_flags)
    add_test(NAME mkmodel_${case}
      COMMAND test_mkmodel $<TARGET_FILE:r1-mkmodel> ${CMAKE_CURRENT_BINARY_DIR}/mkmodel_tmp ${case})
    set_tests_properties(mkmodel_${case} PROPERTIES TIMEOUT 300)
  endforeach()
endif()
