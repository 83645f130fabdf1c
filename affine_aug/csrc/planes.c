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

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PL_AVX2 1
static int PL_HAS_AVX2 = -1;

/* Eight interior pixels of a uint8 plane with unit column stride: the same integers as the
   scalar loop (fill weight 0). Reads 4 bytes at each top-left and bottom-left tap (the
   caller checks that 2 bytes past the plane's last pixel are readable). */
__attribute__((target("avx2"))) static void u8_block8(const uint8_t *base, int64_t sh, const int32_t *o,
                                                      const int32_t *wt, const int32_t *wb, uint8_t *out) {
    const __m256i idx = _mm256_loadu_si256((const __m256i *)o);
    const __m256i spread = _mm256_setr_epi8(0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1,
                                            0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1);
    __m256i top = _mm256_i32gather_epi32((const int *)base, idx, 1);
    __m256i bot = _mm256_i32gather_epi32((const int *)(base + sh), idx, 1);
    top = _mm256_shuffle_epi8(top, spread), bot = _mm256_shuffle_epi8(bot, spread);
    __m256i v = _mm256_add_epi32(_mm256_madd_epi16(top, _mm256_loadu_si256((const __m256i *)wt)),
                                 _mm256_madd_epi16(bot, _mm256_loadu_si256((const __m256i *)wb)));
    v = _mm256_srai_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(8192)), 14);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)out, _mm_packus_epi16(p16, p16));
}
#endif

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

/* Bilinear, in the weight type of the dtype: 8-bit images in fixed point (coordinates
   rounded to 1/2048 pixel, the four weights the floored products of the axis weights in
   1/16384, the integer sum rounded half up: within one level of the float64 reference,
   exact for integer coordinates), 16-bit integers and float32 in float, the rest in
   double. Each output pixel's four taps become (offset, weight) pairs; a tap on the fill
   gets offset 0 and weight 0 and its weight goes to the fill's, so one sum serves every
   border: v = w00 v00 + w01 v01 + w10 v10 + w11 v11 + wf fill. */
enum { W_INT, W_FLOAT, W_DOUBLE };

/* the general taps of one pixel at (sx, sy): mapped indices, fill weight apart */
PL_INLINE void general_taps(const planes_t *p, double sx, double sy, const int mode, int64_t *o, int32_t *wi, float *wf,
                            double *wd) {
    sx = reduce(sx, p->w, p->border), sy = reduce(sy, p->h, p->border);
    int64_t ix, iy;
    double t[4];
    int32_t q[4];
    if (mode == W_INT) {
        const int64_t gx = ifloor(sx * 2048.0 + 0.5), gy = ifloor(sy * 2048.0 + 0.5);
        const int32_t fx = (int32_t)(gx & 2047), fy = (int32_t)(gy & 2047);
        ix = gx >> 11, iy = gy >> 11;
        q[0] = ((2048 - fx) * (2048 - fy)) >> 8, q[1] = (fx * (2048 - fy)) >> 8;
        q[2] = ((2048 - fx) * fy) >> 8, q[3] = (fx * fy) >> 8;
    } else {
        ix = ifloor(sx), iy = ifloor(sy);
        const double fx = sx - (double)ix, fy = sy - (double)iy;
        t[0] = (1.0 - fx) * (1.0 - fy), t[1] = fx * (1.0 - fy), t[2] = (1.0 - fx) * fy, t[3] = fx * fy;
    }
    const int64_t xa = pl_map(ix, p->w, p->border), xb = pl_map(ix + 1, p->w, p->border);
    const int64_t ya = pl_map(iy, p->h, p->border), yb = pl_map(iy + 1, p->h, p->border);
    const int64_t xs[4] = {xa, xb, xa, xb}, ys[4] = {ya, ya, yb, yb};
    int32_t qf = 0;
    double tf = 0.0;
    for (int j = 0; j < 4; j++) {
        const int inside = xs[j] >= 0 && ys[j] >= 0;
        o[j] = inside ? ys[j] * p->sh + xs[j] * p->sw : 0;
        if (mode == W_INT) {
            if (!inside) qf += q[j], q[j] = 0;
            wi[j] = q[j];
        } else {
            if (!inside) tf += t[j], t[j] = 0.0;
            if (mode == W_FLOAT) wf[j] = (float)t[j];
            else wd[j] = t[j];
        }
    }
    if (mode == W_INT) wi[4] = qf;
    else if (mode == W_FLOAT) wf[4] = (float)tf;
    else wd[4] = tf;
}

/* Taps of output pixels [x0, x0 + count) of row y of image i. Unless a coordinate of the
   chunk lies beyond 2**30 (or the weights are double), coordinates step in 32.32 fixed
   point (drift under 2**-32 pixel per step) and the pixels whose four taps lie inside
   the image take them directly; the others (and every pixel of a far or double chunk)
   map their indices by the border rule. */
PL_INLINE void bilinear_taps(const planes_t *p, int64_t i, int64_t y, int64_t x0, int64_t count, const int mode,
                             int64_t *off, int32_t *wi, float *wf, double *wd, uint8_t *inner) {
    const double *m = p->m + 9 * i;
    if (mode == W_INT) memset(inner, 0, count);
    double ax, ay;
    pl_coords(m, x0, y, &ax, &ay);
    const double ex = ax + m[0] * (double)count, ey = ay + m[3] * (double)count;
    const int fixed = mode != W_DOUBLE && fabs(ax) < 1073741824.0 && fabs(ex) < 1073741824.0 &&
                      fabs(ay) < 1073741824.0 && fabs(ey) < 1073741824.0; /* NaN fails */
    if (!fixed) {
        for (int64_t k = 0; k < count; k++) {
            double sx, sy;
            pl_coords(m, x0 + k, y, &sx, &sy);
            general_taps(p, sx, sy, mode, off + 5 * k, wi + 5 * k, wf + 5 * k, wd + 5 * k);
        }
        return;
    }
    const double one = 4294967296.0;
    int64_t gx = ifloor(ax * one + 0.5), gy = ifloor(ay * one + 0.5);
    const int64_t ga = ifloor(m[0] * one + 0.5), gd = ifloor(m[3] * one + 0.5);
    const uint64_t wl = (uint64_t)(p->w - 1), hl = (uint64_t)(p->h - 1);
    for (int64_t k = 0; k < count; k++, gx += ga, gy += gd) {
        int64_t ix, iy;
        int32_t qx = 0, qy = 0;
        if (mode == W_INT) { /* 1/2048 pixel, rounded */
            const int64_t rx = (gx + ((int64_t)1 << 20)) >> 21, ry = (gy + ((int64_t)1 << 20)) >> 21;
            ix = rx >> 11, iy = ry >> 11, qx = (int32_t)(rx & 2047), qy = (int32_t)(ry & 2047);
        } else {
            ix = gx >> 32, iy = gy >> 32;
        }
        int64_t *o = off + 5 * k;
        if ((uint64_t)ix < wl && (uint64_t)iy < hl) {
            o[0] = iy * p->sh + ix * p->sw, o[1] = o[0] + p->sw, o[2] = o[0] + p->sh, o[3] = o[2] + p->sw;
            if (mode == W_INT) {
                int32_t *q = wi + 5 * k;
                q[0] = ((2048 - qx) * (2048 - qy)) >> 8, q[1] = (qx * (2048 - qy)) >> 8;
                q[2] = ((2048 - qx) * qy) >> 8, q[3] = (qx * qy) >> 8, q[4] = 0;
                inner[k] = 1;
            } else {
                const float fx = (float)(gx & 0xFFFFFFFF) * 2.3283064365386963e-10f;
                const float fy = (float)(gy & 0xFFFFFFFF) * 2.3283064365386963e-10f;
                float *q = wf + 5 * k;
                q[0] = (1.0f - fx) * (1.0f - fy), q[1] = fx * (1.0f - fy), q[2] = (1.0f - fx) * fy, q[3] = fx * fy;
                q[4] = 0.0f;
            }
            continue;
        }
        general_taps(p, (double)gx / one, (double)gy / one, mode, o, wi + 5 * k, wf + 5 * k, wd + 5 * k);
    }
}

PL_INLINE void rows_bilinear(const planes_t *p, int64_t t0, int64_t t1, const int dt, const int mode) {
    int64_t off[PL_CHUNK * 5];
    int32_t wi[PL_CHUNK * 5];
    float wf[PL_CHUNK * 5];
    double wd[PL_CHUNK * 5];
    uint8_t inner[PL_CHUNK];
    int32_t o32[PL_CHUNK], wtop[PL_CHUNK], wbot[PL_CHUNK]; /* the SIMD blocks' taps, as it loads them */
    int simd = 0;
#if defined(PL_AVX2)
    /* uint8, unit column stride, offsets within 32 bits */
    simd = dt == PL_U8 && PL_HAS_AVX2 > 0 && p->sw == 1 && (p->h - 1) * p->sh + p->w < ((int64_t)1 << 31);
#endif
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / p->ho, y = t - i * p->ho;
        for (int64_t x0 = 0; x0 < p->wo; x0 += PL_CHUNK) {
            const int64_t count = p->wo - x0 < PL_CHUNK ? p->wo - x0 : PL_CHUNK;
            bilinear_taps(p, i, y, x0, count, mode, off, wi, wf, wd, inner);
            if (simd)
                for (int64_t k = 0; k < count; k++) {
                    const int32_t *q = wi + 5 * k;
                    o32[k] = (int32_t)off[5 * k];
                    wtop[k] = (int32_t)((uint32_t)q[0] | ((uint32_t)q[1] << 16));
                    wbot[k] = (int32_t)((uint32_t)q[2] | ((uint32_t)q[3] << 16));
                }
            for (int64_t ch = 0; ch < p->c; ch++) {
                const int64_t isz = PL_ITEMSIZE[dt];
                const uint8_t *base = p->src + (i * p->sn + ch * p->sc) * isz;
                void *out = p->dst + (((i * p->c + ch) * p->ho + y) * p->wo + x0) * isz;
                const double f = p->fill[ch];
                if (mode == W_INT) {
                    const int32_t fi = (int32_t)f;
                    /* SIMD blocks only where 2 bytes past the plane's last pixel may be read */
                    const int fast = simd && i * p->sn + ch * p->sc + (p->h - 1) * p->sh + p->w + 1 < p->readable;
                    for (int64_t k = 0; k < count; k++) {
#if defined(PL_AVX2)
                        if (fast && !(k & 7) && k + 8 <= count) {
                            uint64_t all;
                            memcpy(&all, inner + k, 8);
                            if (all == 0x0101010101010101ull) {
                                u8_block8(base, p->sh, o32 + k, wtop + k, wbot + k, (uint8_t *)out + k);
                                k += 7;
                                continue;
                            }
                        }
#endif
                        const int64_t *o = off + 5 * k;
                        const int32_t *q = wi + 5 * k;
                        int32_t v = q[4] * fi + 8192;
                        for (int j = 0; j < 4; j++) v += q[j] * (int32_t)pl_load(base, o[j], dt);
                        v >>= 14; /* arithmetic: floor, so + 8192 rounds half up */
                        if (dt == PL_U8) ((uint8_t *)out)[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                        else ((int8_t *)out)[k] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
                    }
                } else if (mode == W_FLOAT) {
                    const float ff = (float)f;
                    for (int64_t k = 0; k < count; k++) {
                        const int64_t *o = off + 5 * k;
                        const float *q = wf + 5 * k;
                        float v = q[4] * ff;
                        for (int j = 0; j < 4; j++) v += q[j] * (float)pl_load(base, o[j], dt);
                        if (dt == PL_F32) ((float *)out)[k] = v;
                        else pl_store(out, k, (double)v, dt);
                    }
                } else {
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
        case PL_U8: rows_bilinear(p, t0, t1, PL_U8, W_INT); break;
        case PL_I8: rows_bilinear(p, t0, t1, PL_I8, W_INT); break;
        case PL_U16: rows_bilinear(p, t0, t1, PL_U16, W_FLOAT); break;
        case PL_I16: rows_bilinear(p, t0, t1, PL_I16, W_FLOAT); break;
        case PL_F32: rows_bilinear(p, t0, t1, PL_F32, W_FLOAT); break;
        case PL_F64: rows_bilinear(p, t0, t1, PL_F64, W_DOUBLE); break;
        case PL_I32: rows_bilinear(p, t0, t1, PL_I32, W_DOUBLE); break;
        default: rows_bilinear(p, t0, t1, PL_I64, W_DOUBLE);
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
#if defined(PL_AVX2)
    if (PL_HAS_AVX2 < 0) PL_HAS_AVX2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    planes_t p = {(const uint8_t *)src, strides[0], strides[1], strides[2], strides[3], (uint8_t *)dst, dst_to_src,
                  fill, (const uint8_t *)fillraw, n, c, h, w, ho, wo, itemsize, dtype, interp, border, cubic_a, readable};
    const int64_t rows = n * ho, work = rows * wo * c;
    const int64_t most = work / 32768 + 1; /* small calls stay on few threads */
    threads = (int)(threads < most ? threads : most);
    const int64_t step = rows / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(warp_rows, &p, rows, threads, step < 1 ? 1 : step);
    return 0;
}
