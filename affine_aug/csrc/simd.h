/* simd.h: the SIMD pieces of bilinear rows. The SSE2 helpers (inlined, shared by the
   interior and the border paths) compute the same integers and floats as the scalar
   code; the AVX2 interiors (simd.c) do eight pixels of a row's interior at a time. */

#ifndef AA_SIMD_H
#define AA_SIMD_H

#include "common.h"

/* Coordinates in 1/2048 pixel; the four weights (1/16384) are the products of the axis
   weights, floored: exact (one weight 16384) for integer coordinates, 8192 pairs at
   half pixels, and at most 3/16384 short of 1 otherwise. */
typedef struct { int32_t w00, w01, w10, w11; } wts_t;

INLINE wts_t weights_u8(int32_t wx, int32_t wy) {
    wts_t t = {((2048 - wx) * (2048 - wy)) >> 8, (wx * (2048 - wy)) >> 8, ((2048 - wx) * wy) >> 8, (wx * wy) >> 8};
    return t;
}

#if defined(__SSE2__)
/* the same sum for up to four channels at once: bytes of pixels a/b (top row) and
   c/d (bottom row) in the low bytes of each 32-bit value */
INLINE uint32_t blend4_u8(uint32_t a, uint32_t b, uint32_t c, uint32_t d, wts_t t) {
    const __m128i z = _mm_setzero_si128();
    __m128i top = _mm_unpacklo_epi8(_mm_unpacklo_epi8(_mm_cvtsi32_si128((int)a), _mm_cvtsi32_si128((int)b)), z);
    __m128i bot = _mm_unpacklo_epi8(_mm_unpacklo_epi8(_mm_cvtsi32_si128((int)c), _mm_cvtsi32_si128((int)d)), z);
    __m128i s = _mm_add_epi32(_mm_madd_epi16(top, _mm_set1_epi32((int)(((uint32_t)t.w01 << 16) | (uint32_t)t.w00))),
                              _mm_madd_epi16(bot, _mm_set1_epi32((int)(((uint32_t)t.w11 << 16) | (uint32_t)t.w10))));
    s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(8192)), 14);
    s = _mm_packs_epi32(s, s);
    return (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(s, s));
}
#endif

#if defined(__SSE2__)
/* float32 images with 3 or 4 channels: the three lerps on whole pixels, the same float
   operations in the same order as the scalar loop */
INLINE void lerp4_f32(const float *k, const float *k1, int64_t c, float fx, float fy, float *d) {
    __m128 v00 = _mm_loadu_ps(k), v01 = _mm_loadu_ps(k + c), v10 = _mm_loadu_ps(k1), v11;
    if (c == 4) {
        v11 = _mm_loadu_ps(k1 + 4);
    } else { /* never read past the image's last float */
        v11 = _mm_loadu_ps(k1 + 2);
        v11 = _mm_shuffle_ps(v11, v11, _MM_SHUFFLE(3, 3, 2, 1));
    }
    const __m128 vx = _mm_set1_ps(fx), vy = _mm_set1_ps(fy);
    __m128 tp = _mm_add_ps(v00, _mm_mul_ps(vx, _mm_sub_ps(v01, v00)));
    __m128 bt = _mm_add_ps(v10, _mm_mul_ps(vx, _mm_sub_ps(v11, v10)));
    __m128 v = _mm_add_ps(tp, _mm_mul_ps(vy, _mm_sub_ps(bt, tp)));
    if (c == 4) {
        _mm_storeu_ps(d, v);
    } else {
        _mm_storel_pi((__m64 *)d, v);
        _mm_store_ss(d + 2, _mm_movehl_ps(v, v));
    }
}
#endif

INLINE uint32_t load32(const uint8_t *s) { uint32_t v; memcpy(&v, s, 4); return v; }

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_PATH 1

/* Eight pixels of a row's interior at a time, on AVX2 machines: the same integers (and
   floats) as the scalar loops in bilinear_u8.c / bilinear_float.c, so which path takes
   a pixel never changes its value. Coordinates are the 32.32 fixed-point gx + j ga in
   64-bit lanes; offsets are 32-bit (the caller checks that the image is under 2 GiB and
   narrower than 2**19 pixels). Each does all `count` pixels (the last block partly) and
   returns count; without AVX2 the callers' scalar loops do them. */
int64_t interior_u8_avx2(const uint8_t *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga, int64_t gd,
                         int64_t count, uint8_t *d);
int64_t interior_f32_avx2(const float *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga, int64_t gd,
                          int64_t count, float *d);
#endif

#endif
