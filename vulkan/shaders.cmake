# Compiles shaders/*.comp to SPIR-V with glslangValidator at build time and
# embeds them: each variant becomes a header with a uint32_t array (--vn), and
# r1vk_shaders.c lists them by name for vulkan/vk_pipeline.c.
#
# A variant is NAME|SOURCE|DEFINES (defines separated by ';' inside a list
# element is awkward, so ','). "_sg" variants use subgroup arithmetic and
# "_f16" variants fp16 arithmetic; the backend picks per device, with the plain
# variant as the fallback (R1_VK_NO_SUBGROUP=1, R1_VK_NO_FP16=1 force it).
# Variants defining R1_KHR ("_khr" in their names) use VK_KHR_cooperative_matrix, whose types
# Debian 12's glslang cannot express: tools/spvpatch completes them after
# glslang (see shaders/coopmat.glsl). They need that host tool, so a cross
# build leaves them out and the backend uses VK_NV_cooperative_matrix or none.
set(R1_SHADER_VARIANTS
  "rmsnorm|rmsnorm.comp|"
  "rmsnorm_sg|rmsnorm.comp|R1_SUBGROUP"
  "add_rmsnorm|rmsnorm.comp|R1_ADD"
  "add_rmsnorm_sg|rmsnorm.comp|R1_ADD,R1_SUBGROUP"
  "q4_matvec|q4_matvec.comp|"
  "q4_matvec_sg|q4_matvec.comp|R1_SUBGROUP"
  "q4_matvec_dp|q4_matvec.comp|R1_DP"
  "q4_matvec_dp_sg|q4_matvec.comp|R1_DP,R1_SUBGROUP"
  "q4_matvec_dp_x2|q4_matvec.comp|R1_DP,R1_X2"
  "q4_matvec_dp_sg_x2|q4_matvec.comp|R1_DP,R1_SUBGROUP,R1_X2"
  "q4_matvec_mt|q4_matvec.comp|R1_MT"
  "q4_matvec_mt_sg|q4_matvec.comp|R1_MT,R1_SUBGROUP"
  "q4_matvec_mt_dp|q4_matvec.comp|R1_MT,R1_DP"
  "q4_matvec_mt_dp_sg|q4_matvec.comp|R1_MT,R1_DP,R1_SUBGROUP"
  "q4_matvec_mt_dp_x2|q4_matvec.comp|R1_MT,R1_DP,R1_X2"
  "q4_matvec_mt_dp_sg_x2|q4_matvec.comp|R1_MT,R1_DP,R1_SUBGROUP,R1_X2"
  "q4_matvec_simple|q4_matvec_simple.comp|"
  "q4_gemm|q4_gemm.comp|"
  "q4_prep_cm|q4_prep_cm.comp|"
  "q4_prep_cm_exact|q4_prep_cm.comp|R1_CM_EXACT"
  "gemm_cm|gemm_cm.comp|"
  "gemm_cm_exact|gemm_cm.comp|R1_CM_EXACT"
  "gemm_cm_emu|gemm_cm.comp|R1_CM_EMU"
  "gemm_cm_exact_emu|gemm_cm.comp|R1_CM_EXACT,R1_CM_EMU"
  "gemm_cm_khr|gemm_cm.comp|R1_KHR"
  "gemm_cm_exact_khr|gemm_cm.comp|R1_CM_EXACT,R1_KHR"
  "gemm_cm_split|gemm_cm.comp|R1_CM_SPLIT"
  "gemm_cm_split_exact|gemm_cm.comp|R1_CM_SPLIT,R1_CM_EXACT"
  "gemm_cm_split_emu|gemm_cm.comp|R1_CM_SPLIT,R1_CM_EMU"
  "gemm_cm_split_exact_emu|gemm_cm.comp|R1_CM_SPLIT,R1_CM_EXACT,R1_CM_EMU"
  "gemm_cm_split_khr|gemm_cm.comp|R1_CM_SPLIT,R1_KHR"
  "gemm_cm_split_exact_khr|gemm_cm.comp|R1_CM_SPLIT,R1_CM_EXACT,R1_KHR"
  "gemm_cm_big_emu|gemm_cm.comp|R1_CM_BIG,R1_CM_EMU"
  "gemm_cm_big_khr|gemm_cm.comp|R1_CM_BIG,R1_KHR"
  "gemm_cm_q4_emu|gemm_cm.comp|R1_CM_Q4,R1_CM_EMU"
  "gemm_cm_q4_khr|gemm_cm.comp|R1_CM_Q4,R1_KHR"
  "gemm_cm_split_q4_emu|gemm_cm.comp|R1_CM_SPLIT,R1_CM_Q4,R1_CM_EMU"
  "gemm_cm_split_q4_khr|gemm_cm.comp|R1_CM_SPLIT,R1_CM_Q4,R1_KHR"
  "q4t_matvec|q4t_matvec.comp|"
  "q4t_matvec_sg|q4t_matvec.comp|R1_SUBGROUP"
  "q4t_gemm|q4t_gemm.comp|"
  "attn_dec|attn_dec.comp|"
  "attn_dec_sg|attn_dec_sg.comp|R1_SUBGROUP"
  "attn_combine|attn_combine.comp|"
  "dense_matvec|dense_matvec.comp|"
  "dense_matvec_sg|dense_matvec.comp|R1_SUBGROUP"
  "dense_gemm|dense_gemm.comp|"
  "rope|rope.comp|"
  "rope_kv|rope.comp|R1_KV"
  "kv_store|kv_store.comp|"
  "attn|attn.comp|"
  "attn_tiled|attn_tiled.comp|R1_SUBGROUP"
  "attn_cm|attn_cm.comp|"
  "attn_cm_emu|attn_cm.comp|R1_CM_EMU"
  "attn_cm_khr|attn_cm.comp|R1_KHR"
  "eltwise|eltwise.comp|"
  "embed|embed.comp|"
  "membw|membw.comp|"
  "mma_probe|mma_probe.comp|"
  "mma_probe1|mma_probe.comp|ACC_N=1u"
  "mma_probe_h|mma_probe.comp|R1_ACC16"
  "mma_probe_s|mma_probe.comp|R1_SHARED"
  "mma_probe_khr|mma_probe.comp|R1_KHR"
  "mma_probe1_khr|mma_probe.comp|ACC_N=1u,R1_KHR"
  "mma_probe_s_khr|mma_probe.comp|R1_SHARED,R1_KHR"
)

# The chained decode shaders (shaders/chain.glsl) also in the Vulkan memory
# model: "_vmm" variants, whose counter atomics release and acquire themselves
# instead of full fences (vk_pipeline.c picks them where the device has it).
set(vmm_variants)
foreach(v ${R1_SHADER_VARIANTS})
  if(v MATCHES "^([a-z0-9_]+)\\|(q4_matvec|attn_dec|attn_dec_sg|attn_combine)\\.comp\\|(.*)$")
    if(CMAKE_MATCH_3)
      list(APPEND vmm_variants "${CMAKE_MATCH_1}_vmm|${CMAKE_MATCH_2}.comp|${CMAKE_MATCH_3},R1_VMM")
    else()
      list(APPEND vmm_variants "${CMAKE_MATCH_1}_vmm|${CMAKE_MATCH_2}.comp|R1_VMM")
    endif()
  endif()
endforeach()
list(APPEND R1_SHADER_VARIANTS ${vmm_variants})

if(NOT CMAKE_CROSSCOMPILING)
  add_executable(r1-spvpatch tools/spvpatch/spvpatch.c)
endif()

set(R1_SPV_DIR ${CMAKE_CURRENT_BINARY_DIR}/r1spv)
file(MAKE_DIRECTORY ${R1_SPV_DIR})
file(GLOB R1_SHADER_INCLUDES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/shaders/*.glsl)
set(R1_SPV_HEADERS)
set(R1_SPV_INCLUDES "")
set(R1_SPV_TABLE "")
foreach(v ${R1_SHADER_VARIANTS})
  string(REPLACE "|" ";" parts "${v}")
  list(GET parts 0 name)
  list(GET parts 1 src)
  list(LENGTH parts n)
  set(dl "")
  if(n GREATER 2)
    list(GET parts 2 dl)
  endif()
  # R1_SHADER_DEFS (comma list): extra defines for every shader, for
  # experiment builds (knock-outs, variants) without editing the list above.
  string(REPLACE "," ";" dl "${dl},${R1_SHADER_DEFS}")
  set(defs)
  foreach(d ${dl})
    list(APPEND defs "-D${d}")
  endforeach()
  set(out ${R1_SPV_DIR}/${name}.h)
  set(glslang ${GLSLANG_VALIDATOR} -V --target-env vulkan1.1 ${defs}
      -I${CMAKE_CURRENT_SOURCE_DIR}/shaders)
  if("-DR1_KHR" IN_LIST defs)
    if(CMAKE_CROSSCOMPILING)
      continue()
    endif()
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${glslang} -o ${R1_SPV_DIR}/${name}.spv ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${src}
      COMMAND r1-spvpatch ${R1_SPV_DIR}/${name}.spv r1vk_spv_${name} ${out}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${src} ${R1_SHADER_INCLUDES} r1-spvpatch
      COMMENT "SPIR-V ${name} (patched)"
      VERBATIM)
  else()
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${glslang} --vn r1vk_spv_${name} -o ${out} ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${src}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/shaders/${src} ${R1_SHADER_INCLUDES}
      COMMENT "SPIR-V ${name}"
      VERBATIM)
  endif()
  list(APPEND R1_SPV_HEADERS ${out})
  string(APPEND R1_SPV_INCLUDES "#include \"r1spv/${name}.h\"\n")
  string(APPEND R1_SPV_TABLE "    {\"${name}\", r1vk_spv_${name}, sizeof r1vk_spv_${name}},\n")
endforeach()

set(R1_SPV_C ${CMAKE_CURRENT_BINARY_DIR}/r1vk_shaders.c)
file(CONFIGURE OUTPUT ${R1_SPV_C} CONTENT
"/* Generated by vulkan/shaders.cmake: the embedded SPIR-V of every shader variant. */
#include <stddef.h>
#include <stdint.h>
#include \"vk_shaders.h\"
${R1_SPV_INCLUDES}
const r1vk_shader r1vk_shaders[] = {
${R1_SPV_TABLE}    {NULL, NULL, 0},
};
")
target_sources(r1obj PRIVATE ${R1_SPV_C} ${R1_SPV_HEADERS})
