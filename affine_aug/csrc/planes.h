/* Shared definitions of the planar (N, C, H, W) kernels: planes.c (forward) and
   backward.c (the transposes). Conventions are those of the interleaved kernel:

     images      (n, c, h, w) with any element strides (sn, sc, sh, sw), read in place
     dst_to_src  (n, 3, 3) float64: output pixel (x, y) samples the source at
                 (m00 x + m01 y + m02, m10 x + m11 y + m12); pixel centres on integers
     fill        (c,) float64, one value per channel (the constant border's)
     borders     constant, edge, reflect (cba|abc), mirror (cb|abc), wrap; they map
                 neighbour indices, never coordinates, so interpolation weights come from
                 the unclamped coordinates
   Far coordinates are reduced first (clamped to +-2**40 for constant/edge, modulo the
   period for the periodic modes), so integer conversion never overflows.

   Arithmetic: an output value is the separable sum sum_j wy[j] (sum_i wx[i] v[j][i])
   over the taps of each axis (2 for bilinear, 4 for bicubic; Keys' cubic with parameter
   a), v the pixel a tap's mapped indices name or the channel's fill. Bicubic: float64
   for every dtype. Bilinear (the products wy[j] wx[i] summed once): fixed point for
   8-bit images (see planes.c), float32 for 16-bit integers and float32, float64 for
   the rest. Integer outputs rounded half up and clipped to the dtype's range.
   Nearest copies the element at floor(coord + 0.5) (any dtype, bit for bit). */

#ifndef AA_PLANES_H
#define AA_PLANES_H

#include "common.h" /* the interleaved kernel's: borders, ifloor, map_index, reduce, parallel */

/* dtype codes: the interleaved kernel's four (U8, U16, F32, F64), then signed integers */
enum { PL_U8 = U8, PL_U16 = U16, PL_F32 = F32, PL_F64 = F64, PL_I8, PL_I16, PL_I32, PL_I64 };

#define PL_INLINE INLINE
#define PL_OUT (-((int64_t)1 << 62)) /* an index outside the image (fill): any sum with it stays < 0 */
#define PL_CHUNK 256                 /* output pixels whose taps are computed together */

/* index i mapped into [0, n) by the border mode; PL_OUT means "the fill value" */
PL_INLINE int64_t pl_map(int64_t i, int64_t n, int border) {
    const int64_t r = map_index(i, n, border);
    return r < 0 ? PL_OUT : r;
}

PL_INLINE double pl_load(const void *base, int64_t k, int dt) {
    switch (dt) {
    case PL_U8: return ((const uint8_t *)base)[k];
    case PL_U16: return ((const uint16_t *)base)[k];
    case PL_F32: return ((const float *)base)[k];
    case PL_F64: return ((const double *)base)[k];
    case PL_I8: return ((const int8_t *)base)[k];
    case PL_I16: return ((const int16_t *)base)[k];
    case PL_I32: return ((const int32_t *)base)[k];
    default: return (double)((const int64_t *)base)[k];
    }
}

/* v rounded half up and clipped to [lo, hi] (integers exact in double); NaN gives 0.
   floor by conversion: libm's floor is a call on baseline x86-64 */
PL_INLINE int64_t pl_round(double v, double lo, double hi) {
    if (!(v == v)) return 0;
    v += 0.5;
    if (!(v >= lo)) return (int64_t)lo;
    if (v >= hi + 1.0) return (int64_t)hi;
    return ifloor(v);
}

PL_INLINE void pl_store(void *base, int64_t k, double v, int dt) {
    switch (dt) {
    case PL_U8: ((uint8_t *)base)[k] = (uint8_t)pl_round(v, 0, 255); break;
    case PL_U16: ((uint16_t *)base)[k] = (uint16_t)pl_round(v, 0, 65535); break;
    case PL_F32: ((float *)base)[k] = (float)v; break;
    case PL_F64: ((double *)base)[k] = v; break;
    case PL_I8: ((int8_t *)base)[k] = (int8_t)pl_round(v, -128, 127); break;
    case PL_I16: ((int16_t *)base)[k] = (int16_t)pl_round(v, -32768, 32767); break;
    case PL_I32: ((int32_t *)base)[k] = (int32_t)pl_round(v, -2147483648.0, 2147483647.0); break;
    default: { /* 2**63 is not an int64: the top of the range is written as INT64_MAX */
        v = floor(v + 0.5);
        int64_t r = !(v == v) ? 0 : v >= 9223372036854775808.0 ? INT64_MAX : v <= -9223372036854775808.0 ? INT64_MIN : (int64_t)v;
        ((int64_t *)base)[k] = r;
    }
    }
}

static const int PL_ITEMSIZE[] = {1, 2, 4, 8, 1, 2, 4, 8};

/* Keys' cubic convolution weights of the neighbours at offsets -1, 0, 1, 2 of a
   coordinate with fraction t (the interleaved kernel's formula), and their derivatives
   with respect to t */
PL_INLINE void pl_keys(double t, double a, double wt[4]) {
    const double d0 = 1.0 + t, d1 = t, d2 = 1.0 - t, d3 = 2.0 - t;
    wt[0] = ((a * d0 - 5.0 * a) * d0 + 8.0 * a) * d0 - 4.0 * a;
    wt[1] = ((a + 2.0) * d1 - (a + 3.0)) * d1 * d1 + 1.0;
    wt[2] = ((a + 2.0) * d2 - (a + 3.0)) * d2 * d2 + 1.0;
    wt[3] = ((a * d3 - 5.0 * a) * d3 + 8.0 * a) * d3 - 4.0 * a;
}

PL_INLINE void pl_dkeys(double t, double a, double dw[4]) {
    const double d0 = 1.0 + t, d1 = t, d2 = 1.0 - t, d3 = 2.0 - t;
    dw[0] = (3.0 * a * d0 - 10.0 * a) * d0 + 8.0 * a;
    dw[1] = (3.0 * (a + 2.0) * d1 - 2.0 * (a + 3.0)) * d1;
    dw[2] = -((3.0 * (a + 2.0) * d2 - 2.0 * (a + 3.0)) * d2);
    dw[3] = -((3.0 * a * d3 - 10.0 * a) * d3 + 8.0 * a);
}

/* The taps of one axis for source coordinate s (already reduced): K mapped indices
   (PL_OUT for fill), their weights and (when dw) the weights' derivatives by s.
   Nearest: one tap at floor(s + 0.5), weight 1. */
PL_INLINE void pl_axis(double s, int64_t n, int border, const int interp, double a, int64_t *idx, double *w,
                       double *dw) {
    if (interp == NEAREST) {
        idx[0] = pl_map(ifloor(s + 0.5), n, border);
        w[0] = 1.0;
        if (dw) dw[0] = 0.0;
        return;
    }
    const int64_t i0 = ifloor(s);
    const double t = s - (double)i0;
    if (interp == BILINEAR) {
        idx[0] = pl_map(i0, n, border), idx[1] = pl_map(i0 + 1, n, border);
        w[0] = 1.0 - t, w[1] = t;
        if (dw) dw[0] = -1.0, dw[1] = 1.0;
        return;
    }
    for (int j = 0; j < 4; j++) idx[j] = pl_map(i0 - 1 + j, n, border);
    pl_keys(t, a, w);
    if (dw) pl_dkeys(t, a, dw);
}

/* the source coordinates of output pixel x of row y under matrix m (the interleaved
   kernel's order of operations) */
PL_INLINE void pl_coords(const double *m, int64_t x, int64_t y, double *sx, double *sy) {
    const double x0 = m[1] * (double)y + m[2], y0 = m[4] * (double)y + m[5];
    *sx = x0 + m[0] * (double)x;
    *sy = y0 + m[3] * (double)x;
}

PL_INLINE int pl_taps(int interp) { return interp == NEAREST ? 1 : interp == BILINEAR ? 2 : 4; }

/* ------------------------------------------------------------------ AVX2 (planes_simd.c) */

/* Whether the CPU runs AVX2 (and the AVX2 paths are on): -1 until pl_cpu_detect(), which
   the entry points call; aa_planes_set_simd(0) turns them off (tests). */
extern int PL_HAS_AVX2;
void pl_cpu_detect(void);

#if defined(__x86_64__) && defined(__GNUC__)
#define PL_AVX2_PATH 1
/* A bilinear interior run of `count` pixels from the 32.32 coordinates (gx, gy) stepping
   (ga, gd) per pixel, in planes of row stride sh and column stride 1 (offsets within 31
   bits, sizes under 2**19: the caller checks), the `extent` elements of a plane readable.
   uint8 (pl_run_u8_avx2): each block of eight pixels' taps (offsets, weights) in
   registers, shared by the np planes, each written to its outs[g]. uint16 / float32:
   first the taps of the run (pl_taps_float_avx2: off, the top-left neighbour's offset,
   and the fractions, in whole blocks of eight: the arrays hold count rounded up to 8,
   lanes past count repeat the last pixel), then one channel's plane `base` at a time. */
void pl_run_u8_avx2(int64_t gx, int64_t gy, int64_t ga, int64_t gd, int64_t count, int64_t sh, int64_t extent,
                    const uint8_t *const *planes, int64_t np, uint8_t *const *outs);
void pl_taps_float_avx2(int64_t gx, int64_t gy, int64_t ga, int64_t gd, int64_t count, int64_t sh, int32_t *off,
                        float *wx, float *wy);
void pl_interior_u16_avx2(const uint16_t *base, int64_t sh, const int32_t *off, const float *wx, const float *wy,
                          int64_t count, uint16_t *out);
void pl_interior_f32_avx2(const float *base, int64_t sh, const int32_t *off, const float *wx, const float *wy,
                          int64_t count, float *out);
#endif

#endif
