# GPU/CPU splits (issue 6) and whole-model Vulkan runs: every layer count from 0 to
# all on lavapipe must match the goldens; the planner picks the expected counts.
if(R1_HAVE_VULKAN)
  r1_add_test_exe(test_plan test_plan.c)
  add_test(NAME plan_auto COMMAND test_plan ${R1_TEST_DATA}/golden/small-actorder-g128)
  set_tests_properties(plan_auto PROPERTIES SKIP_RETURN_CODE 77)
  set(R1_SPLIT_CASES "tiny-sym-g32:2" "small-actorder-g128:3" "small-asym-tied-sharded:2" "hd128-g128:2")
  foreach(entry ${R1_SPLIT_CASES})
    string(REPLACE ":" ";" parts ${entry})
    list(GET parts 0 case)
    list(GET parts 1 nl)
    foreach(n RANGE 1 ${nl})
      add_test(NAME golden_vulkan_${case}_ngl${n}
        COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case}
                ${R1_TEST_DATA}/golden/${case} 1e-4 --gpu-layers ${n})
      # R1_VK_CM=exact: float32 tolerances hold on devices with tensor cores too (their
      # default fp16 prompt GEMM is checked at the fp16 bound by golden_vulkan_cm_emu_*)
      set_tests_properties(golden_vulkan_${case}_ngl${n} PROPERTIES SKIP_RETURN_CODE 77 LABELS vulkan
        ENVIRONMENT "R1_VK_CM=exact")
    endforeach()
  endforeach()
  add_test(NAME golden_vulkan_kjv_all COMMAND test_golden $<TARGET_FILE:r1run>
    ${R1_SOURCE_ROOT}/models/kjv-tiny ${R1_TEST_DATA}/kjv 1e-4 --gpu-layers all)
  add_test(NAME golden_vulkan_kjv_ngl3 COMMAND test_golden $<TARGET_FILE:r1run>
    ${R1_SOURCE_ROOT}/models/kjv-tiny ${R1_TEST_DATA}/kjv 1e-4 --gpu-layers 3)
  set_tests_properties(golden_vulkan_kjv_all golden_vulkan_kjv_ngl3 PROPERTIES LABELS vulkan
    ENVIRONMENT "R1_VK_CM=exact")
  # --lm-head q8 is a CPU kernel: with the head on the GPU the user is told it stays exact
  add_test(NAME vulkan_lm_head_q8_note COMMAND r1run -m ${R1_SOURCE_ROOT}/models/kjv-tiny
    --gpu-layers all --lm-head q8 --tokens 1 -n 1 --print-ids)
  set_tests_properties(vulkan_lm_head_q8_note PROPERTIES LABELS vulkan
    PASS_REGULAR_EXPRESSION "lm-head q8 applies to a head on the CPU; the GPU's head stays exact")
  # chained decode dispatches (vk_record.c): on hd128-g128 every layer dispatch waits
  # on a counter instead of a barrier, and each attention combine runs beside its
  # attention (only the token embedding, the final norm and the head keep their barriers;
  # lavapipe runs dispatches in order, so a count too high shows as a wait that gives
  # up, as vulkan_chain_fault checks); and the barrier form, R1_VK_CHAIN=0, still
  # matches the golden
  # (each of the two layers' decode attentions has its own counters: a chained combine
  # polls from its launch, so a shared set let one layer's combine see another's count;
  # the batch plan's head is two dispatches, matrix-vector for up to 8 rows and the GEMM
  # beside it, with no barrier between them)
  add_test(NAME vulkan_chain_recorded COMMAND r1run -m ${R1_TEST_DATA}/golden/hd128-g128
    --gpu-layers all --tokens 1,2,3 -n 4 --print-ids)
  set_tests_properties(vulkan_chain_recorded PROPERTIES LABELS vulkan
    ENVIRONMENT "R1_VK_VERBOSE=1;R1_VK_NO_IMPORT=1"
    PASS_REGULAR_EXPRESSION "15/29 dispatches, 3/21 barriers \\(decode/batch\\), 9 chained.*, 2 decode attention counter sets")
  # a wait that is never met (R1_VK_CHAIN_FAULT=3: the third chained wait asks one count
  # too many) gives up, and r1run reports it and exits 1, with no crash and no hang
  add_test(NAME vulkan_chain_fault COMMAND sh -c
    "\"$<TARGET_FILE:r1run>\" -m ${R1_TEST_DATA}/golden/hd128-g128 --gpu-layers all --tokens 1,2,3 -n 3 --print-ids; echo rc=$?")
  set_tests_properties(vulkan_chain_fault PROPERTIES LABELS vulkan
    ENVIRONMENT "R1_VK_CHAIN_FAULT=3;R1_VK_NO_IMPORT=1"
    PASS_REGULAR_EXPRESSION "gave up waiting for the one before it.*rc=1")
  # the chained shaders' Vulkan-memory-model variants (chain.glsl R1_VMM, on GPUs by
  # default): lavapipe accepts the modules and they are planned (their results are
  # checked on the H200 only: lavapipe computes them wrong, vk_backend.c settings)
  add_test(NAME vulkan_vmm_pipelines COMMAND "$<TARGET_FILE:r1run>"
    -m ${R1_TEST_DATA}/golden/hd128-g128 --gpu-layers all --tokens 1,2,3 -n 1)
  set_tests_properties(vulkan_vmm_pipelines PROPERTIES LABELS vulkan
    ENVIRONMENT "R1_VK_VMM=1;R1_VK_VERBOSE=1"
    PASS_REGULAR_EXPRESSION "q4_matvec_[a-z0-9_]*_vmm q4_matvec_mt_[a-z0-9_]*_vmm.* attn_dec_sg_vmm attn_combine_vmm")
  add_test(NAME golden_vulkan_nochain_hd128-g128
    COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/hd128-g128
            ${R1_TEST_DATA}/golden/hd128-g128 1e-4 --gpu-layers all)
  set_tests_properties(golden_vulkan_nochain_hd128-g128 PROPERTIES SKIP_RETURN_CODE 77
    LABELS vulkan ENVIRONMENT "R1_VK_CHAIN=0;R1_VK_NO_IMPORT=1;R1_VK_CM=exact")
  # weights copied into device blocks (as on discrete GPUs) instead of imported from
  # the mmap: q/k/v and gate/up then share one decode dispatch each; with 3
  # resident workgroups assumed (R1_VK_SLOTS), each decode matvec workgroup
  # streams several tiles after one staging of x; activations not host-mapped
  # (R1_VK_UNMAPPED), so inputs go through staging and the decode pass copies
  # its outputs (logits, or the hidden state of a split) to host memory itself;
  # the decode fence polled near its expected end (R1_VK_SPIN=1, as on GPUs)
  foreach(entry hd128-g128:all small-asym-tied-sharded:all small-actorder-g128:1)
    string(REPLACE ":" ";" parts ${entry})
    list(GET parts 0 case)
    list(GET parts 1 ngl)
    add_test(NAME golden_vulkan_blocks_${case}_ngl${ngl}
      COMMAND test_golden $<TARGET_FILE:r1run> ${R1_TEST_DATA}/golden/${case}
              ${R1_TEST_DATA}/golden/${case} 1e-4 --gpu-layers ${ngl})
    set_tests_properties(golden_vulkan_blocks_${case}_ngl${ngl} PROPERTIES SKIP_RETURN_CODE 77
      LABELS vulkan ENVIRONMENT "R1_VK_NO_IMPORT=1;R1_VK_SLOTS=3;R1_VK_UNMAPPED=1;R1_VK_SPIN=1;R1_VK_CM=exact")
  endforeach()
endif()
