/* bands.h: how a thread's bilinear rows are executed.

   A thread's step of output rows [t0, t1) of the batch is warped in bands of up to BAND
   rows of one image, and each band in tiles of columns, so that a tile's source footprint
   stays in the L1 cache even when a rotation makes each output row sweep across many
   source rows. Each row is split into spans first (geometry.c: fill, border path,
   interior); the interpolation's segment function then computes the pixels of one tile
   of one row. An image whose copy pays (padding.c) is read from a scratch copy, padded
   so that border pixels take the interior path.

   The step's plan (step_t, plan_step) holds the scratch and the image it holds; each
   band's plan (band_t, plan_band) says which rows it covers, what their pixels are read
   from and the spans of each row; run_band executes it. warp_step is the whole of it,
   inlined into each interpolation's row function so that the segment function, the dtype
   and the channel count are constants there. */

#ifndef AA_BANDS_H
#define AA_BANDS_H

#include "common.h"

enum { BAND = 16 };

/* ------------------------------------------------------------------ row geometry (geometry.c) */

/* One output row of a bilinear warp:
     [0, t0) fill | [t0, j0) border path | [j0, j1) interior | [j1, t1) border path | [t1, wo) fill
   (the fill spans only for the constant border). Unless the row is `far` (a coordinate
   beyond 2**30), source coordinates are 32.32 fixed-point integers: pixel x samples
   (gx0 + x ga, gy0 + x gd) / 2**32, the same integers on every path (exact for
   integer coordinates; drift under 2**-32 pixel per step). */
typedef struct {
    row_t r; /* the row in the image's own coordinates (not moved by pad) */
    int far;
    int64_t pad; /* the source is the image padded by pad pixels on every side (see padding.c) */
    int64_t gx0, gy0, ga, gd, t0, j0, j1, t1;
} geo_t;

/* The spans of output row y of image i. fixed_point: 0 (float64 coordinates), or the
   rounding bias added before the integer part is taken (2**20 for uint8's 1/2048-pixel
   rounding, 0 for float lerps) plus 1. pad: p is the image padded by pad pixels on every
   side, so the interior's coordinates move by exactly pad pixels (+ pad 2**32 in fixed
   point). */
geo_t geometry(const warp_t *p, int64_t i, int64_t y, int64_t fixed_point, int64_t pad);

/* ------------------------------------------------------------------ the padding policy (padding.c) */

/* the largest scratch copy of one thread, in bytes */
#define PAD_MOST ((int64_t)64 << 20)

/* how many of image i's output rows lie in the batch's rows [t0, t1) */
INLINE int64_t rows_of(int64_t i, int64_t ho, int64_t t0, int64_t t1) {
    const int64_t a = i * ho > t0 ? i * ho : t0, b = (i + 1) * ho < t1 ? (i + 1) * ho : t1;
    return b - a;
}

int copy_pays(const warp_t *p, int64_t i, int64_t t0, int64_t t1, int dt);
int64_t pad_for(const warp_t *p, int64_t i, int64_t psize, int64_t out);
void rows_read(const geo_t *g, int64_t n, int64_t hp, int64_t *a, int64_t *b);
void pad_rows(const warp_t *p, const uint8_t *img, uint8_t *scratch, const uint8_t *fp, int64_t psize, int64_t pad,
              const int64_t *col, int64_t y0, int64_t y1);

/* ------------------------------------------------------------------ the plans (bands.c) */

/* what a step's scratch holds */
enum { SCRATCH_NONE, SCRATCH_COPY, SCRATCH_PADDED };

/* The plan of one thread's step of output rows [t0, t1), and the image its scratch holds */
typedef struct {
    const warp_t *warp;
    int dtype;
    int64_t channels, pixel_bytes, image_bytes;
    int64_t fixed_point;        /* as geometry() takes it */
    const uint8_t *fill_pixel;  /* the fill as the output's dtype stores it */
    int64_t t0, t1;
    int64_t tile;               /* output columns per tile */
    int scratch_holds;          /* SCRATCH_NONE, SCRATCH_COPY (plain copies) or SCRATCH_PADDED */
    uint8_t *scratch;
    /* the image columns of the padded margins (margin_columns[x] for padded column x < pad,
       [pad + x] for column w + pad + x; -1 for fill), or NULL: mapped pixel by pixel */
    int64_t *margin_columns, margin_store[64];
    /* the image the scratch holds */
    int64_t image;              /* -1: none yet */
    int image_in_scratch;       /* whether its copy pays: its pixels are read from the scratch */
    int64_t pad;                /* its margin in the scratch (0: read without padding) */
    warp_t padded;              /* the warp as the padded copy's pixels see it */
    int64_t padded_from, padded_to; /* the rows of the padded copy written so far */
} step_t;

/* The plan of one band: output rows [y, y + rows) of image `image`, batch rows from
   batch_row, their pixels read from `pixels` as `view` describes them (the image itself,
   its plain copy or its padded copy) */
typedef struct {
    int64_t image, y, rows, batch_row;
    const warp_t *view;
    const uint8_t *pixels;
    geo_t geo[BAND];
} band_t;

/* The plan of the step [t0, t1) of p's rows (without memory for a scratch copy, the step
   reads the images themselves); free_step releases what it holds. */
void plan_step(step_t *s, const warp_t *p, int64_t t0, int64_t t1, int dt, int64_t c, int64_t fixed_point,
               const uint8_t *fill_pixel);
void free_step(step_t *s);

/* The plan of the band that starts at batch row t; pads the rows it reads that the
   scratch does not hold yet. */
void plan_band(step_t *s, int64_t t, band_t *b);

/* ------------------------------------------------------------------ execution */

/* segment(view, g, pixels, out_row, xs, xe, dt, c, fill_pixel): the pixels [xs, xe) of
   one output row whose spans are g */
typedef void (*segment_fn)(const warp_t *, const geo_t *, const uint8_t *, uint8_t *, int64_t, int64_t, int, int64_t,
                           const uint8_t *);

/* [a, b) intersected with [xs, xe) */
INLINE int64_t lo_in(int64_t a, int64_t xs) { return a > xs ? a : xs; }
INLINE int64_t hi_in(int64_t b, int64_t xe) { return b < xe ? b : xe; }

/* a band: its rows' fill spans, then tile by tile the segments of every row */
INLINE void run_band(const step_t *s, const band_t *b, const int dt, const int64_t c, segment_fn segment) {
    const warp_t *p = s->warp;
    const int64_t wo = p->wo, psize = c * ITEMSIZE(dt);
    for (int64_t r = 0; r < b->rows; r++) {
        uint8_t *o = p->dst + (b->batch_row + r) * wo * psize;
        fill_span(o, 0, b->geo[r].t0, s->fill_pixel, psize), fill_span(o, b->geo[r].t1, wo, s->fill_pixel, psize);
    }
    for (int64_t xs = 0; xs < wo; xs += s->tile) {
        const int64_t xe = xs + s->tile < wo ? xs + s->tile : wo;
        for (int64_t r = 0; r < b->rows; r++)
            segment(b->view, &b->geo[r], b->pixels, p->dst + (b->batch_row + r) * wo * psize, xs, xe, dt, c,
                    s->fill_pixel);
    }
}

/* the rows [t0, t1) of the batch, band by band */
INLINE void warp_step(const warp_t *p, int64_t t0, int64_t t1, const int dt, const int64_t c, int64_t fixed_point,
                      const uint8_t *fill_pixel, segment_fn segment) {
    step_t s;
    band_t b;
    plan_step(&s, p, t0, t1, dt, c, fixed_point, fill_pixel);
    for (int64_t t = t0; t < t1; t += b.rows) {
        plan_band(&s, t, &b);
        run_band(&s, &b, dt, c, segment);
    }
    free_step(&s);
}

#endif
