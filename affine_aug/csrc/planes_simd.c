/* planes_simd.c: the AVX2 pieces of the planar bilinear interior (see planes.h), compiled
   for AVX2 whatever the build's target and used only where the CPU runs it.

   An interior run of a row goes in two passes: the taps of its pixels (the top-left
   neighbour's offset in the plane and the weights), eight pixels at a time from their
   32.32 fixed-point coordinates, then for each channel of the image the gathers and the
   sums, eight pixels at a time. The integers (uint8) and floats (uint16, float32) are
   those of the scalar loops in planes.c, so which path takes a pixel never changes its
   value. */

#include "planes.h"

int PL_HAS_AVX2 = -1;

void pl_cpu_detect(void) {
#if defined(PL_AVX2_PATH)
    if (PL_HAS_AVX2 < 0) PL_HAS_AVX2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    PL_HAS_AVX2 = 0;
#endif
}

/* The AVX2 paths on (1: where the CPU has them) or off (0: the scalar loops everywhere),
   for tests and benchmarks. */
AA_EXPORT void aa_planes_set_simd(int on) {
    PL_HAS_AVX2 = on ? -1 : 0;
    if (on) pl_cpu_detect();
}

AA_EXPORT int aa_planes_simd(void) {
    pl_cpu_detect();
    return PL_HAS_AVX2;
}

#if defined(PL_AVX2_PATH)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* the 64-bit lanes g0 (pixels 0-3) and g1 (4-7), plus add, shifted right -> their low
   32 bits in pixel order (g + add >= 0 in every lane used) */
AVX2 static inline __m256i shifted(__m256i g0, __m256i g1, __m256i add, int shift) {
    const __m128i sh = _mm_cvtsi32_si128(shift);
    g0 = _mm256_srl_epi64(_mm256_add_epi64(g0, add), sh);
    g1 = _mm256_srl_epi64(_mm256_add_epi64(g1, add), sh);
    const __m256i t = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(g0), _mm256_castsi256_ps(g1), 0x88));
    return _mm256_permute4x64_epi64(t, 0xD8);
}

/* 32.32 coordinates of eight consecutive pixels, and the step of eight */
typedef struct { __m256i x0, x1, y0, y1, sx, sy; } steps8_t;

AVX2 static inline steps8_t steps8(int64_t gx, int64_t gy, int64_t ga, int64_t gd) {
    steps8_t s;
    s.x0 = _mm256_setr_epi64x(gx, gx + ga, gx + 2 * ga, gx + 3 * ga);
    s.x1 = _mm256_add_epi64(s.x0, _mm256_set1_epi64x(4 * ga));
    s.y0 = _mm256_setr_epi64x(gy, gy + gd, gy + 2 * gd, gy + 3 * gd);
    s.y1 = _mm256_add_epi64(s.y0, _mm256_set1_epi64x(4 * gd));
    s.sx = _mm256_set1_epi64x(8 * ga), s.sy = _mm256_set1_epi64x(8 * gd);
    return s;
}

AVX2 static inline void steps8_next(steps8_t *s) {
    s->x0 = _mm256_add_epi64(s->x0, s->sx), s->x1 = _mm256_add_epi64(s->x1, s->sx);
    s->y0 = _mm256_add_epi64(s->y0, s->sy), s->y1 = _mm256_add_epi64(s->y1, s->sy);
}

/* lanes past the first rem (< 8) made copies of lane rem - 1 (the last block of a run) */
AVX2 static inline __m256i repeat_last(__m256i v, int64_t rem) {
    const __m256i last = _mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)rem - 1));
    return _mm256_permutevar8x32_epi32(v, last);
}

/* 32-bit lanes of 2**-32-pixel fractions as floats, rounded once (exact in two halves) */
AVX2 static inline __m256 fraction(__m256i f) {
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(f, 16)), _mm256_set1_ps(65536.0f)),
                                   _mm256_cvtepi32_ps(_mm256_and_si256(f, _mm256_set1_epi32(0xFFFF))));
    return _mm256_mul_ps(v, _mm256_set1_ps(2.3283064365386963e-10f));
}

AVX2 void pl_taps_float_avx2(int64_t gx, int64_t gy, int64_t ga, int64_t gd, int64_t count, int64_t sh, int32_t *off,
                             float *wx, float *wy) {
    const __m256i zero = _mm256_setzero_si256(), st = _mm256_set1_epi32((int32_t)sh);
    steps8_t s = steps8(gx, gy, ga, gd);
    for (int64_t k = 0; k < count; k += 8, steps8_next(&s)) {
        __m256i ix = shifted(s.x0, s.x1, zero, 32), iy = shifted(s.y0, s.y1, zero, 32);
        __m256i fx = shifted(s.x0, s.x1, zero, 0), fy = shifted(s.y0, s.y1, zero, 0);
        if (count - k < 8) {
            ix = repeat_last(ix, count - k), iy = repeat_last(iy, count - k);
            fx = repeat_last(fx, count - k), fy = repeat_last(fy, count - k);
        }
        _mm256_storeu_ps(wx + k, fraction(fx));
        _mm256_storeu_ps(wy + k, fraction(fy));
        _mm256_storeu_si256((__m256i *)(off + k), _mm256_add_epi32(_mm256_mullo_epi32(iy, st), ix));
    }
}

/* the 8 values of a block stored, the last block partly (count - k of them) */
#define STORE_BLOCK(out, k, count, bytes, STORE)                                                                       \
    do {                                                                                                               \
        if ((k) + 8 <= (count)) {                                                                                      \
            STORE((out) + (k) * (bytes));                                                                              \
        } else {                                                                                                       \
            uint8_t tmp_[32];                                                                                          \
            STORE(tmp_);                                                                                               \
            memcpy((out) + (k) * (bytes), tmp_, (size_t)((count) - (k)) * (bytes));                                    \
        }                                                                                                              \
    } while (0)

/* eight 32-bit values, each two neighbours of a row (low half) over the two below them
   (high half), 16-bit pairs loaded at the eight offsets of base and base + sh (scalar
   loads: gathers are slower on common CPUs) */
AVX2 static inline uint32_t pair_u8(const uint8_t *top, const uint8_t *bot, int32_t o) {
    uint16_t t, b;
    memcpy(&t, top + o, 2), memcpy(&b, bot + o, 2);
    return (uint32_t)t | (uint32_t)b << 16;
}

AVX2 static inline __m256i pairs8_u8(const uint8_t *top, const uint8_t *bot, const int32_t *off) {
    __m128i lo = _mm_cvtsi32_si128((int)pair_u8(top, bot, off[0]));
    __m128i hi = _mm_cvtsi32_si128((int)pair_u8(top, bot, off[4]));
    lo = _mm_insert_epi32(lo, (int)pair_u8(top, bot, off[1]), 1), hi = _mm_insert_epi32(hi, (int)pair_u8(top, bot, off[5]), 1);
    lo = _mm_insert_epi32(lo, (int)pair_u8(top, bot, off[2]), 2), hi = _mm_insert_epi32(hi, (int)pair_u8(top, bot, off[6]), 2);
    lo = _mm_insert_epi32(lo, (int)pair_u8(top, bot, off[3]), 3), hi = _mm_insert_epi32(hi, (int)pair_u8(top, bot, off[7]), 3);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

AVX2 void pl_run_u8_avx2(int64_t gx, int64_t gy, int64_t ga, int64_t gd, int64_t count, int64_t sh, int64_t extent,
                         const uint8_t *const *planes, int64_t np, uint8_t *const *outs) {
    const __m256i round = _mm256_set1_epi64x(1 << 20), lo = _mm256_set1_epi32(2047), one = _mm256_set1_epi32(2048);
    const __m256i st = _mm256_set1_epi32((int32_t)sh), zeros = _mm256_set1_epi32((int32_t)0x80018000);
    const __m256i top_of = _mm256_setr_epi8(0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1, 0, -1, 1, -1, 4,
                                            -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1);
    const __m256i bot_of = _mm256_setr_epi8(2, -1, 3, -1, 6, -1, 7, -1, 10, -1, 11, -1, 14, -1, 15, -1, 2, -1, 3, -1, 6,
                                            -1, 7, -1, 10, -1, 11, -1, 14, -1, 15, -1);
    const __m256i half = _mm256_set1_epi32(8192);
    steps8_t s = steps8(gx, gy, ga, gd);
    for (int64_t k = 0; k < count; k += 8, steps8_next(&s)) {
        /* the block's taps: weights (w00 | w01 << 16, w10 | w11 << 16) and neighbours */
        __m256i qx = shifted(s.x0, s.x1, round, 21), qy = shifted(s.y0, s.y1, round, 21);
        if (count - k < 8) qx = repeat_last(qx, count - k), qy = repeat_last(qy, count - k);
        const __m256i fx = _mm256_and_si256(qx, lo), fy = _mm256_and_si256(qy, lo);
        const __m256i ux = _mm256_sub_epi32(one, fx), uy = _mm256_sub_epi32(one, fy);
        const __m256i w0 = _mm256_or_si256(_mm256_srai_epi32(_mm256_mullo_epi32(ux, uy), 8),
                                           _mm256_slli_epi32(_mm256_srai_epi32(_mm256_mullo_epi32(fx, uy), 8), 16));
        const __m256i w1 = _mm256_or_si256(_mm256_srai_epi32(_mm256_mullo_epi32(ux, fy), 8),
                                           _mm256_slli_epi32(_mm256_srai_epi32(_mm256_mullo_epi32(fx, fy), 8), 16));
        const __m256i ix = _mm256_srai_epi32(qx, 11), iy = _mm256_srai_epi32(qy, 11);
        /* a near block: its neighbours within 16 columns and 2 or 3 rows from (x0, y0), all
           inside the plane, taken by 16-byte row loads and byte shuffles (coordinates are
           monotone along a row: the extremes are the first and last lanes) */
        const int32_t xa = _mm256_cvtsi256_si32(ix), xb = _mm256_extract_epi32(ix, 7);
        const int32_t ya = _mm256_cvtsi256_si32(iy), yb = _mm256_extract_epi32(iy, 7);
        const int32_t x0 = xa < xb ? xa : xb, y0 = ya < yb ? ya : yb, dy = ya < yb ? yb - ya : ya - yb;
        const int64_t b = (int64_t)y0 * sh + x0;
        const int near = (xa < xb ? xb - xa : xa - xb) <= 14 && dy <= 1 && b + (dy + 1) * sh + 16 <= extent;
        __m256i c = _mm256_setzero_si256(), r = c;
        int32_t off[8];
        if (near) { /* bytes c, c + 1 of the row, zero-extended; r: the pixels on the second row */
            c = _mm256_sub_epi32(ix, _mm256_set1_epi32(x0));
            c = _mm256_add_epi32(_mm256_add_epi32(c, _mm256_slli_epi32(c, 16)), zeros);
            r = _mm256_cmpgt_epi32(iy, _mm256_set1_epi32(y0));
        } else {
            _mm256_storeu_si256((__m256i *)off, _mm256_add_epi32(_mm256_mullo_epi32(iy, st), ix));
        }
        for (int64_t g = 0; g < np; g++) { /* the planes share the taps */
            __m256i top, bot;
            if (near) {
                const uint8_t *q = planes[g] + b;
                const __m256i r0 = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q)), c);
                const __m256i r1 = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q + sh))), c);
                top = r0, bot = r1;
                if (dy) {
                    const __m256i r2 =
                        _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q + 2 * sh))), c);
                    top = _mm256_blendv_epi8(r0, r1, r), bot = _mm256_blendv_epi8(r1, r2, r);
                }
            } else {
                const __m256i v = pairs8_u8(planes[g], planes[g] + sh, off);
                top = _mm256_shuffle_epi8(v, top_of), bot = _mm256_shuffle_epi8(v, bot_of);
            }
            __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(top, w0), _mm256_madd_epi16(bot, w1));
            sum = _mm256_srai_epi32(_mm256_add_epi32(sum, half), 14);
            const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            const __m128i p8 = _mm_packus_epi16(p16, p16);
#define STORE_U8(d) _mm_storel_epi64((__m128i *)(d), p8)
            STORE_BLOCK(outs[g], k, count, 1, STORE_U8);
#undef STORE_U8
        }
    }
}

/* the three lerps of eight pixels, as the scalar loop orders them */
AVX2 static inline __m256 lerps(__m256 v00, __m256 v01, __m256 v10, __m256 v11, __m256 fx, __m256 fy) {
    const __m256 tp = _mm256_add_ps(v00, _mm256_mul_ps(fx, _mm256_sub_ps(v01, v00)));
    const __m256 bt = _mm256_add_ps(v10, _mm256_mul_ps(fx, _mm256_sub_ps(v11, v10)));
    return _mm256_add_ps(tp, _mm256_mul_ps(fy, _mm256_sub_ps(bt, tp)));
}

/* eight 32-bit values of two uint16 neighbours each, loaded at the eight offsets */
AVX2 static inline __m256i pairs8_u16(const uint16_t *base, const int32_t *off) {
    uint32_t u[8];
    for (int j = 0; j < 8; j++) memcpy(&u[j], base + off[j], 4);
    return _mm256_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3], (int)u[4], (int)u[5], (int)u[6], (int)u[7]);
}

AVX2 void pl_interior_u16_avx2(const uint16_t *base, int64_t sh, const int32_t *off, const float *wx, const float *wy,
                               int64_t count, uint16_t *out) {
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    for (int64_t k = 0; k < count; k += 8) {
        const __m256i top = pairs8_u16(base, off + k), bot = pairs8_u16(base + sh, off + k);
        const __m256 v = lerps(_mm256_cvtepi32_ps(_mm256_and_si256(top, low)), _mm256_cvtepi32_ps(_mm256_srli_epi32(top, 16)),
                               _mm256_cvtepi32_ps(_mm256_and_si256(bot, low)), _mm256_cvtepi32_ps(_mm256_srli_epi32(bot, 16)),
                               _mm256_loadu_ps(wx + k), _mm256_loadu_ps(wy + k));
        /* a lerp of values in [0, 65535] stays there: v + 0.5 is exact, floor rounds half up */
        const __m256i r = _mm256_cvttps_epi32(_mm256_floor_ps(_mm256_add_ps(v, _mm256_set1_ps(0.5f))));
        const __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
#define STORE_U16(d) _mm_storeu_si128((__m128i *)(d), p)
        STORE_BLOCK((uint8_t *)out, k, count, 2, STORE_U16);
#undef STORE_U16
    }
}

/* the pairs (v[o], v[o + 1]) of pixels j and j + 1 in one 128-bit lane */
AVX2 static inline __m128 pair2_f32(const float *base, int32_t oa, int32_t ob) {
    return _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd((const double *)(base + oa))), (const __m64 *)(base + ob));
}

/* the left and right neighbours of eight pixels (in pixel order), from 64-bit pair loads */
AVX2 static inline void pairs8_f32(const float *base, const int32_t *off, __m256 *left, __m256 *right) {
    const __m256 lo = _mm256_insertf128_ps(_mm256_castps128_ps256(pair2_f32(base, off[0], off[1])),
                                           pair2_f32(base, off[4], off[5]), 1);
    const __m256 hi = _mm256_insertf128_ps(_mm256_castps128_ps256(pair2_f32(base, off[2], off[3])),
                                           pair2_f32(base, off[6], off[7]), 1);
    *left = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    *right = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
}

AVX2 void pl_interior_f32_avx2(const float *base, int64_t sh, const int32_t *off, const float *wx, const float *wy,
                               int64_t count, float *out) {
    for (int64_t k = 0; k < count; k += 8) {
        __m256 v00, v01, v10, v11;
        pairs8_f32(base, off + k, &v00, &v01);
        pairs8_f32(base + sh, off + k, &v10, &v11);
        const __m256 v = lerps(v00, v01, v10, v11, _mm256_loadu_ps(wx + k), _mm256_loadu_ps(wy + k));
#define STORE_F32(d) _mm256_storeu_ps((float *)(d), v)
        STORE_BLOCK((uint8_t *)out, k, count, 4, STORE_F32);
#undef STORE_F32
    }
}
#endif
