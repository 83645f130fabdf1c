/* kernels.h: what the interpolation and blur files give the entry points (entry.c).

   rows_*(p, t0, t1): the output rows [t0, t1) of the batch p (row t is row t % ho of
   image t / ho), each a pure function of its own coordinates. */

#ifndef AA_KERNELS_H
#define AA_KERNELS_H

#include "common.h"

void rows_nearest(const warp_t *p, int64_t t0, int64_t t1);       /* nearest.c */
void rows_bilinear_u8(const warp_t *p, int64_t t0, int64_t t1);   /* bilinear_u8.c */
void rows_bilinear_lerp(const warp_t *p, int64_t t0, int64_t t1); /* bilinear_float.c: uint16, float32, float64 */
void rows_bicubic(const warp_t *p, int64_t t0, int64_t t1);       /* bicubic.c */
/* permute.c: whether dst_to_src m (3, 3) is an exact pixel permutation (then q holds it);
   whether copying gives the warp's bytes for this call's dtype, interpolation and fill
   and this image's values (h, w); and the rows [t0, t1) of an image that is one */
int permutation_of(const double *m, perm_t *q);
int permutation_copies_exactly(const warp_t *p, const uint8_t *img, int64_t h, int64_t w);
void rows_permuted(const warp_t *p, const perm_t *q, int64_t t0, int64_t t1);

/* bicubic.c: whether Keys' weights at fraction 0 are exactly (0, 1, 0, 0) for parameter a */
int bicubic_exact_at_integers(double a);

/* image i of a prefilter batch: srcs[i], (hs[i], ws[i], c), blurred into dsts[i] */
typedef struct {
    const void *const *srcs;
    void *const *dsts;
    const double *sigma; /* (n, 2): sigma_x, sigma_y in source pixels; <= 0: that axis untouched */
    const double *fill;
    const int64_t *hs, *ws;
    int64_t c;
    int dtype, border;
} blur_t;

/* blur.c: the images [i0, i1) of the batch v (a blur_t) */
void blur_images(const void *v, int64_t i0, int64_t i1);

#endif
