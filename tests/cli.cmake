# r1run's command line (cli/), run as a program: chat goldens through --dump-prompt,
# the tokenizer modes, one-shot generation and its stop rules on the KJV demo model,
# seeds, context limits, flags, chat from a pipe and through a pseudo-terminal, and
# the KJV perplexity (45.669 within 0.5%) and `r1run bench -o json` (with -d).
r1_add_test_exe(test_cli ${CMAKE_CURRENT_LIST_DIR}/test_cli.c)
foreach(case dump_prompt tokenize generate stops think seed context flags chat_pipe perplexity
    bench)
  add_test(NAME cli_${case} COMMAND test_cli ${case} $<TARGET_FILE:r1run>)
  set_tests_properties(cli_${case} PROPERTIES TIMEOUT 600)
endforeach()

r1_add_test_exe(test_cli_pty ${CMAKE_CURRENT_LIST_DIR}/test_cli_pty.c)
target_link_libraries(test_cli_pty PRIVATE util)
foreach(case chat intr eof)
  add_test(NAME cli_pty_${case} COMMAND test_cli_pty ${case} $<TARGET_FILE:r1run>)
  set_tests_properties(cli_pty_${case} PROPERTIES TIMEOUT 600)
endforeach()
