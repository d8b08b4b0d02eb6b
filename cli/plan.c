/* r1run plan -m DIR [--gpu-layers N|all|auto] [--gpu-mem SIZE] [--ctx N]:
 * the memory plan (layers per device, weight/KV/scratch bytes) without loading
 * any weights, so a user can size --gpu-layers before the real load. */
#include <stdio.h>

#include "modes.h"

int r1cli_plan(const r1cli_opts *o) {
    r1_model_params mp;
    if (r1cli_model_params(o, &mp)) return 2;
    r1_plan p;
    r1_error err = {0};
    if (r1_plan_model(o->model_dir, &mp, &p, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    char buf[1024];
    r1_plan_format(&p, buf, sizeof buf);
    fputs(buf, stdout);
    return 0;
}
