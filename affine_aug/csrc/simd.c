/* simd.c: the AVX2 interiors of bilinear rows (see simd.h), compiled for AVX2 whatever
   the build's target and used only where the CPU runs it; and the CPU's detection. */

#include "simd.h"

int HAS_AVX2 = -1, HAS_VBMI = -1;

void cpu_detect(void) {
#if defined(HAVE_AVX2_PATH)
    if (HAS_AVX2 < 0) HAS_AVX2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (HAS_VBMI < 0) HAS_VBMI = HAS_AVX2 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
#else
    HAS_AVX2 = 0, HAS_VBMI = 0;
#endif
}

/* A debug hook for tests and benchmarks: on = 0 keeps every later call off the AVX2 and
   AVX-512 interiors (the scalar loops take their pixels), 1 gives them back where the CPU
   has them. Returns whether they were in use. Not thread-safe against running calls. */
AA_EXPORT int aa_set_simd(int on) {
    cpu_detect();
    const int was = HAS_AVX2;
    HAS_AVX2 = 0, HAS_VBMI = 0;
    if (on) HAS_AVX2 = -1, HAS_VBMI = -1, cpu_detect();
    return was;
}

#if defined(HAVE_AVX2_PATH)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* the 32.32 coordinates of lanes j = 0..7 -> 32-bit lanes of (g >> shift), g >= 0 */
AVX2 static inline __m256i lanes_shifted(__m256i g0, __m256i g1, __m256i add, int shift) {
    const __m128i sh = _mm_cvtsi32_si128(shift);
    g0 = _mm256_srl_epi64(_mm256_add_epi64(g0, add), sh);
    g1 = _mm256_srl_epi64(_mm256_add_epi64(g1, add), sh);
    __m256i t = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(g0), _mm256_castsi256_ps(g1), 0x88));
    return _mm256_permute4x64_epi64(t, 0xD8); /* q0 q1 q2 q3 q4 q5 q6 q7 */
}

/* the 32.32 coordinates of eight consecutive pixels (lanes 0-3 and 4-7), and a step of eight */
typedef struct { __m256i x0, x1, y0, y1, sx, sy; } lanes8_t;

AVX2 static inline lanes8_t lanes8(int64_t gx, int64_t gy, int64_t ga, int64_t gd) {
    lanes8_t l;
    l.x0 = _mm256_setr_epi64x(gx, gx + ga, gx + 2 * ga, gx + 3 * ga), l.x1 = _mm256_add_epi64(l.x0, _mm256_set1_epi64x(4 * ga));
    l.y0 = _mm256_setr_epi64x(gy, gy + gd, gy + 2 * gd, gy + 3 * gd), l.y1 = _mm256_add_epi64(l.y0, _mm256_set1_epi64x(4 * gd));
    l.sx = _mm256_set1_epi64x(8 * ga), l.sy = _mm256_set1_epi64x(8 * gd);
    return l;
}

AVX2 static inline void lanes8_next(lanes8_t *l) {
    l->x0 = _mm256_add_epi64(l->x0, l->sx), l->x1 = _mm256_add_epi64(l->x1, l->sx);
    l->y0 = _mm256_add_epi64(l->y0, l->sy), l->y1 = _mm256_add_epi64(l->y1, l->sy);
}

AVX2 int64_t interior_u8_avx2(const uint8_t *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga,
                              int64_t gd, int64_t count, uint8_t *d) {
    int32_t off[8];
    /* one pixel per 128-bit lane: top pair (8 bytes at k) low, bottom pair high (at
       k1 - 2 for c = 3: never past the image's end); the shuffles zero-extend
       r0 r1 g0 g1 b0 b1 [a0 a1] to 16 bits for the multiply-adds */
    const __m256i mt = c == 3 ? _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                                 0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1)
                              : _mm256_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1,
                                                 0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1);
    const __m256i mb = c == 3 ? _mm256_setr_epi8(10, -1, 13, -1, 11, -1, 14, -1, 12, -1, 15, -1, -1, -1, -1, -1,
                                                 10, -1, 13, -1, 11, -1, 14, -1, 12, -1, 15, -1, -1, -1, -1, -1)
                              : _mm256_setr_epi8(8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1, 11, -1, 15, -1,
                                                 8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1, 11, -1, 15, -1);
    /* RGBx -> RGB within each 128-bit lane */
    const __m256i squeeze = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                             0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    const int64_t back = c == 3 ? 2 : 0;
    const __m256i half = _mm256_set1_epi32(8192), lo = _mm256_set1_epi32(2047), one = _mm256_set1_epi32(2048);
    const __m256i st = _mm256_set1_epi32((int32_t)stride), cc = _mm256_set1_epi32((int32_t)c);
    const __m256i round = _mm256_set1_epi64x(1 << 20), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    lanes8_t g = lanes8(gx, gy, ga, gd);
    int64_t x = 0;
    for (; x < count; x += 8, lanes8_next(&g)) {
        const int rem = count - x < 8 ? (int)(count - x) : 8;
        __m256i qx = lanes_shifted(g.x0, g.x1, round, 21), qy = lanes_shifted(g.y0, g.y1, round, 21);
        if (rem < 8) { /* the last block: lanes past the end repeat the last pixel (never read outside) */
            const __m256i last = _mm256_min_epi32(iota, _mm256_set1_epi32(rem - 1));
            qx = _mm256_permutevar8x32_epi32(qx, last), qy = _mm256_permutevar8x32_epi32(qy, last);
        }
        const __m256i wx = _mm256_and_si256(qx, lo), wy = _mm256_and_si256(qy, lo);
        const __m256i ux = _mm256_sub_epi32(one, wx), uy = _mm256_sub_epi32(one, wy);
        const __m256i wtop = _mm256_or_si256(_mm256_srai_epi32(_mm256_mullo_epi32(ux, uy), 8),
                                             _mm256_slli_epi32(_mm256_srai_epi32(_mm256_mullo_epi32(wx, uy), 8), 16));
        const __m256i wbot = _mm256_or_si256(_mm256_srai_epi32(_mm256_mullo_epi32(ux, wy), 8),
                                             _mm256_slli_epi32(_mm256_srai_epi32(_mm256_mullo_epi32(wx, wy), 8), 16));
        const __m256i offs = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(qy, 11), st),
                                              _mm256_mullo_epi32(_mm256_srai_epi32(qx, 11), cc));
        const __m128i olo = _mm256_castsi256_si128(offs), ohi = _mm256_extracti128_si256(offs, 1);
        off[0] = _mm_cvtsi128_si32(olo), off[1] = _mm_extract_epi32(olo, 1), off[2] = _mm_extract_epi32(olo, 2);
        off[3] = _mm_extract_epi32(olo, 3), off[4] = _mm_cvtsi128_si32(ohi), off[5] = _mm_extract_epi32(ohi, 1);
        off[6] = _mm_extract_epi32(ohi, 2), off[7] = _mm_extract_epi32(ohi, 3);
        __m256i res[4];
        for (int q = 0; q < 4; q++) { /* pixels 2q (low lane) and 2q + 1 (high lane) */
            const uint8_t *k0 = img + off[2 * q], *k1 = img + off[2 * q + 1];
            __m128i a = _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)k0)),
                                                      (const double *)(k0 + stride - back)));
            __m128i b = _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)k1)),
                                                      (const double *)(k1 + stride - back)));
            const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
            const __m256i pick = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
            __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(v, mt), _mm256_permutevar8x32_epi32(wtop, pick)),
                                           _mm256_madd_epi16(_mm256_shuffle_epi8(v, mb), _mm256_permutevar8x32_epi32(wbot, pick)));
            res[q] = _mm256_srai_epi32(_mm256_add_epi32(sum, half), 14);
        }
        /* lanes: res[q] = [p2q | p2q+1]; packs give [p0 p2 p4 p6 | p1 p3 p5 p7] */
        __m256i px = _mm256_packus_epi16(_mm256_packs_epi32(res[0], res[1]), _mm256_packs_epi32(res[2], res[3]));
        px = _mm256_permutevar8x32_epi32(px, order); /* p0 .. p7, 4 bytes each */
        uint8_t tmp[32], *o = rem == 8 ? d + x * c : tmp;
        if (c == 4) {
            _mm256_storeu_si256((__m256i *)o, px);
        } else {
            px = _mm256_shuffle_epi8(px, squeeze);
            const __m128i l0 = _mm256_castsi256_si128(px), l1 = _mm256_extracti128_si256(px, 1);
            _mm_storel_epi64((__m128i *)o, l0);
            const uint32_t t0 = (uint32_t)_mm_extract_epi32(l0, 2), t1 = (uint32_t)_mm_extract_epi32(l1, 2);
            memcpy(o + 8, &t0, 4);
            _mm_storel_epi64((__m128i *)(o + 12), l1);
            memcpy(o + 20, &t1, 4);
        }
        if (rem < 8) memcpy(d + x * c, tmp, rem * c);
    }
    return count;
}

/* two pixels' 4 floats each, in the low and the high lane */
AVX2 static inline __m256 pair_ps(const float *a, const float *b) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(a)), _mm_loadu_ps(b), 1);
}

/* float32 images with 3 or 4 channels: lerps on whole pixels, fractions as in bilinear_float.c
   ((float)(g & 0xFFFFFFFF) * 2**-32, the conversion done exactly in two 16-bit halves).
   In two passes over chunks of up to 256 pixels: first every pixel's offset and weights,
   then the lerps, two pixels at a time, whose loads then wait on nothing but the cache
   (in one pass, computing each block of eight and using it at once, the out-of-order
   window holds too few blocks to hide the loads' latency) */
AVX2 int64_t interior_f32_avx2(const float *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga,
                               int64_t gd, int64_t count, float *d) {
    enum { CHUNK = 256 }; /* a multiple of 8 */
    int32_t off[CHUNK];
    float wxs[CHUNK], wys[CHUNK];
    const __m256i low16 = _mm256_set1_epi32(0xFFFF), zero = _mm256_setzero_si256();
    const __m256 scale = _mm256_set1_ps(2.3283064365386963e-10f), k16 = _mm256_set1_ps(65536.0f);
    const __m256i st = _mm256_set1_epi32((int32_t)stride), cc = _mm256_set1_epi32((int32_t)c);
    lanes8_t g = lanes8(gx, gy, ga, gd);
    for (int64_t x0 = 0; x0 < count; x0 += CHUNK) {
        const int64_t n = count - x0 < CHUNK ? count - x0 : CHUNK;
        for (int64_t x = 0; x < n; x += 8, lanes8_next(&g)) { /* lanes past the end are computed, never used */
            const __m256i ix = lanes_shifted(g.x0, g.x1, zero, 32), iy = lanes_shifted(g.y0, g.y1, zero, 32);
            const __m256i fx = lanes_shifted(g.x0, g.x1, zero, 0), fy = lanes_shifted(g.y0, g.y1, zero, 0);
            const __m256 vx = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(fx, 16)), k16),
                                            _mm256_cvtepi32_ps(_mm256_and_si256(fx, low16)));
            const __m256 vy = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(fy, 16)), k16),
                                            _mm256_cvtepi32_ps(_mm256_and_si256(fy, low16)));
            _mm256_storeu_ps(wxs + x, _mm256_mul_ps(vx, scale)), _mm256_storeu_ps(wys + x, _mm256_mul_ps(vy, scale));
            _mm256_storeu_si256((__m256i *)(off + x), _mm256_add_epi32(_mm256_mullo_epi32(iy, st), _mm256_mullo_epi32(ix, cc)));
        }
        float *o = d + x0 * c;
        int64_t j = 0;
        for (; j + 1 < n; j += 2) { /* two pixels, one per 128-bit lane */
            const float *k = img + off[j], *q = img + off[j + 1];
            const __m256 wx = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(wxs + j)), _mm_broadcast_ss(wxs + j + 1), 1);
            const __m256 wy = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(wys + j)), _mm_broadcast_ss(wys + j + 1), 1);
            __m256 v00 = pair_ps(k, q), v01 = pair_ps(k + c, q + c), v10 = pair_ps(k + stride, q + stride), v11;
            if (c == 4) {
                v11 = pair_ps(k + stride + 4, q + stride + 4);
            } else { /* never read past the image's last float */
                v11 = pair_ps(k + stride + 2, q + stride + 2);
                v11 = _mm256_shuffle_ps(v11, v11, _MM_SHUFFLE(3, 3, 2, 1));
            }
            const __m256 tp = _mm256_add_ps(v00, _mm256_mul_ps(wx, _mm256_sub_ps(v01, v00)));
            const __m256 bt = _mm256_add_ps(v10, _mm256_mul_ps(wx, _mm256_sub_ps(v11, v10)));
            const __m256 v = _mm256_add_ps(tp, _mm256_mul_ps(wy, _mm256_sub_ps(bt, tp)));
            float *p = o + j * c;
            if (c == 4) {
                _mm256_storeu_ps(p, v);
            } else { /* 4 floats each: the 4th is the next pixel's, rewritten by it, except after the last */
                _mm_storeu_ps(p, _mm256_castps256_ps128(v));
                const __m128 hi = _mm256_extractf128_ps(v, 1);
                if (x0 + j + 2 < count) {
                    _mm_storeu_ps(p + 3, hi);
                } else {
                    _mm_storel_pi((__m64 *)(p + 3), hi);
                    _mm_store_ss(p + 5, _mm_movehl_ps(hi, hi));
                }
            }
        }
        if (j < n) lerp4_f32(img + off[j], img + off[j] + stride, c, wxs[j], wys[j], o + j * c);
    }
    return count;
}
#endif
