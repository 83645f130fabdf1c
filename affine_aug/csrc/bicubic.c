/* bicubic.c: bicubic rows, Keys' cubic convolution over the 4 x 4 neighbours in float64
   for every dtype; every neighbour mapped by the border rule (or the fill). */

#include "kernels.h"

/* Keys' cubic convolution weights for the four neighbours at offsets -1, 0, 1, 2 of a
   coordinate with fraction t; parameter a (-0.5: PIL; -0.75: OpenCV and torch) */
INLINE void keys(double t, double a, double wt[4]) {
    const double d0 = 1.0 + t, d1 = t, d2 = 1.0 - t, d3 = 2.0 - t;
    wt[0] = ((a * d0 - 5.0 * a) * d0 + 8.0 * a) * d0 - 4.0 * a;
    wt[1] = ((a + 2.0) * d1 - (a + 3.0)) * d1 * d1 + 1.0;
    wt[2] = ((a + 2.0) * d2 - (a + 3.0)) * d2 * d2 + 1.0;
    wt[3] = ((a * d3 - 5.0 * a) * d3 + 8.0 * a) * d3 - 4.0 * a;
}

int bicubic_exact_at_integers(double a) {
    double wt[4];
    keys(0.0, a, wt);
    return wt[0] == 0.0 && wt[1] == 1.0 && wt[2] == 0.0 && wt[3] == 0.0;
}

INLINE void rows_bicubic_t(const warp_t *p, int64_t t0, int64_t t1, const int dt, const int64_t c) {
    const int64_t h = p->h, w = p->w, wo = p->wo, ho = p->ho, stride = w * c, isz = ITEMSIZE(dt);
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

DISPATCH void rows_bicubic(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t c = p->c;
    switch (p->dtype) {
    case U8: if (c == 3) rows_bicubic_t(p, t0, t1, U8, 3); else rows_bicubic_t(p, t0, t1, U8, c); break;
    case U16: rows_bicubic_t(p, t0, t1, U16, c); break;
    case F32: if (c == 3) rows_bicubic_t(p, t0, t1, F32, 3); else rows_bicubic_t(p, t0, t1, F32, c); break;
    default: rows_bicubic_t(p, t0, t1, F64, c);
    }
}
