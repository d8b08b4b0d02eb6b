#include "tensor.h"

#include <math.h>
#include <string.h>

size_t r1__dtype_size(r1_dtype t) {
    switch (t) {
    case R1_F32:
        return 4;
    case R1_F16:
        return 2;
    case R1_BF16:
        return 2;
    case R1_I32:
        return 4;
    case R1_I8:
        return 1;
    default:
        return 0;
    }
}

const char *r1__dtype_name(r1_dtype t) {
    static const char *names[] = {"F32", "F16", "BF16", "I32", "I8"};
    return (unsigned)t < R1_DTYPE_COUNT ? names[t] : "?";
}

int64_t r1__tensor_nelem(const r1_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

size_t r1__tensor_nbytes(const r1_tensor *t) {
    return (size_t)r1__tensor_nelem(t) * r1__dtype_size(t->type);
}

int64_t r1__tensor_row(const r1_tensor *t) {
    int64_t n = 1;
    for (int i = 1; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

/* IEEE half <-> single, exact for every half value (subnormals included). */
float r1__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = ldexpf((float)man, -24);
            memcpy(&u, &f, 4);
            u |= sign;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t r1__f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float r1__get_f(const void *data, r1_dtype t, int64_t i) {
    switch (t) {
    case R1_F32:
        return ((const float *)data)[i];
    case R1_F16:
        return r1__f16_to_f32(((const uint16_t *)data)[i]);
    case R1_BF16:
        return r1__bf16_to_f32(((const uint16_t *)data)[i]);
    default:
        return 0.0f;
    }
}
