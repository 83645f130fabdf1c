/* permute.c: exact pixel permutations executed as copies.

   A dst_to_src matrix whose 2x2 part is a signed permutation (entries 0 and +-1: the
   identity, flips, 90/180/270 degree turns and their products) and whose translation is
   an integer maps every output pixel to an integer source pixel. Every interpolation then
   samples that pixel alone: nearest takes it; bilinear's weights are (1, 0, 0, 0) in
   fixed point and in float; bicubic's are (0, 1, 0, 0) when Keys' weights at t = 0 are
   exact for the call's parameter a. So the output is the source pixel (or the fill, or
   the border rule's pixel) copied, with these exceptions in float arithmetic, which keep
   such an image on the warp path: a lerp turns -0.0 into +0.0 and a neighbour that is
   infinite or NaN, or a difference of neighbours that overflows, into NaN. Float images
   are therefore scanned first (permutation_copies_exactly).

   The copies: a matrix that keeps rows (m01 = m10 = 0) copies each output row from one
   source row, forwards (memcpy) or backwards; a matrix that swaps the axes (m00 = m11 = 0)
   reads a source column per output row, done in bands of rows so that each source row is
   read once for a band (a blocked transpose). Pixels outside the image take the border
   rule, index by index. */

#include <float.h>

#include "kernels.h"

/* beyond 2**40 pixels the warp path clamps coordinates (common.h: reduce) */
#define FAR 1099511627776.0

static int unit(double v) { return v == 0.0 || v == 1.0 || v == -1.0; }

int permutation_of(const double *m, perm_t *q) {
    q->exact = 0;
    for (int k = 0; k < 6; k++)
        if (!(fabs(m[k]) < FAR)) return 0; /* also NaN */
    if (!unit(m[0]) || !unit(m[1]) || !unit(m[3]) || !unit(m[4]) || m[2] != floor(m[2]) || m[5] != floor(m[5])) return 0;
    const int keeps = m[1] == 0.0 && m[3] == 0.0 && m[0] != 0.0 && m[4] != 0.0;
    const int swaps = m[0] == 0.0 && m[4] == 0.0 && m[1] != 0.0 && m[3] != 0.0;
    if (!keeps && !swaps) return 0;
    q->xx = (int64_t)m[0], q->xy = (int64_t)m[1], q->x0 = (int64_t)m[2];
    q->yx = (int64_t)m[3], q->yy = (int64_t)m[4], q->y0 = (int64_t)m[5];
    q->exact = 1;
    return 1;
}

/* Whether float values v pass through a lerp (bilinear) or Keys' sum (bicubic) with
   weights 1 and 0 unchanged: finite, not -0.0, and for bilinear at most half the largest
   value (the difference of two neighbours stays finite) */
#define SCAN(T)                                                                                                        \
    for (int64_t k = 0; k < count; k++) {                                                                              \
        const T v = values[k];                                                                                         \
        if (!(fabs((double)v) <= limit) || (v == 0 && signbit(v))) return 0;                                           \
    }                                                                                                                  \
    return 1;

static int floats_pass_f32(const float *values, int64_t count, double limit) { SCAN(float) }
static int floats_pass_f64(const double *values, int64_t count, double limit) { SCAN(double) }

/* a value that passes (see SCAN) */
static int passes(double v, double limit) { return fabs(v) <= limit && !(v == 0 && signbit(v)); }

int permutation_copies_exactly(const warp_t *p, const uint8_t *img, int64_t h, int64_t w) {
    if (p->interp == BICUBIC && !bicubic_exact_at_integers(p->cubic_a)) return 0;
    if (p->interp == NEAREST || p->dtype == U8 || p->dtype == U16) return 1;
    const double limit = p->interp == BICUBIC ? DBL_MAX : p->dtype == F32 ? FLT_MAX / 2 : DBL_MAX / 2;
    for (int64_t ch = 0; ch < p->c; ch++) { /* the fill as each path holds it: bicubic's in float64 */
        const double f = p->interp == BICUBIC || p->dtype == F64 ? p->fill[ch] : (double)(float)p->fill[ch];
        if (!passes(f, limit)) return 0;
    }
    const int64_t count = h * w * p->c;
    return p->dtype == F32 ? floats_pass_f32((const float *)img, count, limit)
                           : floats_pass_f64((const double *)img, count, limit);
}

/* the fill pixel as each interpolation stores it (uint8 bilinear: the value cast) */
static void fill_pixel(const warp_t *p, uint8_t *fp) {
    for (int64_t ch = 0; ch < p->c; ch++) {
        if (p->dtype == U8 && p->interp == BILINEAR) fp[ch] = (uint8_t)p->fill[ch];
        else store(fp, ch, p->fill[ch], p->dtype);
    }
}

/* [*a, *b): the x of [0, wo) where the source index s0 + ds x (ds = +-1) lies in [0, n) */
static void in_image(int64_t s0, int64_t ds, int64_t n, int64_t wo, int64_t *a, int64_t *b) {
    int64_t lo = ds > 0 ? -s0 : s0 - n + 1, hi = ds > 0 ? n - s0 : s0 + 1;
    lo = lo < 0 ? 0 : lo > wo ? wo : lo;
    hi = hi < lo ? lo : hi > wo ? wo : hi;
    *a = lo, *b = hi;
}

/* the pixels of an output row outside [a, b): source index s0 + ds x by the border rule;
   pixel(idx) gives the source pixel of in-range index idx */
#define EDGES(a, b, s0, ds, n, pixel)                                                                                  \
    for (int64_t x = 0; x < wo; x++) {                                                                                 \
        if (x == (a)) x = (b);                                                                                         \
        if (x >= wo) break;                                                                                            \
        const int64_t idx = map_index((s0) + (ds) * x, (n), p->border);                                                \
        memcpy(o + x * psize, idx < 0 ? fp : (pixel), psize);                                                          \
    }

/* n pixels read backwards from s (the pixel at s, then the one before it, ...) into d:
   one typed move per pixel (loops the compiler vectorises) for 1, 2, 4 and 8 bytes; for
   3, 6, 12 and 24 one wider move, which also writes the start of the next pixel (written
   after it), except at the ends (never past the row or the image) */
#define REVERSED(T)                                                                                                    \
    for (int64_t j = 0; j < n; j++) {                                                                                  \
        T v;                                                                                                           \
        memcpy(&v, s - j * (int64_t)sizeof(T), sizeof(T));                                                             \
        memcpy(d + j * (int64_t)sizeof(T), &v, sizeof(T));                                                             \
    }
#define REVERSED_WIDE(W)                                                                                               \
    if (n < 3) {                                                                                                       \
        for (int64_t j = 0; j < n; j++) memcpy(d + j * psize, s - j * psize, psize);                                  \
        return;                                                                                                        \
    }                                                                                                                  \
    memcpy(d, s, psize);                                                                                               \
    for (int64_t j = 1; j < n - 1; j++) {                                                                              \
        uint8_t v[W];                                                                                                  \
        memcpy(v, s - j * psize, W);                                                                                   \
        memcpy(d + j * psize, v, W);                                                                                   \
    }                                                                                                                  \
    memcpy(d + (n - 1) * psize, s - (n - 1) * psize, psize);

INLINE void copy_reversed(uint8_t *d, const uint8_t *s, int64_t n, const int64_t psize) {
    switch (psize) {
    case 1: REVERSED(uint8_t) return;
    case 2: REVERSED(uint16_t) return;
    case 3: REVERSED_WIDE(4) return;
    case 4: REVERSED(uint32_t) return;
    case 6: REVERSED_WIDE(8) return;
    case 8: REVERSED(uint64_t) return;
    case 12: REVERSED_WIDE(16) return;
    case 24: REVERSED_WIDE(32) return;
    default:
        for (int64_t j = 0; j < n; j++) memcpy(d + j * psize, s - j * psize, psize);
    }
}

/* an output row that reads source row `row` (NULL: fill), columns s0 + ds x */
INLINE void copy_row(const warp_t *p, uint8_t *o, const uint8_t *row, int64_t s0, int64_t ds, const uint8_t *fp,
                     const int64_t psize) {
    const int64_t wo = p->wo;
    if (!row) {
        fill_span(o, 0, wo, fp, psize);
        return;
    }
    int64_t a, b;
    in_image(s0, ds, p->w, wo, &a, &b);
    if (ds > 0) {
        memcpy(o + a * psize, row + (s0 + a) * psize, (b - a) * psize);
    } else if (b > a) {
        copy_reversed(o + a * psize, row + (s0 - a) * psize, b - a, psize);
    }
    EDGES(a, b, s0, ds, p->w, row + idx * psize)
}

enum { BLOCK = 16 };

/* output rows [y, y + band) of an image whose axes swap: row y + k reads source column
   col[k] (-1: fill), the rows s0 + ds x */
INLINE void copy_columns(const warp_t *p, uint8_t *out, const uint8_t *img, const int64_t *col, int64_t band,
                         int64_t s0, int64_t ds, const uint8_t *fp, const int64_t psize) {
    const int64_t wo = p->wo, stride = p->w * psize, line = wo * psize;
    int64_t a, b;
    in_image(s0, ds, p->h, wo, &a, &b);
    for (int64_t x = a; x < b; x++) {
        const uint8_t *srow = img + (s0 + ds * x) * stride;
        for (int64_t k = 0; k < band; k++)
            if (col[k] >= 0) memcpy(out + k * line + x * psize, srow + col[k] * psize, psize);
    }
    for (int64_t k = 0; k < band; k++) {
        uint8_t *o = out + k * line;
        if (col[k] < 0) {
            fill_span(o, 0, wo, fp, psize);
            continue;
        }
        EDGES(a, b, s0, ds, p->h, img + idx * stride + col[k] * psize)
    }
}

INLINE void permuted_rows(const warp_t *p, const perm_t *q, int64_t t0, int64_t t1, const uint8_t *fp,
                          const int64_t psize) {
    const int64_t ho = p->ho, wo = p->wo, h = p->h, w = p->w;
    for (int64_t t = t0; t < t1;) {
        const int64_t i = t / ho, y = t - i * ho;
        const uint8_t *img = p->src + i * h * w * psize;
        uint8_t *o = p->dst + t * wo * psize;
        if (q->xy == 0) { /* rows stay rows: source row yy y + y0, columns xx x + x0 */
            const int64_t sy = map_index(q->yy * y + q->y0, h, p->border);
            copy_row(p, o, sy < 0 ? NULL : img + sy * w * psize, q->x0, q->xx, fp, psize);
            t++;
            continue;
        }
        int64_t band = ho - y < t1 - t ? ho - y : t1 - t, col[BLOCK];
        band = band < BLOCK ? band : BLOCK;
        for (int64_t k = 0; k < band; k++) col[k] = map_index(q->xy * (y + k) + q->x0, w, p->border);
        copy_columns(p, o, img, col, band, q->y0, q->yx, fp, psize);
        t += band;
    }
}

DISPATCH void rows_permuted(const warp_t *p, const perm_t *q, int64_t t0, int64_t t1) {
    const int64_t psize = p->c * ITEMSIZE(p->dtype);
    uint8_t fillpx[256] = {0}, *fp = psize <= 256 ? fillpx : malloc(psize);
    if (!fp) return;
    fill_pixel(p, fp);
    switch (psize) { /* constant pixel sizes: each copy one or two moves */
    case 1: permuted_rows(p, q, t0, t1, fp, 1); break;
    case 2: permuted_rows(p, q, t0, t1, fp, 2); break;
    case 3: permuted_rows(p, q, t0, t1, fp, 3); break;
    case 4: permuted_rows(p, q, t0, t1, fp, 4); break;
    case 6: permuted_rows(p, q, t0, t1, fp, 6); break;
    case 8: permuted_rows(p, q, t0, t1, fp, 8); break;
    case 12: permuted_rows(p, q, t0, t1, fp, 12); break;
    case 16: permuted_rows(p, q, t0, t1, fp, 16); break;
    case 24: permuted_rows(p, q, t0, t1, fp, 24); break;
    default: permuted_rows(p, q, t0, t1, fp, psize);
    }
    if (fp != fillpx) free(fp);
}
