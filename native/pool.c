/*
 * native/pool.c — one call (a Problem) on up to `threads` threads: how it is split (whole
 * batches per thread, or a grid of MR x NR-aligned rectangles of every batch), the batch
 * loop each share runs (gemm_one per matrix triple, gemm.c), and the persistent pthread
 * pool that runs the shares. contract.c calls run() once per contract() call.
 *
 * Layout of this file, in data-flow order:
 *   1. the split of a call into shares (Job, run_share, plan)
 *   2. the persistent pool and run()
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "mmntp_native.h"

/* Below this many multiply-adds a second thread costs more (wake-up, cache) than it saves.
 * From `node scratch/native-bench.mjs --sweep` on 2 Zen 5 cores: packed 32x64x64 (128K)
 * took 3.0 us on 1 thread and 5.1 on 2, 32x128x64 (256K) 4.2 vs 2.8; the unpacked
 * matrix-vector path gains from 64K (1x256x256: 3.0 vs 2.0 us). */
#ifndef PARALLEL_MIN_MACS
#define PARALLEL_MIN_MACS (3L << 16)
#endif
#define PARALLEL_MIN_MACS_SMALL (1L << 15)

/* ---- 1. the split of a call into shares; a share's batch loop ---------------------- */

/* How one call is split over T threads: whole batches per thread, or (when there are
 * too few batches to balance) a tm x tn grid of MR x NR-aligned rectangles of every batch. */
typedef struct {
  const Problem *p;
  int T, by_batch, tm, tn;
  atomic_int done, failed;
} Job;

/* M = N = 1 along one batch dim of unit stride everywhere: `dots_along_batch` runs the share. */
static int dots_problem(const Problem *p) {
  return p->g.M == 1 && p->g.N == 1 && p->nb == 1 && p->sa[0] == 1 && p->sb[0] == 1 && p->sc[0] == 1;
}

static void run_share(Job *j, int t) {
  const Problem *p = j->p;
  long b0 = 0, b1 = p->nbatch, m0 = 0, m1 = p->g.M, n0 = 0, n1 = p->g.N;
  if (j->by_batch) {
    b0 = p->nbatch * t / j->T, b1 = p->nbatch * (t + 1) / j->T;
    if (dots_problem(p)) {
      dots_along_batch(&p->g, b0, b1);
      return;
    }
  } else {
    long mt = (p->g.M + MR - 1) / MR, nt = (p->g.N + NR - 1) / NR;
    int it = t / j->tn, jt = t % j->tn;
    m0 = MIN(p->g.M, mt * it / j->tm * MR), m1 = MIN(p->g.M, mt * (it + 1) / j->tm * MR);
    n0 = MIN(p->g.N, nt * jt / j->tn * NR), n1 = MIN(p->g.N, nt * (jt + 1) / j->tn * NR);
  }
  for (long b = b0; b < b1; b++) {
    Mat3 s = p->g;
    for (long d = p->nb - 1, rest = b; d >= 0; d--) { /* innermost batch dim varies fastest */
      long i = rest % p->count[d];
      rest /= p->count[d];
      s.A += i * p->sa[d], s.B += i * p->sb[d], s.C += i * p->sc[d];
    }
    s.A += m0 * s.sam, s.B += n0 * s.sbn, s.C += m0 * s.scm + n0 * s.scn;
    s.M = m1 - m0, s.N = n1 - n0;
    if (!gemm_one(&s)) atomic_store(&j->failed, 1);
  }
}

/* Pick T (<= wanted) and the split. Few multiply-adds stay on one thread. */
static void plan(Job *j, int wanted) {
  const Problem *p = j->p;
  double macs = (double)p->nbatch * p->g.M * p->g.N * p->g.K;
  int small = p->g.M <= SMALL_M || p->g.N <= SMALL_M;
  j->T = macs < (small ? PARALLEL_MIN_MACS_SMALL : PARALLEL_MIN_MACS) ? 1 : wanted;
  if (dots_problem(p)) { /* split the batch range, whatever its length */
    j->T = (int)MIN((long)j->T, p->nbatch > 0 ? p->nbatch : 1);
    j->by_batch = 1;
    return;
  }
  j->by_batch = p->nbatch >= j->T && (p->nbatch % j->T == 0 || p->nbatch >= 4 * j->T);
  j->tm = j->tn = 1;
  if (j->by_batch || j->T == 1) return;
  long mt = (p->g.M + MR - 1) / MR, nt = (p->g.N + NR - 1) / NR;
  for (int T = j->T; T >= 1; T--) { /* the largest T with a valid grid, least work per thread */
    double best = 1e300;
    for (int a = 1; a <= T; a++) {
      int b = T / a;
      if (a * b != T || a > mt || b > nt) continue;
      long tiles_m = (mt + a - 1) / a, tiles_n = (nt + b - 1) / b;
      /* cycles per k, roughly: the MACs (~32 per cycle with AVX-512) plus the packing
       * each thread repeats, ~1 cycle per element of its A and B rectangles */
      double cost = (double)tiles_m * tiles_n * MR * NR / (2 * VW) + tiles_m * MR + tiles_n * NR;
      if (cost < best) best = cost, j->tm = a, j->tn = b;
    }
    if (best < 1e300) { j->T = T; return; }
  }
}

/* ---- 2. the persistent pool ------------------------------------------------------- */

/* The persistent pool. A job is split into T equal shares, claimed from `claim` =
 * (generation << 32 | next share): the caller starts on share 0 at once and keeps claiming,
 * so a worker still waking up (a futex wake from sleep is 30-60 us here) costs at most its
 * share, never a wait. Workers are woken by bumping `state` = (generation << 8 | T). An
 * idle worker spins SPIN_NS (back-to-back calls find it awake), then sleeps on the condvar.
 * A worker touches the job only through a share it claimed under the job's generation, so
 * the caller (which waits for all T shares) is still inside run() and the job is alive. */
#define SPIN_NS 100000L
static struct {
  pthread_mutex_t mu, call; /* mu guards sleeping; call admits one multi-threaded caller */
  pthread_cond_t cv;
  _Atomic uint64_t state, claim;
  Job *job;
  int size;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, 0};

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Claim and run shares of generation `gen` until none are left. */
static void work_shares(uint64_t gen, int T) {
  for (;;) {
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    if (c >> 32 != gen || (int)(c & 0xffffffff) >= T) return;
    if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel,
                                               memory_order_relaxed))
      continue;
    Job *j = pool.job;
    run_share(j, (int)(c & 0xffffffff));
    atomic_fetch_add_explicit(&j->done, 1, memory_order_release); /* j may end after this */
  }
}

static void *worker(void *arg) {
  uint64_t packed = (uint64_t)(uintptr_t)arg, seen = packed >> 8; /* generation at creation */
  int id = (int)(packed & 0xff);
  for (;;) {
    uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
    for (long t0 = now_ns(), i = 0; s >> 8 == seen; i++) {
      if ((i & 255) == 255 && now_ns() - t0 > SPIN_NS) {
        pthread_mutex_lock(&pool.mu);
        while ((s = atomic_load_explicit(&pool.state, memory_order_acquire)) >> 8 == seen)
          pthread_cond_wait(&pool.cv, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
        break;
      }
      cpu_relax();
      s = atomic_load_explicit(&pool.state, memory_order_acquire);
    }
    seen = s >> 8;
    if (id < (int)(s & 0xff)) work_shares(seen & 0xffffffff, (int)(s & 0xff));
  }
  return NULL;
}

/* Run the problem on up to `threads` threads. Returns 0 when out of memory. */
int run(const Problem *p, int threads) {
  Job j = {.p = p};
  atomic_init(&j.done, 0);
  atomic_init(&j.failed, 0);
  plan(&j, threads);
  if (j.T > 1 && pthread_mutex_trylock(&pool.call) != 0) j.T = 1, plan(&j, 1); /* pool busy */
  if (j.T == 1) {
    run_share(&j, 0);
    return !atomic_load(&j.failed);
  }
  uint64_t gen = (atomic_load(&pool.state) >> 8) & 0xffffffff; /* of the previous job */
  while (pool.size < j.T - 1) { /* grow: new workers start at the previous generation */
    pthread_t th;
    uintptr_t arg = (uintptr_t)(gen << 8 | (uint64_t)(pool.size + 1));
    if (pthread_create(&th, NULL, worker, (void *)arg) != 0) break;
    pthread_detach(th);
    pool.size++;
  }
  if (j.T - 1 > pool.size) plan(&j, pool.size + 1); /* could not grow: re-plan */
  gen = (gen + 1) & 0xffffffff;
  pool.job = &j;
  atomic_store_explicit(&pool.claim, gen << 32, memory_order_release);
  atomic_store_explicit(&pool.state, gen << 8 | (uint64_t)j.T, memory_order_release);
  pthread_mutex_lock(&pool.mu);
  pthread_cond_broadcast(&pool.cv);
  pthread_mutex_unlock(&pool.mu);
  work_shares(gen, j.T);
  while (atomic_load_explicit(&j.done, memory_order_acquire) < j.T) cpu_relax();
  pthread_mutex_unlock(&pool.call);
  return !atomic_load(&j.failed);
}
