# Tokenizer and chat template tests (data: tests/data/tokenizer, models/r1-tokenizer,
# models/kjv-tiny).
r1_add_test_exe(test_tokenizer ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.c)
add_test(NAME tokenizer_golden COMMAND test_tokenizer golden)
add_test(NAME tokenizer_queries COMMAND test_tokenizer queries)
add_test(NAME tokenizer_stream COMMAND test_tokenizer stream)
add_test(NAME tokenizer_speed COMMAND test_tokenizer speed)
r1_add_test_exe(test_tokenizer_kjv ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_kjv.c)
add_test(NAME tokenizer_kjv COMMAND test_tokenizer_kjv)
r1_add_test_exe(test_tokenizer_errors ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_errors.c)
add_test(NAME tokenizer_errors COMMAND test_tokenizer_errors)
r1_add_test_exe(test_chat ${CMAKE_CURRENT_LIST_DIR}/test_chat.c)
add_test(NAME tokenizer_chat COMMAND test_chat)
