/* bands.c: the plans of a thread's step of bilinear rows and of its bands (see bands.h). */

#include "bands.h"

/* Tiles of about 1 KB of output pixels, a multiple of 8 pixels (the AVX2 interiors' block)
   between 32 and 256. A scratch copy only when the output is not much smaller than the
   image (a thumbnail reads a fraction of it) and coordinates are fixed point (the padded
   copy moves them by exactly pad pixels), sized for the largest padding of the step's
   images; a plain copy when the padded one would pass PAD_MOST. */
void plan_step(step_t *s, const warp_t *p, int64_t t0, int64_t t1, int dt, int64_t c, int64_t fixed_point,
               const uint8_t *fill_pixel) {
    const int64_t ho = p->ho, wo = p->wo, psize = c * ITEMSIZE(dt), image_bytes = p->h * p->w * psize;
    s->warp = p, s->dtype = dt, s->channels = c, s->pixel_bytes = psize, s->image_bytes = image_bytes;
    s->fixed_point = fixed_point, s->fill_pixel = fill_pixel, s->t0 = t0, s->t1 = t1;
    int64_t tile = (1024 / psize) & ~(int64_t)7;
    s->tile = tile < 32 ? 32 : tile > 256 ? 256 : tile;
    const int worth = fixed_point && ho * wo * 4 >= p->h * p->w;
    int64_t widest = 0, any = 0;
    for (int64_t i = t0 / ho; worth && i <= (t1 - 1) / ho; i++) {
        if (!copy_pays(p, i, t0, t1, dt)) continue;
        const int64_t pad = pad_for(p, i, psize, rows_of(i, ho, t0, t1) * wo);
        widest = pad > widest ? pad : widest, any = 1;
    }
    const int64_t padded_bytes = (p->h + 2 * widest) * (p->w + 2 * widest) * psize;
    s->scratch_holds = !any                          ? SCRATCH_NONE
                       : padded_bytes <= PAD_MOST    ? SCRATCH_PADDED
                       : image_bytes <= PAD_MOST     ? SCRATCH_COPY
                                                     : SCRATCH_NONE;
    s->scratch = s->scratch_holds == SCRATCH_PADDED ? malloc(padded_bytes)
                 : s->scratch_holds == SCRATCH_COPY ? malloc(image_bytes)
                                                    : NULL;
    if (!s->scratch) s->scratch_holds = SCRATCH_NONE;
    s->margin_columns = s->margin_store;
    if (s->scratch_holds == SCRATCH_PADDED && 2 * widest > 64) /* NULL: pad_rows maps them pixel by pixel */
        s->margin_columns = malloc(2 * widest * sizeof(int64_t));
    s->image = -1, s->image_in_scratch = 0, s->pad = 0, s->padded = *p, s->padded_from = s->padded_to = 0;
}

void free_step(step_t *s) {
    if (s->margin_columns != s->margin_store) free(s->margin_columns);
    free(s->scratch);
}

/* image i becomes the one the scratch holds: copied whole (SCRATCH_COPY), or given its
   padding and its margins' columns, its rows padded later as bands read them */
static void take_image(step_t *s, int64_t i) {
    const warp_t *p = s->warp;
    s->image = i, s->image_in_scratch = copy_pays(p, i, s->t0, s->t1, s->dtype), s->pad = 0;
    s->padded_from = s->padded_to = 0;
    if (!s->image_in_scratch) return;
    if (s->scratch_holds == SCRATCH_COPY) {
        memcpy(s->scratch, p->src + i * s->image_bytes, s->image_bytes);
        return;
    }
    const int64_t pad = pad_for(p, i, s->pixel_bytes, rows_of(i, p->ho, s->t0, s->t1) * p->wo);
    s->pad = pad, s->padded.h = p->h + 2 * pad, s->padded.w = p->w + 2 * pad;
    for (int64_t x = 0; s->margin_columns && x < pad; x++) {
        s->margin_columns[x] = map_index(x - pad, p->w, p->border);
        s->margin_columns[pad + x] = map_index(p->w + x, p->w, p->border);
    }
}

/* the padded rows that band b reads and the scratch does not hold yet, padded now (the
   rows held stay one interval: it grows to take in what b reads) */
static void pad_what_band_reads(step_t *s, const band_t *b) {
    const warp_t *p = s->warp;
    const uint8_t *img = p->src + b->image * s->image_bytes;
    int64_t from, to;
    rows_read(b->geo, b->rows, s->padded.h, &from, &to);
    if (from >= to) return;
    if (s->padded_from == s->padded_to) {
        pad_rows(p, img, s->scratch, s->fill_pixel, s->pixel_bytes, s->pad, s->margin_columns, from, to);
        s->padded_from = from, s->padded_to = to;
        return;
    }
    if (from < s->padded_from) {
        pad_rows(p, img, s->scratch, s->fill_pixel, s->pixel_bytes, s->pad, s->margin_columns, from, s->padded_from);
        s->padded_from = from;
    }
    if (to > s->padded_to) {
        pad_rows(p, img, s->scratch, s->fill_pixel, s->pixel_bytes, s->pad, s->margin_columns, s->padded_to, to);
        s->padded_to = to;
    }
}

void plan_band(step_t *s, int64_t t, band_t *b) {
    const warp_t *p = s->warp;
    const int64_t i = t / p->ho, y = t - i * p->ho;
    int64_t rows = p->ho - y;
    rows = rows < s->t1 - t ? rows : s->t1 - t;
    b->image = i, b->y = y, b->rows = rows < BAND ? rows : BAND, b->batch_row = t;
    if (s->scratch_holds != SCRATCH_NONE && s->image != i) take_image(s, i);
    const int padded = s->scratch_holds != SCRATCH_NONE && s->image_in_scratch && s->pad > 0;
    b->view = padded ? &s->padded : p;
    for (int64_t r = 0; r < b->rows; r++) b->geo[r] = geometry(b->view, i, y + r, s->fixed_point, padded ? s->pad : 0);
    if (padded) pad_what_band_reads(s, b);
    b->pixels = s->scratch_holds != SCRATCH_NONE && s->image_in_scratch ? s->scratch : p->src + i * s->image_bytes;
}
