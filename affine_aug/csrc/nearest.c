/* nearest.c: nearest-neighbour rows, the pixel at floor(coord + 0.5) copied whole.

   Each output pixel's index is ifloor(reduce(s) + 0.5), mapped by the border rule, with
   s = x0 + dx x in float64 (common.h: row_of). A row splits into
     [0, t0) fill | [t0, a) border path | [a, b) interior | [b, t1) border path | [t1, wo) fill
   (the fill spans only for the constant border). In the interior both coordinates lie
   in [0, size - 1], where reduce() and the border mapping change nothing: the index is
   (int)(s + 0.5), the same number, computed eight pixels at a time with AVX2 (else for a
   chunk at a time, a loop the compiler vectorises), then the pixels are copied whole,
   one widened move each. The spans are exact: each is
   the set of x where a monotone function of x (the float64 coordinate) lies in a range,
   so an interval, found by trimming span_of's superset with the very test. */

#include "geometry.h"
#include "kernels.h"
#include "simd.h"

enum { CHUNK = 256 };

/* the border path: one pixel as the rule gives it, fill included */
INLINE void border_pixel(const warp_t *p, row_t r, const uint8_t *img, const uint8_t *fp, uint8_t *o, int64_t x,
                         const int64_t psize) {
    const int64_t w = p->w, h = p->h;
    const int64_t xi = map_index(ifloor(reduce(r.x0 + r.dx * (double)x, w, p->border) + 0.5), w, p->border);
    const int64_t yi = map_index(ifloor(reduce(r.y0 + r.dy * (double)x, h, p->border) + 0.5), h, p->border);
    memcpy(o + x * psize, (xi < 0 || yi < 0) ? fp : img + (yi * w + xi) * psize, psize);
}

/* [*a, *b) narrowed to the x whose coordinate s0 + ds x satisfies `inside` (an interval) */
#define TRIM(a, b, s0, ds, inside)                                                                                     \
    do {                                                                                                               \
        while (*(a) < *(b) && !(inside((s0) + (ds) * (double)*(a)))) (*(a))++;                                       \
        while (*(b) > *(a) && !(inside((s0) + (ds) * (double)(*(b) - 1)))) (*(b))--;                                 \
    } while (0)

/* The x of [0, wo) where lo <= s0 + ds x <= hi (both ends included), and where the index
   floor(s + 0.5) lies in [0, n) (the pixels that are not fill) */
INLINE void interior_x(double s0, double ds, double hi, int64_t wo, int64_t *a, int64_t *b) {
#define IN_IMAGE(s) ((s) >= 0.0 && (s) <= hi)
    span_of(s0, ds, -1.0, hi + 1.0, wo, 1, a, b);
    TRIM(a, b, s0, ds, IN_IMAGE);
#undef IN_IMAGE
}

INLINE void in_range_x(double s0, double ds, int64_t n, int64_t wo, int64_t *a, int64_t *b) {
#define IN_RANGE(s) (ifloor((s) + 0.5) >= 0 && ifloor((s) + 0.5) < n)
    span_of(s0, ds, -1.5, (double)n + 0.5, wo, 1, a, b);
    TRIM(a, b, s0, ds, IN_RANGE);
#undef IN_RANGE
}

/* the interior pixels [a, b) of a row: indices for a chunk at a time, then whole-pixel copies */
INLINE void interior_scalar(row_t r, const uint8_t *img, int64_t stride, uint8_t *o, int64_t a, int64_t b,
                            const int64_t psize) {
    int32_t xi[CHUNK], yi[CHUNK];
    for (int64_t x0 = a; x0 < b; x0 += CHUNK) {
        const int32_t n = (int32_t)(b - x0 < CHUNK ? b - x0 : CHUNK);
        const double base = (double)x0;
        for (int32_t j = 0; j < n; j++) { /* s >= 0: truncation is floor */
            const double x = base + (double)j;
            xi[j] = (int32_t)(r.x0 + r.dx * x + 0.5);
            yi[j] = (int32_t)(r.y0 + r.dy * x + 0.5);
        }
        uint8_t *d = o + x0 * psize;
        for (int32_t j = 0; j < n; j++) memcpy(d + j * psize, img + yi[j] * stride + xi[j] * psize, psize);
    }
}

#if defined(HAVE_AVX2_PATH)
/* The AVX2 interior: eight pixels' indices at a time, in the scalar path's float64
   operations and order (x0 + dx x, then + 0.5, truncated), so the same integers; then
   their pixels copied whole, one move each, widened to 4, 8 or 16 bytes (block8). The
   moves are plain loads and stores: on the CPUs measured, AVX2 gathers cost more than
   they save (docs/kernel.md). Offsets are 32-bit (the caller checks the image is under
   2 GiB). */
#include <immintrin.h>
#define AVX2 static inline __attribute__((target("avx2")))

/* the pixel sizes the AVX2 interior takes (those rows_nearest makes constants) */
#define NEAREST_AVX2(psize)                                                                                            \
    ((psize) <= 4 || (psize) == 6 || (psize) == 8 || (psize) == 12 || (psize) == 16 || (psize) == 24 || (psize) == 32)

typedef struct {
    __m256d x0, dx, y0, dy, lo, hi;
    __m256i stride, psize;
} coords8_t;

AVX2 coords8_t coords8(row_t r, int64_t a, int64_t stride, int64_t psize) {
    coords8_t c;
    const double base = (double)a;
    c.x0 = _mm256_set1_pd(r.x0), c.dx = _mm256_set1_pd(r.dx), c.y0 = _mm256_set1_pd(r.y0), c.dy = _mm256_set1_pd(r.dy);
    c.lo = _mm256_setr_pd(base, base + 1.0, base + 2.0, base + 3.0), c.hi = _mm256_add_pd(c.lo, _mm256_set1_pd(4.0));
    c.stride = _mm256_set1_epi32((int32_t)stride), c.psize = _mm256_set1_epi32((int32_t)psize);
    return c;
}

/* index of four pixels on one axis: (int)(s0 + ds x + 0.5) */
AVX2 __m128i index4(__m256d s0, __m256d ds, __m256d x) {
    return _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_add_pd(s0, _mm256_mul_pd(ds, x)), _mm256_set1_pd(0.5)));
}

/* the byte offsets of the next eight pixels; steps to the eight after them */
AVX2 __m256i offsets8(coords8_t *c) {
    const __m256i xi = _mm256_inserti128_si256(_mm256_castsi128_si256(index4(c->x0, c->dx, c->lo)),
                                               index4(c->x0, c->dx, c->hi), 1);
    const __m256i yi = _mm256_inserti128_si256(_mm256_castsi128_si256(index4(c->y0, c->dy, c->lo)),
                                               index4(c->y0, c->dy, c->hi), 1);
    const __m256d eight = _mm256_set1_pd(8.0);
    c->lo = _mm256_add_pd(c->lo, eight), c->hi = _mm256_add_pd(c->hi, eight);
    return _mm256_add_epi32(_mm256_mullo_epi32(yi, c->stride), _mm256_mullo_epi32(xi, c->psize));
}

/* the move of one pixel: psize bytes widened to the next 4, 8 or 16 */
#define WIDE(psize) ((psize) <= 4 ? 4 : (psize) <= 8 ? 8 : (psize) <= 16 ? 16 : (psize))

/* Eight pixels at offsets off copied to d, one move of WIDE(psize) bytes each: a move
   writes past its pixel into the next ones' places, which the next moves rewrite, and
   past the block's end, which is allowed when `room` (the row's next pixels, written
   later). A block without room, or that would read past the image's last byte, copies
   exactly psize bytes per pixel. */
AVX2 void block8(const uint8_t *img, __m256i off, int64_t bytes, uint8_t *d, const int64_t psize, int room) {
    int32_t o[8];
    _mm256_storeu_si256((__m256i *)o, off);
    const int64_t wide = WIDE(psize);
    if (wide != psize &&
        (!room || _mm256_movemask_epi8(_mm256_cmpgt_epi32(off, _mm256_set1_epi32((int32_t)(bytes - wide)))))) {
        for (int j = 0; j < 8; j++) memcpy(d + j * psize, img + o[j], psize);
        return;
    }
    for (int j = 0; j < 8; j++) memcpy(d + j * psize, img + o[j], wide);
}

/* the pixels [a, b) of a row's interior: all of them (returns b - a) */
AVX2 int64_t interior_avx2_of(row_t r, const uint8_t *img, int64_t stride, int64_t bytes, uint8_t *o, int64_t a,
                              int64_t b, const int64_t psize) {
    coords8_t c = coords8(r, a, stride, psize);
    int64_t x = a;
    const int64_t after = (WIDE(psize) - 1) / psize; /* the pixels past its own that a move may write into */
    for (; x + 8 <= b; x += 8) block8(img, offsets8(&c), bytes, o + x * psize, psize, x + 8 + after <= b);
    if (x < b) { /* the last pixels: lanes past the end repeat the last one, through a buffer */
        uint8_t tmp[8 * 32];
        const __m256i last =
            _mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(b - x - 1)));
        block8(img, _mm256_permutevar8x32_epi32(offsets8(&c), last), bytes, tmp, psize, 1);
        memcpy(o + x * psize, tmp, (b - x) * psize);
    }
    return b - a;
}

AVX2 int64_t interior_avx2(row_t r, const uint8_t *img, int64_t stride, int64_t bytes, uint8_t *o, int64_t a,
                           int64_t b, const int64_t psize) {
    switch (psize) { /* constant pixel sizes */
    case 1: return interior_avx2_of(r, img, stride, bytes, o, a, b, 1);
    case 2: return interior_avx2_of(r, img, stride, bytes, o, a, b, 2);
    case 3: return interior_avx2_of(r, img, stride, bytes, o, a, b, 3);
    case 4: return interior_avx2_of(r, img, stride, bytes, o, a, b, 4);
    case 6: return interior_avx2_of(r, img, stride, bytes, o, a, b, 6);
    case 8: return interior_avx2_of(r, img, stride, bytes, o, a, b, 8);
    case 12: return interior_avx2_of(r, img, stride, bytes, o, a, b, 12);
    case 16: return interior_avx2_of(r, img, stride, bytes, o, a, b, 16);
    case 24: return interior_avx2_of(r, img, stride, bytes, o, a, b, 24);
    case 32: return interior_avx2_of(r, img, stride, bytes, o, a, b, 32);
    default: return 0;
    }
}
#endif

INLINE void interior(row_t r, const uint8_t *img, int64_t stride, int64_t bytes, uint8_t *o, int64_t a, int64_t b,
                     const int64_t psize) {
#if defined(HAVE_AVX2_PATH)
    if (HAS_AVX2 && bytes >= 8 && bytes < 2147483647 - 64 && NEAREST_AVX2(psize)) {
        a += interior_avx2(r, img, stride, bytes, o, a, b, psize);
        if (a >= b) return;
    }
#endif
    (void)bytes;
    interior_scalar(r, img, stride, o, a, b, psize);
}

/* the spans of output row t of the batch: [0, t0) fill | [t0, a) border | [a, b) interior | [b, t1) border | [t1, wo) fill */
typedef struct {
    row_t r;
    int64_t t0, a, b, t1;
} spans_t;

/* Output row t's spans; writes its fill and its border-path pixels (all of them when a
   coordinate is far or NaN) */
INLINE spans_t nearest_row(const warp_t *p, int64_t t, const uint8_t *fp, const int64_t psize) {
    const int64_t ho = p->ho, wo = p->wo, w = p->w, h = p->h;
    const int64_t i = t / ho;
    spans_t g = {row_of(p, i, t - i * ho), 0, wo, wo, wo};
    const row_t r = g.r;
    const uint8_t *img = p->src + i * h * w * psize;
    uint8_t *o = p->dst + t * wo * psize;
    const double big = dmax(dmax(fabs(r.x0), fabs(r.x0 + r.dx * (double)wo)), dmax(fabs(r.y0), fabs(r.y0 + r.dy * (double)wo)));
    if (!(big < 1073741824.0) || w > 1073741824 || h > 1073741824) { /* far (or NaN): every pixel by the rule */
        for (int64_t x = 0; x < wo; x++) border_pixel(p, r, img, fp, o, x, psize);
        return g;
    }
    int64_t ax, bx, ay, by;
    if (p->border == CONSTANT) {
        in_range_x(r.x0, r.dx, w, wo, &ax, &bx);
        in_range_x(r.y0, r.dy, h, wo, &ay, &by);
        g.t0 = ax > ay ? ax : ay, g.t1 = bx < by ? bx : by;
        if (g.t1 <= g.t0) g.t0 = g.t1 = wo;
        fill_span(o, 0, g.t0, fp, psize), fill_span(o, g.t1, wo, fp, psize);
    }
    interior_x(r.x0, r.dx, (double)(w - 1), wo, &ax, &bx);
    interior_x(r.y0, r.dy, (double)(h - 1), wo, &ay, &by);
    g.a = ax > ay ? ax : ay, g.b = bx < by ? bx : by;
    g.a = g.a > g.t0 ? g.a : g.t0, g.b = g.b < g.t1 ? g.b : g.t1;
    if (g.b <= g.a) g.a = g.b = g.t1;
    for (int64_t x = g.t0; x < g.a; x++) border_pixel(p, r, img, fp, o, x, psize);
    for (int64_t x = g.b; x < g.t1; x++) border_pixel(p, r, img, fp, o, x, psize);
    return g;
}

/* Asks the cache for the source of the interiors' pixels [xs, xe) of a band's rows 0,
   band / 2 and band - 1, every fourth pixel: the lines the next tile reads, so that its
   diagonal reads of a source not in the cache overlap instead of waiting one by one */
INLINE void prefetch_tile(const spans_t *g, int64_t band, const uint8_t *img, int64_t stride, int64_t xs, int64_t xe,
                          const int64_t psize) {
    const int64_t rows[3] = {0, band / 2, band - 1};
    for (int j = 0; j < 3; j++) {
        const spans_t *s = &g[rows[j]];
        const int64_t a = s->a > xs ? s->a : xs, b = s->b < xe ? s->b : xe;
        for (int64_t x = a; x < b; x += 4) {
            const int64_t xi = (int64_t)(s->r.x0 + s->r.dx * (double)x + 0.5), yi = (int64_t)(s->r.y0 + s->r.dy * (double)x + 0.5);
            __builtin_prefetch(img + yi * stride + xi * psize);
        }
    }
}

/* Rows in bands of up to BAND rows of one image, the interiors tile by tile (about 1 KB
   of output pixels per row), so that a tile's source footprint stays in the cache when a
   rotation makes each output row sweep across many source rows (as bands.h does for
   bilinear) */
enum { BAND_ROWS = 16 };

INLINE void nearest_rows(const warp_t *p, int64_t t0, int64_t t1, const uint8_t *fp, const int64_t psize) {
    const int64_t ho = p->ho, wo = p->wo, stride = p->w * psize, bytes = p->h * stride;
    int64_t tile = (1024 / psize) & ~(int64_t)7;
    tile = tile < 32 ? 32 : tile > CHUNK ? CHUNK : tile;
    spans_t g[BAND_ROWS];
    for (int64_t t = t0; t < t1;) {
        const int64_t i = t / ho, y = t - i * ho;
        int64_t band = ho - y < t1 - t ? ho - y : t1 - t;
        band = band < BAND_ROWS ? band : BAND_ROWS;
        const uint8_t *img = p->src + i * p->h * stride;
        for (int64_t k = 0; k < band; k++) g[k] = nearest_row(p, t + k, fp, psize);
        for (int64_t xs = 0; xs < wo; xs += tile) {
            const int64_t xe = xs + tile < wo ? xs + tile : wo;
            prefetch_tile(g, band, img, stride, xe, xe + tile < wo ? xe + tile : wo, psize);
            for (int64_t k = 0; k < band; k++) {
                const int64_t a = g[k].a > xs ? g[k].a : xs, b = g[k].b < xe ? g[k].b : xe;
                if (a < b) interior(g[k].r, img, stride, bytes, p->dst + (t + k) * wo * psize, a, b, psize);
            }
        }
        t += band;
    }
}

DISPATCH void rows_nearest(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t psize = p->c * ITEMSIZE(p->dtype);
    uint8_t fillpx[256] = {0}, *fp = psize <= 256 ? fillpx : malloc(psize);
    if (!fp) return;
    for (int64_t ch = 0; ch < p->c; ch++) store(fp, ch, p->fill[ch], p->dtype);
    switch (psize) { /* constant pixel sizes: each copy one or two moves */
    case 1: nearest_rows(p, t0, t1, fp, 1); break;
    case 2: nearest_rows(p, t0, t1, fp, 2); break;
    case 3: nearest_rows(p, t0, t1, fp, 3); break;
    case 4: nearest_rows(p, t0, t1, fp, 4); break;
    case 6: nearest_rows(p, t0, t1, fp, 6); break;
    case 8: nearest_rows(p, t0, t1, fp, 8); break;
    case 12: nearest_rows(p, t0, t1, fp, 12); break;
    case 16: nearest_rows(p, t0, t1, fp, 16); break;
    case 24: nearest_rows(p, t0, t1, fp, 24); break;
    case 32: nearest_rows(p, t0, t1, fp, 32); break;
    default: nearest_rows(p, t0, t1, fp, psize);
    }
    if (fp != fillpx) free(fp);
}
