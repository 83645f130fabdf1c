/* Planar warp: (N, C, H, W) images read in place through their strides (a contiguous
   NCHW tensor is N * C single-channel planes), one matrix per image, one fill value per
   channel; output (N, C, H_out, W_out) contiguous. Conventions and arithmetic: planes.h.

   Work is handed out by output rows of one image: each row's taps (mapped indices and
   weights) are computed once per chunk of pixels and used for every channel. */

#include "planes.h"

typedef struct {
    const uint8_t *src;
    int64_t sn, sc, sh, sw; /* element strides of the source */
    uint8_t *dst;           /* (n, c, ho, wo) */
    const double *m;        /* (n, 3, 3) dst -> src */
    const double *fill;     /* (c,) */
    const uint8_t *fillraw; /* (c,) elements of the images' own type (nearest) */
    int64_t n, c, h, w, ho, wo, itemsize;
    int dtype, interp, border;
    double a;
    int64_t readable; /* elements that may be read from src on (the end of its buffer) */
} planes_t;

/* ------------------------------------------------------------------ rows */

/* Taps of output pixels [x0, x0 + count) of row y of image i: per pixel K element
   offsets into the source plane per axis (PL_OUT where the tap is fill) and K weights */
PL_INLINE void row_taps(const planes_t *p, int64_t i, int64_t y, int64_t x0, int64_t count, const int K, int64_t *ox,
                        int64_t *oy, double *wx, double *wy) {
    const double *m = p->m + 9 * i;
    const int interp = K == 1 ? NEAREST : K == 2 ? BILINEAR : BICUBIC;
    for (int64_t k = 0; k < count; k++) {
        double sx, sy;
        pl_coords(m, x0 + k, y, &sx, &sy);
        if (K == 1 && sx >= -0.5 && sx < (double)p->w - 0.5 && sy >= -0.5 && sy < (double)p->h - 0.5) {
            wx[k] = wy[k] = 1.0; /* nearest inside the image: floor(s + 0.5) by truncation (s + 0.5 >= 0) */
            ox[k] = (int64_t)(sx + 0.5) * p->sw, oy[k] = (int64_t)(sy + 0.5) * p->sh;
            continue;
        }
        int64_t ix[4], iy[4];
        pl_axis(reduce(sx, p->w, p->border), p->w, p->border, interp, p->a, ix, wx + K * k, NULL);
        pl_axis(reduce(sy, p->h, p->border), p->h, p->border, interp, p->a, iy, wy + K * k, NULL);
        for (int j = 0; j < K; j++) {
            ox[K * k + j] = ix[j] == PL_OUT ? PL_OUT : ix[j] * p->sw;
            oy[K * k + j] = iy[j] == PL_OUT ? PL_OUT : iy[j] * p->sh;
        }
    }
}

/* rows [t0, t1) of the n * ho output rows, interpolated (bilinear: K = 2, bicubic: K = 4) */
PL_INLINE void rows_interp(const planes_t *p, int64_t t0, int64_t t1, const int dt, const int K) {
    int64_t ox[PL_CHUNK * 4], oy[PL_CHUNK * 4];
    double wx[PL_CHUNK * 4], wy[PL_CHUNK * 4];
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / p->ho, y = t - i * p->ho;
        for (int64_t x0 = 0; x0 < p->wo; x0 += PL_CHUNK) {
            const int64_t count = p->wo - x0 < PL_CHUNK ? p->wo - x0 : PL_CHUNK;
            row_taps(p, i, y, x0, count, K, ox, oy, wx, wy);
            for (int64_t ch = 0; ch < p->c; ch++) {
                const int64_t base = i * p->sn + ch * p->sc;
                const double f = p->fill[ch];
                void *out = p->dst + (((i * p->c + ch) * p->ho + y) * p->wo + x0) * p->itemsize;
                for (int64_t k = 0; k < count; k++) {
                    double v = 0.0;
                    for (int jy = 0; jy < K; jy++) {
                        double row = 0.0;
                        for (int jx = 0; jx < K; jx++) {
                            const int64_t o = oy[K * k + jy] + ox[K * k + jx];
                            row += wx[K * k + jx] * (o < 0 ? f : pl_load(p->src, base + o, dt));
                        }
                        v += wy[K * k + jy] * row;
                    }
                    pl_store(out, k, v, dt);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ bilinear */

/* Bilinear arithmetic, by dtype (the interleaved kernel's, so that both give the same
   values for the same matrices):
     W_INT     8-bit images: coordinates rounded to 1/2048 pixel, the four weights the
               floored products of the axis weights in 1/16384, the integer sum rounded
               half up (within one level of the float64 reference, exact for integer
               coordinates)
     W_FLOAT   16-bit integers and float32: three float lerps, fractions rounded once
               from the 32.32 fixed-point coordinates
     W_DOUBLE  the rest: float64 coordinates, the four products summed in double (a tap
               on the fill gives its weight to the fill's value)
   W_INT and W_FLOAT rows are planned (plan_t): fill spans written as such, the border
   path for pixels with a neighbour outside the image, and an interior without border
   logic; W_DOUBLE rows take the general taps for every pixel. */
enum { W_INT, W_FLOAT, W_DOUBLE };

/* One output row in fixed point: pixel x samples (gx0 + x ga, gy0 + x gd) / 2**32 (the
   interleaved kernel's integers), and the row splits into
     [0, t0) fill | [t0, j0) border path | [j0, j1) interior | [j1, t1) border path | [t1, wo) fill
   (fill spans for the constant border only). A row with a coordinate at 2**30 or beyond
   (or NaN) is `far`: every pixel takes the border path, in float64 coordinates. */
typedef struct {
    int far;
    int64_t gx0, gy0, ga, gd, t0, j0, j1, t1;
} plan_t;

/* the first x in [0, wo] with g0 + x s >= t (s > 0; wo if none): estimated, then exact */
PL_INLINE int64_t first_reaching(int64_t g0, int64_t s, int64_t t, int64_t wo) {
    const double e = ((double)t - (double)g0) / (double)s;
    int64_t x = !(e > 0.0) ? 0 : e >= (double)wo ? wo : (int64_t)e;
    while (x > 0 && g0 + (x - 1) * s >= t) x--;
    while (x < wo && g0 + x * s < t) x++;
    return x;
}

/* [*a, *b): the x in [0, wo) with lo <= g0 + x s < hi (an interval: g is linear in x) */
PL_INLINE void fixed_span(int64_t g0, int64_t s, int64_t lo, int64_t hi, int64_t wo, int64_t *a, int64_t *b) {
    if (s > 0) {
        *a = first_reaching(g0, s, lo, wo), *b = first_reaching(g0, s, hi, wo);
    } else if (s < 0) { /* decreasing: g < hi from a on, g < lo from b on */
        *a = first_reaching(-g0, -s, 1 - hi, wo), *b = first_reaching(-g0, -s, 1 - lo, wo);
    } else {
        *a = 0, *b = lo <= g0 && g0 < hi ? wo : 0;
    }
    if (*b < *a) *b = *a;
}

/* pixel index k as a fixed-point bound, less the rounding bias (k clamped to where no
   coordinate of a near row reaches: the same answers, no overflow) */
PL_INLINE int64_t bound(int64_t k, int64_t bias) {
    const int64_t lim = ((int64_t)1 << 30) + 2;
    k = k < -lim ? -lim : k > lim ? lim : k;
    return k * ((int64_t)1 << 32) - bias;
}

PL_INLINE int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }
PL_INLINE int64_t min3(int64_t a, int64_t b, int64_t c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

/* the plan of row y under matrix m; bias: added before the integer part is taken (2**20
   for uint8's 1/2048-pixel rounding, 0 for float lerps) */
PL_INLINE plan_t plan_row(const planes_t *p, const double *m, int64_t y, int64_t bias) {
    plan_t g = {0, 0, 0, 0, 0, 0, p->wo, p->wo, p->wo};
    const double x0 = m[1] * (double)y + m[2], y0 = m[4] * (double)y + m[5], wo = (double)p->wo, lim = 1073741824.0;
    g.far = !(fabs(x0) < lim && fabs(x0 + m[0] * wo) < lim && fabs(y0) < lim && fabs(y0 + m[3] * wo) < lim);
    if (g.far) return g;
    g.gx0 = fixed32(x0), g.gy0 = fixed32(y0), g.ga = fixed32(m[0]), g.gd = fixed32(m[3]);
    int64_t ax, bx, ay, by; /* the interior: top-left neighbour in [0, w - 2] x [0, h - 2] */
    fixed_span(g.gx0, g.ga, bound(0, bias), bound(p->w - 1, bias), p->wo, &ax, &bx);
    fixed_span(g.gy0, g.gd, bound(0, bias), bound(p->h - 1, bias), p->wo, &ay, &by);
    g.t0 = 0, g.t1 = p->wo;
    if (p->border == CONSTANT) { /* a neighbour inside: top-left in [-1, w - 1] x [-1, h - 1] */
        int64_t cx, dx, cy, dy;
        fixed_span(g.gx0, g.ga, bound(-1, bias), bound(p->w, bias), p->wo, &cx, &dx);
        fixed_span(g.gy0, g.gd, bound(-1, bias), bound(p->h, bias), p->wo, &cy, &dy);
        g.t0 = cx > cy ? cx : cy, g.t1 = dx < dy ? dx : dy;
        if (g.t1 <= g.t0) g.t0 = g.t1 = p->wo;
    }
    g.j0 = max3(ax, ay, g.t0), g.j1 = min3(bx, by, g.t1);
    if (g.j1 <= g.j0) g.j0 = g.j1 = g.t1;
    return g;
}

/* the taps of one border-path pixel: offsets of its four neighbours in the plane (0 for a
   neighbour on the fill: a pixel that is read, then not used), which of them are inside
   (in), and the weights (W_INT: qf the fill's, the weights of the neighbours on the fill)
   or the fractions (W_FLOAT) */
typedef struct {
    int64_t o[4];
    int32_t q[4], qf, in[4];
    float fx, fy;
} tap_t;

PL_INLINE void border_tap(const planes_t *p, const plan_t *g, const double *m, int64_t y, int64_t x, const int mode,
                          tap_t *t) {
    int64_t x0, y0;
    if (!g->far) {
        const int64_t gx = g->gx0 + x * g->ga, gy = g->gy0 + x * g->gd;
        if (mode == W_INT) {
            const int64_t qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
            const int32_t fx = (int32_t)(qx & 2047), fy = (int32_t)(qy & 2047);
            x0 = qx >> 11, y0 = qy >> 11;
            t->q[0] = ((2048 - fx) * (2048 - fy)) >> 8, t->q[1] = (fx * (2048 - fy)) >> 8;
            t->q[2] = ((2048 - fx) * fy) >> 8, t->q[3] = (fx * fy) >> 8;
        } else {
            x0 = gx >> 32, y0 = gy >> 32;
            t->fx = (float)(gx & 0xFFFFFFFF) * 2.3283064365386963e-10f;
            t->fy = (float)(gy & 0xFFFFFFFF) * 2.3283064365386963e-10f;
        }
    } else {
        double sx, sy;
        pl_coords(m, x, y, &sx, &sy);
        sx = reduce(sx, p->w, p->border), sy = reduce(sy, p->h, p->border);
        if (mode == W_INT) {
            const int64_t qx = ifloor(sx * 2048.0 + 0.5), qy = ifloor(sy * 2048.0 + 0.5);
            const int32_t fx = (int32_t)(qx & 2047), fy = (int32_t)(qy & 2047);
            x0 = qx >> 11, y0 = qy >> 11;
            t->q[0] = ((2048 - fx) * (2048 - fy)) >> 8, t->q[1] = (fx * (2048 - fy)) >> 8;
            t->q[2] = ((2048 - fx) * fy) >> 8, t->q[3] = (fx * fy) >> 8;
        } else {
            x0 = ifloor(sx), y0 = ifloor(sy);
            t->fx = (float)(sx - (double)x0), t->fy = (float)(sy - (double)y0);
        }
    }
    const int64_t xa = pl_map(x0, p->w, p->border), xb = pl_map(x0 + 1, p->w, p->border);
    const int64_t ya = pl_map(y0, p->h, p->border), yb = pl_map(y0 + 1, p->h, p->border);
    const int64_t xs[4] = {xa, xb, xa, xb}, ys[4] = {ya, ya, yb, yb};
    t->qf = 0;
    for (int j = 0; j < 4; j++) {
        t->in[j] = xs[j] != PL_OUT && ys[j] != PL_OUT;
        t->o[j] = t->in[j] ? ys[j] * p->sh + xs[j] * p->sw : 0;
        if (mode == W_INT && !t->in[j]) t->qf += t->q[j], t->q[j] = 0;
    }
}

/* the fill of one channel in the work type (the images' type holds it) */
PL_INLINE double fill_of(const planes_t *p, int64_t ch, const int dt) {
    const double f = p->fill[ch];
    switch (dt) {
    case PL_U8: return (double)pl_round(f, 0, 255);
    case PL_I8: return (double)pl_round(f, -128, 127);
    case PL_U16: return (double)pl_round(f, 0, 65535);
    case PL_I16: return (double)pl_round(f, -32768, 32767);
    default: return (double)(float)f;
    }
}

PL_INLINE void store_int(void *out, int64_t k, int32_t v, const int dt) {
    if (dt == PL_U8) ((uint8_t *)out)[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    else ((int8_t *)out)[k] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

PL_INLINE void store_float(void *out, int64_t k, float v, const int dt) {
    if (dt == PL_F32) ((float *)out)[k] = v;
    else pl_store(out, k, (double)v, dt);
}

PL_INLINE float lerp3(float v00, float v01, float v10, float v11, float fx, float fy) {
    const float tp = v00 + fx * (v01 - v00), bt = v10 + fx * (v11 - v10);
    return tp + fy * (bt - tp);
}

/* the output row's address for channel ch */
PL_INLINE uint8_t *out_row(const planes_t *p, int64_t i, int64_t ch, int64_t y, const int dt) {
    return p->dst + (((i * p->c + ch) * p->ho + y) * p->wo) * PL_ITEMSIZE[dt];
}

PL_INLINE const uint8_t *plane_of(const planes_t *p, int64_t i, int64_t ch, const int dt) {
    return p->src + (i * p->sn + ch * p->sc) * PL_ITEMSIZE[dt];
}

/* pixels [a, b) of row y of every channel: the fill */
PL_INLINE void fill_run(const planes_t *p, int64_t i, int64_t y, int64_t a, int64_t b, const int dt) {
    for (int64_t ch = 0; ch < p->c && a < b; ch++) {
        uint8_t *out = out_row(p, i, ch, y, dt);
        const double f = fill_of(p, ch, dt);
        if (PL_ITEMSIZE[dt] == 1) {
            memset(out + a, dt == PL_U8 ? (int)(uint8_t)f : (int)(uint8_t)(int8_t)f, (size_t)(b - a));
            continue;
        }
        for (int64_t k = a; k < b; k++) store_float(out, k, (float)f, dt);
    }
}

/* pixels [a, b) of row y of every channel by the border path, PL_CHUNK at a time */
PL_INLINE void border_run(const planes_t *p, const plan_t *g, int64_t i, int64_t y, int64_t a, int64_t b, const int dt,
                          const int mode) {
    tap_t taps[PL_CHUNK];
    const double *m = p->m + 9 * i;
    for (int64_t x0 = a; x0 < b; x0 += PL_CHUNK) {
        const int64_t count = b - x0 < PL_CHUNK ? b - x0 : PL_CHUNK;
        for (int64_t k = 0; k < count; k++) border_tap(p, g, m, y, x0 + k, mode, taps + k);
        for (int64_t ch = 0; ch < p->c; ch++) {
            const uint8_t *base = plane_of(p, i, ch, dt);
            uint8_t *out = out_row(p, i, ch, y, dt) + x0 * PL_ITEMSIZE[dt];
            const double f = fill_of(p, ch, dt);
            for (int64_t k = 0; k < count; k++) {
                const tap_t *t = taps + k;
                if (mode == W_INT) { /* the same integer sum as with the fill in the neighbours' place */
                    int32_t v = 8192 + t->qf * (int32_t)f;
                    for (int j = 0; j < 4; j++) v += t->q[j] * (int32_t)pl_load(base, t->o[j], dt);
                    store_int(out, k, v >> 14, dt); /* arithmetic shift: floor, so + 8192 rounds half up */
                } else {
                    float v[4];
                    for (int j = 0; j < 4; j++) {
                        const float e = (float)pl_load(base, t->o[j], dt);
                        v[j] = t->in[j] ? e : (float)f;
                    }
                    store_float(out, k, lerp3(v[0], v[1], v[2], v[3], t->fx, t->fy), dt);
                }
            }
        }
    }
}

/* The interior's taps of a chunk: the top-left neighbour's offset (o32: the AVX2 path's) and the
   weights (wt: w00 | w01 << 16, wb: w10 | w11 << 16) or fractions (wx, wy) */
typedef struct {
    int32_t o32[PL_CHUNK + 8], wt[PL_CHUNK + 8], wb[PL_CHUNK + 8];
    float wx[PL_CHUNK + 8], wy[PL_CHUNK + 8];
    int64_t o64[PL_CHUNK];
} inner_t;

PL_INLINE void inner_taps(const planes_t *p, int64_t gx, int64_t gy, int64_t ga, int64_t gd, int64_t count,
                          const int mode, inner_t *s) {
    for (int64_t k = 0; k < count; k++, gx += ga, gy += gd) {
        if (mode == W_INT) {
            const int64_t qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
            const int32_t fx = (int32_t)(qx & 2047), fy = (int32_t)(qy & 2047);
            s->o64[k] = (qy >> 11) * p->sh + (qx >> 11) * p->sw;
            s->wt[k] = (int32_t)((uint32_t)(((2048 - fx) * (2048 - fy)) >> 8) | ((uint32_t)((fx * (2048 - fy)) >> 8) << 16));
            s->wb[k] = (int32_t)((uint32_t)(((2048 - fx) * fy) >> 8) | ((uint32_t)((fx * fy) >> 8) << 16));
        } else {
            s->o64[k] = (gy >> 32) * p->sh + (gx >> 32) * p->sw;
            s->wx[k] = (float)(gx & 0xFFFFFFFF) * 2.3283064365386963e-10f;
            s->wy[k] = (float)(gy & 0xFFFFFFFF) * 2.3283064365386963e-10f;
        }
    }
}

/* one channel's interior pixels from the taps */
PL_INLINE void inner_values(const planes_t *p, const inner_t *s, const uint8_t *base, int64_t count, const int dt,
                            const int mode, uint8_t *out) {
    const int64_t sw = p->sw, sh = p->sh;
    for (int64_t k = 0; k < count; k++) {
        const int64_t o = s->o64[k];
        if (mode == W_INT) {
            const int32_t wt = s->wt[k], wb = s->wb[k];
            const int32_t v = (wt & 0xFFFF) * (int32_t)pl_load(base, o, dt) +
                              (int32_t)((uint32_t)wt >> 16) * (int32_t)pl_load(base, o + sw, dt) +
                              (wb & 0xFFFF) * (int32_t)pl_load(base, o + sh, dt) +
                              (int32_t)((uint32_t)wb >> 16) * (int32_t)pl_load(base, o + sh + sw, dt) + 8192;
            store_int(out, k, v >> 14, dt);
        } else {
            const float v00 = (float)pl_load(base, o, dt), v01 = (float)pl_load(base, o + sw, dt);
            const float v10 = (float)pl_load(base, o + sh, dt), v11 = (float)pl_load(base, o + sh + sw, dt);
            store_float(out, k, lerp3(v00, v01, v10, v11, s->wx[k], s->wy[k]), dt);
        }
    }
}

/* whether the interior takes the AVX2 passes: uint8, uint16 or float32 planes with unit
   column stride, offsets within 31 bits and sizes under 2**19 */
PL_INLINE int simd_interior(const planes_t *p, const int dt) {
#if defined(PL_AVX2_PATH)
    const int64_t lim = (int64_t)1 << 19;
    return PL_HAS_AVX2 > 0 && (dt == PL_U8 || dt == PL_U16 || dt == PL_F32) && p->sw == 1 && p->sh >= 0 &&
           p->w < lim && p->h < lim && (p->h - 1) * p->sh + p->w + 8 < ((int64_t)1 << 31);
#else
    (void)p, (void)dt;
    return 0;
#endif
}

/* the AVX2 interior of one channel */
PL_INLINE void inner_simd(const planes_t *p, const inner_t *s, int64_t i, int64_t ch, int64_t count, const int dt,
                          uint8_t *out) {
#if defined(PL_AVX2_PATH)
    const uint8_t *base = plane_of(p, i, ch, dt);
    if (dt == PL_U16) pl_interior_u16_avx2((const uint16_t *)base, p->sh, s->o32, s->wx, s->wy, count, (uint16_t *)out);
    else pl_interior_f32_avx2((const float *)base, p->sh, s->o32, s->wx, s->wy, count, (float *)out);
#else
    (void)p, (void)s, (void)i, (void)ch, (void)count, (void)dt, (void)out;
#endif
}

/* the AVX2 interior of uint8 planes, up to PL_GROUP channels at a time */
#define PL_GROUP 4
PL_INLINE void inner_u8_groups(const planes_t *p, int64_t i, int64_t y, int64_t x0, int64_t count, int64_t gx, int64_t gy,
                               int64_t ga, int64_t gd) {
#if defined(PL_AVX2_PATH)
    const uint8_t *planes[PL_GROUP];
    uint8_t *outs[PL_GROUP];
    for (int64_t c0 = 0; c0 < p->c; c0 += PL_GROUP) {
        const int64_t np = p->c - c0 < PL_GROUP ? p->c - c0 : PL_GROUP;
        for (int64_t g = 0; g < np; g++)
            planes[g] = plane_of(p, i, c0 + g, PL_U8), outs[g] = out_row(p, i, c0 + g, y, PL_U8) + x0;
        pl_run_u8_avx2(gx, gy, ga, gd, count, p->sh, (p->h - 1) * p->sh + p->w, planes, np, outs);
    }
#else
    (void)p, (void)i, (void)y, (void)x0, (void)count, (void)gx, (void)gy, (void)ga, (void)gd;
#endif
}

/* pixels [a, b) of row y (inside the interior) of every channel, PL_CHUNK at a time: the
   taps once, then each channel */
PL_INLINE void inner_run(const planes_t *p, const plan_t *g, int64_t i, int64_t y, int64_t a, int64_t b, const int dt,
                         const int mode, inner_t *s) {
    const int simd = simd_interior(p, dt);
    for (int64_t x0 = a; x0 < b; x0 += PL_CHUNK) {
        const int64_t count = b - x0 < PL_CHUNK ? b - x0 : PL_CHUNK;
        const int64_t gx = g->gx0 + x0 * g->ga, gy = g->gy0 + x0 * g->gd;
        if (simd) {
#if defined(PL_AVX2_PATH)
            if (mode == W_INT) { /* the planes in groups, each block's taps computed once for the group */
                inner_u8_groups(p, i, y, x0, count, gx, gy, g->ga, g->gd);
                continue;
            }
            pl_taps_float_avx2(gx, gy, g->ga, g->gd, count, p->sh, s->o32, s->wx, s->wy);
#endif
        } else {
            inner_taps(p, gx, gy, g->ga, g->gd, count, mode, s);
        }
        for (int64_t ch = 0; ch < p->c; ch++) {
            uint8_t *out = out_row(p, i, ch, y, dt) + x0 * PL_ITEMSIZE[dt];
            if (simd) inner_simd(p, s, i, ch, count, dt, out);
            else inner_values(p, s, plane_of(p, i, ch, dt), count, dt, mode, out);
        }
    }
}

/* rows [t0, t1) of the n * ho output rows, W_INT or W_FLOAT */
PL_INLINE void rows_planned(const planes_t *p, int64_t t0, int64_t t1, const int dt, const int mode) {
    inner_t s;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / p->ho, y = t - i * p->ho;
        const plan_t g = plan_row(p, p->m + 9 * i, y, mode == W_INT ? (1 << 20) : 0);
        if (g.far) {
            border_run(p, &g, i, y, 0, p->wo, dt, mode);
            continue;
        }
        fill_run(p, i, y, 0, g.t0, dt);
        fill_run(p, i, y, g.t1, p->wo, dt);
        border_run(p, &g, i, y, g.t0, g.j0, dt, mode);
        border_run(p, &g, i, y, g.j1, g.t1, dt, mode);
        inner_run(p, &g, i, y, g.j0, g.j1, dt, mode, &s);
    }
}

/* W_DOUBLE: the taps of one pixel at (sx, sy), mapped by the border rule; a tap on the
   fill gets offset 0 and weight 0, its weight going to the fill's (wd[4]) */
PL_INLINE void general_taps(const planes_t *p, double sx, double sy, int64_t *o, double *wd) {
    sx = reduce(sx, p->w, p->border), sy = reduce(sy, p->h, p->border);
    const int64_t ix = ifloor(sx), iy = ifloor(sy);
    const double fx = sx - (double)ix, fy = sy - (double)iy;
    double t[4] = {(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy};
    const int64_t xa = pl_map(ix, p->w, p->border), xb = pl_map(ix + 1, p->w, p->border);
    const int64_t ya = pl_map(iy, p->h, p->border), yb = pl_map(iy + 1, p->h, p->border);
    const int64_t xs[4] = {xa, xb, xa, xb}, ys[4] = {ya, ya, yb, yb};
    double tf = 0.0;
    for (int j = 0; j < 4; j++) {
        const int inside = xs[j] >= 0 && ys[j] >= 0;
        o[j] = inside ? ys[j] * p->sh + xs[j] * p->sw : 0;
        if (!inside) tf += t[j], t[j] = 0.0;
        wd[j] = t[j];
    }
    wd[4] = tf;
}

PL_INLINE void rows_bilinear_double(const planes_t *p, int64_t t0, int64_t t1, const int dt) {
    int64_t off[PL_CHUNK * 5];
    double wd[PL_CHUNK * 5];
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / p->ho, y = t - i * p->ho;
        const double *m = p->m + 9 * i;
        for (int64_t x0 = 0; x0 < p->wo; x0 += PL_CHUNK) {
            const int64_t count = p->wo - x0 < PL_CHUNK ? p->wo - x0 : PL_CHUNK;
            for (int64_t k = 0; k < count; k++) {
                double sx, sy;
                pl_coords(m, x0 + k, y, &sx, &sy);
                general_taps(p, sx, sy, off + 5 * k, wd + 5 * k);
            }
            for (int64_t ch = 0; ch < p->c; ch++) {
                const uint8_t *base = plane_of(p, i, ch, dt);
                uint8_t *out = out_row(p, i, ch, y, dt) + x0 * PL_ITEMSIZE[dt];
                const double f = p->fill[ch];
                for (int64_t k = 0; k < count; k++) {
                    const int64_t *o = off + 5 * k;
                    const double *q = wd + 5 * k;
                    double v = q[4] * f;
                    for (int j = 0; j < 4; j++) v += q[j] * pl_load(base, o[j], dt);
                    pl_store(out, k, v, dt);
                }
            }
        }
    }
}
/* nearest: the element at the tap, copied as bytes (any dtype of `size` bytes) */
PL_INLINE void rows_nearest(const planes_t *p, int64_t t0, int64_t t1, const int64_t size) {
    int64_t ox[PL_CHUNK], oy[PL_CHUNK];
    double wx[PL_CHUNK], wy[PL_CHUNK];
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / p->ho, y = t - i * p->ho;
        for (int64_t x0 = 0; x0 < p->wo; x0 += PL_CHUNK) {
            const int64_t count = p->wo - x0 < PL_CHUNK ? p->wo - x0 : PL_CHUNK;
            row_taps(p, i, y, x0, count, 1, ox, oy, wx, wy);
            for (int64_t ch = 0; ch < p->c; ch++) {
                const uint8_t *base = p->src + (i * p->sn + ch * p->sc) * size, *f = p->fillraw + ch * size;
                uint8_t *out = p->dst + (((i * p->c + ch) * p->ho + y) * p->wo + x0) * size;
                for (int64_t k = 0; k < count; k++) {
                    const int64_t o = oy[k] + ox[k];
                    memcpy(out + k * size, o < 0 ? f : base + o * size, size);
                }
            }
        }
    }
}

#define PL_FOR_DTYPES(CALL)                                                                                            \
    switch (p->dtype) {                                                                                                \
    case PL_U8: CALL(PL_U8); break;                                                                                    \
    case PL_U16: CALL(PL_U16); break;                                                                                  \
    case PL_F32: CALL(PL_F32); break;                                                                                  \
    case PL_F64: CALL(PL_F64); break;                                                                                  \
    case PL_I8: CALL(PL_I8); break;                                                                                    \
    case PL_I16: CALL(PL_I16); break;                                                                                  \
    case PL_I32: CALL(PL_I32); break;                                                                                  \
    default: CALL(PL_I64);                                                                                             \
    }

static void warp_rows(const void *v, int64_t t0, int64_t t1) {
    const planes_t *p = (const planes_t *)v;
    if (p->interp == NEAREST) {
        switch (p->itemsize) {
        case 1: rows_nearest(p, t0, t1, 1); break;
        case 2: rows_nearest(p, t0, t1, 2); break;
        case 4: rows_nearest(p, t0, t1, 4); break;
        case 8: rows_nearest(p, t0, t1, 8); break;
        default: rows_nearest(p, t0, t1, p->itemsize);
        }
        return;
    }
    if (p->interp == BILINEAR) {
        switch (p->dtype) {
        case PL_U8: rows_planned(p, t0, t1, PL_U8, W_INT); break;
        case PL_I8: rows_planned(p, t0, t1, PL_I8, W_INT); break;
        case PL_U16: rows_planned(p, t0, t1, PL_U16, W_FLOAT); break;
        case PL_I16: rows_planned(p, t0, t1, PL_I16, W_FLOAT); break;
        case PL_F32: rows_planned(p, t0, t1, PL_F32, W_FLOAT); break;
        case PL_F64: rows_bilinear_double(p, t0, t1, PL_F64); break;
        case PL_I32: rows_bilinear_double(p, t0, t1, PL_I32); break;
        default: rows_bilinear_double(p, t0, t1, PL_I64);
        }
        return;
    }
#define BICUBIC(dt) rows_interp(p, t0, t1, dt, 4)
    PL_FOR_DTYPES(BICUBIC)
#undef BICUBIC
}

/* Fill dst (n, c, ho, wo) from src (n, c, h, w) read through its element strides
   (`readable` elements from src on may be read: the end of its buffer).
   dtype: a PL_ code (interpolation), or any code when interp is nearest, which copies
   elements of `itemsize` bytes (fillraw: the c fill values as such elements).
   Returns 0, or -1 for bad arguments. */
AA_EXPORT int aa_warp_planes(const void *src, int64_t readable, const int64_t *strides, void *dst, const double *dst_to_src, const double *fill,
                   const void *fillraw, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo,
                   int64_t itemsize, int dtype, int interp, int border, double cubic_a, int threads) {
    if (n < 0 || c < 1 || h < 1 || w < 1 || ho < 0 || wo < 0 || interp < NEAREST || interp > BICUBIC ||
        border < CONSTANT || border > WRAP || itemsize < 1)
        return -1;
    if (interp != NEAREST && (dtype < PL_U8 || dtype > PL_I64 || PL_ITEMSIZE[dtype] != itemsize)) return -1;
    pl_cpu_detect();
    planes_t p = {(const uint8_t *)src, strides[0], strides[1], strides[2], strides[3], (uint8_t *)dst, dst_to_src,
                  fill, (const uint8_t *)fillraw, n, c, h, w, ho, wo, itemsize, dtype, interp, border, cubic_a, readable};
    const int64_t rows = n * ho, work = rows * wo * c;
    const int64_t most = work / 32768 + 1; /* small calls stay on few threads */
    threads = (int)(threads < most ? threads : most);
    const int64_t step = rows / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(warp_rows, &p, rows, threads, step < 1 ? 1 : step);
    return 0;
}
