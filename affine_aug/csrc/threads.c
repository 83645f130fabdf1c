/* threads.c: one call's work handed out to POSIX threads created for the call and joined
   before it returns. Nothing outlives a call, so the library is safe in forked children
   (DataLoader workers, process pools). */

#include "common.h"

typedef struct {
    void (*fn)(const void *, int64_t, int64_t);
    const void *arg;
    int64_t total, step, next; /* next: the first item not yet taken (atomic) */
} work_t;

/* take steps of `step` items until none are left: threads that finish early take more */
static void *run_work(void *v) {
    work_t *wk = (work_t *)v;
    for (;;) {
        const int64_t t0 = __atomic_fetch_add(&wk->next, wk->step, __ATOMIC_RELAXED);
        if (t0 >= wk->total) return NULL;
        wk->fn(wk->arg, t0, t0 + wk->step < wk->total ? t0 + wk->step : wk->total);
    }
}

/* see common.h */
void parallel(void (*fn)(const void *, int64_t, int64_t), const void *arg, int64_t total, int threads, int64_t step) {
    if (threads > total) threads = (int)total;
    if (threads <= 1) {
        if (total > 0) fn(arg, 0, total);
        return;
    }
    if (threads > 256) threads = 256;
    work_t wk = {fn, arg, total, step < 1 ? 1 : step, 0};
    pthread_t ids[256];
    int started[256];
    for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, run_work, &wk) == 0;
    run_work(&wk);
    for (int k = 1; k < threads; k++)
        if (started[k]) pthread_join(ids[k], NULL);
}
