/* Batched affine warp and prefilter kernels: the compiled core of affine_aug.

   Built by `pip install` (setup.py) as a plain shared library and called through ctypes
   (kernel.py), which releases the GIL for the whole call. No Python API is used here.

   Conventions (the same as the numpy reference in warp.py):
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

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

typedef struct {
    const uint8_t *src;  /* (n, h, w, c) */
    uint8_t *dst;        /* (n, ho, wo, c) */
    const double *m;     /* (n, 3, 3) dst -> src */
    const double *fill;  /* (c,) */
    int64_t n, h, w, c, ho, wo;
    int dtype, interp, border;
    double cubic_a;
} warp_t;

/* ------------------------------------------------------------------ shared helpers */

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

static const int ITEMSIZE[] = {1, 2, 4, 8};

/* source coordinates of output pixel x of row y of image i */
typedef struct { double x0, y0, dx, dy; } row_t;

INLINE row_t row_of(const warp_t *p, int64_t i, int64_t y) {
    const double *m = p->m + 9 * i;
    row_t r = {m[1] * (double)y + m[2], m[4] * (double)y + m[5], m[0], m[3]};
    return r;
}

/* ------------------------------------------------------------------ nearest */

DISPATCH static void rows_nearest(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t h = p->h, w = p->w, c = p->c, wo = p->wo, ho = p->ho;
    const int64_t psize = c * ITEMSIZE[p->dtype];
    uint8_t fillpx[256];
    uint8_t *fp = psize <= 256 ? fillpx : malloc(psize);
    for (int64_t ch = 0; ch < c; ch++) store(fp, ch, p->fill[ch], p->dtype);
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / ho, y = t - i * ho;
        row_t r = row_of(p, i, y);
        const uint8_t *img = p->src + i * h * w * psize;
        uint8_t *o = p->dst + t * wo * psize;
        for (int64_t x = 0; x < wo; x++, o += psize) {
            /* the pixel at floor(coord + 0.5) */
            int64_t xi = map_index(ifloor(reduce(r.x0 + r.dx * (double)x, w, p->border) + 0.5), w, p->border);
            int64_t yi = map_index(ifloor(reduce(r.y0 + r.dy * (double)x, h, p->border) + 0.5), h, p->border);
            const uint8_t *s = (xi < 0 || yi < 0) ? fp : img + (yi * w + xi) * psize;
            switch (psize) { /* constant sizes become single moves */
            case 1: *o = *s; break;
            case 3: memcpy(o, s, 3); break;
            case 4: memcpy(o, s, 4); break;
            case 12: memcpy(o, s, 12); break;
            default: memcpy(o, s, psize);
            }
        }
    }
    if (fp != fillpx) free(fp);
}

/* ------------------------------------------------------------------ bilinear: row geometry */

/* Integer interval [*a, *b) of x in [0, wo) where lo <= p + q x < hi. Rounding-safe:
   shrunk by one pixel on each side (every x returned satisfies the bounds), or grown
   by one pixel when `grow` (every x outside fails them). */
INLINE void span(double p, double q, double lo, double hi, int64_t wo, int grow, int64_t *a, int64_t *b) {
    const double pad = grow ? -1.0 : 1.0;
    double j0 = 0.0, j1 = (double)wo;
    if (q > 0) {
        j0 = dmax(j0, ceil((lo - p) / q) + pad);
        j1 = dmin(j1, floor((hi - p) / q) + 1.0 - pad);
    } else if (q < 0) {
        j0 = dmax(j0, ceil((hi - p) / q) + pad);
        j1 = dmin(j1, floor((lo - p) / q) + 1.0 - pad);
    } else {
        const double eps = grow ? -1e-9 : 1e-9;
        if (!(lo + eps <= p && p < hi - eps)) { *a = *b = 0; return; }
    }
    j0 = dmin(dmax(j0, 0.0), (double)wo);
    j1 = dmin(dmax(j1, j0), (double)wo);
    *a = (int64_t)j0;
    *b = (int64_t)j1;
}

/* One output row of a bilinear warp:
     [0, t0) fill | [t0, j0) border path | [j0, j1) interior | [j1, t1) border path | [t1, wo) fill
   (the fill spans only for the constant border). Unless the row is `far` (a coordinate
   beyond 2**30), source coordinates are 32.32 fixed-point integers: pixel x samples
   (gx0 + x ga, gy0 + x gd) / 2**32, the same integers on every path (exact for
   integer coordinates; drift under 2**-32 pixel per step). */
typedef struct {
    row_t r; /* the row in the image's own coordinates (not moved by pad) */
    int far;
    int64_t pad; /* the source is the image padded by pad pixels on every side (see tiled_rows) */
    int64_t gx0, gy0, ga, gd, t0, j0, j1, t1;
} geo_t;

INLINE int64_t fixed32(double v) { return ifloor(v * 4294967296.0 + 0.5); }

/* [*a, *b) trimmed to the x whose fixed-point coordinate g0 + x step lies in [lo, hi):
   exact, given a superset interval (the set is an interval: the coordinate is linear) */
INLINE void trim(int64_t g0, int64_t step, int64_t lo, int64_t hi, int64_t *a, int64_t *b) {
    while (*a < *b && !(g0 + *a * step >= lo && g0 + *a * step < hi)) (*a)++;
    while (*b > *a && !(g0 + (*b - 1) * step >= lo && g0 + (*b - 1) * step < hi)) (*b)--;
}

/* fixed_point: 0 (float64 coordinates), or the rounding bias added before the integer
   part is taken (2**20 for uint8's 1/2048-pixel rounding, 0 for float lerps) plus 1 */
/* pad: p is the image padded by pad pixels on every side (see tiled_rows), so the
   interior's coordinates move by exactly pad pixels: + pad 2**32 in fixed point */
INLINE geo_t geometry(const warp_t *p, int64_t i, int64_t y, int64_t fixed_point, int64_t pad) {
    geo_t g;
    g.r = row_of(p, i, y);
    g.pad = pad;
    const double ox = g.r.x0, oy = g.r.y0;
    const double rx = ox + (double)pad, ry = oy + (double)pad, dx = g.r.dx, dy = g.r.dy, wo = (double)p->wo;
    const double big = dmax(dmax(fabs(rx), fabs(rx + dx * wo)), dmax(fabs(ry), fabs(ry + dy * wo)));
    g.far = !(big < 1073741824.0); /* also NaN */
    g.gx0 = g.gy0 = g.ga = g.gd = 0;
    const int exact = fixed_point && !g.far;
    const int64_t shift = pad << 32;
    if (exact) g.gx0 = fixed32(ox) + shift, g.gy0 = fixed32(oy) + shift, g.ga = fixed32(dx), g.gd = fixed32(dy);
    const int64_t bias = fixed_point - 1, one = (int64_t)1 << 32, w = p->w, h = p->h;
    /* the interior: x0 in [0, w - 2] and y0 in [0, h - 2]; in float64 a margin keeps
       x0 + 1 <= w - 1 whatever the rounding, in fixed point the test is exact */
    const double margin = exact ? 0.0 : 1.0 / 1024.0;
    int64_t jx0, jx1, jy0, jy1;
    span(rx, dx, 0.0, (double)w - 1.0 - margin, p->wo, exact, &jx0, &jx1);
    span(ry, dy, 0.0, (double)h - 1.0 - margin, p->wo, exact, &jy0, &jy1);
    if (exact) {
        trim(g.gx0, g.ga, -bias, (w - 1) * one - bias, &jx0, &jx1);
        trim(g.gy0, g.gd, -bias, (h - 1) * one - bias, &jy0, &jy1);
    }
    g.t0 = 0, g.t1 = p->wo;
    if (p->border == CONSTANT) { /* beyond (-1, size) every neighbour is fill */
        int64_t tx0, tx1, ty0, ty1;
        span(rx, dx, -1.0, (double)w, p->wo, 1, &tx0, &tx1);
        span(ry, dy, -1.0, (double)h, p->wo, 1, &ty0, &ty1);
        if (exact) { /* x0 in [-1, w - 1] and y0 in [-1, h - 1] */
            trim(g.gx0, g.ga, -one - bias, w * one - bias, &tx0, &tx1);
            trim(g.gy0, g.gd, -one - bias, h * one - bias, &ty0, &ty1);
        }
        g.t0 = tx0 > ty0 ? tx0 : ty0;
        g.t1 = tx1 < ty1 ? tx1 : ty1;
        if (g.t1 < g.t0) g.t0 = g.t1 = p->wo;
    }
    g.j0 = jx0 > jy0 ? jx0 : jy0;
    g.j0 = g.j0 > g.t0 ? g.j0 : g.t0;
    g.j1 = jx1 < jy1 ? jx1 : jy1;
    g.j1 = g.j1 < g.t1 ? g.j1 : g.t1;
    if (g.j1 <= g.j0 || g.far) g.j0 = g.j1 = g.t1;
    /* padded by one pixel of fill: a pixel outside the interior samples fill only, and
       its value is the fill's (a lerp of equal values; uint8 weights lose under 1/2) */
    if (pad && p->border == CONSTANT && !g.far) g.t0 = g.j0, g.t1 = g.j1;
    return g;
}

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

/* ------------------------------------------------------------------ bilinear, uint8 */

/* Coordinates in 1/2048 pixel; the four weights (1/16384) are the products of the axis
   weights, floored: exact (one weight 16384) for integer coordinates, 8192 pairs at
   half pixels, and at most 3/16384 short of 1 otherwise. */
typedef struct { int32_t w00, w01, w10, w11; } wts_t;

INLINE wts_t weights_u8(int32_t wx, int32_t wy) {
    wts_t t = {((2048 - wx) * (2048 - wy)) >> 8, (wx * (2048 - wy)) >> 8, ((2048 - wx) * wy) >> 8, (wx * wy) >> 8};
    return t;
}

INLINE int32_t blend_u8(int32_t v00, int32_t v01, int32_t v10, int32_t v11, wts_t t) {
    int32_t v = (v00 * t.w00 + v01 * t.w01 + v10 * t.w10 + v11 * t.w11 + 8192) >> 14;
    return v < 0 ? 0 : v > 255 ? 255 : v;
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

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
static int HAS_AVX2 = -1; /* set by aa_warp */

/* Eight pixels of a row's interior at a time, on AVX2 machines: the same integers (and
   floats) as the scalar loops in rows_bilinear_u8_c / BILINEAR_LERP, so which path takes
   a pixel never changes its value. Coordinates are the 32.32 fixed-point gx + j ga in
   64-bit lanes; offsets are 32-bit (the caller checks that the image is under 2 GiB and
   narrower than 2**19 pixels). Each does all `count` pixels (the last block partly) and
   returns count; without AVX2 the callers' scalar loops do them. */
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

AVX2 static int64_t interior_u8_avx2(const uint8_t *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga,
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

/* float32 images with 3 or 4 channels: lerps on whole pixels, fractions as in BILINEAR_LERP
   ((float)(g & 0xFFFFFFFF) * 2**-32, the conversion done exactly in two 16-bit halves).
   In two passes over chunks of up to 256 pixels: first every pixel's offset and weights,
   then the lerps, two pixels at a time, whose loads then wait on nothing but the cache
   (one pass that computed each block of eight and used it at once was 15-20% slower: the
   out-of-order window held too few blocks to hide the loads' latency) */
AVX2 static int64_t interior_f32_avx2(const float *img, int64_t stride, int64_t c, int64_t gx, int64_t gy, int64_t ga,
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

INLINE uint32_t load32(const uint8_t *s) { uint32_t v; memcpy(&v, s, 4); return v; }

/* Rows are warped in bands of up to BAND rows of one image, and each band in tiles of
   columns, so that a tile's source footprint stays in the L1 cache even when a rotation
   makes each output row sweep across many source rows. fn(p, g, img, o, xs, xe, dt, c, fp)
   computes the pixels [xs, xe) of one output row (o) whose geometry is g; fill spans are
   written per row first. */
enum { BAND = 16 };
typedef void (*segment_fn)(const warp_t *, const geo_t *, const uint8_t *, uint8_t *, int64_t, int64_t, int, int64_t,
                           const uint8_t *);

/* Rows [y0, y1) of the image padded by `pad` pixels on every side, each pixel taken by
   the border rule (fill for constant), into scratch: every output pixel whose neighbours
   lie within the padding then takes the interior path, with the same integers
   (coordinates + exactly pad pixels), and the same values, as the neighbours' indices are
   mapped one by one on the border path. col: the image columns of the left and right
   margins (col[x] for padded column x < pad, col[pad + x] for column w + pad + x; -1 for
   fill), or NULL to map them here, pixel by pixel. */
INLINE void pad_rows(const warp_t *p, const uint8_t *img, uint8_t *scratch, const uint8_t *fp, int64_t psize,
                     int64_t pad, const int64_t *col, int64_t y0, int64_t y1) {
    const int64_t h = p->h, w = p->w, line = (w + 2 * pad) * psize;
    for (int64_t y = y0; y < y1; y++) {
        uint8_t *d = scratch + y * line;
        const int64_t sy = map_index(y - pad, h, p->border);
        if (sy < 0) { /* a margin row of the constant border */
            fill_span(d, 0, w + 2 * pad, fp, psize);
            continue;
        }
        const uint8_t *s = img + sy * w * psize;
        memcpy(d + pad * psize, s, w * psize);
        for (int64_t x = 0; x < pad; x++) {
            const int64_t l = col ? col[x] : map_index(x - pad, w, p->border);
            const int64_t r = col ? col[pad + x] : map_index(w + x, w, p->border);
            memcpy(d + x * psize, l < 0 ? fp : s + l * psize, psize);
            memcpy(d + (w + pad + x) * psize, r < 0 ? fp : s + r * psize, psize);
        }
    }
}

/* The rows [*a, *b) of a padded copy of hp rows that the output rows g[0..n) read: the
   rows of their interior pixels' neighbours, with a margin (uint8's rounding can move a
   neighbour one row down; a whole-pixel load can run into the next row), or every row
   when a pixel takes the border path (it maps its neighbours anywhere in the image). The
   neighbours' rows are those of the first and last interior pixel and all between (the
   fixed-point row is linear in x). */
INLINE void rows_read(const geo_t *g, int64_t n, int64_t hp, int64_t *a, int64_t *b) {
    int64_t lo = hp, hi = 0;
    for (int64_t r = 0; r < n; r++) {
        if (g[r].t0 < g[r].j0 || g[r].j1 < g[r].t1) {
            *a = 0, *b = hp;
            return;
        }
        if (g[r].j0 >= g[r].j1) continue;
        const int64_t u = g[r].gy0 + g[r].j0 * g[r].gd, v = g[r].gy0 + (g[r].j1 - 1) * g[r].gd;
        const int64_t top = (u < v ? u : v) >> 32, bottom = (u > v ? u : v) >> 32;
        lo = top - 2 < lo ? top - 2 : lo, hi = bottom + 4 > hi ? bottom + 4 : hi;
    }
    *a = lo < 0 ? 0 : lo, *b = hi > hp ? hp : hi;
    if (*b < *a) *b = *a;
}

/* How far (pixels) outside image i the samples of its output reach, neighbours included:
   the output's corners map to the corners of a parallelogram that holds every sample. */
INLINE int64_t reach(const warp_t *p, int64_t i) {
    const double *m = p->m + 9 * i;
    double most = 0.0;
    for (int k = 0; k < 4; k++) {
        const double x = (k & 1) ? (double)(p->wo - 1) : 0.0, y = (k & 2) ? (double)(p->ho - 1) : 0.0;
        const double sx = m[0] * x + m[1] * y + m[2], sy = m[3] * x + m[4] * y + m[5];
        most = dmax(most, dmax(dmax(-sx, sx - (double)(p->w - 1)), dmax(-sy, sy - (double)(p->h - 1))));
    }
    return most < 1048576.0 ? (int64_t)ceil(most) + 2 : INT64_MAX / 4; /* also NaN */
}

/* Padding pays twice: border pixels become interior ones, and the gathers read a fresh
   copy (measured here: 9.1 -> 6.8 cycles per pixel on rotated 512x512 RGB uint8). The
   constant border needs one pixel (beyond it, fill spans); the others as many as the
   samples reach, up to twice as many added pixels as the call computes output pixels
   from the image (a border-path pixel costs several padded ones; measured on 224x224 RGB
   uint8 rotated within 15 degrees, edge: 18 -> 9 cycles per output pixel; a large image
   split into steps of rows between threads is padded once per step, so by less). Up to
   PAD_MOST bytes per thread. Only the rows that a step's bands read are padded (see
   rows_read): a step of a large image, or of a small batch split within its images,
   copies its own part, not the whole image (3000x3000 RGB uint8 in steps of 93 rows,
   rotated, constant: 100 -> 32 ms at 2 threads). */
#define PAD_MOST ((int64_t)64 << 20)

/* the padding of image i when `out` of its output pixels are computed from it: 1 for
   constant, else its reach within the limits above (at least 1) */
INLINE int64_t pad_for(const warp_t *p, int64_t i, int64_t psize, int64_t out) {
    if (p->border == CONSTANT) return 1;
    const int64_t want = reach(p, i), h = p->h, w = p->w, budget = 2 * out;
    int64_t pad = 1;
    while (pad < want && (h + 2 * pad + 2) * (w + 2 * pad + 2) - h * w <= budget &&
           (h + 2 * pad + 2) * (w + 2 * pad + 2) * psize <= PAD_MOST)
        pad++;
    return pad;
}

/* how many of image i's output rows lie in the batch's rows [t0, t1) */
INLINE int64_t rows_of(int64_t i, int64_t ho, int64_t t0, int64_t t1) {
    const int64_t a = i * ho > t0 ? i * ho : t0, b = (i + 1) * ho < t1 ? (i + 1) * ho : t1;
    return b - a;
}

/* Whether copying image i pays for the output rows [t0, t1) of the batch: the source rows
   that their samples span (each copied whole, see rows_read) times the row width, against
   the output pixels computed. A wide image rotated and split into thin steps of rows
   between threads spans many more source rows than a step has output rows; then the
   samples are read from the image itself. Measured here at 2 threads, rotations within
   15 degrees: uint8 copies paid at 3 source pixels per output pixel (4x1024x1024 RGB:
   11 against 14 ms) but not at 9 (3000x3000: 38 against 22 ms); float32 did not at 3
   (4x1024x1024: 24 against 21 ms). */
INLINE int copy_pays(const warp_t *p, int64_t i, int64_t t0, int64_t t1, int dt) {
    const double *m = p->m + 9 * i;
    const int64_t ya = (i * p->ho > t0 ? i * p->ho : t0) - i * p->ho, yb = rows_of(i, p->ho, t0, t1) + ya;
    double lo = (double)p->h, hi = -1.0; /* the output's corners bound its samples' rows */
    for (int k = 0; k < 4; k++) {
        const double x = (k & 1) ? (double)(p->wo - 1) : 0.0, y = (double)((k & 2) ? yb - 1 : ya);
        const double sy = m[3] * x + m[4] * y + m[5];
        lo = sy < lo ? sy : lo, hi = sy > hi ? sy : hi; /* NaN: neither */
    }
    lo = lo < -1.0 ? -1.0 : lo, hi = hi > (double)p->h ? (double)p->h : hi;
    const double rows = (hi > lo ? hi - lo : 0.0) + 3.0, most = dt == U8 ? 4.0 : 2.0;
    return rows * (double)p->w <= most * (double)(yb - ya) * (double)p->wo;
}

INLINE void tiled_rows(const warp_t *p, int64_t t0, int64_t t1, const int dt, const int64_t c, int64_t fixed_point,
                       const uint8_t *fp, segment_fn fn) {
    const int64_t ho = p->ho, wo = p->wo, psize = c * ITEMSIZE[dt], image = p->h * p->w * psize;
    /* tiles of about 1 KB of output pixels (512 B tiles were 10% slower on float32 RGB:
       more segments per row for the same footprint) */
    int64_t tile = (1024 / psize) & ~(int64_t)7;
    tile = tile < 32 ? 32 : tile > 256 ? 256 : tile;
    /* not when the output is much smaller than the image (a thumbnail reads a fraction of it) */
    const int worth = fixed_point && p->ho * p->wo * 4 >= p->h * p->w;
    /* scratch for the largest padding of this thread's images */
    int64_t most = 0, any = 0;
    for (int64_t i = t0 / ho; worth && i <= (t1 - 1) / ho; i++) {
        if (!copy_pays(p, i, t0, t1, dt)) continue;
        const int64_t pad = pad_for(p, i, psize, rows_of(i, ho, t0, t1) * wo);
        most = pad > most ? pad : most, any = 1;
    }
    const int64_t room = (p->h + 2 * most) * (p->w + 2 * most) * psize;
    int shifted = any && room <= PAD_MOST;
    int copied = any && !shifted && image <= PAD_MOST;
    uint8_t *scratch = shifted ? malloc(room) : copied ? malloc(image) : NULL;
    shifted = shifted && scratch, copied = copied && scratch;
    /* the margins' image columns, mapped once per image (without memory for them, per pixel) */
    int64_t cols[64], *col = !shifted || 2 * most <= 64 ? cols : malloc(2 * most * sizeof(int64_t));
    warp_t padded = *p;
    /* the image now in scratch, its padding, and the padded rows [lo, hi) written so far:
       rows are padded as the bands come to read them, so a step pads only what it reads
       (padding a whole 224x224 image first, or row by row as read, took the same time) */
    int64_t have = -1, pad = 0, lo = 0, hi = 0;
    int use = 0; /* whether image i is read from scratch */
    geo_t gs[BAND];
    for (int64_t t = t0; t < t1;) {
        const int64_t i = t / ho, y = t - i * ho;
        int64_t band = ho - y;
        band = band < t1 - t ? band : t1 - t;
        band = band < BAND ? band : BAND;
        const uint8_t *img = p->src + i * image;
        if ((shifted || copied) && have != i) {
            have = i, use = copy_pays(p, i, t0, t1, dt), pad = 0, lo = hi = 0;
            if (use && shifted) {
                pad = pad_for(p, i, psize, rows_of(i, ho, t0, t1) * wo);
                padded.h = p->h + 2 * pad, padded.w = p->w + 2 * pad;
                for (int64_t x = 0; col && x < pad; x++)
                    col[x] = map_index(x - pad, p->w, p->border), col[pad + x] = map_index(p->w + x, p->w, p->border);
            } else if (use) {
                memcpy(scratch, img, image);
            }
        }
        const int pads = shifted && use;
        const warp_t *q = pads ? &padded : p;
        for (int64_t r = 0; r < band; r++) {
            gs[r] = geometry(q, i, y + r, fixed_point, pad);
            uint8_t *o = p->dst + (t + r) * wo * psize;
            fill_span(o, 0, gs[r].t0, fp, psize), fill_span(o, gs[r].t1, wo, fp, psize);
        }
        if (pads) { /* the rows this band reads, padded now if they are not yet */
            int64_t a, b;
            rows_read(gs, band, padded.h, &a, &b);
            if (a < b && lo == hi) {
                pad_rows(p, img, scratch, fp, psize, pad, col, a, b), lo = a, hi = b;
            } else if (a < b) {
                if (a < lo) pad_rows(p, img, scratch, fp, psize, pad, col, a, lo), lo = a;
                if (b > hi) pad_rows(p, img, scratch, fp, psize, pad, col, hi, b), hi = b;
            }
        }
        if (use) img = scratch;
        for (int64_t xs = 0; xs < wo; xs += tile) {
            const int64_t xe = xs + tile < wo ? xs + tile : wo;
            for (int64_t r = 0; r < band; r++) fn(q, &gs[r], img, p->dst + (t + r) * wo * psize, xs, xe, dt, c, fp);
        }
        t += band;
    }
    if (col != cols) free(col);
    free(scratch);
}

/* [a, b) intersected with [xs, xe) */
INLINE int64_t lo_in(int64_t a, int64_t xs) { return a > xs ? a : xs; }
INLINE int64_t hi_in(int64_t b, int64_t xe) { return b < xe ? b : xe; }

/* one border-path pixel of a uint8 row (neighbours may be outside: mapped or fill) */
INLINE void border_u8(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t x, int64_t c,
                      const uint8_t *fp) {
    /* in the image's own coordinates, inside the padded copy when there is one */
    const int64_t pad = g->pad, h = p->h - 2 * pad, w = p->w - 2 * pad, stride = p->w * c;
    const int border = p->border;
    img += pad * stride + pad * c;
    int64_t qx, qy;
    if (!g->far) {
        const int64_t gx = g->gx0 - (pad << 32) + x * g->ga, gy = g->gy0 - (pad << 32) + x * g->gd;
        qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
    } else {
        qx = ifloor(reduce(g->r.x0 + g->r.dx * (double)x, w, border) * 2048.0 + 0.5);
        qy = ifloor(reduce(g->r.y0 + g->r.dy * (double)x, h, border) * 2048.0 + 0.5);
    }
    const int64_t x0 = qx >> 11, y0 = qy >> 11;
    const wts_t wt = weights_u8((int32_t)(qx & 2047), (int32_t)(qy & 2047));
    const int64_t xa = map_index(x0, w, border), xb = map_index(x0 + 1, w, border);
    const int64_t ya = map_index(y0, h, border), yb = map_index(y0 + 1, h, border);
#if defined(__SSE2__)
    if (c == 3 || c == 4) { /* whole pixels (or the fill pixel) into the same sums as the interior */
        uint32_t fw = 0, px[4];
        memcpy(&fw, fp, c);
        const int64_t xs[4] = {xa, xb, xa, xb}, ys[4] = {ya, ya, yb, yb};
        for (int k = 0; k < 4; k++) {
            px[k] = fw;
            if (xs[k] >= 0 && ys[k] >= 0) memcpy(&px[k], img + ys[k] * stride + xs[k] * c, c);
        }
        const uint32_t v = blend4_u8(px[0], px[1], px[2], px[3], wt);
        memcpy(o + x * c, &v, c);
        return;
    }
#endif
    for (int64_t ch = 0; ch < c; ch++) {
        const int32_t f = fp[ch];
        const int32_t v00 = (xa >= 0 && ya >= 0) ? img[ya * stride + xa * c + ch] : f;
        const int32_t v01 = (xb >= 0 && ya >= 0) ? img[ya * stride + xb * c + ch] : f;
        const int32_t v10 = (xa >= 0 && yb >= 0) ? img[yb * stride + xa * c + ch] : f;
        const int32_t v11 = (xb >= 0 && yb >= 0) ? img[yb * stride + xb * c + ch] : f;
        o[x * c + ch] = (uint8_t)blend_u8(v00, v01, v10, v11, wt);
    }
}

INLINE void segment_u8(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t xs, int64_t xe, int dt,
                       int64_t c, const uint8_t *fp) {
    (void)dt;
    const int64_t h = p->h, w = p->w, stride = w * c;
    for (int64_t x = lo_in(g->t0, xs); x < hi_in(g->j0, xe); x++) border_u8(p, g, img, o, x, c, fp);
    for (int64_t x = lo_in(g->j1, xs); x < hi_in(g->t1, xe); x++) border_u8(p, g, img, o, x, c, fp);
    /* interior: the four neighbours are inside the image, no border logic */
    int64_t x = lo_in(g->j0, xs);
    const int64_t end = hi_in(g->j1, xe);
    int64_t gx = g->gx0 + x * g->ga, gy = g->gy0 + x * g->gd;
#if defined(HAVE_AVX2_PATH)
    if ((c == 3 || c == 4) && HAS_AVX2 && h * stride < 2147483647 && w < 524288 && end - x >= 4) {
        const int64_t done = interior_u8_avx2(img, stride, c, gx, gy, g->ga, g->gd, end - x, o + x * c);
        x += done, gx += done * g->ga, gy += done * g->gd;
    }
#else
    (void)h;
#endif
    for (; x < end; x++, gx += g->ga, gy += g->gd) {
        const int64_t qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
        const wts_t wt = weights_u8((int32_t)(qx & 2047), (int32_t)(qy & 2047));
        const uint8_t *k = img + (qy >> 11) * stride + (qx >> 11) * c, *k1 = k + stride;
        uint8_t *d = o + x * c;
#if defined(__SSE2__)
        if (c == 4) {
            uint32_t v = blend4_u8(load32(k), load32(k + 4), load32(k1), load32(k1 + 4), wt);
            memcpy(d, &v, 4);
            continue;
        }
        if (c == 3) { /* 4-byte loads that never pass the image's last byte */
            uint32_t v = blend4_u8(load32(k), load32(k + 3), load32(k1), load32(k1 + 2) >> 8, wt);
            memcpy(d, &v, 3);
            continue;
        }
#endif
        for (int64_t ch = 0; ch < c; ch++) d[ch] = (uint8_t)blend_u8(k[ch], k[c + ch], k1[ch], k1[c + ch], wt);
    }
}

INLINE void rows_bilinear_u8_c(const warp_t *p, int64_t t0, int64_t t1, const int64_t c) {
    uint8_t fillpx[256], *fp = c <= 256 ? fillpx : malloc(c);
    if (!fp) return;
    for (int64_t ch = 0; ch < c; ch++) fp[ch] = (uint8_t)p->fill[ch];
    tiled_rows(p, t0, t1, U8, c, ((int64_t)1 << 20) + 1, fp, segment_u8);
    if (fp != fillpx) free(fp);
}

DISPATCH static void rows_bilinear_u8(const warp_t *p, int64_t t0, int64_t t1) {
    switch (p->c) { /* constant channel counts: unrolled loops */
    case 1: rows_bilinear_u8_c(p, t0, t1, 1); break;
    case 3: rows_bilinear_u8_c(p, t0, t1, 3); break;
    case 4: rows_bilinear_u8_c(p, t0, t1, 4); break;
    default: rows_bilinear_u8_c(p, t0, t1, p->c);
    }
}

/* ------------------------------------------------------------------ bilinear, float lerps */

#if defined(__SSE2__)
#define SIMD_F32(W, dt, c) (sizeof(W) == 4 && dt == F32 && (c == 3 || c == 4))
#else
#define SIMD_F32(W, dt, c) 0
#define lerp4_f32(k, k1, c, fx, fy, d) ((void)0)
#endif

/* the AVX2 interior of float32 rows with 3 or 4 channels, where the CPU has it */
INLINE int64_t f32_fast(const uint8_t *img, int64_t h, int64_t w, int64_t stride, int64_t c, int64_t gx, int64_t gy,
                        int64_t ga, int64_t gd, int64_t count, uint8_t *o, int64_t x) {
#if defined(HAVE_AVX2_PATH)
    if (HAS_AVX2 && h * stride < 2147483647 && w < 524288)
        return interior_f32_avx2((const float *)img, stride, c, gx, gy, ga, gd, count, (float *)o + x * c);
#endif
    (void)img, (void)h, (void)w, (void)stride, (void)c, (void)gx, (void)gy, (void)ga, (void)gd, (void)count, (void)o, (void)x;
    return 0;
}

/* W: float for uint16 / float32 images (32.32 fixed-point coordinates), double for
   float64 (float64 coordinates: fixed point would lose precision there). NAME_border is
   one border-path pixel, NAME_segment the pixels [xs, xe) of a row, NAME the rows. */
#define BILINEAR_LERP(W, NAME)                                                                                       \
    INLINE void NAME##_border(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t x,        \
                              const int dt, const int64_t c, const uint8_t *fp) {                                 \
        /* in the image's own coordinates, inside the padded copy when there is one */                           \
        const int64_t pad = g->pad, h = p->h - 2 * pad, w = p->w - 2 * pad, stride = p->w * c;                    \
        const int border = p->border;                                                                             \
        img += (pad * stride + pad * c) * ITEMSIZE[dt];                                                           \
        int64_t x0, y0;                                                                                           \
        W fx, fy;                                                                                                 \
        if (sizeof(W) == 4 && !g->far) {                                                                          \
            const int64_t gx = g->gx0 - (pad << 32) + x * g->ga, gy = g->gy0 - (pad << 32) + x * g->gd;           \
            x0 = gx >> 32, y0 = gy >> 32;                                                                         \
            fx = (W)(gx & 0xFFFFFFFF) * (W)2.3283064365386963e-10;                                                \
            fy = (W)(gy & 0xFFFFFFFF) * (W)2.3283064365386963e-10;                                                \
        } else {                                                                                                  \
            const double sx = reduce(g->r.x0 + g->r.dx * (double)x, w, border);                                   \
            const double sy = reduce(g->r.y0 + g->r.dy * (double)x, h, border);                                   \
            x0 = ifloor(sx), y0 = ifloor(sy);                                                                     \
            fx = (W)(sx - (double)x0), fy = (W)(sy - (double)y0);                                                 \
        }                                                                                                         \
        const int64_t xa = map_index(x0, w, border), xb = map_index(x0 + 1, w, border);                           \
        const int64_t ya = map_index(y0, h, border), yb = map_index(y0 + 1, h, border);                           \
        for (int64_t ch = 0; ch < c; ch++) {                                                                      \
            const W f = (W)load(fp, ch, dt); /* the fill as the padded copy holds it */                          \
            const W v00 = (xa >= 0 && ya >= 0) ? (W)load(img, ya * stride + xa * c + ch, dt) : f;                 \
            const W v01 = (xb >= 0 && ya >= 0) ? (W)load(img, ya * stride + xb * c + ch, dt) : f;                 \
            const W v10 = (xa >= 0 && yb >= 0) ? (W)load(img, yb * stride + xa * c + ch, dt) : f;                 \
            const W v11 = (xb >= 0 && yb >= 0) ? (W)load(img, yb * stride + xb * c + ch, dt) : f;                 \
            const W tp = v00 + fx * (v01 - v00), bt = v10 + fx * (v11 - v10);                                     \
            store(o, x * c + ch, (double)(tp + fy * (bt - tp)), dt);                                              \
        }                                                                                                         \
    }                                                                                                             \
    INLINE void NAME##_segment(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t xs,      \
                               int64_t xe, const int dt, const int64_t c, const uint8_t *fp) {                    \
        const int64_t h = p->h, w = p->w, stride = w * c;                                                         \
        for (int64_t x = lo_in(g->t0, xs); x < hi_in(g->j0, xe); x++) NAME##_border(p, g, img, o, x, dt, c, fp);  \
        for (int64_t x = lo_in(g->j1, xs); x < hi_in(g->t1, xe); x++) NAME##_border(p, g, img, o, x, dt, c, fp);  \
        int64_t x = lo_in(g->j0, xs);                                                                             \
        const int64_t end = hi_in(g->j1, xe);                                                                     \
        int64_t gx = g->gx0 + x * g->ga, gy = g->gy0 + x * g->gd;                                                 \
        if (SIMD_F32(W, dt, c) && end - x >= 4) {                                                                 \
            const int64_t done = f32_fast(img, h, w, stride, c, gx, gy, g->ga, g->gd, end - x, o, x);             \
            x += done, gx += done * g->ga, gy += done * g->gd;                                                    \
        }                                                                                                         \
        for (; x < end; x++, gx += g->ga, gy += g->gd) {                                                          \
            int64_t x0, y0;                                                                                       \
            W fx, fy;                                                                                             \
            if (sizeof(W) == 4) {                                                                                 \
                x0 = gx >> 32, y0 = gy >> 32;                                                                     \
                fx = (W)(gx & 0xFFFFFFFF) * (W)2.3283064365386963e-10;                                            \
                fy = (W)(gy & 0xFFFFFFFF) * (W)2.3283064365386963e-10;                                            \
            } else { /* inside the image: coordinates >= 0, truncation is floor */                              \
                const double sx = g->r.x0 + g->r.dx * (double)x, sy = g->r.y0 + g->r.dy * (double)x;              \
                x0 = (int64_t)sx, y0 = (int64_t)sy;                                                               \
                fx = (W)(sx - (double)x0), fy = (W)(sy - (double)y0);                                             \
            }                                                                                                     \
            const int64_t k = y0 * stride + x0 * c, k1 = k + stride;                                              \
            if (SIMD_F32(W, dt, c)) {                                                                             \
                lerp4_f32((const float *)img + k, (const float *)img + k1, c, (float)fx, (float)fy,               \
                          (float *)o + x * c);                                                                    \
                continue;                                                                                         \
            }                                                                                                     \
            for (int64_t ch = 0; ch < c; ch++) {                                                                  \
                const W v00 = (W)load(img, k + ch, dt), v01 = (W)load(img, k + c + ch, dt);                       \
                const W v10 = (W)load(img, k1 + ch, dt), v11 = (W)load(img, k1 + c + ch, dt);                     \
                const W tp = v00 + fx * (v01 - v00), bt = v10 + fx * (v11 - v10);                                 \
                store(o, x * c + ch, (double)(tp + fy * (bt - tp)), dt);                                          \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    INLINE void NAME(const warp_t *p, int64_t t0, int64_t t1, const int dt, const int64_t c) {                     \
        const int64_t isz = ITEMSIZE[dt];                                                                         \
        uint8_t fillpx[2048], *fp = c * isz <= 2048 ? fillpx : malloc(c * isz);                                   \
        if (!fp) return;                                                                                          \
        for (int64_t ch = 0; ch < c; ch++) store(fp, ch, p->fill[ch], dt);                                        \
        tiled_rows(p, t0, t1, dt, c, sizeof(W) == 4 ? 1 : 0, fp, NAME##_segment);                                 \
        if (fp != fillpx) free(fp);                                                                               \
    }

BILINEAR_LERP(float, rows_lerp_float)
BILINEAR_LERP(double, rows_lerp_double)

DISPATCH static void rows_bilinear_lerp(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t c = p->c;
    switch (p->dtype) {
    case U16: if (c == 1) rows_lerp_float(p, t0, t1, U16, 1); else rows_lerp_float(p, t0, t1, U16, c); break;
    case F32:
        if (c == 1) rows_lerp_float(p, t0, t1, F32, 1);
        else if (c == 3) rows_lerp_float(p, t0, t1, F32, 3);
        else if (c == 4) rows_lerp_float(p, t0, t1, F32, 4);
        else rows_lerp_float(p, t0, t1, F32, c);
        break;
    default: if (c == 1) rows_lerp_double(p, t0, t1, F64, 1); else rows_lerp_double(p, t0, t1, F64, c);
    }
}

/* ------------------------------------------------------------------ bicubic */

/* Keys' cubic convolution weights for the four neighbours at offsets -1, 0, 1, 2 of a
   coordinate with fraction t; parameter a (-0.5: PIL; -0.75: OpenCV and torch) */
INLINE void keys(double t, double a, double wt[4]) {
    const double d0 = 1.0 + t, d1 = t, d2 = 1.0 - t, d3 = 2.0 - t;
    wt[0] = ((a * d0 - 5.0 * a) * d0 + 8.0 * a) * d0 - 4.0 * a;
    wt[1] = ((a + 2.0) * d1 - (a + 3.0)) * d1 * d1 + 1.0;
    wt[2] = ((a + 2.0) * d2 - (a + 3.0)) * d2 * d2 + 1.0;
    wt[3] = ((a * d3 - 5.0 * a) * d3 + 8.0 * a) * d3 - 4.0 * a;
}

INLINE void rows_bicubic_t(const warp_t *p, int64_t t0, int64_t t1, const int dt, const int64_t c) {
    const int64_t h = p->h, w = p->w, wo = p->wo, ho = p->ho, stride = w * c, isz = ITEMSIZE[dt];
    const int border = p->border;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / ho, y = t - i * ho;
        row_t r = row_of(p, i, y);
        const uint8_t *img = p->src + i * h * stride * isz;
        uint8_t *o = p->dst + t * wo * c * isz;
        for (int64_t x = 0; x < wo; x++) {
            const double sx = reduce(r.x0 + r.dx * (double)x, w, border);
            const double sy = reduce(r.y0 + r.dy * (double)x, h, border);
            const int64_t x0 = ifloor(sx), y0 = ifloor(sy);
            double wx[4], wy[4];
            keys(sx - (double)x0, p->cubic_a, wx);
            keys(sy - (double)y0, p->cubic_a, wy);
            int64_t xs[4], ys[4]; /* element offsets of the neighbour columns / rows; -1: fill */
            for (int j = 0; j < 4; j++) {
                const int64_t xj = map_index(x0 - 1 + j, w, border), yj = map_index(y0 - 1 + j, h, border);
                xs[j] = xj < 0 ? -1 : xj * c;
                ys[j] = yj < 0 ? -1 : yj * stride;
            }
            for (int64_t ch = 0; ch < c; ch++) {
                const double f = p->fill[ch];
                double v = 0.0;
                for (int jy = 0; jy < 4; jy++) {
                    double row = 0.0;
                    for (int jx = 0; jx < 4; jx++)
                        row += wx[jx] * ((xs[jx] < 0 || ys[jy] < 0) ? f : load(img, ys[jy] + xs[jx] + ch, dt));
                    v += wy[jy] * row;
                }
                store(o, x * c + ch, v, dt);
            }
        }
    }
}

DISPATCH static void rows_bicubic(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t c = p->c;
    switch (p->dtype) {
    case U8: if (c == 3) rows_bicubic_t(p, t0, t1, U8, 3); else rows_bicubic_t(p, t0, t1, U8, c); break;
    case U16: rows_bicubic_t(p, t0, t1, U16, c); break;
    case F32: if (c == 3) rows_bicubic_t(p, t0, t1, F32, 3); else rows_bicubic_t(p, t0, t1, F32, c); break;
    default: rows_bicubic_t(p, t0, t1, F64, c);
    }
}

/* ------------------------------------------------------------------ threads */

typedef struct {
    void (*fn)(const void *, int64_t, int64_t);
    const void *arg;
    int64_t total, step, next; /* next: the first item not yet taken (atomic) */
} work_t;

/* take steps of `step` items until none are left: threads that finish early take more */
static void *run_work(void *v) {
    work_t *wk = (work_t *)v;
    for (;;) {
        const int64_t t0 = __atomic_fetch_add(&wk->next, wk->step, __ATOMIC_RELAXED);
        if (t0 >= wk->total) return NULL;
        wk->fn(wk->arg, t0, t0 + wk->step < wk->total ? t0 + wk->step : wk->total);
    }
}

/* fn(arg, t0, t1) over [0, total) on `threads` threads (the caller's included), in steps
   of `step` items handed out as threads come free. A thread that cannot be created
   leaves its share to the others. Which thread computes an item never changes its bytes. */
static void parallel(void (*fn)(const void *, int64_t, int64_t), const void *arg, int64_t total, int threads,
                     int64_t step) {
    if (threads > total) threads = (int)total;
    if (threads <= 1) {
        if (total > 0) fn(arg, 0, total);
        return;
    }
    if (threads > 256) threads = 256;
    work_t wk = {fn, arg, total, step < 1 ? 1 : step, 0};
    pthread_t ids[256];
    int started[256];
    for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, run_work, &wk) == 0;
    run_work(&wk);
    for (int k = 1; k < threads; k++)
        if (started[k]) pthread_join(ids[k], NULL);
}

static void warp_rows(const void *v, int64_t t0, int64_t t1) {
    const warp_t *p = (const warp_t *)v;
    if (p->interp == NEAREST) rows_nearest(p, t0, t1);
    else if (p->interp == BICUBIC) rows_bicubic(p, t0, t1);
    else if (p->dtype == U8) rows_bilinear_u8(p, t0, t1);
    else rows_bilinear_lerp(p, t0, t1);
}

/* Fill dst (n, ho, wo, c) from src (n, h, w, c). Returns 0, or -1 for bad arguments. */
int aa_warp(const void *src, void *dst, const double *dst_to_src, const double *fill, int64_t n, int64_t h, int64_t w,
            int64_t c, int64_t ho, int64_t wo, int dtype, int interp, int border, double cubic_a, int threads) {
    if (n < 0 || h < 1 || w < 1 || c < 1 || ho < 0 || wo < 0 || dtype < U8 || dtype > F64 || interp < NEAREST ||
        interp > BICUBIC || border < CONSTANT || border > WRAP)
        return -1;
#if defined(HAVE_AVX2_PATH)
    if (HAS_AVX2 < 0) HAS_AVX2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    warp_t p = {(const uint8_t *)src, (uint8_t *)dst, dst_to_src, fill, n, h, w, c, ho, wo, dtype, interp, border,
                cubic_a};
    /* small calls stay on one thread: a thread start costs about as much as 20k pixels */
    const int64_t rows = n * ho, work = rows * wo * c;
    int64_t most = work / 65536 + 1;
    threads = (int)(threads < most ? threads : most);
    /* steps of whole images where possible (each step copies its images once), at least
       16 steps per thread for balance */
    int64_t step = rows / (16 * (int64_t)(threads > 0 ? threads : 1));
    step = step > ho ? step / ho * ho : step;
    parallel(warp_rows, &p, rows, threads, step < BAND ? BAND : step);
    return 0;
}

/* Ragged batches: output i (ho, wo, c) samples the image srcs[i] of size (hs[i], ws[i])
   (several outputs may share one image: copies of a source). Each output is warped as a
   batch of one, so its pixels are those aa_warp gives that image. */
typedef struct {
    warp_t base;
    const void *const *srcs;
    const int64_t *hs, *ws;
} ragged_t;

static void warp_ragged_images(const void *v, int64_t i0, int64_t i1) {
    const ragged_t *r = (const ragged_t *)v;
    const int64_t out = r->base.ho * r->base.wo * r->base.c * ITEMSIZE[r->base.dtype];
    for (int64_t i = i0; i < i1; i++) {
        warp_t p = r->base;
        p.src = (const uint8_t *)r->srcs[i], p.dst = r->base.dst + i * out, p.m = r->base.m + 9 * i;
        p.n = 1, p.h = r->hs[i], p.w = r->ws[i];
        warp_rows(&p, 0, p.ho);
    }
}

int aa_warp_ragged(const void *const *srcs, void *dst, const double *dst_to_src, const double *fill,
                   const int64_t *hs, const int64_t *ws, int64_t n, int64_t c, int64_t ho, int64_t wo, int dtype,
                   int interp, int border, double cubic_a, int threads) {
    if (n < 0 || c < 1 || ho < 0 || wo < 0 || dtype < U8 || dtype > F64 || interp < NEAREST || interp > BICUBIC ||
        border < CONSTANT || border > WRAP)
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (hs[i] < 1 || ws[i] < 1) return -1;
#if defined(HAVE_AVX2_PATH)
    if (HAS_AVX2 < 0) HAS_AVX2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    ragged_t r = {{NULL, (uint8_t *)dst, dst_to_src, fill, 1, 1, 1, c, ho, wo, dtype, interp, border,
                   cubic_a},
                  srcs, hs, ws};
    const int64_t most = n * ho * wo * c / 65536 + 1, step = n / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(warp_ragged_images, &r, n, (int)(threads < most ? threads : most), step < 1 ? 1 : step);
    return 0;
}

/* ------------------------------------------------------------------ Gaussian prefilter */


/* normalised Gaussian taps, radius int(3 sigma + 0.5) (scipy's truncate=3); returns the radius */
static int64_t taps(double sigma, double *k, int64_t most) {
    int64_t r = (int64_t)(3.0 * sigma + 0.5);
    if (r > most) r = most;
    double sum = 0.0;
    for (int64_t j = -r; j <= r; j++) sum += k[j + r] = exp(-0.5 * ((double)j / sigma) * ((double)j / sigma));
    for (int64_t j = 0; j <= 2 * r; j++) k[j] /= sum;
    return r;
}

/* The blur in working type T: float for uint8 and float32 images (half the memory traffic
   of double and twice the SIMD lanes; for uint8 the sums stay within about 1e-5 of the
   exact ones, so a result can differ from a float64 blur only where that lies within
   1e-5 of a rounding tie), double for uint16 (16 bits would leave float too little
   headroom) and float64 images. Taps and fill are computed in double and
   rounded to T once. Every sum runs over the taps in order (v = 0; v += k[j] a[x + j - r])
   on every path, as the numpy reference does; the interior loops run over whole rows
   (vectorised).

   NAME_x: along x, each of the h rows of w pixels (c channels) into out; samples outside
   the row follow the border mode (fill for constant). NAME_y: output row y is the
   weighted sum of source rows y + j - r (mapped; a row of fill for constant). NAME_one:
   one image (h, w, c) of dtype dt blurred by (sx, sy) into d; -1 when out of memory. */
#define BLUR(T, NAME)                                                                                                  \
    INLINE void NAME##_x(const T *in, T *out, int64_t h, int64_t w, int64_t c, const T *k, int64_t r, int border,     \
                         const T *fill) {                                                                             \
        const int64_t line = w * c;                                                                                   \
        for (int64_t y = 0; y < h; y++) {                                                                             \
            const T *a = in + y * line;                                                                               \
            T *b = out + y * line;                                                                                    \
            const int64_t e0 = r * c < line ? r * c : line, e1 = (w - r) * c > e0 ? (w - r) * c : e0;                 \
            for (int64_t e = e0; e < e1; e++) b[e] = 0;                                                               \
            for (int64_t j = 0; j <= 2 * r; j++) {                                                                    \
                const T kj = k[j];                                                                                    \
                const T *src = a + (j - r) * c;                                                                       \
                for (int64_t e = e0; e < e1; e++) b[e] += kj * src[e];                                                \
            }                                                                                                         \
            for (int64_t x = 0; x < w; x++) { /* the ends: mapped indices */                                          \
                if (x * c >= e0 && x * c < e1) continue;                                                              \
                for (int64_t ch = 0; ch < c; ch++) {                                                                  \
                    T v = 0;                                                                                          \
                    for (int64_t j = -r; j <= r; j++) {                                                               \
                        const int64_t xj = map_index(x + j, w, border);                                               \
                        v += k[j + r] * (xj < 0 ? fill[ch] : a[xj * c + ch]);                                         \
                    }                                                                                                 \
                    b[x * c + ch] = v;                                                                                \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    INLINE void NAME##_y(const T *in, T *out, T *fillrow, int64_t h, int64_t w, int64_t c, const T *k, int64_t r,     \
                         int border, const T *fill) {                                                                 \
        const int64_t line = w * c;                                                                                   \
        for (int64_t e = 0; e < line; e++) fillrow[e] = fill[e % c];                                                  \
        for (int64_t y = 0; y < h; y++) {                                                                             \
            T *b = out + y * line;                                                                                    \
            for (int64_t e = 0; e < line; e++) b[e] = 0;                                                              \
            for (int64_t j = -r; j <= r; j++) {                                                                       \
                const int64_t yj = map_index(y + j, h, border);                                                       \
                const T kj = k[j + r], *src = yj < 0 ? fillrow : in + yj * line;                                      \
                for (int64_t e = 0; e < line; e++) b[e] += kj * src[e];                                               \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    INLINE int NAME##_one(const uint8_t *s, uint8_t *d, int64_t h, int64_t w, int64_t c, int dt, int border,          \
                          const double *fill, double sx, double sy) {                                                 \
        const int64_t size = h * w * c, most = 2 * (h > w ? h : w) + 3;                                               \
        T *a = malloc(sizeof(T) * size), *b = malloc(sizeof(T) * size), *row = malloc(sizeof(T) * w * c);             \
        T *k = malloc(sizeof(T) * most), *f = malloc(sizeof(T) * c);                                                  \
        double *kd = malloc(sizeof(double) * most);                                                                   \
        if (!a || !b || !k || !row || !f || !kd) {                                                                    \
            free(a), free(b), free(k), free(row), free(f), free(kd);                                                  \
            return -1;                                                                                                \
        }                                                                                                             \
        for (int64_t ch = 0; ch < c; ch++) f[ch] = (T)fill[ch];                                                       \
        if (dt == U8) /* the common case, as a plain loop the compiler vectorises */                                  \
            for (int64_t e = 0; e < size; e++) a[e] = (T)s[e];                                                        \
        else                                                                                                          \
            for (int64_t e = 0; e < size; e++) a[e] = (T)load(s, e, dt);                                              \
        T *cur = a, *tmp = b;                                                                                         \
        if (sx > 0) {                                                                                                 \
            const int64_t r = taps(sx, kd, w + 1);                                                                    \
            for (int64_t j = 0; j <= 2 * r; j++) k[j] = (T)kd[j];                                                     \
            NAME##_x(cur, tmp, h, w, c, k, r, border, f);                                                             \
            T *q = cur; cur = tmp; tmp = q;                                                                           \
        }                                                                                                             \
        if (sy > 0) {                                                                                                 \
            const int64_t r = taps(sy, kd, h + 1);                                                                    \
            for (int64_t j = 0; j <= 2 * r; j++) k[j] = (T)kd[j];                                                     \
            NAME##_y(cur, tmp, row, h, w, c, k, r, border, f);                                                        \
            T *q = cur; cur = tmp; tmp = q;                                                                           \
        }                                                                                                             \
        if (dt == U8) /* store()'s rounding and clipping in a form that vectorises: truncation is floor for v >= 0,  \
                         and anything below 0 clips to 0 either way */                                                \
            for (int64_t e = 0; e < size; e++) {                                                                      \
                double v = (double)cur[e] + 0.5;                                                                      \
                v = v < -1.0 ? -1.0 : v > 256.0 ? 256.0 : v;                                                          \
                int32_t i = (int32_t)v;                                                                               \
                i = i < 0 ? 0 : i > 255 ? 255 : i;                                                                    \
                d[e] = (uint8_t)i;                                                                                    \
            }                                                                                                         \
        else                                                                                                          \
            for (int64_t e = 0; e < size; e++) store(d, e, (double)cur[e], dt);                                       \
        free(a), free(b), free(k), free(row), free(f), free(kd);                                                      \
        return 0;                                                                                                     \
    }

BLUR(float, blur_float)
BLUR(double, blur_double)

/* One image, in the working type of its dtype; a copy when there is nothing to blur. */
INLINE int blur_one(const uint8_t *s, uint8_t *d, int64_t h, int64_t w, int64_t c, int dt, int border, const double *fill,
                    double sx, double sy) {
    if (!(sx > 0) && !(sy > 0)) {
        memcpy(d, s, h * w * c * ITEMSIZE[dt]);
        return 0;
    }
    return dt == U8 || dt == F32 ? blur_float_one(s, d, h, w, c, dt, border, fill, sx, sy)
                                 : blur_double_one(s, d, h, w, c, dt, border, fill, sx, sy);
}

/* image i of a batch: srcs[i], (hs[i], ws[i]), into dsts[i] */
typedef struct {
    const void *const *srcs;
    void *const *dsts;
    const double *sigma; /* (n, 2): sigma_x, sigma_y in source pixels; <= 0: that axis untouched */
    const double *fill;
    const int64_t *hs, *ws;
    int64_t c;
    int dtype, border;
} blur_t;

DISPATCH static void blur_images(const void *v, int64_t i0, int64_t i1) {
    const blur_t *p = (const blur_t *)v;
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *s = (const uint8_t *)p->srcs[i];
        uint8_t *d = (uint8_t *)p->dsts[i];
        const int64_t h = p->hs[i], w = p->ws[i];
        /* out of memory: leave the image unfiltered rather than crash */
        if (blur_one(s, d, h, w, p->c, p->dtype, p->border, p->fill, p->sigma[2 * i], p->sigma[2 * i + 1]))
            memcpy(d, s, h * w * p->c * ITEMSIZE[p->dtype]);
    }
}

/* Gaussian prefilter of each image with its own (sigma_x, sigma_y) (float32 sums for
   uint8 and float32, float64 for uint16 and float64; integer results rounded half up). Images of different sizes: image i, (hs[i], ws[i], c) at srcs[i], blurred into dsts[i]
   (which may not overlap any source). */
int aa_blur_ragged(const void *const *srcs, void *const *dsts, const double *sigma, const double *fill,
                   const int64_t *hs, const int64_t *ws, int64_t n, int64_t c, int dtype, int border, int threads) {
    if (n < 0 || c < 1 || dtype < U8 || dtype > F64 || border < CONSTANT || border > WRAP) return -1;
    int64_t work = 0;
    for (int64_t i = 0; i < n; i++) {
        if (hs[i] < 1 || ws[i] < 1) return -1;
        work += hs[i] * ws[i] * c;
    }
    blur_t p = {srcs, dsts, sigma, fill, hs, ws, c, dtype, border};
    const int64_t most = work / 16384 + 1, step = n / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(blur_images, &p, n, (int)(threads < most ? threads : most), step < 1 ? 1 : step);
    return 0;
}

int aa_blur(const void *src, void *dst, const double *sigma, const double *fill, int64_t n, int64_t h, int64_t w,
            int64_t c, int dtype, int border, int threads) {
    if (n < 0 || h < 1 || w < 1 || c < 1 || dtype < U8 || dtype > F64 || border < CONSTANT || border > WRAP) return -1;
    const int64_t m = n > 0 ? n : 1, bytes = h * w * c * ITEMSIZE[dtype];
    const void **srcs = malloc(sizeof(void *) * m);
    void **dsts = malloc(sizeof(void *) * m);
    int64_t *hs = malloc(sizeof(int64_t) * m), *ws = malloc(sizeof(int64_t) * m);
    int rc = -2;
    if (srcs && dsts && hs && ws) {
        for (int64_t i = 0; i < n; i++)
            srcs[i] = (const uint8_t *)src + i * bytes, dsts[i] = (uint8_t *)dst + i * bytes, hs[i] = h, ws[i] = w;
        rc = aa_blur_ragged(srcs, dsts, sigma, fill, hs, ws, n, c, dtype, border, threads);
    }
    free(srcs), free(dsts), free(hs), free(ws);
    return rc;
}
