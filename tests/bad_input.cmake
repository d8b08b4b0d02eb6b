# Malformed checkpoints, bad flags and out-of-range ids give one clear error line.
r1_add_test_exe(test_bad_input test_bad_input.c)
add_test(NAME bad_input COMMAND test_bad_input $<TARGET_FILE:r1run>
  ${R1_TEST_DATA}/golden/tiny-sym-g32 ${R1_TEST_DATA}/golden/small-asym-tied-sharded)

# Random corruption (header flips, truncation, data bytes, config.json) never crashes.
r1_add_test_exe(test_fuzz_load test_fuzz_load.c)
add_test(NAME fuzz_load COMMAND test_fuzz_load ${R1_TEST_DATA}/golden/small-actorder-g128
  ${CMAKE_CURRENT_BINARY_DIR}/fuzz_tmp 300)
