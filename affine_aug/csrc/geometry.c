/* geometry.c: a bilinear output row split into its spans (fill, border path, interior),
   exactly: the interior holds every pixel whose four neighbours are inside the image and
   no other, in the same fixed-point integers the segments compute. */

#include "bands.h"

/* see common.h */
void span_of(double p, double q, double lo, double hi, int64_t wo, int grow, int64_t *a, int64_t *b) {
    const double pad = grow ? -1.0 : 1.0;
    double j0 = 0.0, j1 = (double)wo;
    if (q > 0) {
        j0 = dmax(j0, ceil((lo - p) / q) + pad);
        j1 = dmin(j1, floor((hi - p) / q) + 1.0 - pad);
    } else if (q < 0) {
        j0 = dmax(j0, ceil((hi - p) / q) + pad);
        j1 = dmin(j1, floor((lo - p) / q) + 1.0 - pad);
    } else {
        const double eps = grow ? -1e-9 : 1e-9;
        if (!(lo + eps <= p && p < hi - eps)) { *a = *b = 0; return; }
    }
    j0 = dmin(dmax(j0, 0.0), (double)wo);
    j1 = dmin(dmax(j1, j0), (double)wo);
    *a = (int64_t)j0;
    *b = (int64_t)j1;
}

/* [*a, *b) trimmed to the x whose fixed-point coordinate g0 + x step lies in [lo, hi):
   exact, given a superset interval (the set is an interval: the coordinate is linear) */
static void trim(int64_t g0, int64_t step, int64_t lo, int64_t hi, int64_t *a, int64_t *b) {
    while (*a < *b && !(g0 + *a * step >= lo && g0 + *a * step < hi)) (*a)++;
    while (*b > *a && !(g0 + (*b - 1) * step >= lo && g0 + (*b - 1) * step < hi)) (*b)--;
}

/* see bands.h */
geo_t geometry(const warp_t *p, int64_t i, int64_t y, int64_t fixed_point, int64_t pad) {
    geo_t g;
    g.r = row_of(p, i, y);
    g.pad = pad;
    const double ox = g.r.x0, oy = g.r.y0;
    const double rx = ox + (double)pad, ry = oy + (double)pad, dx = g.r.dx, dy = g.r.dy, wo = (double)p->wo;
    const double big = dmax(dmax(fabs(rx), fabs(rx + dx * wo)), dmax(fabs(ry), fabs(ry + dy * wo)));
    g.far = !(big < 1073741824.0); /* also NaN */
    g.gx0 = g.gy0 = g.ga = g.gd = 0;
    const int exact = fixed_point && !g.far;
    const int64_t shift = pad << 32;
    if (exact) g.gx0 = fixed32(ox) + shift, g.gy0 = fixed32(oy) + shift, g.ga = fixed32(dx), g.gd = fixed32(dy);
    const int64_t bias = fixed_point - 1, one = (int64_t)1 << 32, w = p->w, h = p->h;
    /* the interior: x0 in [0, w - 2] and y0 in [0, h - 2]; in float64 a margin keeps
       x0 + 1 <= w - 1 whatever the rounding, in fixed point the test is exact */
    const double margin = exact ? 0.0 : 1.0 / 1024.0;
    int64_t jx0, jx1, jy0, jy1;
    span_of(rx, dx, 0.0, (double)w - 1.0 - margin, p->wo, exact, &jx0, &jx1);
    span_of(ry, dy, 0.0, (double)h - 1.0 - margin, p->wo, exact, &jy0, &jy1);
    if (exact) {
        trim(g.gx0, g.ga, -bias, (w - 1) * one - bias, &jx0, &jx1);
        trim(g.gy0, g.gd, -bias, (h - 1) * one - bias, &jy0, &jy1);
    }
    g.t0 = 0, g.t1 = p->wo;
    if (p->border == CONSTANT) { /* beyond (-1, size) every neighbour is fill */
        int64_t tx0, tx1, ty0, ty1;
        span_of(rx, dx, -1.0, (double)w, p->wo, 1, &tx0, &tx1);
        span_of(ry, dy, -1.0, (double)h, p->wo, 1, &ty0, &ty1);
        if (exact) { /* x0 in [-1, w - 1] and y0 in [-1, h - 1] */
            trim(g.gx0, g.ga, -one - bias, w * one - bias, &tx0, &tx1);
            trim(g.gy0, g.gd, -one - bias, h * one - bias, &ty0, &ty1);
        }
        g.t0 = tx0 > ty0 ? tx0 : ty0;
        g.t1 = tx1 < ty1 ? tx1 : ty1;
        if (g.t1 < g.t0) g.t0 = g.t1 = p->wo;
    }
    g.j0 = jx0 > jy0 ? jx0 : jy0;
    g.j0 = g.j0 > g.t0 ? g.j0 : g.t0;
    g.j1 = jx1 < jy1 ? jx1 : jy1;
    g.j1 = g.j1 < g.t1 ? g.j1 : g.t1;
    if (g.j1 <= g.j0 || g.far) g.j0 = g.j1 = g.t1;
    /* padded by one pixel of fill: a pixel outside the interior samples fill only, and
       its value is the fill's (a lerp of equal values; uint8 weights lose under 1/2) */
    if (pad && p->border == CONSTANT && !g.far) g.t0 = g.j0, g.t1 = g.j1;
    return g;
}

