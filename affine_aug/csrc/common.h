/* common.h: what every file of the compiled kernel shares (and any new entry point may
   use): the conventions, the types, the border mapping, fixed point, loads and stores,
   fill spans and the thread pool.

   The kernel is built by `pip install` (setup.py: one shared library from the files of
   this folder) and called through ctypes (kernel.py), which releases the GIL for the
   whole call. No Python API is used here. The files, one concern each:
     common.h          this header
     threads.c         parallel(): a call's work handed out to POSIX threads, or an OpenMP team
     geometry.h        a bilinear output row split into fill / border / interior spans
     padding.c         when and how far an image is copied with a margin (the policy)
     bands.h, bands.c  a thread's rows in bands and tiles: the plan and its execution
     simd.h, simd.c    the SSE2 helpers and the AVX2 interiors of bilinear rows
     nearest.c         nearest rows
     bilinear_u8.c     bilinear rows of uint8 images (fixed-point weights)
     bilinear_float.c  bilinear rows of uint16 / float32 / float64 images (float lerps)
     bicubic.c         bicubic rows
     permute.c         exact pixel permutations (flips, quarter turns, integer shifts) as copies
     blur.c            the Gaussian prefilter of one image
     kernels.h         what the interpolation and blur files give the entry points
     entry.c           the exported functions: aa_warp, aa_warp_ragged, aa_blur, aa_blur_ragged

   Conventions (the same as the numpy reference in reference.py):
     images      (n, h, w, c) contiguous, one of uint8 / uint16 / float32 / float64
     dst_to_src  (n, 3, 3) float64: output pixel (x, y) samples the source at
                 (m00 x + m01 y + m02, m10 x + m11 y + m12); pixel centres on integers
     borders     constant (the image extended by `fill`), edge, reflect (cba|abc),
                 mirror (cb|abc), wrap; they map neighbour indices, never coordinates,
                 so interpolation weights come from the unclamped coordinates.
     fill        (c,) float64, the value outside the image for constant, as the images'
                 dtype stores it (rounded and clipped for integer images; warp.py passes
                 only values the dtype holds) on every path
   Far coordinates are reduced first (clamped to +-2**40 for constant/edge, reduced
   modulo the period for the periodic modes), so integer conversion never overflows.

   Every output pixel is a pure function of its own coordinates: the interior path (all
   neighbours inside, direct loads, SIMD where it pays) and the border path (mapped
   indices, fill) use the same arithmetic in the same order, so a result never depends on
   the canvas an image sits in. Compiled with -ffp-contract=off for that reason.

   Arithmetic:
     uint8 bilinear   coordinates rounded to 1/2048 pixel, the four weights the floored
                      products of the axis weights (1/16384; they sum to 16381..16384),
                      integer sum rounded half up: within one level of the float64
                      reference, exact for integer and half-pixel coordinates
     uint16, float32  float32 lerps
     float64          float64 lerps
     bicubic          float64 for every dtype (Keys cubic with parameter a)
     prefilter        float32 sums for uint8 and float32, float64 for uint16 and float64 (see BLUR)
   Integer outputs are rounded half up and clipped to the dtype's range.

   Threads: one call hands out the n * h_out output rows (or the n images of a prefilter)
   in steps to POSIX threads created for the call and joined before it returns: nothing
   outlives a call, so the library is safe in forked children. */


#ifndef AA_COMMON_H
#define AA_COMMON_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* only the entry points (AA_EXPORT) are visible outside the library */
#pragma GCC visibility push(hidden)
#define AA_EXPORT __attribute__((visibility("default")))

enum { CONSTANT, EDGE, REFLECT, MIRROR, WRAP };
enum { U8, U16, F32, F64 };
enum { NEAREST, BILINEAR, BICUBIC };

#define LIMIT 1099511627776.0 /* 2**40: beyond it every neighbour is fill or edge */
#define INLINE static inline __attribute__((always_inline))
/* Runtime SIMD dispatch: the row loops are compiled twice, for AVX2 (+FMA off, see
   -ffp-contract=off: the same bits either way) and for the baseline, and the loader
   picks one for this CPU (GNU ifunc). Elsewhere: the baseline only. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define DISPATCH __attribute__((target_clones("avx2", "default")))
#else
#define DISPATCH
#endif

/* An exact pixel permutation (permute.c): output pixel (x, y) is source pixel
   (xx x + xy y + x0, yx x + yy y + y0), the coefficients 0 or +-1 */
typedef struct {
    int exact; /* whether the image takes the copy path */
    int64_t xx, xy, x0, yx, yy, y0;
} perm_t;

typedef struct {
    const uint8_t *src;  /* (n, h, w, c) */
    uint8_t *dst;        /* (n, ho, wo, c) */
    const double *m;     /* (n, 3, 3) dst -> src */
    const double *fill;  /* (c,) */
    int64_t n, h, w, c, ho, wo;
    int dtype, interp, border;
    double cubic_a;
    const perm_t *perms; /* (n,): which images are exact permutations, or NULL for none */
} warp_t;

/* ------------------------------------------------------------------ numbers and the border mapping */

INLINE double dmin(double a, double b) { return a < b ? a : b; }
INLINE double dmax(double a, double b) { return a > b ? a : b; }

INLINE int64_t ifloor(double v) { /* floor for |v| < 2**62 */
    int64_t t = (int64_t)v;
    return t - (v < (double)t);
}

/* index i mapped into [0, n) by the border mode; -1 means "the fill value" */
INLINE int64_t map_index(int64_t i, int64_t n, int border) {
    if (i >= 0 && i < n) return i;
    int64_t p, r;
    switch (border) {
    case CONSTANT: return -1;
    case EDGE: return i < 0 ? 0 : n - 1;
    case WRAP: r = i % n; return r < 0 ? r + n : r;
    case REFLECT: p = 2 * n; r = i % p; if (r < 0) r += p; return r < n ? r : p - 1 - r;
    default: /* MIRROR */
        if (n == 1) return 0;
        p = 2 * n - 2; r = i % p; if (r < 0) r += p; return r < n ? r : p - r;
    }
}

/* a source coordinate made safe for integer conversion (exact where it matters) */
INLINE double reduce(double s, int64_t n, int border) {
    if (border == CONSTANT || border == EDGE) {
        if (!(s >= -LIMIT)) return -LIMIT; /* also NaN */
        return s > LIMIT ? LIMIT : s;
    }
    double p = border == WRAP ? (double)n : border == REFLECT ? 2.0 * n : fmax(2.0 * n - 2.0, 1.0);
    if (!(s == s)) return 0.0;
    return s - p * floor(s / p);
}

INLINE double load(const uint8_t *base, int64_t k, int dt) {
    switch (dt) {
    case U8: return base[k];
    case U16: return ((const uint16_t *)base)[k];
    case F32: return ((const float *)base)[k];
    default: return ((const double *)base)[k];
    }
}

INLINE void store(uint8_t *base, int64_t k, double v, int dt) {
    switch (dt) {
    case U8: v = floor(v + 0.5); base[k] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; break;
    case U16: v = floor(v + 0.5); ((uint16_t *)base)[k] = v < 0 ? 0 : v > 65535 ? 65535 : (uint16_t)v; break;
    case F32: ((float *)base)[k] = (float)v; break;
    default: ((double *)base)[k] = v;
    }
}

#define ITEMSIZE(dt) (1 << (dt)) /* bytes of one value of dtype dt (U8, U16, F32, F64) */

/* source coordinates of output pixel x of row y of image i */
typedef struct { double x0, y0, dx, dy; } row_t;

INLINE row_t row_of(const warp_t *p, int64_t i, int64_t y) {
    const double *m = p->m + 9 * i;
    row_t r = {m[1] * (double)y + m[2], m[4] * (double)y + m[5], m[0], m[3]};
    return r;
}

/* ------------------------------------------------------------------ fixed point */

/* 32.32 fixed point: v * 2**32, rounded to the nearest integer */
INLINE int64_t fixed32(double v) { return ifloor(v * 4294967296.0 + 0.5); }

/* ------------------------------------------------------------------ fill */

/* fill pixels [a, b) of an output row: one memset when the fill pixel is one repeated
   byte (zero, say), else the first pixel copied and the span doubled from itself */
INLINE void fill_span(uint8_t *o, int64_t a, int64_t b, const uint8_t *fillpx, int64_t psize) {
    if (b <= a) return;
    int same = 1;
    for (int64_t k = 1; k < psize; k++) same &= fillpx[k] == fillpx[0];
    uint8_t *d = o + a * psize;
    const int64_t total = (b - a) * psize;
    if (same) {
        memset(d, fillpx[0], total);
        return;
    }
    memcpy(d, fillpx, psize);
    for (int64_t have = psize; have < total; have *= 2) memcpy(d + have, d, have < total - have ? have : total - have);
}

/* ------------------------------------------------------------------ threads (threads.c) */

/* fn(arg, t0, t1) over [0, total) on `threads` threads (the caller's included), in steps
   of `step` items handed out as threads come free. A thread that cannot be created
   leaves its share to the others. Which thread computes an item never changes its bytes,
   as long as fn's result for an item depends on nothing but the item. */
void parallel(void (*fn)(const void *, int64_t, int64_t), const void *arg, int64_t total, int threads, int64_t step);

/* ------------------------------------------------------------------ CPU features (simd.c) */

/* Whether the CPU runs AVX2, and AVX-512 byte permutes (AVX512BW and VBMI): -1 until
   cpu_detect() (called by each entry point) */
extern int HAS_AVX2, HAS_VBMI;
void cpu_detect(void);

#endif
