/* threads.c: one call's work handed out to POSIX threads created for the call and joined
   before it returns. Those threads do not outlive the call, so that path is safe in forked
   children (DataLoader workers, process pools).

   Or to an OpenMP runtime's team: aa_use_openmp gives the address of a runtime's
   GOMP_parallel (the library torch runs its operators on; affine_aug.torch passes it).
   That runtime's threads are already running, and after one of torch's operators they
   spin for a while waiting for the next: threads created for the call would share the
   cores with them, while the team puts them to work. The team is used only in the process
   that set it (an OpenMP runtime is not usable in a forked child), and only while the
   caller's thread count for it (aa_team_threads: torch's) is above one. Unlike threads of
   the call's own, a team outlives the call: a child forked afterwards cannot start that
   runtime's threads again, as after any of torch's own parallel operators. */

#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

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

static void run_team(void *v) { run_work(v); }

typedef void (*gomp_parallel_t)(void (*)(void *), void *, unsigned, unsigned);
static gomp_parallel_t TEAM = NULL;
static int TEAM_THREADS = 0; /* the caller's thread count for the team (aa_team_threads) */
static pid_t TEAM_PID = 0;
static int64_t TEAM_CALLS = 0; /* calls run on the team (atomic): a debugging aid for tests */

/* The OpenMP runtime to run calls on: its GOMP_parallel, or NULL for threads of the
   call's own (the default) */
AA_EXPORT void aa_use_openmp(void *gomp_parallel) {
    TEAM = (gomp_parallel_t)gomp_parallel;
    TEAM_PID = getpid();
}

/* The thread count the caller gives the team's runtime now (torch's); the team is used
   only above one */
AA_EXPORT void aa_team_threads(int threads) { __atomic_store_n(&TEAM_THREADS, threads, __ATOMIC_RELAXED); }

/* How many calls of this process ran on the OpenMP team */
AA_EXPORT int64_t aa_team_calls(void) { return __atomic_load_n(&TEAM_CALLS, __ATOMIC_RELAXED); }

/* see common.h */
void parallel(void (*fn)(const void *, int64_t, int64_t), const void *arg, int64_t total, int threads, int64_t step) {
    if (threads > total) threads = (int)total;
    if (threads <= 1) {
        if (total > 0) fn(arg, 0, total);
        return;
    }
    if (threads > 256) threads = 256;
    work_t wk = {fn, arg, total, step < 1 ? 1 : step, 0};
    if (TEAM && getpid() == TEAM_PID && __atomic_load_n(&TEAM_THREADS, __ATOMIC_RELAXED) > 1) {
        TEAM(run_team, &wk, (unsigned)threads, 0);
        __atomic_fetch_add(&TEAM_CALLS, 1, __ATOMIC_RELAXED);
        return;
    }
    pthread_t ids[256];
    int started[256];
    for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, run_work, &wk) == 0;
    run_work(&wk);
    for (int k = 1; k < threads; k++)
        if (started[k]) pthread_join(ids[k], NULL);
}
