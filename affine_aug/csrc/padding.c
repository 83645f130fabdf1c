/* padding.c: the padding policy. An image is read from a copy padded by `pad` pixels on
   every side when that pays; then every output pixel whose neighbours lie within the
   padding takes the interior path.

   Padding pays twice: border pixels become interior ones (a border-path pixel maps four
   neighbours one by one and costs several padded pixels), and the gathers read a fresh,
   compact copy. The constant border needs one pixel (beyond it, fill spans); the others
   as many as the samples reach, up to twice as many added pixels as the step computes
   output pixels from the image, and up to PAD_MOST bytes per thread. Only the rows that
   a step's bands read are padded (rows_read), as the bands come to them: a step of a large
   image, or of a small batch split within its images, copies its own part, not the whole
   image. The figures behind these rules are in docs/notes/kernel.md. */

#include "bands.h"


/* Rows [y0, y1) of the image padded by `pad` pixels on every side, each pixel taken by
   the border rule (fill for constant), into scratch: every output pixel whose neighbours
   lie within the padding then takes the interior path, with the same integers
   (coordinates + exactly pad pixels), and the same values, as the neighbours' indices are
   mapped one by one on the border path. col: the image columns of the left and right
   margins (col[x] for padded column x < pad, col[pad + x] for column w + pad + x; -1 for
   fill), or NULL to map them here, pixel by pixel. */
void pad_rows(const warp_t *p, const uint8_t *img, uint8_t *scratch, const uint8_t *fp, int64_t psize, int64_t pad,
              const int64_t *col, int64_t y0, int64_t y1) {
    const int64_t h = p->h, w = p->w, line = (w + 2 * pad) * psize;
    for (int64_t y = y0; y < y1; y++) {
        uint8_t *d = scratch + y * line;
        const int64_t sy = map_index(y - pad, h, p->border);
        if (sy < 0) { /* a margin row of the constant border */
            fill_span(d, 0, w + 2 * pad, fp, psize);
            continue;
        }
        const uint8_t *s = img + sy * w * psize;
        memcpy(d + pad * psize, s, w * psize);
        for (int64_t x = 0; x < pad; x++) {
            const int64_t l = col ? col[x] : map_index(x - pad, w, p->border);
            const int64_t r = col ? col[pad + x] : map_index(w + x, w, p->border);
            memcpy(d + x * psize, l < 0 ? fp : s + l * psize, psize);
            memcpy(d + (w + pad + x) * psize, r < 0 ? fp : s + r * psize, psize);
        }
    }
}

/* The rows [*a, *b) of a padded copy of hp rows that the output rows g[0..n) read: the
   rows of their interior pixels' neighbours, with a margin (uint8's rounding can move a
   neighbour one row down; a whole-pixel load can run into the next row), or every row
   when a pixel takes the border path (it maps its neighbours anywhere in the image). The
   neighbours' rows are those of the first and last interior pixel and all between (the
   fixed-point row is linear in x). */
void rows_read(const geo_t *g, int64_t n, int64_t hp, int64_t *a, int64_t *b) {
    int64_t lo = hp, hi = 0;
    for (int64_t r = 0; r < n; r++) {
        if (g[r].t0 < g[r].j0 || g[r].j1 < g[r].t1) {
            *a = 0, *b = hp;
            return;
        }
        if (g[r].j0 >= g[r].j1) continue;
        const int64_t u = g[r].gy0 + g[r].j0 * g[r].gd, v = g[r].gy0 + (g[r].j1 - 1) * g[r].gd;
        const int64_t top = (u < v ? u : v) >> 32, bottom = (u > v ? u : v) >> 32;
        lo = top - 2 < lo ? top - 2 : lo, hi = bottom + 4 > hi ? bottom + 4 : hi;
    }
    *a = lo < 0 ? 0 : lo, *b = hi > hp ? hp : hi;
    if (*b < *a) *b = *a;
}

/* How far (pixels) outside image i the samples of its output reach, neighbours included:
   the output's corners map to the corners of a parallelogram that holds every sample. */
static int64_t reach(const warp_t *p, int64_t i) {
    const double *m = p->m + 9 * i;
    double most = 0.0;
    for (int k = 0; k < 4; k++) {
        const double x = (k & 1) ? (double)(p->wo - 1) : 0.0, y = (k & 2) ? (double)(p->ho - 1) : 0.0;
        const double sx = m[0] * x + m[1] * y + m[2], sy = m[3] * x + m[4] * y + m[5];
        most = dmax(most, dmax(dmax(-sx, sx - (double)(p->w - 1)), dmax(-sy, sy - (double)(p->h - 1))));
    }
    return most < 1048576.0 ? (int64_t)ceil(most) + 2 : INT64_MAX / 4; /* also NaN */
}

/* the padding of image i when `out` of its output pixels are computed from it: 1 for
   constant, else its reach within the limits of the rule above (at least 1) */
int64_t pad_for(const warp_t *p, int64_t i, int64_t psize, int64_t out) {
    if (p->border == CONSTANT) return 1;
    const int64_t want = reach(p, i), h = p->h, w = p->w, budget = 2 * out;
    int64_t pad = 1;
    while (pad < want && (h + 2 * pad + 2) * (w + 2 * pad + 2) - h * w <= budget &&
           (h + 2 * pad + 2) * (w + 2 * pad + 2) * psize <= PAD_MOST)
        pad++;
    return pad;
}

/* Whether copying image i pays for the output rows [t0, t1) of the batch: the source rows
   that their samples span (each copied whole, see rows_read) times the row width, against
   the output pixels computed, at most 4 source pixels per output pixel for uint8 and 2
   for the wider dtypes (whose copies cost more bytes per pixel saved). A wide image
   rotated and split into thin steps of rows between threads spans many more source rows
   than a step has output rows; then the samples are read from the image itself. */
int copy_pays(const warp_t *p, int64_t i, int64_t t0, int64_t t1, int dt) {
    const double *m = p->m + 9 * i;
    const int64_t ya = (i * p->ho > t0 ? i * p->ho : t0) - i * p->ho, yb = rows_of(i, p->ho, t0, t1) + ya;
    double lo = (double)p->h, hi = -1.0; /* the output's corners bound its samples' rows */
    for (int k = 0; k < 4; k++) {
        const double x = (k & 1) ? (double)(p->wo - 1) : 0.0, y = (double)((k & 2) ? yb - 1 : ya);
        const double sy = m[3] * x + m[4] * y + m[5];
        lo = sy < lo ? sy : lo, hi = sy > hi ? sy : hi; /* NaN: neither */
    }
    lo = lo < -1.0 ? -1.0 : lo, hi = hi > (double)p->h ? (double)p->h : hi;
    const double rows = (hi > lo ? hi - lo : 0.0) + 3.0, most = dt == U8 ? 4.0 : 2.0;
    return rows * (double)p->w <= most * (double)(yb - ya) * (double)p->wo;
}
