/* blur.c: the Gaussian prefilter of antialiasing, each image blurred by its own
   (sigma_x, sigma_y), separably: along x, then along y. */

#include "kernels.h"

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
        memcpy(d, s, h * w * c * ITEMSIZE(dt));
        return 0;
    }
    return dt == U8 || dt == F32 ? blur_float_one(s, d, h, w, c, dt, border, fill, sx, sy)
                                 : blur_double_one(s, d, h, w, c, dt, border, fill, sx, sy);
}

DISPATCH void blur_images(const void *v, int64_t i0, int64_t i1) {
    const blur_t *p = (const blur_t *)v;
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *s = (const uint8_t *)p->srcs[i];
        uint8_t *d = (uint8_t *)p->dsts[i];
        const int64_t h = p->hs[i], w = p->ws[i];
        /* out of memory: leave the image unfiltered rather than crash */
        if (blur_one(s, d, h, w, p->c, p->dtype, p->border, p->fill, p->sigma[2 * i], p->sigma[2 * i + 1]))
            memcpy(d, s, h * w * p->c * ITEMSIZE(p->dtype));
    }
}
