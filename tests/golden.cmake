# Whole-model golden tests through r1run: every golden case on every CPU kernel
# set, and the KJV demo model against its transformers golden.
r1_add_test_exe(test_golden test_golden.c)
set(R1_GOLDEN_CASES tiny-sym-g32 small-actorder-g128 small-asym-tied-sharded hd128-g128)
foreach(case ${R1_GOLDEN_CASES})
  # (test_golden runs prompts with exact activations unless R1_CPU_ACT_BATCH says otherwise)
  add_test(NAME golden_cpu_${case}
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case} ${R1_TEST_DATA}/golden/${case} 1e-4)
  # int8 prompt activations (the AVX2 default, any table when forced): measured
  # rel 2.5e-2-7.7e-2 on these random models (KJV below 4.4e-3); decode stays exact
  add_test(NAME golden_cpu_i8prompt_${case}
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case} ${R1_TEST_DATA}/golden/${case} 0.1)
  set_tests_properties(golden_cpu_i8prompt_${case} PROPERTIES ENVIRONMENT R1_CPU_ACT_BATCH=i8)
  add_test(NAME golden_cpu_scalar_${case}
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case} ${R1_TEST_DATA}/golden/${case} 1e-4)
  set_tests_properties(golden_cpu_scalar_${case} PROPERTIES ENVIRONMENT R1_CPU=scalar)
  # the 8-bit head (opt-in): logits within 1.5% of max|logit| (measured 0.67-0.86%),
  # greedy tokens up to the first step whose margin is within twice that
  add_test(NAME golden_cpu_q8head_${case}
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case} ${R1_TEST_DATA}/golden/${case} 1.5e-2
            --lm-head q8)
  # every one-token call as a duo (cpu/duo.c, normally only under contention):
  # decode is bit-identical to the team's, so the same tolerance; -t 2 even on one core
  add_test(NAME golden_cpu_duo_${case}
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case} ${R1_TEST_DATA}/golden/${case} 1e-4
            -t 2)
  set_tests_properties(golden_cpu_duo_${case} PROPERTIES ENVIRONMENT R1_CPU_DUO=always)
endforeach()
add_test(NAME golden_cpu_kjv
  COMMAND test_golden $<TARGET_FILE:r1run> ${R1_SOURCE_ROOT}/models/kjv-tiny ${R1_TEST_DATA}/kjv 1e-4)
add_test(NAME golden_cpu_i8prompt_kjv
  COMMAND test_golden $<TARGET_FILE:r1run> ${R1_SOURCE_ROOT}/models/kjv-tiny ${R1_TEST_DATA}/kjv 1e-2)
set_tests_properties(golden_cpu_i8prompt_kjv PROPERTIES ENVIRONMENT R1_CPU_ACT_BATCH=i8)

# r1-mkmodel checkpoints read back by the loader: weights equal the generator's intent.
if(TARGET r1-mkmodel)
  r1_add_test_exe(test_mkmodel_load test_mkmodel_load.c ${CMAKE_SOURCE_DIR}/tools/mkmodel/mkgen.c)
  target_include_directories(test_mkmodel_load PRIVATE ${CMAKE_SOURCE_DIR}/tools/mkmodel)
  add_dependencies(test_mkmodel_load r1-mkmodel)
  add_test(NAME mkmodel_load COMMAND test_mkmodel_load $<TARGET_FILE:r1-mkmodel> ${CMAKE_CURRENT_BINARY_DIR})
endif()

# Sessions sharing one model across threads.
r1_add_test_exe(test_sessions test_sessions.c)
add_test(NAME sessions_threads COMMAND test_sessions ${R1_TEST_DATA}/golden/small-actorder-g128)
# the same with every one-token call a duo: sessions on several threads take turns at the duo
add_test(NAME sessions_threads_duo COMMAND test_sessions ${R1_TEST_DATA}/golden/small-actorder-g128)
set_tests_properties(sessions_threads_duo PROPERTIES ENVIRONMENT R1_CPU_DUO=always)
