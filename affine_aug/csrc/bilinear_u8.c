/* bilinear_u8.c: bilinear rows of uint8 images. Coordinates are rounded to 1/2048 pixel
   and the weights are integers (simd.h: weights_u8); the sum is rounded half up. The
   border path maps each neighbour (or takes the fill); the interior path loads the four
   neighbours directly, eight pixels at a time with AVX2 for 3 and 4 channels. */

#include "bands.h"
#include "kernels.h"
#include "simd.h"

INLINE int32_t blend_u8(int32_t v00, int32_t v01, int32_t v10, int32_t v11, wts_t t) {
    int32_t v = (v00 * t.w00 + v01 * t.w01 + v10 * t.w10 + v11 * t.w11 + 8192) >> 14;
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* one border-path pixel of a uint8 row (neighbours may be outside: mapped or fill) */
INLINE void border_u8(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t x, int64_t c,
                      const uint8_t *fp) {
    /* in the image's own coordinates, inside the padded copy when there is one */
    const int64_t pad = g->pad, h = p->h - 2 * pad, w = p->w - 2 * pad, stride = p->w * c;
    const int border = p->border;
    img += pad * stride + pad * c;
    int64_t qx, qy;
    if (!g->far) {
        const int64_t gx = g->gx0 - (pad << 32) + x * g->ga, gy = g->gy0 - (pad << 32) + x * g->gd;
        qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
    } else {
        qx = ifloor(reduce(g->r.x0 + g->r.dx * (double)x, w, border) * 2048.0 + 0.5);
        qy = ifloor(reduce(g->r.y0 + g->r.dy * (double)x, h, border) * 2048.0 + 0.5);
    }
    const int64_t x0 = qx >> 11, y0 = qy >> 11;
    const wts_t wt = weights_u8((int32_t)(qx & 2047), (int32_t)(qy & 2047));
    const int64_t xa = map_index(x0, w, border), xb = map_index(x0 + 1, w, border);
    const int64_t ya = map_index(y0, h, border), yb = map_index(y0 + 1, h, border);
#if defined(__SSE2__)
    if (c == 3 || c == 4) { /* whole pixels (or the fill pixel) into the same sums as the interior */
        uint32_t fw = 0, px[4];
        memcpy(&fw, fp, c);
        const int64_t xs[4] = {xa, xb, xa, xb}, ys[4] = {ya, ya, yb, yb};
        for (int k = 0; k < 4; k++) {
            px[k] = fw;
            if (xs[k] >= 0 && ys[k] >= 0) memcpy(&px[k], img + ys[k] * stride + xs[k] * c, c);
        }
        const uint32_t v = blend4_u8(px[0], px[1], px[2], px[3], wt);
        memcpy(o + x * c, &v, c);
        return;
    }
#endif
    for (int64_t ch = 0; ch < c; ch++) {
        const int32_t f = fp[ch];
        const int32_t v00 = (xa >= 0 && ya >= 0) ? img[ya * stride + xa * c + ch] : f;
        const int32_t v01 = (xb >= 0 && ya >= 0) ? img[ya * stride + xb * c + ch] : f;
        const int32_t v10 = (xa >= 0 && yb >= 0) ? img[yb * stride + xa * c + ch] : f;
        const int32_t v11 = (xb >= 0 && yb >= 0) ? img[yb * stride + xb * c + ch] : f;
        o[x * c + ch] = (uint8_t)blend_u8(v00, v01, v10, v11, wt);
    }
}

INLINE void segment_u8(const warp_t *p, const geo_t *g, const uint8_t *img, uint8_t *o, int64_t xs, int64_t xe, int dt,
                       int64_t c, const uint8_t *fp) {
    (void)dt;
    const int64_t h = p->h, w = p->w, stride = w * c;
    for (int64_t x = lo_in(g->t0, xs); x < hi_in(g->j0, xe); x++) border_u8(p, g, img, o, x, c, fp);
    for (int64_t x = lo_in(g->j1, xs); x < hi_in(g->t1, xe); x++) border_u8(p, g, img, o, x, c, fp);
    /* interior: the four neighbours are inside the image, no border logic */
    int64_t x = lo_in(g->j0, xs);
    const int64_t end = hi_in(g->j1, xe);
    int64_t gx = g->gx0 + x * g->ga, gy = g->gy0 + x * g->gd;
#if defined(HAVE_AVX2_PATH)
    if ((c == 3 || c == 4) && HAS_AVX2 && h * stride < 2147483647 && w < 524288 && end - x >= 4) {
        const int64_t done = interior_u8_avx2(img, stride, c, gx, gy, g->ga, g->gd, end - x, o + x * c);
        x += done, gx += done * g->ga, gy += done * g->gd;
    }
#else
    (void)h;
#endif
    for (; x < end; x++, gx += g->ga, gy += g->gd) {
        const int64_t qx = (gx + (1 << 20)) >> 21, qy = (gy + (1 << 20)) >> 21;
        const wts_t wt = weights_u8((int32_t)(qx & 2047), (int32_t)(qy & 2047));
        const uint8_t *k = img + (qy >> 11) * stride + (qx >> 11) * c, *k1 = k + stride;
        uint8_t *d = o + x * c;
#if defined(__SSE2__)
        if (c == 4) {
            uint32_t v = blend4_u8(load32(k), load32(k + 4), load32(k1), load32(k1 + 4), wt);
            memcpy(d, &v, 4);
            continue;
        }
        if (c == 3) { /* 4-byte loads that never pass the image's last byte */
            uint32_t v = blend4_u8(load32(k), load32(k + 3), load32(k1), load32(k1 + 2) >> 8, wt);
            memcpy(d, &v, 3);
            continue;
        }
#endif
        for (int64_t ch = 0; ch < c; ch++) d[ch] = (uint8_t)blend_u8(k[ch], k[c + ch], k1[ch], k1[c + ch], wt);
    }
}

INLINE void rows_bilinear_u8_c(const warp_t *p, int64_t t0, int64_t t1, const int64_t c) {
    uint8_t fillpx[256] = {0}, *fp = c <= 256 ? fillpx : malloc(c);
    if (!fp) return;
    for (int64_t ch = 0; ch < c; ch++) fp[ch] = (uint8_t)p->fill[ch];
    warp_step(p, t0, t1, U8, c, ((int64_t)1 << 20) + 1, fp, segment_u8);
    if (fp != fillpx) free(fp);
}

DISPATCH void rows_bilinear_u8(const warp_t *p, int64_t t0, int64_t t1) {
    switch (p->c) { /* constant channel counts: unrolled loops */
    case 1: rows_bilinear_u8_c(p, t0, t1, 1); break;
    case 3: rows_bilinear_u8_c(p, t0, t1, 3); break;
    case 4: rows_bilinear_u8_c(p, t0, t1, 4); break;
    default: rows_bilinear_u8_c(p, t0, t1, p->c);
    }
}
