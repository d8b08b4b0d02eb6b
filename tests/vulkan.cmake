# Vulkan backend: every op against the scalar CPU reference (lavapipe in CI).
# Exits 77 (skipped) when no Vulkan device is present.
if(R1_HAVE_VULKAN)
  r1_add_test_exe(test_backend_ops ${CMAKE_CURRENT_LIST_DIR}/test_backend_ops.c)
  add_test(NAME vulkan_backend_ops COMMAND test_backend_ops)
  # the plain shader variants (no subgroup arithmetic, no fp16), as on devices without them
  add_test(NAME vulkan_backend_ops_fallback COMMAND test_backend_ops)
  set_tests_properties(vulkan_backend_ops_fallback PROPERTIES
    ENVIRONMENT "R1_VK_NO_SUBGROUP=1;R1_VK_NO_FP16=1;R1_VK_NO_DP=1;R1_VK_NO_IMPORT=1;R1_VK_NO_FUSE=1")
  # the transposed GPTQ layout and fused decode kernels of discrete GPUs
  # weights in device blocks (no mmap import): gate and up merged into one dispatch;
  # 3 resident workgroups assumed, so decode matvec workgroups take several tiles
  add_test(NAME vulkan_backend_ops_blocks COMMAND test_backend_ops)
  set_tests_properties(vulkan_backend_ops_blocks PROPERTIES
    ENVIRONMENT "R1_VK_NO_IMPORT=1;R1_VK_SLOTS=3")
  add_test(NAME vulkan_backend_ops_layout_t COMMAND test_backend_ops)
  set_tests_properties(vulkan_backend_ops_layout_t PROPERTIES ENVIRONMENT "R1_VK_LAYOUT=t")
  # the decode attention without subgroups (attn_dec.comp; fused as by default, unlike
  # the fallback above), where attn_dec_sg.comp is not planned
  add_test(NAME vulkan_backend_ops_attn_nosg COMMAND test_backend_ops attn)
  add_test(NAME vulkan_backend_ops_rope_attn_nosg COMMAND test_backend_ops rope_kv)
  set_tests_properties(vulkan_backend_ops_attn_nosg vulkan_backend_ops_rope_attn_nosg PROPERTIES
    ENVIRONMENT "R1_VK_NO_SUBGROUP=1")
  # the fp16 mode's two-digit decode x (its subgroup form runs in the cm_emu golden
  # cases below) without subgroups, as on devices that lack them
  add_test(NAME vulkan_backend_ops_x2_nosg COMMAND test_backend_ops)
  set_tests_properties(vulkan_backend_ops_x2_nosg PROPERTIES
    ENVIRONMENT "R1_VK_X_DIGITS=2;R1_VK_NO_SUBGROUP=1")
  set_tests_properties(vulkan_backend_ops vulkan_backend_ops_fallback vulkan_backend_ops_layout_t
    vulkan_backend_ops_blocks vulkan_backend_ops_attn_nosg vulkan_backend_ops_rope_attn_nosg
    vulkan_backend_ops_x2_nosg
    PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 600)
  # sessions on three threads sharing one model split across the GPU and the CPU
  add_test(NAME sessions_threads_vulkan
    COMMAND test_sessions ${R1_TEST_DATA}/golden/small-actorder-g128 1)
  set_tests_properties(sessions_threads_vulkan PROPERTIES TIMEOUT 300)
endif()

# The VK_KHR_cooperative_matrix shaders completed by tools/spvpatch, checked
# structurally (no device here runs them), and the tool's errors on bad input.
if(R1_HAVE_VULKAN AND NOT CMAKE_CROSSCOMPILING)
  add_executable(test_spvpatch ${CMAKE_CURRENT_LIST_DIR}/test_spvpatch.c)
  target_include_directories(test_spvpatch PRIVATE ${CMAKE_BINARY_DIR})
  add_dependencies(test_spvpatch r1obj)
  add_test(NAME vulkan_spvpatch COMMAND test_spvpatch)
  add_test(NAME vulkan_spvpatch_bad_input
    COMMAND r1-spvpatch ${R1_TEST_DATA}/golden/README.md x ${CMAKE_CURRENT_BINARY_DIR}/bad.h)
  set_tests_properties(vulkan_spvpatch_bad_input PROPERTIES
    PASS_REGULAR_EXPRESSION "r1-spvpatch: .*README.md: (not a SPIR-V module|read error, or a size not a multiple of 4 bytes)")
endif()

# The tensor-core prompt GEMM (gemm_cm.comp, on by default where the device has
# cooperative matrices) with its products emulated (R1_VK_CM_EMU=1), so that its
# operand prep, tiles, pipelined loads, K tails, partial tiles, act-order and
# epilogue run here: the float32-accurate split form against float32 tolerances,
# the fp16 form against 2e-3 (test_backend_ops) and the golden README's 2e-2 for
# fp16 matmul inputs, greedy tokens included. The same for the tensor-core
# prompt attention (attn_cm.comp, fp16 mode only): 3e-3 in test_backend_ops,
# and the golden hd128 case runs it.
if(R1_HAVE_VULKAN)
  add_test(NAME vulkan_backend_ops_cm_emu COMMAND test_backend_ops)
  add_test(NAME vulkan_backend_ops_cm_emu_fp16 COMMAND test_backend_ops q4)
  add_test(NAME vulkan_backend_ops_cm_emu_attn COMMAND test_backend_ops attn)
  set_tests_properties(vulkan_backend_ops_cm_emu PROPERTIES ENVIRONMENT "R1_VK_CM_EMU=1")
  # R1_VK_CM_BIG_FROM=256: the 128 x 128 tile for the 300- and 260-token cases,
  # whose few columns would take the 64 x 128 tile by default (vk_plan_q4.c)
  set_tests_properties(vulkan_backend_ops_cm_emu_fp16 PROPERTIES
    ENVIRONMENT "R1_VK_CM_EMU=1;R1_VK_CM=1;R1_VK_CM_BIG_FROM=256")
  set_tests_properties(vulkan_backend_ops_cm_emu_attn PROPERTIES
    ENVIRONMENT "R1_VK_CM_EMU=1;R1_VK_CM=1")
  # q, k and v prepared together, their weights side by side (vk_plan_q4.c
  # r1vk_plan_cm), in the exact and the fp16 mode
  add_test(NAME vulkan_backend_ops_cm_emu_merged COMMAND test_backend_ops merged)
  add_test(NAME vulkan_backend_ops_cm_emu_merged_fp16 COMMAND test_backend_ops merged)
  set_tests_properties(vulkan_backend_ops_cm_emu_merged PROPERTIES ENVIRONMENT "R1_VK_CM_EMU=1")
  set_tests_properties(vulkan_backend_ops_cm_emu_merged_fp16 PROPERTIES
    ENVIRONMENT "R1_VK_CM_EMU=1;R1_VK_CM=1;R1_VK_PREP_AHEAD=1")
  # norm -> gate and up side by side -> SiLU -> down -> norm -> linear in the
  # fp16 mode: the norms write the GEMMs' x in fp16 themselves, and each group's
  # weight is prepared beside the GEMM before it (vk_plan_q4.c r1vk_cm_x_direct,
  # cm_prep_ahead; the exact mode above has no direct x; R1_VK_PREP_AHEAD=1:
  # as with every layer on the GPU, gate and up side by side too)
  # (the prompt case alone; labelled slow in tests/CMakeLists.txt)
  add_test(NAME vulkan_backend_ops_cm_emu_chain_fp16 COMMAND test_backend_ops "chain prompt")
  set_tests_properties(vulkan_backend_ops_cm_emu_chain_fp16 PROPERTIES
    ENVIRONMENT "R1_VK_CM_EMU=1;R1_VK_CM=1;R1_VK_PREP_AHEAD=1")
  set_tests_properties(vulkan_backend_ops_cm_emu vulkan_backend_ops_cm_emu_fp16
    vulkan_backend_ops_cm_emu_attn vulkan_backend_ops_cm_emu_merged
    vulkan_backend_ops_cm_emu_merged_fp16 vulkan_backend_ops_cm_emu_chain_fp16
    PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS vulkan)
  add_test(NAME golden_vulkan_cm_emu_hd128-g128
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/hd128-g128
            ${R1_TEST_DATA}/golden/hd128-g128 2e-2 --gpu-layers all)
  add_test(NAME golden_vulkan_cm_emu_exact_small-actorder-g128
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/small-actorder-g128
            ${R1_TEST_DATA}/golden/small-actorder-g128 1e-4 --gpu-layers all)
  # ... and with one layer on the GPU (the head on the CPU, the segment starting mid-model)
  add_test(NAME golden_vulkan_cm_emu_hd128-g128_ngl1
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/hd128-g128
            ${R1_TEST_DATA}/golden/hd128-g128 2e-2 --gpu-layers 1)
  set_tests_properties(golden_vulkan_cm_emu_hd128-g128 golden_vulkan_cm_emu_hd128-g128_ngl1
    PROPERTIES SKIP_RETURN_CODE 77 LABELS vulkan ENVIRONMENT "R1_VK_CM_EMU=1")
  set_tests_properties(golden_vulkan_cm_emu_exact_small-actorder-g128 PROPERTIES
    SKIP_RETURN_CODE 77 LABELS vulkan ENVIRONMENT "R1_VK_CM_EMU=1;R1_VK_CM=exact")
endif()
