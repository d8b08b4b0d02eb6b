# CPU kernels: every ISA table against the scalar reference (random shapes,
# act-order, T = 1..64, column ranges), plus the NEON table built for aarch64
# and run under qemu-user (skipped with 77 when the cross tools are missing).
# `test_kernels bench ...` holds the micro-benchmarks (not run by ctest).
r1_add_test_exe(test_kernels ${CMAKE_CURRENT_LIST_DIR}/test_kernels.c)
add_test(NAME kernels COMMAND test_kernels)
set_tests_properties(kernels PROPERTIES TIMEOUT 600)

add_test(NAME kernels_neon_qemu
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/neon-qemu.sh ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/neon)
set_tests_properties(kernels_neon_qemu PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77)

# Thread shedding under contention (cpu/shed.c): its state machine on synthetic shares.
r1_add_test_exe(test_cpu_shed ${CMAKE_CURRENT_LIST_DIR}/test_cpu_shed.c)
add_test(NAME cpu_shed COMMAND test_cpu_shed)

# Column chunks shared out by runs (cpu/chunks.h): each chunk once, stealing from the back.
r1_add_test_exe(test_cpu_chunks ${CMAKE_CURRENT_LIST_DIR}/test_cpu_chunks.c)
target_link_libraries(test_cpu_chunks PRIVATE OpenMP::OpenMP_C)
add_test(NAME cpu_chunks COMMAND test_cpu_chunks)

# Duo calls under contention (cpu/duo.c): the op word's protocol, then two threads
# with one stalling mid-chunk. The whole model runs as duos in golden.cmake.
r1_add_test_exe(test_cpu_duo ${CMAKE_CURRENT_LIST_DIR}/test_cpu_duo.c)
add_test(NAME cpu_duo COMMAND test_cpu_duo)
