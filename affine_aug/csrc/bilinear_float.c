/* bilinear_float.c: bilinear rows of uint16, float32 and float64 images: three lerps per
   channel, in float for uint16 and float32 (32.32 fixed-point coordinates) and in double
   for float64; the AVX2 interior for float32 with 3 or 4 channels. */

#include "bands.h"
#include "kernels.h"
#include "simd.h"

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
        img += (pad * stride + pad * c) * ITEMSIZE(dt);                                                           \
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
        const int64_t isz = ITEMSIZE(dt);                                                                         \
        uint8_t fillpx[2048], *fp = c * isz <= 2048 ? fillpx : malloc(c * isz);                                   \
        if (!fp) return;                                                                                          \
        for (int64_t ch = 0; ch < c; ch++) store(fp, ch, p->fill[ch], dt);                                        \
        warp_step(p, t0, t1, dt, c, sizeof(W) == 4 ? 1 : 0, fp, NAME##_segment);                                  \
        if (fp != fillpx) free(fp);                                                                               \
    }

BILINEAR_LERP(float, rows_lerp_float)
BILINEAR_LERP(double, rows_lerp_double)

DISPATCH void rows_bilinear_lerp(const warp_t *p, int64_t t0, int64_t t1) {
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
