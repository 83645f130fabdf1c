/* nearest.c: nearest-neighbour rows, the pixel at floor(coord + 0.5) copied whole. */

#include "kernels.h"

DISPATCH void rows_nearest(const warp_t *p, int64_t t0, int64_t t1) {
    const int64_t h = p->h, w = p->w, c = p->c, wo = p->wo, ho = p->ho;
    const int64_t psize = c * ITEMSIZE(p->dtype);
    uint8_t fillpx[256];
    uint8_t *fp = psize <= 256 ? fillpx : malloc(psize);
    for (int64_t ch = 0; ch < c; ch++) store(fp, ch, p->fill[ch], p->dtype);
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / ho, y = t - i * ho;
        row_t r = row_of(p, i, y);
        const uint8_t *img = p->src + i * h * w * psize;
        uint8_t *o = p->dst + t * wo * psize;
        for (int64_t x = 0; x < wo; x++, o += psize) {
            /* the pixel at floor(coord + 0.5) */
            int64_t xi = map_index(ifloor(reduce(r.x0 + r.dx * (double)x, w, p->border) + 0.5), w, p->border);
            int64_t yi = map_index(ifloor(reduce(r.y0 + r.dy * (double)x, h, p->border) + 0.5), h, p->border);
            const uint8_t *s = (xi < 0 || yi < 0) ? fp : img + (yi * w + xi) * psize;
            switch (psize) { /* constant sizes become single moves */
            case 1: *o = *s; break;
            case 3: memcpy(o, s, 3); break;
            case 4: memcpy(o, s, 4); break;
            case 12: memcpy(o, s, 12); break;
            default: memcpy(o, s, psize);
            }
        }
    }
    if (fp != fillpx) free(fp);
}
