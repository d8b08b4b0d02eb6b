# Malformed checkpoints, bad flags and out-of-range ids give one clear error line.
r1_add_test_exe(test_bad_input test_bad_input.c)
add_test(NAME bad_input COMMAND test_bad_input $<TARGET_FILE:r1run>
  ${R1_TEST_DATA}/golden/tiny-sym-g32 ${R1_TEST_DATA}/golden/small-asym-tied-sharded)
