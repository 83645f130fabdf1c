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
} planes_t;

/* ------------------------------------------------------------------ threads */

typedef struct {
    void (*fn)(const void *, int64_t, int64_t);
    const void *arg;
    int64_t total, step, next; /* next: the first item not yet taken (atomic) */
} pl_work_t;

static void *pl_run(void *v) {
    pl_work_t *wk = (pl_work_t *)v;
    for (;;) {
        const int64_t t0 = __atomic_fetch_add(&wk->next, wk->step, __ATOMIC_RELAXED);
        if (t0 >= wk->total) return NULL;
        wk->fn(wk->arg, t0, t0 + wk->step < wk->total ? t0 + wk->step : wk->total);
    }
}

void pl_parallel(void (*fn)(const void *, int64_t, int64_t), const void *arg, int64_t total, int threads, int64_t step) {
    if (threads > total) threads = (int)total;
    if (threads > 256) threads = 256;
    if (threads <= 1) {
        if (total > 0) fn(arg, 0, total);
        return;
    }
    pl_work_t wk = {fn, arg, total, step < 1 ? 1 : step, 0};
    pthread_t ids[256];
    int started[256];
    for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, pl_run, &wk) == 0;
    pl_run(&wk);
    for (int k = 1; k < threads; k++)
        if (started[k]) pthread_join(ids[k], NULL);
}

/* ------------------------------------------------------------------ rows */

/* Taps of output pixels [x0, x0 + count) of row y of image i: per pixel K element
   offsets into the source plane per axis (PL_OUT where the tap is fill) and K weights */
PL_INLINE void row_taps(const planes_t *p, int64_t i, int64_t y, int64_t x0, int64_t count, const int K, int64_t *ox,
                        int64_t *oy, double *wx, double *wy) {
    const double *m = p->m + 9 * i;
    const int interp = K == 1 ? PL_NEAREST : K == 2 ? PL_BILINEAR : PL_BICUBIC;
    for (int64_t k = 0; k < count; k++) {
        double sx, sy;
        pl_coords(m, x0 + k, y, &sx, &sy);
        int64_t ix[4], iy[4];
        pl_axis(pl_reduce(sx, p->w, p->border), p->w, p->border, interp, p->a, ix, wx + K * k, NULL);
        pl_axis(pl_reduce(sy, p->h, p->border), p->h, p->border, interp, p->a, iy, wy + K * k, NULL);
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
    if (p->interp == PL_NEAREST) {
        switch (p->itemsize) {
        case 1: rows_nearest(p, t0, t1, 1); break;
        case 2: rows_nearest(p, t0, t1, 2); break;
        case 4: rows_nearest(p, t0, t1, 4); break;
        case 8: rows_nearest(p, t0, t1, 8); break;
        default: rows_nearest(p, t0, t1, p->itemsize);
        }
        return;
    }
#define BILINEAR(dt) rows_interp(p, t0, t1, dt, 2)
#define BICUBIC(dt) rows_interp(p, t0, t1, dt, 4)
    if (p->interp == PL_BILINEAR) PL_FOR_DTYPES(BILINEAR) else PL_FOR_DTYPES(BICUBIC)
#undef BILINEAR
#undef BICUBIC
}

/* Fill dst (n, c, ho, wo) from src (n, c, h, w) read through its element strides.
   dtype: a PL_ code (interpolation), or any code when interp is nearest, which copies
   elements of `itemsize` bytes (fillraw: the c fill values as such elements).
   Returns 0, or -1 for bad arguments. */
int aa_warp_planes(const void *src, const int64_t *strides, void *dst, const double *dst_to_src, const double *fill,
                   const void *fillraw, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo,
                   int64_t itemsize, int dtype, int interp, int border, double cubic_a, int threads) {
    if (n < 0 || c < 1 || h < 1 || w < 1 || ho < 0 || wo < 0 || interp < PL_NEAREST || interp > PL_BICUBIC ||
        border < PL_CONSTANT || border > PL_WRAP || itemsize < 1)
        return -1;
    if (interp != PL_NEAREST && (dtype < PL_U8 || dtype > PL_I64 || PL_ITEMSIZE[dtype] != itemsize)) return -1;
    planes_t p = {(const uint8_t *)src, strides[0], strides[1], strides[2], strides[3], (uint8_t *)dst, dst_to_src,
                  fill, (const uint8_t *)fillraw, n, c, h, w, ho, wo, itemsize, dtype, interp, border, cubic_a};
    const int64_t rows = n * ho, work = rows * wo * c;
    const int64_t most = work / 32768 + 1; /* small calls stay on few threads */
    threads = (int)(threads < most ? threads : most);
    const int64_t step = rows / (16 * (int64_t)(threads > 0 ? threads : 1));
    pl_parallel(warp_rows, &p, rows, threads, step < 1 ? 1 : step);
    return 0;
}
