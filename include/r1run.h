/* r1run: a CPU-first inference runtime for Qwen2-architecture GPTQ-Int4 models
 * (DeepSeek-R1-Distill-Qwen). This is the one public header.
 *
 * Ownership and lifetimes
 *  - Every object is created by an r1_*_new / r1_*_load call and released by the
 *    matching r1_*_free call; free functions accept NULL.
 *  - r1_model is immutable after load. Several r1_session objects may share one
 *    model and run concurrently from different threads (one thread per session
 *    at a time). The model must outlive its sessions.
 *  - r1_tokenizer pointers returned by r1_model_tokenizer() are borrowed: they
 *    live as long as the model. Tokenizer functions are thread-safe.
 *  - Buffers returned through `char **` or `int32_t **` out-parameters are
 *    allocated with malloc and owned by the caller: release them with r1_free().
 *  - Pointers returned as `const` (logits, token pieces) are borrowed and valid
 *    until the next call that mutates the owning object.
 *
 * Errors
 *  - Functions that can fail return r1_status (R1_OK == 0, failures < 0) and
 *    fill an optional caller-owned r1_error with one line naming the file,
 *    tensor or argument at fault. The library never exits or aborts on bad input.
 */
#ifndef R1RUN_H
#define R1RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define R1_API __attribute__((visibility("default")))

typedef enum r1_status {
    R1_OK = 0,
    R1_E_INVAL = -1,       /* bad argument or flag */
    R1_E_IO = -2,          /* file cannot be opened, read or mapped */
    R1_E_FORMAT = -3,      /* malformed file: JSON, safetensors header, tensor shape/dtype */
    R1_E_NOMEM = -4,       /* allocation failed, or a memory budget cannot fit */
    R1_E_UNSUPPORTED = -5, /* valid input this build does not handle (e.g. 3-bit GPTQ) */
    R1_E_RANGE = -6,       /* token id outside the vocabulary, prompt past the context */
    R1_E_DEVICE = -7,      /* GPU backend missing, device lost, device allocation failed */
    R1_E_CANCELLED = -8,   /* a progress callback asked to stop */
} r1_status;

typedef struct r1_error {
    r1_status code;
    char msg[512];
} r1_error;

R1_API const char *r1_status_str(r1_status s);
/* Physical CPU cores of this machine: the default thread count. */
R1_API int r1_cpu_physical_cores(void);
R1_API void r1_free(void *p);

/* ---- model ------------------------------------------------------------- */

typedef struct r1_model r1_model;
typedef struct r1_tokenizer r1_tokenizer;

/* Called during load with a fraction in [0,1]; return non-zero to cancel. */
typedef int (*r1_progress_fn)(float fraction, void *user);

#define R1_GPU_LAYERS_ALL (-1)
#define R1_GPU_LAYERS_AUTO (-2)

typedef struct r1_model_params {
    int n_threads;    /* CPU threads; 0 = number of physical cores */
    int gpu_layers;   /* 0..n_layers, R1_GPU_LAYERS_ALL or R1_GPU_LAYERS_AUTO */
    int gpu_device;   /* index in the Vulkan device list, -1 = default choice */
    uint64_t gpu_mem; /* GPU budget in bytes for AUTO; 0 = free memory less a reserve */
    int lm_head_q8;   /* requantize the lm_head to 8 bit at load (opt-in, lossy) */
    int max_ctx;      /* largest context a session will ask for (sizes plans); 0 = default */
    int verbose;      /* print the memory plan to stderr */
    r1_progress_fn progress;
    void *progress_user;
} r1_model_params;

R1_API void r1_model_params_default(r1_model_params *p);

/* Loads a Hugging Face GPTQ checkpoint folder (config.json, safetensors, tokenizer files)
 * memory-mapped. On failure *out is NULL. */
R1_API r1_status r1_model_load(const char *dir, const r1_model_params *p, r1_model **out,
                               r1_error *err);
R1_API void r1_model_free(r1_model *m);

R1_API int r1_model_n_vocab(const r1_model *m); /* logits row length */
R1_API int r1_model_n_layers(const r1_model *m);
R1_API int r1_model_max_ctx(const r1_model *m); /* max_position_embeddings */
R1_API int r1_model_bos(const r1_model *m);
R1_API int r1_model_eos(const r1_model *m);
R1_API uint64_t r1_model_weight_bytes(const r1_model *m); /* bytes read per token (weights) */
/* Where the model runs, e.g. "CPU avx512 2 threads, 48/48 layers"; borrowed. */
R1_API const char *r1_model_backend_desc(const r1_model *m);
/* Bytes of weights placed on backend b (0 = CPU, 1 = GPU), 0 if none. */
R1_API uint64_t r1_model_backend_bytes(const r1_model *m, int b);
/* Memory bandwidth of backend b's device in bytes/s, measured now by a short
 * probe (a GPU backend copies a few hundred MiB); 0 when b has no device or no
 * probe. Not to be called while a session of m is evaluating. */
R1_API double r1_model_backend_bandwidth(r1_model *m, int b);
/* Borrowed; NULL when the folder has no tokenizer.json. */
R1_API const r1_tokenizer *r1_model_tokenizer(const r1_model *m);

/* Prints every Vulkan device with its type and memory heaps (index = gpu_device).
 * R1_E_DEVICE when there is no Vulkan loader, driver or device. */
R1_API r1_status r1_list_devices(FILE *f, r1_error *err);

/* ---- memory plan: which layers go to the GPU ----------------------------- */

/* Placement of a model's layers and the bytes each device needs. The GPU takes the
 * last gpu_layers layers (and the output head when it takes every layer, with the
 * token embedding too where it fits the budget: weights[] count it where it goes). */
typedef struct r1_plan {
    int n_layers, gpu_layers, head_on_gpu;
    int n_ctx, n_batch;  /* the session sizes the plan reserves KV and scratch for */
    uint64_t budget;     /* GPU bytes the plan may use; 0 when no GPU is asked for */
    uint64_t weights[2]; /* [0] CPU (mmap'd, read in place), [1] GPU */
    uint64_t kv[2], scratch[2];
    uint64_t layer_bytes; /* GPU bytes of one decoder layer: weights + KV */
    char device[128];     /* GPU name, "" without one */
    char note[256];       /* e.g. why fewer layers than asked went to the GPU */
} r1_plan;

/* Computes the plan for a checkpoint folder without reading its weights (headers
 * only); with gpu_layers AUTO it picks the most layers that fit the budget. */
R1_API r1_status r1_plan_model(const char *dir, const r1_model_params *p, r1_plan *plan,
                               r1_error *err);
/* The plan a loaded model was placed by (borrowed). */
R1_API const r1_plan *r1_model_plan(const r1_model *m);
/* Formats a plan as a few human-readable lines into buf (always NUL-terminated). */
R1_API void r1_plan_format(const r1_plan *p, char *buf, size_t cap);

/* ---- session: one sequence with its own KV cache ------------------------- */

typedef struct r1_session r1_session;

typedef struct r1_session_params {
    int n_ctx;   /* KV cache length in tokens; 0 = min(model max, 4096) */
    int n_batch; /* largest number of tokens evaluated in one forward; 0 = 512 */
    /* Polled between forward passes of r1_session_eval (every n_batch tokens); a
     * non-zero return stops the call with R1_E_CANCELLED. May be NULL. */
    int (*abort_cb)(void *user);
    void *abort_user;
} r1_session_params;

R1_API void r1_session_params_default(r1_session_params *p);
R1_API r1_status r1_session_new(r1_model *m, const r1_session_params *p, r1_session **out,
                                r1_error *err);
R1_API void r1_session_free(r1_session *s);

/* Appends n tokens at the current position and runs the forward pass.
 * If logits_all is non-zero the logits of every position are kept, else only the
 * last one's. Tokens past the context or outside the vocabulary give R1_E_RANGE
 * and leave the session unchanged. R1_E_CANCELLED (abort_cb) keeps the tokens of
 * the forward passes already done: r1_session_pos says how many. */
R1_API r1_status r1_session_eval(r1_session *s, const int32_t *tokens, int n, int logits_all,
                                 r1_error *err);
/* Logits of the last evaluated call: row i of n rows when logits_all, else one row. */
R1_API const float *r1_session_logits(const r1_session *s, int row);
R1_API int r1_session_pos(const r1_session *s);
R1_API int r1_session_n_ctx(const r1_session *s);
/* Bytes of this session's KV cache (all devices). */
R1_API uint64_t r1_session_kv_bytes(const r1_session *s);
/* Forgets every position >= pos (pos 0 = empty cache). */
R1_API r1_status r1_session_truncate(r1_session *s, int pos, r1_error *err);

/* ---- tokenizer ----------------------------------------------------------- */

/* Loads tokenizer.json (+ tokenizer_config.json when present) from dir. */
R1_API r1_status r1_tokenizer_load(const char *dir, r1_tokenizer **out, r1_error *err);
R1_API void r1_tokenizer_free(r1_tokenizer *t);
R1_API int r1_tokenizer_n_vocab(const r1_tokenizer *t);
R1_API int r1_tokenizer_bos(const r1_tokenizer *t); /* -1 when none */
R1_API int r1_tokenizer_eos(const r1_tokenizer *t); /* -1 when none */
/* Encodes UTF-8 text as Hugging Face tokenizers does with add_special_tokens=False:
 * added tokens are matched first, then NFC, the pre-tokenizer split and BPE.
 * *ids is malloc'd (caller frees with r1_free). Invalid UTF-8 gives R1_E_INVAL
 * with the byte offset. */
R1_API r1_status r1_tokenize(const r1_tokenizer *t, const char *text, size_t len, int32_t **ids,
                             size_t *n_ids, r1_error *err);
/* The raw bytes a token stands for (after byte-level decoding); NULL for a bad id. */
R1_API const char *r1_token_bytes(const r1_tokenizer *t, int32_t id, size_t *len);
R1_API int r1_token_is_special(const r1_tokenizer *t, int32_t id);
/* Id of an exact token string (added or regular), or -1. */
R1_API int32_t r1_token_id(const r1_tokenizer *t, const char *text);
/* Decodes ids to text (malloc'd, NUL-terminated; bytes that are not valid UTF-8
 * become U+FFFD as in Hugging Face decode). A token standing for the byte 0 ends
 * the C string early: use r1_token_bytes for byte-exact output. */
R1_API r1_status r1_detokenize(const r1_tokenizer *t, const int32_t *ids, size_t n, char **text,
                               r1_error *err);

/* Streaming decoder: feeds tokens, returns only complete UTF-8 text. */
typedef struct r1_detok_stream {
    char pending[8];
    size_t n_pending;
} r1_detok_stream;
/* Writes the printable bytes for `id` (held back while a UTF-8 sequence is
 * incomplete) to out (capacity cap); returns the byte count, or -1 if cap is
 * too small. A negative id flushes: a held-back incomplete sequence comes out as
 * U+FFFD. Initialize the stream with {0}. */
R1_API int r1_detok_stream_push(const r1_tokenizer *t, r1_detok_stream *st, int32_t id, char *out,
                                size_t cap);

/* ---- chat template --------------------------------------------------------- */

typedef struct r1_chat_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} r1_chat_message;

/* Renders messages with the DeepSeek-R1-Distill template (earlier assistant reasoning
 * dropped; generation prompt "<｜Assistant｜><think>\n" when add_generation_prompt).
 * *text is malloc'd. */
R1_API r1_status r1_chat_render(const r1_tokenizer *t, const r1_chat_message *msgs, size_t n,
                                int add_generation_prompt, char **text, r1_error *err);

/* ---- sampling -------------------------------------------------------------- */

typedef struct r1_sampler r1_sampler;

typedef struct r1_sampler_params {
    float temperature;      /* <= 0: greedy */
    int top_k;              /* <= 0: off */
    float top_p;            /* (0, 1]; 1 = off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off (divides positive logits, multiplies negative) */
    float presence_penalty; /* 0: off (subtracted once per seen token) */
    int penalty_last_n;     /* window of recent tokens for penalties */
    uint64_t seed;
} r1_sampler_params;

R1_API void r1_sampler_params_default(r1_sampler_params *p);
/* The model's recommended sampling from generation_config.json (temperature, top_p,
 * top_k; do_sample false gives greedy); other fields as r1_sampler_params_default. */
R1_API void r1_model_sampler_defaults(const r1_model *m, r1_sampler_params *p);
R1_API r1_status r1_sampler_new(const r1_sampler_params *p, int n_vocab, r1_sampler **out,
                                r1_error *err);
R1_API void r1_sampler_free(r1_sampler *s);
/* Picks a token from one row of logits (not modified); -1 for a NULL argument.
 * Order: penalties, greedy when temperature <= 0, top-k, temperature, softmax,
 * top-p, min-p, renormalize, one seeded draw (xoshiro256**). */
R1_API int32_t r1_sampler_sample(r1_sampler *s, const float *logits);
/* Records a token as part of the history (prompt or generated) for the penalties;
 * ids outside the vocabulary are ignored. r1_sampler_reset clears that history
 * only: the random stream goes on (a new sampler with the same seed replays). */
R1_API void r1_sampler_accept(r1_sampler *s, int32_t id);
R1_API void r1_sampler_reset(r1_sampler *s);

#ifdef __cplusplus
}
#endif
#endif
