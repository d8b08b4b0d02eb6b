# Sampler: methods, statistics, reproducibility, errors, large-vocab fast path vs
# a full-sort reference, and a micro-benchmark printed to the test log.
r1_add_test_exe(test_sampler ${CMAKE_CURRENT_LIST_DIR}/test_sampler.c)
add_test(NAME sampler COMMAND test_sampler)
set_tests_properties(sampler PROPERTIES TIMEOUT 300)
