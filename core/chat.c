/* r1_chat_render: the DeepSeek-R1-Distill chat template (tokenizer_config.json
 * "chat_template", current revision), written out in C:
 *
 *   bos_token + <last system content>
 *   user:      "<｜User｜>" + content
 *   assistant: "<｜Assistant｜>" + content after its last "</think>" + "<｜end▁of▁sentence｜>"
 *   tool:      "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + content +
 * "<｜tool▁output▁end｜>" (later ones "\n<｜tool▁output▁begin｜>..."), closed by
 * "<｜tool▁outputs▁end｜>" generation prompt (unless the last turn is tool output):
 * "<｜Assistant｜><think>\n"
 *
 * bos_token is the tokenizer's BOS string; the other markers are literals in
 * the template itself. Assistant tool calls (content None) are not supported. */
#include "tokenizer.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

#define USER "<｜User｜>"
#define ASSISTANT "<｜Assistant｜>"
#define EOS "<｜end▁of▁sentence｜>"
#define OUTPUTS_BEGIN "<｜tool▁outputs▁begin｜>"
#define OUTPUT_BEGIN "<｜tool▁output▁begin｜>"
#define OUTPUT_END "<｜tool▁output▁end｜>"
#define OUTPUTS_END "<｜tool▁outputs▁end｜>"

enum role { SYSTEM, USER_ROLE, ASSISTANT_ROLE, TOOL, BAD_ROLE };

static enum role role_of(const char *r) {
    if (!r) return BAD_ROLE;
    if (strcmp(r, "system") == 0) return SYSTEM;
    if (strcmp(r, "user") == 0) return USER_ROLE;
    if (strcmp(r, "assistant") == 0) return ASSISTANT_ROLE;
    if (strcmp(r, "tool") == 0) return TOOL;
    return BAD_ROLE;
}

/* content.split('</think>')[-1] */
static const char *after_last_think(const char *content) {
    const char *tail = content;
    for (const char *p = content; (p = strstr(p, "</think>")); p += 8) tail = p + 8;
    return tail;
}

static r1_status check_messages(const r1_chat_message *msgs, size_t n, r1_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (role_of(msgs[i].role) == BAD_ROLE)
            return r1__err(err, R1_E_INVAL,
                           "r1_chat_render: messages[%zu].role \"%s\" is not system, user, "
                           "assistant or tool",
                           i, msgs[i].role ? msgs[i].role : "(null)");
        if (!msgs[i].content)
            return r1__err(err, R1_E_INVAL, "r1_chat_render: messages[%zu].content is NULL", i);
    }
    return R1_OK;
}

static void render(const r1_tokenizer *t, const r1_chat_message *msgs, size_t n, int gen_prompt,
                   r1__strbuf *b) {
    const char *system = "";
    for (size_t i = 0; i < n; i++)
        if (role_of(msgs[i].role) == SYSTEM) system = msgs[i].content; /* last one wins */
    r1__sb_puts(b, t->bos_text ? t->bos_text : "");
    r1__sb_puts(b, system);
    int is_tool = 0, output_first = 1;
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content;
        switch (role_of(msgs[i].role)) {
        case USER_ROLE:
            is_tool = 0;
            r1__sb_puts(b, USER), r1__sb_puts(b, c);
            break;
        case ASSISTANT_ROLE:
            /* After tool output the template keeps the content whole. */
            r1__sb_puts(b, is_tool ? OUTPUTS_END : ASSISTANT);
            r1__sb_puts(b, is_tool ? c : after_last_think(c));
            r1__sb_puts(b, EOS);
            is_tool = 0;
            break;
        case TOOL:
            is_tool = 1;
            r1__sb_puts(b, output_first ? OUTPUTS_BEGIN OUTPUT_BEGIN : "\n" OUTPUT_BEGIN);
            r1__sb_puts(b, c), r1__sb_puts(b, OUTPUT_END);
            output_first = 0;
            break;
        default:
            break;
        }
    }
    if (is_tool) r1__sb_puts(b, OUTPUTS_END);
    if (gen_prompt && !is_tool) r1__sb_puts(b, ASSISTANT "<think>\n");
}

r1_status r1_chat_render(const r1_tokenizer *t, const r1_chat_message *msgs, size_t n,
                         int add_generation_prompt, char **text, r1_error *err) {
    if (!text) return r1__err(err, R1_E_INVAL, "r1_chat_render: text is NULL");
    *text = NULL;
    if (!t || (!msgs && n))
        return r1__err(err, R1_E_INVAL, "r1_chat_render: tokenizer or messages is NULL");
    r1_status st = check_messages(msgs, n, err);
    if (st) return st;
    r1__strbuf b = {0};
    r1__sb_put(&b, "", 0); /* an empty conversation still gives a string */
    render(t, msgs, n, add_generation_prompt, &b);
    if (b.oom) {
        free(b.p);
        return r1__err(err, R1_E_NOMEM, "r1_chat_render: out of memory");
    }
    *text = b.p;
    return R1_OK;
}
