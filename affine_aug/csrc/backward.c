/* Transposes of the planar warp and of the Gaussian prefilter, for autograd.

   Gradient with respect to the images: the transpose of the sampling. Each output value
   y = sum_j wy[j] sum_i wx[i] v[j][i] adds g wy[j] wx[i] to the pixel its tap names (the
   pixel the border maps it to); taps on the constant border's fill add nothing. Work is
   handed out by whole gradient planes (an image, or one channel of it, is computed by one
   thread): no two threads ever write the same element.

   Gradient with respect to the matrices (dst -> src): through the sampling coordinates,
   dy/dsx = sum_j wy[j] sum_i wx'[i] v[j][i] (fill included: moving the coordinate changes
   how much fill is blended in), and sx = m00 x + m01 y + m02 (sy likewise); summed per
   plane into (n, c, 6) partial sums, which the caller adds over channels. Nearest has no
   gradient with respect to the matrices (piecewise constant). Float32 and float64. */

#include "planes.h"

typedef struct {
    const uint8_t *gy;  /* (n, c, ho, wo) contiguous, of dtype */
    const uint8_t *src; /* the forward's images, element strides sn, sc, sh, sw (for gm) */
    int64_t sn, sc, sh, sw;
    uint8_t *gx;    /* (n, c, h, w) contiguous, or NULL */
    double *gm;     /* (n, c, 6), or NULL */
    const double *m, *fill;
    int64_t n, c, h, w, ho, wo, per; /* per: channels per work item (c, or 1) */
    int dtype, interp, border;
    double a;
} back_t;

PL_INLINE void back_item(const back_t *p, int64_t i, int64_t c0, int64_t c1, const int dt, const int K) {
    int64_t ix[PL_CHUNK * 4], iy[PL_CHUNK * 4];
    double wx[PL_CHUNK * 4], wy[PL_CHUNK * 4], dwx[PL_CHUNK * 4], dwy[PL_CHUNK * 4];
    const double *m = p->m + 9 * i;
    const int interp = K == 1 ? NEAREST : K == 2 ? BILINEAR : BICUBIC;
    const int64_t plane = p->h * p->w, isz = PL_ITEMSIZE[dt];
    if (p->gx) memset(p->gx + (i * p->c + c0) * plane * isz, 0, (c1 - c0) * plane * isz);
    double acc[6 * 64];
    for (int64_t cb = c0; cb < c1; cb += 64) { /* channel blocks: the accumulators live on the stack */
        const int64_t ce = c1 - cb < 64 ? c1 : cb + 64;
        for (int64_t e = 0; e < 6 * (ce - cb); e++) acc[e] = 0.0;
        for (int64_t y = 0; y < p->ho; y++) {
            for (int64_t x0 = 0; x0 < p->wo; x0 += PL_CHUNK) {
                const int64_t count = p->wo - x0 < PL_CHUNK ? p->wo - x0 : PL_CHUNK;
                for (int64_t k = 0; k < count; k++) {
                    double sx, sy;
                    pl_coords(m, x0 + k, y, &sx, &sy);
                    pl_axis(reduce(sx, p->w, p->border), p->w, p->border, interp, p->a, ix + K * k, wx + K * k, dwx + K * k);
                    pl_axis(reduce(sy, p->h, p->border), p->h, p->border, interp, p->a, iy + K * k, wy + K * k, dwy + K * k);
                }
                for (int64_t ch = cb; ch < ce; ch++) {
                    const uint8_t *g = p->gy + (((i * p->c + ch) * p->ho + y) * p->wo + x0) * isz;
                    if (p->gx) {
                        uint8_t *gx = p->gx + (i * p->c + ch) * plane * isz;
                        for (int64_t k = 0; k < count; k++) {
                            const double gk = pl_load(g, k, dt);
                            for (int jy = 0; jy < K; jy++) {
                                const int64_t r = iy[K * k + jy];
                                if (r < 0) continue;
                                const double gr = gk * wy[K * k + jy];
                                for (int jx = 0; jx < K; jx++) {
                                    const int64_t q = ix[K * k + jx];
                                    if (q < 0) continue;
                                    if (dt == PL_F32) ((float *)gx)[r * p->w + q] += (float)(gr * wx[K * k + jx]);
                                    else ((double *)gx)[r * p->w + q] += gr * wx[K * k + jx];
                                }
                            }
                        }
                    }
                    if (!p->gm || K == 1) continue;
                    const int64_t base = i * p->sn + ch * p->sc;
                    const double f = p->fill[ch];
                    double *ac = acc + 6 * (ch - cb);
                    for (int64_t k = 0; k < count; k++) {
                        double ddx = 0.0, ddy = 0.0;
                        for (int jy = 0; jy < K; jy++) {
                            const int64_t r = iy[K * k + jy];
                            double row = 0.0, drow = 0.0;
                            for (int jx = 0; jx < K; jx++) {
                                const int64_t q = ix[K * k + jx];
                                const double v = (r < 0 || q < 0) ? f : pl_load(p->src, base + r * p->sh + q * p->sw, dt);
                                row += wx[K * k + jx] * v;
                                drow += dwx[K * k + jx] * v;
                            }
                            ddx += wy[K * k + jy] * drow;
                            ddy += dwy[K * k + jy] * row;
                        }
                        const double gk = pl_load(g, k, dt), gsx = gk * ddx, gsy = gk * ddy;
                        const double xo = (double)(x0 + k), yo = (double)y;
                        ac[0] += gsx * xo, ac[1] += gsx * yo, ac[2] += gsx;
                        ac[3] += gsy * xo, ac[4] += gsy * yo, ac[5] += gsy;
                    }
                }
            }
        }
        if (p->gm)
            for (int64_t ch = cb; ch < ce; ch++)
                for (int e = 0; e < 6; e++) p->gm[(i * p->c + ch) * 6 + e] = acc[6 * (ch - cb) + e];
    }
}

static void back_items(const void *v, int64_t t0, int64_t t1) {
    const back_t *p = (const back_t *)v;
    const int64_t groups = p->c / p->per;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / groups, c0 = (t - i * groups) * p->per, c1 = c0 + p->per;
        const int K = pl_taps(p->interp);
        if (p->dtype == PL_F32) {
            if (K == 1) back_item(p, i, c0, c1, PL_F32, 1);
            else if (K == 2) back_item(p, i, c0, c1, PL_F32, 2);
            else back_item(p, i, c0, c1, PL_F32, 4);
        } else {
            if (K == 1) back_item(p, i, c0, c1, PL_F64, 1);
            else if (K == 2) back_item(p, i, c0, c1, PL_F64, 2);
            else back_item(p, i, c0, c1, PL_F64, 4);
        }
    }
}

/* grad_y (n, c, ho, wo) contiguous -> grad_x (n, c, h, w) contiguous (or NULL) and the
   per-plane sums grad_m (n, c, 6) of the gradient with respect to the first two rows of
   dst_to_src (or NULL; needs src, read through its element strides). dtype: PL_F32 or
   PL_F64 for all three arrays. Returns 0, or -1 for bad arguments. */
AA_EXPORT int aa_warp_planes_backward(const void *grad_y, const void *src, const int64_t *strides, void *grad_x, double *grad_m,
                            const double *dst_to_src, const double *fill, int64_t n, int64_t c, int64_t h, int64_t w,
                            int64_t ho, int64_t wo, int dtype, int interp, int border, double cubic_a, int threads) {
    if (n < 0 || c < 1 || h < 1 || w < 1 || ho < 0 || wo < 0 || (dtype != PL_F32 && dtype != PL_F64) ||
        interp < NEAREST || interp > BICUBIC || border < CONSTANT || border > WRAP)
        return -1;
    if (threads < 1) threads = 1;
    /* whole images when there are enough of them for every thread, else single channels */
    const int64_t per = n >= 4 * (int64_t)threads ? c : 1;
    back_t p = {(const uint8_t *)grad_y, (const uint8_t *)src, strides[0], strides[1], strides[2], strides[3],
                (uint8_t *)grad_x, grad_m, dst_to_src, fill, n, c, h, w, ho, wo, per, dtype, interp, border, cubic_a};
    const int64_t items = n * (c / per), work = n * c * (ho * wo + h * w);
    const int64_t most = work / 32768 + 1;
    parallel(back_items, &p, items, (int)(threads < most ? threads : most), 1);
    return 0;
}

/* ------------------------------------------------------------------ prefilter transpose */

/* normalised Gaussian taps, radius int(3 sigma + 0.5) capped at `most` (the forward
   blur's rule); returns the radius */
static int64_t gauss_taps(double sigma, double *k, int64_t most) {
    int64_t r = (int64_t)(3.0 * sigma + 0.5);
    if (r > most) r = most;
    double sum = 0.0;
    for (int64_t j = -r; j <= r; j++) sum += k[j + r] = exp(-0.5 * ((double)j / sigma) * ((double)j / sigma));
    for (int64_t j = 0; j <= 2 * r; j++) k[j] /= sum;
    return r;
}

typedef struct {
    const uint8_t *gy; /* (planes, h, w) contiguous */
    uint8_t *gx;
    const double *sigma; /* (planes, 2) */
    int64_t h, w;
    int dtype, border;
} blur_back_t;

/* out[s] += k[j] in[o] for every tap j of every output o whose mapped source is s: the
   transpose of out[o] = sum_j k[j] in[map(o + j - r)] along the first axis of an (n, len)
   array (each of its len columns filtered alike) */
static void transpose_axis(const double *in, double *out, int64_t n, int64_t len, const double *k, int64_t r,
                           int border) {
    memset(out, 0, sizeof(double) * n * len);
    for (int64_t o = 0; o < n; o++)
        for (int64_t j = 0; j <= 2 * r; j++) {
            const int64_t s = pl_map(o + j - r, n, border);
            if (s < 0) continue;
            const double kj = k[j];
            const double *a = in + o * len;
            double *b = out + s * len;
            for (int64_t e = 0; e < len; e++) b[e] += kj * a[e];
        }
}

static void blur_back_planes(const void *v, int64_t t0, int64_t t1) {
    const blur_back_t *p = (const blur_back_t *)v;
    const int64_t h = p->h, w = p->w, size = h * w, most = 2 * (h > w ? h : w) + 3;
    double *a = malloc(sizeof(double) * size), *b = malloc(sizeof(double) * size), *k = malloc(sizeof(double) * most);
    double *ta = malloc(sizeof(double) * size), *tb = malloc(sizeof(double) * size);
    if (a && b && k && ta && tb)
        for (int64_t t = t0; t < t1; t++) {
            const uint8_t *g = p->gy + t * size * PL_ITEMSIZE[p->dtype];
            for (int64_t e = 0; e < size; e++) a[e] = pl_load(g, e, p->dtype);
            double *cur = a, *tmp = b;
            const double sx = p->sigma[2 * t], sy = p->sigma[2 * t + 1];
            if (sy > 0) { /* the forward's last pass first: rows */
                const int64_t r = gauss_taps(sy, k, h + 1);
                transpose_axis(cur, tmp, h, w, k, r, p->border);
                double *q = cur; cur = tmp; tmp = q;
            }
            if (sx > 0) { /* then columns, as rows of the transposed plane */
                const int64_t r = gauss_taps(sx, k, w + 1);
                for (int64_t y = 0; y < h; y++)
                    for (int64_t x = 0; x < w; x++) ta[x * h + y] = cur[y * w + x];
                transpose_axis(ta, tb, w, h, k, r, p->border);
                for (int64_t y = 0; y < h; y++)
                    for (int64_t x = 0; x < w; x++) cur[y * w + x] = tb[x * h + y];
            }
            uint8_t *d = p->gx + t * size * PL_ITEMSIZE[p->dtype];
            for (int64_t e = 0; e < size; e++) pl_store(d, e, cur[e], p->dtype);
        }
    free(a), free(b), free(k), free(ta), free(tb);
}

/* The transpose of the Gaussian prefilter of planes (x, then y, each plane with its own
   (sigma_x, sigma_y); <= 0 leaves an axis alone): grad_y (planes, h, w) -> grad_x (same
   shape, contiguous, PL_F32 or PL_F64; float64 sums). Taps on the constant border's fill
   add nothing. Returns 0, -1 for bad arguments. */
AA_EXPORT int aa_blur_planes_backward(const void *grad_y, void *grad_x, const double *sigma, int64_t planes, int64_t h, int64_t w,
                            int dtype, int border, int threads) {
    if (planes < 0 || h < 1 || w < 1 || (dtype != PL_F32 && dtype != PL_F64) || border < CONSTANT || border > WRAP)
        return -1;
    blur_back_t p = {(const uint8_t *)grad_y, (uint8_t *)grad_x, sigma, h, w, dtype, border};
    const int64_t most = planes * h * w / 16384 + 1;
    parallel(blur_back_planes, &p, planes, (int)(threads < most ? threads : most), 1);
    return 0;
}
