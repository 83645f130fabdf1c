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

/* n pixels read backwards from s (the pixel at s, then the one before it, ...) into d,
   written last first, so that the source is read ascending (the hardware prefetches an
   ascending stream; read descending, pixel after pixel, the copy waits on the cache):
   one typed move per pixel (loops the compiler vectorises) for 1, 2, 4 and 8 bytes; for
   3, 6, 12 and 24 one wider move, the W bytes that end where the pixel ends, which also
   writes the end of the pixel before it (written after it), except at the ends (never
   before the row or the image) */
#define REVERSED(T)                                                                                                    \
    for (int64_t j = n - 1; j >= 0; j--) {                                                                             \
        T v;                                                                                                           \
        memcpy(&v, s - j * (int64_t)sizeof(T), sizeof(T));                                                             \
        memcpy(d + j * (int64_t)sizeof(T), &v, sizeof(T));                                                             \
    }
#define REVERSED_WIDE(W)                                                                                               \
    if (n < 3) {                                                                                                       \
        for (int64_t j = n - 1; j >= 0; j--) memcpy(d + j * psize, s - j * psize, psize);                             \
        return;                                                                                                        \
    }                                                                                                                  \
    memcpy(d + (n - 1) * psize, s - (n - 1) * psize, psize);                                                           \
    for (int64_t j = n - 2; j >= 1; j--) {                                                                             \
        uint8_t v[W];                                                                                                  \
        memcpy(v, s - j * psize + psize - W, W);                                                                       \
        memcpy(d + j * psize + psize - W, v, W);                                                                       \
    }                                                                                                                  \
    memcpy(d, s, psize);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define REVERSE_SIMD 1
#define AVX2 __attribute__((target("avx2")))

/* The last pixels of copy_reversed on AVX2 machines (HAS_AVX2), block by block from the
   output's end (the source ascending); return how many they did, the caller's loops do
   the rest (the first pixels).
   1, 2, 4, 8 bytes: 32 bytes at a time, their elements reversed (a byte or word shuffle
   within the two lanes, then the lanes swapped; a dword or qword permutation).
   3 and 6 bytes: 48 bytes (16 or 8 pixels) at a time, read as three 16-byte lanes; each
   output lane is the OR of byte shuffles of the two or three source lanes its bytes come
   from (REVERSE48). */
#define REVERSE32(shuffle)                                                                                             \
    for (; j + k <= n; j += k) { /* output pixels [n - j - k, n - j) */                                                \
        __m256i v = _mm256_loadu_si256((const __m256i *)(s - (n - j - 1) * psize));                                    \
        _mm256_storeu_si256((__m256i *)(d + (n - j - k) * psize), shuffle);                                            \
    }

/* The shuffles of 48 bytes of 3- and 6-byte pixels reversed: output byte g takes source
   byte P (48 / P - 1 - g / P) + g % P; row i of a table picks, for output lane o and source
   lane l in the order (o, l) = (0, 2), (0, 1), (1, 2), (1, 1), (1, 0), (2, 1), (2, 0), the
   bytes of lane o that come from lane l (-1: from another lane) */
static const int8_t REVERSE48[2][7][16] = {
    {/* 3 bytes */
     {13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, -1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 14},
     {-1, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {15, -1, 11, 12, 13, 8, 9, 10, 5, 6, 7, 2, 3, 4, -1, 0},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 15, -1},
     {1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {-1, 12, 13, 14, 9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2}},
    {/* 6 bytes */
     {10, 11, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9, -1, -1, 0, 1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 14, 15, -1, -1},
     {2, 3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {-1, -1, 8, 9, 10, 11, 12, 13, 2, 3, 4, 5, 6, 7, -1, -1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 12, 13},
     {-1, -1, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {14, 15, -1, -1, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5}}
};

AVX2 __attribute__((noinline)) static int64_t reversed_avx2(uint8_t *d, const uint8_t *s, int64_t n,
                                                           const int64_t psize) {
    int64_t j = 0, k = 32 / psize;
    if (psize == 1) {
        const __m256i m = _mm256_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10,
                                           9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        REVERSE32(_mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, m), 0x4E))
    } else if (psize == 2) {
        const __m256i m = _mm256_setr_epi8(14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1, 14, 15, 12, 13, 10, 11,
                                           8, 9, 6, 7, 4, 5, 2, 3, 0, 1);
        REVERSE32(_mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, m), 0x4E))
    } else if (psize == 4) {
        const __m256i m = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
        REVERSE32(_mm256_permutevar8x32_epi32(v, m))
    } else if (psize == 8) {
        REVERSE32(_mm256_permute4x64_epi64(v, 0x1B))
    } else if (psize == 3 || psize == 6) {
        const int8_t(*t)[16] = REVERSE48[psize == 6];
        __m128i m[7];
        for (int i = 0; i < 7; i++) m[i] = _mm_loadu_si128((const __m128i *)t[i]);
        k = 48 / psize;
        const uint8_t *from = s - (n - 1) * psize; /* the source of output pixels [n - j - k, n - j) */
        uint8_t *to = d + (n - k) * psize;
        for (; j + k <= n; j += k, from += 48, to -= 48) {
            const __m128i a0 = _mm_loadu_si128((const __m128i *)from);
            const __m128i a1 = _mm_loadu_si128((const __m128i *)(from + 16));
            const __m128i a2 = _mm_loadu_si128((const __m128i *)(from + 32));
            const __m128i o0 = _mm_or_si128(_mm_shuffle_epi8(a2, m[0]), _mm_shuffle_epi8(a1, m[1]));
            const __m128i o1 =
                _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a2, m[2]), _mm_shuffle_epi8(a1, m[3])), _mm_shuffle_epi8(a0, m[4]));
            const __m128i o2 = _mm_or_si128(_mm_shuffle_epi8(a1, m[5]), _mm_shuffle_epi8(a0, m[6]));
            _mm_storeu_si128((__m128i *)to, o0);
            _mm_storeu_si128((__m128i *)(to + 16), o1);
            _mm_storeu_si128((__m128i *)(to + 32), o2);
        }
    }
    return j;
}

/* The last pixels of copy_reversed on AVX-512 VBMI machines (HAS_VBMI), any pixel size up
   to 32 bytes: blocks of k = 64 / psize pixels (k psize bytes) from the output's end (the
   source ascending), each one masked load, one byte permutation (table: output byte g
   takes block byte rev[g]) and one masked store. Returns how many pixels they did. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"), noinline)) static int64_t reversed_vbmi(
    uint8_t *d, const uint8_t *s, int64_t n, const int64_t psize, const uint8_t *rev) {
    const int64_t k = 64 / psize, bytes = k * psize;
    const __m512i table = _mm512_loadu_si512((const void *)rev);
    const __mmask64 lanes = bytes == 64 ? ~(__mmask64)0 : ((__mmask64)1 << bytes) - 1;
    const uint8_t *from = s - (n - 1) * psize; /* the source of output pixels [n - j - k, n - j) */
    uint8_t *to = d + (n - k) * psize;
    int64_t j = 0;
    for (; j + k <= n; j += k, from += bytes, to -= bytes)
        _mm512_mask_storeu_epi8(to, lanes, _mm512_permutexvar_epi8(table, _mm512_maskz_loadu_epi8(lanes, from)));
    return j;
}
#endif

/* reversed_vbmi's table for pixels of psize bytes (1 to 32): output byte g of a block
   takes the block's byte (k - 1 - g / psize) psize + g % psize */
static void reversal_table(uint8_t rev[64], int64_t psize) {
    memset(rev, 0, 64);
    const int64_t k = 64 / psize;
    for (int64_t px = 0; px < k; px++)
        for (int64_t b = 0; b < psize; b++) rev[px * psize + b] = (uint8_t)((k - 1 - px) * psize + b);
}

/* n pixels read backwards from s into d (see REVERSED); rev: reversed_vbmi's table where
   that path is taken (HAS_VBMI), else unused */
INLINE void copy_reversed(uint8_t *d, const uint8_t *s, int64_t n, const int64_t psize, const uint8_t *rev) {
#if defined(REVERSE_SIMD)
    if (HAS_VBMI > 0 && psize <= 32) {
        n -= reversed_vbmi(d, s, n, psize, rev);
    } else if (HAS_AVX2 > 0 && (psize <= 4 || psize == 6 || psize == 8)) {
        n -= reversed_avx2(d, s, n, psize);
    }
#else
    (void)rev;
#endif
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

#if defined(REVERSE_SIMD)
/* n >= 32 bytes from s to d (not overlapping): the first 32 bytes, then from the first
   32-byte boundary of d on (a store that crosses a cache line costs two), 128 at a time
   (four loads before their four stores, so that the loads of a line pair wait on the cache
   together), then 32 at a time, the last 32 ending at n */
AVX2 static inline void copy_avx2(uint8_t *d, const uint8_t *s, size_t n) {
    _mm256_storeu_si256((__m256i *)d, _mm256_loadu_si256((const __m256i *)s));
    size_t i = 32 - ((uintptr_t)d & 31);
    for (; i + 128 <= n; i += 128) {
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)(s + i));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(s + i + 32));
        const __m256i v2 = _mm256_loadu_si256((const __m256i *)(s + i + 64));
        const __m256i v3 = _mm256_loadu_si256((const __m256i *)(s + i + 96));
        _mm256_store_si256((__m256i *)(d + i), v0);
        _mm256_store_si256((__m256i *)(d + i + 32), v1);
        _mm256_store_si256((__m256i *)(d + i + 64), v2);
        _mm256_store_si256((__m256i *)(d + i + 96), v3);
    }
    for (; i + 32 <= n; i += 32) _mm256_store_si256((__m256i *)(d + i), _mm256_loadu_si256((const __m256i *)(s + i)));
    if (i < n) _mm256_storeu_si256((__m256i *)(d + n - 32), _mm256_loadu_si256((const __m256i *)(s + n - 32)));
}
#endif

/* n bytes of one row from s to d (not overlapping): a plain AVX2 loop where the CPU runs
   it, without the C library's dispatch on the size of every row, else memcpy */
INLINE void copy_bytes(uint8_t *d, const uint8_t *s, size_t n) {
#if defined(REVERSE_SIMD)
    if (n >= 32 && HAS_AVX2 > 0) {
        copy_avx2(d, s, n);
        return;
    }
#endif
    memcpy(d, s, n);
}

enum { BLOCK = 32 };

/* band rows of one output column: row k's pixel from source pixel k dk (dk = +-1) of
   srow. `wide`: 3-byte pixels moved as 4 bytes (one load, one store; the extra byte read
   is inside the image, the one written is the next column's, written later). A function
   of its own, so that its loop keeps its counters in registers. */
#define COLUMN(T, size)                                                                                                \
    for (int64_t k = 0; k < band; k++) {                                                                               \
        T v;                                                                                                           \
        memcpy(&v, srow + k * dk * (size), sizeof(T));                                                                 \
        memcpy(d + k * line, &v, sizeof(T));                                                                           \
    }

__attribute__((noinline)) static void column_run(uint8_t *d, int64_t line, const uint8_t *srow, int64_t dk,
                                                 int64_t band, int wide, int64_t psize) {
    if (wide) {
        COLUMN(uint32_t, 3)
        return;
    }
    switch (psize) {
    case 1: COLUMN(uint8_t, 1) return;
    case 2: COLUMN(uint16_t, 2) return;
    case 4: COLUMN(uint32_t, 4) return;
    case 8: COLUMN(uint64_t, 8) return;
    default:
        for (int64_t k = 0; k < band; k++) memcpy(d + k * line, srow + k * dk * psize, psize);
    }
}

/* output rows [y, y + band) of an image whose axes swap: row y + k reads source column
   col[k] (-1: fill), the rows s0 + ds x; a blocked transpose: each source row is read
   once for the band's columns, which lie side by side (col[k] = col[0] +- k) unless the
   border rule maps them */
INLINE void copy_columns(const warp_t *p, uint8_t *out, const uint8_t *img, const int64_t *col, int64_t band,
                         int64_t s0, int64_t ds, const uint8_t *fp, const int64_t psize) {
    const int64_t wo = p->wo, stride = p->w * psize, line = wo * psize;
    int64_t a, b;
    in_image(s0, ds, p->h, wo, &a, &b);
    int64_t dk = band > 1 ? col[1] - col[0] : 1, side = dk == 1 || dk == -1;
    for (int64_t k = 0; k < band && side; k++) side = col[k] >= 0 && col[k] == col[0] + dk * k;
    for (int64_t x = a; x < b; x++) {
        const uint8_t *srow = img + (s0 + ds * x) * stride;
        if (side) { /* the last source row's last pixel has nothing after it: moved exactly */
            const int wide = psize == 3 && x + 1 < wo && s0 + ds * x != p->h - 1;
            column_run(out + x * psize, line, srow + col[0] * psize, dk, band, wide, psize);
            continue;
        }
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

/* what a matrix that keeps rows (xy = yx = 0) does to every row alike: the columns inside
   the image [a, b), output pixel a's offset in its source row, whether any pixel takes
   the border rule, and reversed_vbmi's table */
typedef struct {
    int64_t a, b, from;
    int edges;
    uint8_t rev[64];
} columns_t;

/* output row o from source row r (columns x0 + xx x) */
INLINE void kept_row(const warp_t *p, const perm_t *q, const columns_t *k, uint8_t *o, const uint8_t *r,
                     const uint8_t *fp, const int64_t psize) {
    const int64_t wo = p->wo, a = k->a, b = k->b;
    if (q->xx > 0) copy_bytes(o + a * psize, r + k->from, (b - a) * psize);
    else if (b > a) copy_reversed(o + a * psize, r + k->from, b - a, psize, k->rev);
    if (k->edges) EDGES(a, b, q->x0, q->xx, p->w, r + idx * psize)
}

/* rows [t0, t1) of a matrix that keeps rows: output row y of an image reads source row
   yy y + y0, columns x0 + xx x. The rows whose source row is inside the image, [ya, yb),
   go in a plain loop, in the order that reads the source ascending (rows turned upside
   down, yy = -1, are written last first), which the hardware prefetches (read
   descending, row after row, it waits on the cache instead); if they are whole rows (no
   flip, no column shift, the same width) they are one copy. The rows above and below
   take the border rule, one by one. */
INLINE void kept_rows(const warp_t *p, const perm_t *q, int64_t t0, int64_t t1, const uint8_t *fp,
                      const int64_t psize) {
    const int64_t ho = p->ho, wo = p->wo, h = p->h, row = p->w * psize, line = wo * psize;
    columns_t k;
    in_image(q->x0, q->xx, p->w, wo, &k.a, &k.b);
    if (q->xx < 0 && psize <= 32) reversal_table(k.rev, psize);
    k.from = (q->x0 + q->xx * k.a) * psize;
    k.edges = k.a > 0 || k.b < wo;
    const int whole = q->xx > 0 && q->yy > 0 && k.from == 0 && k.b - k.a == wo && row == line;
    int64_t ya, yb;
    in_image(q->y0, q->yy, h, ho, &ya, &yb);
    for (int64_t i = t0 / ho; i * ho < t1; i++) {
        const int64_t y0 = t0 > i * ho ? t0 - i * ho : 0, y1 = t1 < (i + 1) * ho ? t1 - i * ho : ho;
        const int64_t in0 = ya > y0 ? ya : y0, end = yb < y1 ? yb : y1, in1 = end > in0 ? end : in0;
        const uint8_t *img = p->src + i * h * row;
        uint8_t *out = p->dst + i * ho * line;
        for (int64_t y = y0; y < y1; y++) { /* the border rule's rows */
            if (y == in0) y = in1;
            if (y >= y1) break;
            const int64_t sy = map_index(q->yy * y + q->y0, h, p->border);
            if (sy < 0) fill_span(out + y * line, 0, wo, fp, psize);
            else kept_row(p, q, &k, out + y * line, img + sy * row, fp, psize);
        }
        if (in1 == in0) continue;
        const int64_t first = q->yy > 0 ? in0 : in1 - 1; /* the output row that reads the lowest source row */
        const uint8_t *r = img + (q->yy * first + q->y0) * row, *last = r + (in1 - in0 - 1) * row;
        if (whole) {
            memcpy(out + first * line, r, (in1 - in0) * line);
            continue;
        }
        const int64_t step = q->yy > 0 ? line : -line;
        for (uint8_t *o = out + first * line; r <= last; r += row, o += step)
            kept_row(p, q, &k, o, r, fp, psize);
    }
}

INLINE void permuted_rows(const warp_t *p, const perm_t *q, int64_t t0, int64_t t1, const uint8_t *fp,
                          const int64_t psize) {
    if (q->xy == 0) {
        kept_rows(p, q, t0, t1, fp, psize);
        return;
    }
    const int64_t ho = p->ho, wo = p->wo, h = p->h, w = p->w, image = h * w * psize;
    int64_t i = t0 / ho, y = t0 - i * ho; /* image i, its output row y: one division for the call */
    const uint8_t *img = p->src + i * image;
    uint8_t *o = p->dst + t0 * wo * psize;
    for (int64_t t = t0; t < t1;) { /* the axes swap: source column xy y + x0 for output row y */
        int64_t col[BLOCK];
        int64_t rows = ho - y < t1 - t ? ho - y : t1 - t;
        rows = rows < BLOCK ? rows : BLOCK;
        for (int64_t k = 0; k < rows; k++) col[k] = map_index(q->xy * (y + k) + q->x0, w, p->border);
        copy_columns(p, o, img, col, rows, q->y0, q->yx, fp, psize);
        t += rows, y += rows, o += rows * wo * psize;
        if (y == ho) y = 0, img += image;
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
