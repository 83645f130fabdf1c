/* entry.c: the functions the library exports (called by kernel.py through ctypes). Each
   checks its arguments, detects the CPU once, and hands its work to parallel(): output
   rows for aa_warp, whole outputs for aa_warp_ragged, whole images for the prefilters.
   Every result is the same whatever the thread count. */

#include "bands.h"
#include "kernels.h"

/* images that took the copy path of exact permutations in the last warp call, and
   whether that path is on (the warp path alone when off: tests compare the two) */
static int64_t LAST_EXACT = 0;
static int COPIES = 1;

static void interpolated_rows(const warp_t *p, int64_t t0, int64_t t1) {
    if (p->interp == NEAREST) rows_nearest(p, t0, t1);
    else if (p->interp == BICUBIC) rows_bicubic(p, t0, t1);
    else if (p->dtype == U8) rows_bilinear_u8(p, t0, t1);
    else rows_bilinear_lerp(p, t0, t1);
}

/* rows [t0, t1): an image that is an exact permutation by copies, runs of the others
   by their interpolation */
static void warp_rows(const void *v, int64_t t0, int64_t t1) {
    const warp_t *p = (const warp_t *)v;
    if (!p->perms) {
        interpolated_rows(p, t0, t1);
        return;
    }
    for (int64_t t = t0; t < t1;) {
        int64_t i = t / p->ho, end = (i + 1) * p->ho;
        if (p->perms[i].exact) {
            end = end < t1 ? end : t1;
            rows_permuted(p, &p->perms[i], t, end);
        } else {
            while (end < t1 && !p->perms[end / p->ho].exact) end += p->ho;
            end = end < t1 ? end : t1;
            interpolated_rows(p, t, end);
        }
        t = end;
    }
}

/* images [i0, i1) of a batch whose matrices are permutations: those whose values a copy
   would not give as the warp does go back to the warp path */
static void check_copies(const void *v, int64_t i0, int64_t i1) {
    const warp_t *p = (const warp_t *)v;
    perm_t *perms = (perm_t *)p->perms;
    for (int64_t i = i0; i < i1; i++)
        if (perms[i].exact && !permutation_copies_exactly(p, p->src + i * p->h * p->w * p->c * ITEMSIZE(p->dtype), p->h, p->w))
            perms[i].exact = 0;
}

/* Which images of p are exact permutations that copies give bit for bit (perms, n
   entries); returns how many, 0 when none (or without memory for the table) */
static int64_t find_permutations(warp_t *p, perm_t *perms, int threads) {
    int64_t found = 0;
    for (int64_t i = 0; i < p->n; i++) found += permutation_of(p->m + 9 * i, &perms[i]);
    if (!found) return 0;
    p->perms = perms;
    parallel(check_copies, p, p->n, threads, 1);
    found = 0;
    for (int64_t i = 0; i < p->n; i++) found += perms[i].exact;
    if (!found) p->perms = NULL;
    return found;
}

/* Fill dst (n, ho, wo, c) from src (n, h, w, c). Returns 0, or -1 for bad arguments. */
AA_EXPORT int aa_warp(const void *src, void *dst, const double *dst_to_src, const double *fill, int64_t n, int64_t h, int64_t w,
            int64_t c, int64_t ho, int64_t wo, int dtype, int interp, int border, double cubic_a, int threads) {
    if (n < 0 || h < 1 || w < 1 || c < 1 || ho < 0 || wo < 0 || dtype < U8 || dtype > F64 || interp < NEAREST ||
        interp > BICUBIC || border < CONSTANT || border > WRAP)
        return -1;
    cpu_detect();
    warp_t p = {(const uint8_t *)src, (uint8_t *)dst, dst_to_src, fill, n, h, w, c, ho, wo, dtype, interp, border,
                cubic_a, NULL};
    /* a thread per 65536 values computed at most: a thread's start costs as much as many
       thousands of them */
    const int64_t rows = n * ho, work = rows * wo * c;
    int64_t most = work / 65536 + 1;
    threads = (int)(threads < most ? threads : most);
    perm_t one, *perms = NULL; /* one image (the per-sample call): no allocation */
    if (COPIES && n > 0 && ho > 0 && wo > 0) perms = n == 1 ? &one : malloc(n * sizeof(perm_t));
    const int64_t exact = perms ? find_permutations(&p, perms, threads) : 0;
    /* steps of whole images where possible (each step copies its images once), at least
       16 steps per thread for balance */
    int64_t step = rows / (16 * (int64_t)(threads > 0 ? threads : 1));
    step = step > ho ? step / ho * ho : step;
    parallel(warp_rows, &p, rows, threads, step < BAND ? BAND : step);
    if (perms != &one) free(perms);
    LAST_EXACT = exact;
    return 0;
}

/* How many images (or ragged outputs) of the last aa_warp / aa_warp_ragged call of this
   process took the copy path of exact permutations: a debugging aid for tests */
AA_EXPORT int64_t aa_last_exact_count(void) { return LAST_EXACT; }

/* Turns the copy path on (1, the default) or off (0) for later calls; returns the old
   setting. For tests: with it off, every image takes its interpolation's warp. */
AA_EXPORT int aa_set_permutation_copies(int on) {
    const int was = COPIES;
    COPIES = on != 0;
    return was;
}

/* Ragged batches: output i (ho, wo, c) samples the image srcs[i] of size (hs[i], ws[i])
   (several outputs may share one image: copies of a source). Each output is warped as a
   batch of one, so its pixels are those aa_warp gives that image. */
typedef struct {
    warp_t base;
    const void *const *srcs;
    const int64_t *hs, *ws;
    int64_t exact; /* outputs that took the copy path (atomic) */
} ragged_t;

static void warp_ragged_images(const void *v, int64_t i0, int64_t i1) {
    ragged_t *r = (ragged_t *)v;
    const int64_t out = r->base.ho * r->base.wo * r->base.c * ITEMSIZE(r->base.dtype);
    for (int64_t i = i0; i < i1; i++) {
        warp_t p = r->base;
        p.src = (const uint8_t *)r->srcs[i], p.dst = r->base.dst + i * out, p.m = r->base.m + 9 * i;
        p.n = 1, p.h = r->hs[i], p.w = r->ws[i];
        perm_t q;
        if (COPIES && permutation_of(p.m, &q) && permutation_copies_exactly(&p, p.src, p.h, p.w)) {
            rows_permuted(&p, &q, 0, p.ho);
            __atomic_fetch_add(&r->exact, 1, __ATOMIC_RELAXED);
        } else {
            interpolated_rows(&p, 0, p.ho);
        }
    }
}

AA_EXPORT int aa_warp_ragged(const void *const *srcs, void *dst, const double *dst_to_src, const double *fill,
                   const int64_t *hs, const int64_t *ws, int64_t n, int64_t c, int64_t ho, int64_t wo, int dtype,
                   int interp, int border, double cubic_a, int threads) {
    if (n < 0 || c < 1 || ho < 0 || wo < 0 || dtype < U8 || dtype > F64 || interp < NEAREST || interp > BICUBIC ||
        border < CONSTANT || border > WRAP)
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (hs[i] < 1 || ws[i] < 1) return -1;
    cpu_detect();
    ragged_t r = {{NULL, (uint8_t *)dst, dst_to_src, fill, 1, 1, 1, c, ho, wo, dtype, interp, border,
                   cubic_a, NULL},
                  srcs, hs, ws, 0};
    const int64_t most = n * ho * wo * c / 65536 + 1, step = n / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(warp_ragged_images, &r, n, (int)(threads < most ? threads : most), step < 1 ? 1 : step);
    LAST_EXACT = r.exact;
    return 0;
}

AA_EXPORT int aa_blur_ragged(const void *const *srcs, void *const *dsts, const double *sigma, const double *fill,
                   const int64_t *hs, const int64_t *ws, int64_t n, int64_t c, int dtype, int border, int threads) {
    if (n < 0 || c < 1 || dtype < U8 || dtype > F64 || border < CONSTANT || border > WRAP) return -1;
    int64_t work = 0;
    for (int64_t i = 0; i < n; i++) {
        if (hs[i] < 1 || ws[i] < 1) return -1;
        work += hs[i] * ws[i] * c;
    }
    blur_t p = {srcs, dsts, sigma, fill, hs, ws, c, dtype, border};
    const int64_t most = work / 16384 + 1, step = n / (16 * (int64_t)(threads > 0 ? threads : 1));
    parallel(blur_images, &p, n, (int)(threads < most ? threads : most), step < 1 ? 1 : step);
    return 0;
}

AA_EXPORT int aa_blur(const void *src, void *dst, const double *sigma, const double *fill, int64_t n, int64_t h, int64_t w,
            int64_t c, int dtype, int border, int threads) {
    if (n < 0 || h < 1 || w < 1 || c < 1 || dtype < U8 || dtype > F64 || border < CONSTANT || border > WRAP) return -1;
    const int64_t m = n > 0 ? n : 1, bytes = h * w * c * ITEMSIZE(dtype);
    const void **srcs = malloc(sizeof(void *) * m);
    void **dsts = malloc(sizeof(void *) * m);
    int64_t *hs = malloc(sizeof(int64_t) * m), *ws = malloc(sizeof(int64_t) * m);
    int rc = -2;
    if (srcs && dsts && hs && ws) {
        for (int64_t i = 0; i < n; i++)
            srcs[i] = (const uint8_t *)src + i * bytes, dsts[i] = (uint8_t *)dst + i * bytes, hs[i] = h, ws[i] = w;
        rc = aa_blur_ragged(srcs, dsts, sigma, fill, hs, ws, n, c, dtype, border, threads);
    }
    free(srcs), free(dsts), free(hs), free(ws);
    return rc;
}
