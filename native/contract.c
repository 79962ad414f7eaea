/*
 * native/contract.c — float32 GEMM ("contract") for the wasm heap, as a Node N-API addon.
 *
 *   contract(mem: Float32Array, params: Int32Array) -> undefined
 *
 *   params = [M, N, K, a, sam, sak, b, sbk, sbn, c, scm, scn, threads, nb,
 *             (count, sa, sb, sc) x nb]                      (batch dims, outermost first)
 *   for every batch index, m < M, n < N:
 *     C[c + m*scm + n*scn] = sum_{k<K} A[a + m*sam + k*sak] * B[b + k*sbk + n*sbn]
 *
 * `mem` views the whole (often shared) WebAssembly.Memory; offsets and strides are in
 * elements and may be any value >= 0. C is overwritten (beta = 0) and never aliases A/B.
 *
 * Layout of this file, in data-flow order:
 *   1. vector width and blocking constants     4. small-M paths (decode's x @ W)
 *   2. packing (any strides -> panels)         5. one rectangle of one batch; threads
 *   3. the MR x NR microkernel + blocked loops 6. parameter checks and the N-API glue
 *
 * The big-matrix path is the BLIS loop nest (Van Zee & van de Geijn, "BLIS: A Framework
 * for Rapidly Instantiating BLAS Functionality", TOMS 2015, fig. 2): B is packed into
 * KC x NR panels, A into MR x KC panels, and an MR x NR register tile of C is updated with
 * rank-1 FMAs. Edges are handled by zero-padded packing and a masked write-back.
 */
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. vector width and blocking ------------------------------------------------- */

/* MR x NR accumulators must fit the register file with room for NV loads of B and one
 * broadcast of A: AVX-512 has 32 zmm (14*2 = 28 accumulators), AVX2 16 ymm (6*2 = 12). */
#if defined(__AVX512F__)
#define VW 16
#define MR 14
#elif defined(__AVX2__)
#define VW 8
#define MR 6
#else
#define VW 4 /* plain SSE / NEON-width vectors; GCC lowers them to whatever exists */
#define MR 4
#endif
#define NV 2             /* vectors of B per k in the microkernel */
#define NR (VW * NV)     /* columns of the register tile */
#ifndef KC              /* (KC, MC, NC can be set with -D when tuning) */
#define KC 256           /* k-block: a KC x NR panel of B (32 KiB) stays in L1 */
#endif
#ifndef MC
#define MC (MR * 24)     /* m-block: MC x KC of packed A (~340 KiB) stays in L2 */
#endif
#ifndef NC
#define NC 1024          /* n-block: KC x NC of packed B (1 MiB) about fills L2 */
#endif
#define SMALL_M 4        /* M <= SMALL_M skips packing (matrix-vector products) */
#define MAX_THREADS 64
#define MAX_BATCH_DIMS 8
/* Below this many multiply-adds a second thread costs more (wake-up, cache) than it saves.
 * From `node scratch/native-bench.mjs --sweep` on 2 Zen 5 cores: packed 32x64x64 (128K)
 * took 3.0 us on 1 thread and 5.1 on 2, 32x128x64 (256K) 4.2 vs 2.8; the unpacked
 * matrix-vector path gains from 64K (1x256x256: 3.0 vs 2.0 us). */
#ifndef PARALLEL_MIN_MACS
#define PARALLEL_MIN_MACS (3L << 16)
#endif
#define PARALLEL_MIN_MACS_SMALL (1L << 15)

typedef float vf __attribute__((vector_size(VW * 4)));
static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* x - 0 (unlike 0 + x) folds to a plain broadcast without -ffast-math: -0 - 0 = -0 */
static inline vf vsplat(float x) { return x - (vf){0}; }
static inline float vsum(vf v) {
  float s = 0;
  for (int l = 0; l < VW; l++) s += v[l];
  return s;
}
#define INLINE static inline __attribute__((always_inline))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* One GEMM with element strides: C[M x N] = A[M x K] . B[K x N]. */
typedef struct {
  long M, N, K;
  const float *A; long sam, sak;
  const float *B; long sbk, sbn;
  float *C; long scm, scn;
} Mat3;

/* ---- 2. packing --------------------------------------------------------------------- */

/* Interleave masks for __builtin_shuffle(x, y, ZIP_*): lo = x0 y0 x1 y1 ..., hi = upper halves. */
typedef int32_t vi __attribute__((vector_size(VW * 4)));
#if VW == 16
#define ZIP_LO {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23}
#define ZIP_HI {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31}
#elif VW == 8
#define ZIP_LO {0, 8, 1, 9, 2, 10, 3, 11}
#define ZIP_HI {4, 12, 5, 13, 6, 14, 7, 15}
#else
#define ZIP_LO {0, 4, 1, 5}
#define ZIP_HI {2, 6, 3, 7}
#endif
/* The full-VW stores below may run past a panel row of width W into the next row (which a
 * later store overwrites) only if each panel is a single block of rows. */
_Static_assert(MR <= VW || MR % VW == 0, "transpose_block spill needs MR <= VW or VW | MR");
_Static_assert(NR % VW == 0, "NR must be whole vectors");

/* Transpose-copy a rows x cols block (rows, cols <= VW) of src, element (r, c) at
 * src[r*rs + c] (contiguous along c), into dst[c*ld + r]. Used where a panel's short side
 * is strided and k is contiguous (A row-major, B^T). A full block writes all VW lanes of
 * each dst row (rows >= `rows` as zeros), so dst needs VW floats of slack after the panel. */
static void transpose_block(const float *src, long rs, int rows, int cols, float *dst, long ld) {
  if (cols < VW) {
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++) dst[c * ld + r] = src[r * rs + c];
    return;
  }
  vf v[VW], t[VW];
  const vi lo = ZIP_LO, hi = ZIP_HI;
#pragma GCC unroll 16
  for (int r = 0; r < VW; r++) v[r] = r < rows ? vload(src + r * rs) : (vf){0};
  /* log2(VW) rounds of zipping row i with row i + VW/2 transpose the block */
#pragma GCC unroll 4
  for (int round = 1; round < VW; round *= 2) {
#pragma GCC unroll 8
    for (int i = 0; i < VW / 2; i++) {
      t[2 * i] = __builtin_shuffle(v[i], v[i + VW / 2], lo);
      t[2 * i + 1] = __builtin_shuffle(v[i], v[i + VW / 2], hi);
    }
    memcpy(v, t, sizeof v);
  }
#pragma GCC unroll 16
  for (int c = 0; c < VW; c++) vstore(dst + c * ld, v[c]);
}

/* Pack `len` rows/columns of an operand into zero-padded panels of width W:
 *   dst[p*W*kc + k*W + i] = X[(p*W + i)*s_out + k*s_k]       (i < W, k < kc)
 * For A: W = MR, s_out = sam, s_k = sak. For B: W = NR, s_out = sbn, s_k = sbk. */
static void pack(const float *X, long s_out, long s_k, long len, long kc, int W, float *dst) {
  if (s_out == 1) { /* panel rows contiguous: copy row k of every panel, reading X in order */
    for (long k = 0; k < kc; k++) {
      const float *x = X + k * s_k;
      float *d = dst + k * W;
      long p0 = 0;
      for (; p0 + W <= len; p0 += W, d += W * kc) memcpy(d, x + p0, W * sizeof(float));
      if (p0 < len) {
        memcpy(d, x + p0, (len - p0) * sizeof(float));
        memset(d + (len - p0), 0, (W - (len - p0)) * sizeof(float));
      }
    }
    return;
  }
  for (long p0 = 0; p0 < len; p0 += W, dst += W * kc) {
    int w = (int)MIN((long)W, len - p0);
    const float *x = X + p0 * s_out;
    if (w < W) /* zero the padding lanes once; the copies below leave them alone */
      for (long k = 0; k < kc; k++) memset(dst + k * W + w, 0, (W - w) * sizeof(float));
    if (s_k == 1) { /* k contiguous: transpose VW x VW blocks */
      for (int i0 = 0; i0 < w; i0 += VW)
        for (long k0 = 0; k0 < kc; k0 += VW)
          transpose_block(x + i0 * s_out + k0, s_out, MIN(VW, w - i0), (int)MIN((long)VW, kc - k0),
                          dst + k0 * W + i0, W);
    } else {
      for (long k = 0; k < kc; k++)
        for (int i = 0; i < w; i++) dst[k * W + i] = x[i * s_out + k * s_k];
    }
  }
}

/* ---- 3. microkernel and blocked loops ------------------------------------------------- */

/* acc[MR x NR] = sum_k pa[k][:] (x) pb[k][:]; then C tile = acc (or += acc when `add`),
 * writing only the valid mr x nr corner. pa: packed MR x kc panel, pb: packed kc x NR. */
static void micro(long kc, const float *restrict pa, const float *restrict pb, float *c,
                  long scm, long scn, int mr, int nr, int add) {
  vf acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    __builtin_prefetch(c + i * scm, 1); /* C comes back only after kc FMAs: fetch it now */
    __builtin_prefetch(c + i * scm + (NR - 1) * scn, 1);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};
  }
#pragma GCC unroll 2
  for (long k = 0; k < kc; k++, pa += MR, pb += NR) {
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = *(const vf *)(pb + v * VW); /* pb is 64B-aligned */
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      vf a = vsplat(pa[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] += a * b[v];
    }
  }
  if (mr == MR && nr == NR && scn == 1) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        float *p = c + i * scm + v * VW;
        vstore(p, add ? vload(p) + acc[i][v] : acc[i][v]);
      }
    return;
  }
  float t[MR][NR] __attribute__((aligned(64)));
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) vstore(&t[i][v * VW], acc[i][v]);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) {
      float *p = c + i * scm + j * scn;
      *p = add ? *p + t[i][j] : t[i][j];
    }
}

/* Per-thread packing buffers, sized once for the fixed block sizes. */
#define PACK_A_FLOATS ((long)MC * KC + VW) /* + slack for transpose_block's last store */
#define PACK_B_FLOATS ((long)KC * (((NC + NR - 1) / NR) * NR) + VW)
static __thread float *tl_pack;

static float *pack_buffers(void) {
  if (!tl_pack) tl_pack = aligned_alloc(64, (PACK_A_FLOATS + PACK_B_FLOATS) * sizeof(float));
  return tl_pack;
}

/* The BLIS loop nest for one GEMM. Returns 0 when out of memory. */
static int gemm_packed(const Mat3 *g) {
  float *pa = pack_buffers(), *pb = pa + PACK_A_FLOATS;
  if (!pa) return 0;
  for (long jc = 0; jc < g->N; jc += NC) {
    long nc = MIN((long)NC, g->N - jc);
    for (long pc = 0; pc < g->K; pc += KC) {
      long kc = MIN((long)KC, g->K - pc);
      pack(g->B + pc * g->sbk + jc * g->sbn, g->sbn, g->sbk, nc, kc, NR, pb);
      for (long ic = 0; ic < g->M; ic += MC) {
        long mc = MIN((long)MC, g->M - ic);
        pack(g->A + ic * g->sam + pc * g->sak, g->sam, g->sak, mc, kc, MR, pa);
        for (long jr = 0; jr < nc; jr += NR)
          for (long ir = 0; ir < mc; ir += MR)
            micro(kc, pa + ir * kc, pb + jr * kc,
                  g->C + (ic + ir) * g->scm + (jc + jr) * g->scn, g->scm, g->scn,
                  (int)MIN((long)MR, mc - ir), (int)MIN((long)NR, nc - jr), pc > 0);
      }
    }
  }
  return 1;
}

/* ---- 4. small M: matrix-vector products without packing --------------------------- */

/* B rows contiguous (sbn == 1). For MM (<= SMALL_M) rows of C and nv*VW columns from n0,
 * keep the whole C chunk in registers and stream B row by row: acc[m] += A[m,k] * B[k,:].
 * t[m][:] receives the chunk. */
INLINE void rows_chunk(int MM, int nv, const Mat3 *g, long n0, float t[SMALL_M][8 * VW]) {
  vf acc[SMALL_M][8];
  for (int m = 0; m < MM; m++)
    for (int v = 0; v < nv; v++) acc[m][v] = (vf){0};
  const float *a = g->A, *b = g->B + n0;
  for (long k = 0; k < g->K; k++, a += g->sak, b += g->sbk) {
    vf bv[8];
    for (int v = 0; v < nv; v++) bv[v] = vload(b + v * VW);
    for (int m = 0; m < MM; m++) {
      vf av = vsplat(a[m * g->sam]);
      for (int v = 0; v < nv; v++) acc[m][v] += av * bv[v];
    }
  }
  for (int m = 0; m < MM; m++)
    for (int v = 0; v < nv; v++) vstore(&t[m][v * VW], acc[m][v]);
}

/* B columns and A rows contiguous in k (sbk == sak == 1), e.g. x @ W^T: C[m, n] is a dot
 * product. Handles MM rows and nj columns from n0; t[m][j] receives C[m, n0 + j]. */
INLINE void dots_chunk(int MM, int nj, const Mat3 *g, long n0, float t[SMALL_M][8 * VW]) {
  vf acc[SMALL_M][8];
  for (int m = 0; m < MM; m++)
    for (int j = 0; j < nj; j++) acc[m][j] = (vf){0};
  const float *b = g->B + n0 * g->sbn;
  long k = 0;
  for (; k + VW <= g->K; k += VW) {
    vf bv[8];
    for (int j = 0; j < nj; j++) bv[j] = vload(b + j * g->sbn + k);
    for (int m = 0; m < MM; m++) {
      vf av = vload(g->A + m * g->sam + k);
      for (int j = 0; j < nj; j++) acc[m][j] += av * bv[j];
    }
  }
  for (int m = 0; m < MM; m++)
    for (int j = 0; j < nj; j++) {
      float s = vsum(acc[m][j]);
      for (long kk = k; kk < g->K; kk++) s += g->A[m * g->sam + kk] * b[j * g->sbn + kk];
      t[m][j] = s;
    }
}

/* One instantiation per (MM, width): M = 1 gets 8 independent FMA chains, larger M get
 * 4 per row (MM*4 accumulators), which hides the 4-cycle FMA latency either way. */
#define SMALL_DISPATCH(FN, W1, W, g, n0, t) \
  switch ((g)->M) {                         \
    case 1: FN(1, W1, g, n0, t); break;     \
    case 2: FN(2, W, g, n0, t); break;      \
    case 3: FN(3, W, g, n0, t); break;      \
    default: FN(4, W, g, n0, t); break;     \
  }

static void gemm_small_m(const Mat3 *g) {
  float t[SMALL_M][8 * VW] __attribute__((aligned(64)));
  int rows = g->sbn == 1; /* else sbk == sak == 1: dot products */
  int wide = rows ? (g->M == 1 ? 8 : 4) * VW : (g->M == 1 ? 8 : 4);
  int narrow = rows ? VW : 1;
  for (long n0 = 0; n0 < g->N;) {
    int w = g->N - n0 >= wide ? wide : g->N - n0 >= narrow ? narrow : 0;
    if (w == wide) {
      if (rows) { SMALL_DISPATCH(rows_chunk, 8, 4, g, n0, t); }
      else { SMALL_DISPATCH(dots_chunk, 8, 4, g, n0, t); }
    } else if (w == narrow) {
      if (rows) { SMALL_DISPATCH(rows_chunk, 1, 1, g, n0, t); }
      else { SMALL_DISPATCH(dots_chunk, 1, 1, g, n0, t); }
    } else { /* fewer than VW columns left (rows case only): scalar */
      w = (int)(g->N - n0);
      for (long m = 0; m < g->M; m++)
        for (int j = 0; j < w; j++) {
          float s = 0;
          for (long k = 0; k < g->K; k++) s += g->A[m * g->sam + k * g->sak] * g->B[k * g->sbk + n0 + j];
          t[m][j] = s;
        }
    }
    for (long m = 0; m < g->M; m++)
      for (int j = 0; j < w; j++) g->C[m * g->scm + (n0 + j) * g->scn] = t[m][j];
    n0 += w;
  }
}

/* ---- 5. one rectangle of one batch; batches and threads -------------------------- */

/* Does the no-packing path apply? Needs M small and B rows, or A rows and B columns,
 * contiguous. */
static int small_m_fits(const Mat3 *g) {
  return g->M <= SMALL_M && (g->sbn == 1 || (g->sbk == 1 && g->sak == 1));
}

/* C = A.B for one matrix triple. Small N is the transpose of small M: C^T = B^T A^T.
 * Returns 0 when out of memory. */
static int gemm_one(const Mat3 *g) {
  if (g->M == 0 || g->N == 0) return 1;
  if (g->K == 0) {
    for (long m = 0; m < g->M; m++)
      for (long n = 0; n < g->N; n++) g->C[m * g->scm + n * g->scn] = 0;
    return 1;
  }
  if (small_m_fits(g)) { gemm_small_m(g); return 1; }
  Mat3 t = {g->N, g->M, g->K, g->B, g->sbn, g->sbk, g->A, g->sak, g->sam, g->C, g->scn, g->scm};
  if (small_m_fits(&t)) { gemm_small_m(&t); return 1; }
  return gemm_packed(g);
}

/* A whole call: one Mat3 at batch index 0, plus the batch dims that shift it. */
typedef struct {
  Mat3 g;
  int nb;
  long count[MAX_BATCH_DIMS], sa[MAX_BATCH_DIMS], sb[MAX_BATCH_DIMS], sc[MAX_BATCH_DIMS];
  long nbatch; /* product of counts */
} Problem;

/* How one call is split over T threads: whole batches per thread, or (when there are
 * too few batches to balance) a tm x tn grid of MR x NR-aligned rectangles of every batch. */
typedef struct {
  const Problem *p;
  int T, by_batch, tm, tn;
  atomic_int done, failed;
} Job;

static void run_share(Job *j, int t) {
  const Problem *p = j->p;
  long b0 = 0, b1 = p->nbatch, m0 = 0, m1 = p->g.M, n0 = 0, n1 = p->g.N;
  if (j->by_batch) {
    b0 = p->nbatch * t / j->T, b1 = p->nbatch * (t + 1) / j->T;
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
static int run(const Problem *p, int threads) {
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

/* ---- 6. parameter checks and the N-API glue ------------------------------------------- */

static const char *PARAM_NAMES[14] = {"M", "N", "K", "a", "sam", "sak", "b",
                                      "sbk", "sbn", "c", "scm", "scn", "threads", "nb"};

/* The largest element index an operand touches: off + sum (count - 1) * stride, or -1
 * when some count is 0 (nothing touched). Saturates at INT64_MAX on overflow. */
static int64_t max_index(int64_t off, int n, const int64_t *count, const int64_t *stride) {
  int64_t hi = off, term;
  for (int i = 0; i < n; i++) {
    if (count[i] == 0) return -1;
    if (__builtin_mul_overflow(count[i] - 1, stride[i], &term) || __builtin_add_overflow(hi, term, &hi))
      return INT64_MAX;
  }
  return hi;
}

/* Fill *p from params, or write a message naming the bad value into err and return 0. */
static int parse(const int32_t *q, size_t len, size_t mem_len, float *mem, Problem *p,
                 int *threads, char *err, size_t errlen) {
  if (len < 14) return snprintf(err, errlen, "contract: params has length %zu, expected >= 14", len), 0;
  for (int i = 0; i < 14; i++)
    if (q[i] < (i == 12 ? 1 : 0))
      return snprintf(err, errlen, "contract: params[%d] (%s) = %d, expected >= %d", i,
                      PARAM_NAMES[i], q[i], i == 12 ? 1 : 0), 0;
  int nb = q[13];
  if (nb > MAX_BATCH_DIMS)
    return snprintf(err, errlen, "contract: params[13] (nb) = %d, expected <= %d", nb, MAX_BATCH_DIMS), 0;
  if (len != 14 + 4 * (size_t)nb)
    return snprintf(err, errlen, "contract: params has length %zu, expected 14 + 4*nb = %d (nb = %d)",
                    len, 14 + 4 * nb, nb), 0;
  for (int i = 14; i < 14 + 4 * nb; i++)
    if (q[i] < 0)
      return snprintf(err, errlen, "contract: params[%d] (batch dim %d %s) = %d, expected >= 0", i,
                      (i - 14) / 4, (const char *[]){"count", "sa", "sb", "sc"}[(i - 14) % 4], q[i]), 0;
  *threads = MIN(q[12], MAX_THREADS);
  p->nb = nb, p->nbatch = 1;
  int64_t cnt[3][MAX_BATCH_DIMS + 2], str[3][MAX_BATCH_DIMS + 2];
  for (int d = 0; d < nb; d++) {
    p->count[d] = q[14 + 4 * d], p->sa[d] = q[15 + 4 * d], p->sb[d] = q[16 + 4 * d], p->sc[d] = q[17 + 4 * d];
    p->nbatch *= p->count[d];
    for (int o = 0; o < 3; o++) cnt[o][d] = p->count[d], str[o][d] = q[15 + 4 * d + o];
  }
  int64_t M = q[0], N = q[1], K = q[2];
  /* operand dims after the batch dims: A (M, K), B (K, N), C (M, N); C exists iff M, N > 0,
   * and A, B are read only when K > 0 as well */
  int64_t dims[3][2] = {{M, K}, {K, N}, {M, N}}, strides[3][2] = {{q[4], q[5]}, {q[7], q[8]}, {q[10], q[11]}};
  int64_t offs[3] = {q[3], q[6], q[9]};
  const char *names[3] = {"A", "B", "C"}, *offn[3] = {"a", "b", "c"};
  for (int o = 0; o < 3; o++) {
    if (M == 0 || N == 0 || (o < 2 && K == 0)) continue;
    for (int i = 0; i < 2; i++) cnt[o][nb + i] = dims[o][i], str[o][nb + i] = strides[o][i];
    int64_t hi = max_index(offs[o], nb + 2, cnt[o], str[o]);
    if (hi >= (int64_t)mem_len)
      return snprintf(err, errlen,
                      "contract: operand %s reaches element %lld (offset %s = %lld) but mem has length %zu",
                      names[o], (long long)hi, offn[o], (long long)offs[o], mem_len), 0;
  }
  p->g = (Mat3){M, N, K, mem + q[3], q[4], q[5], mem + q[6], q[7], q[8], mem + q[9], q[10], q[11]};
  return 1;
}

static napi_value contract(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  void *data[2];
  size_t len[2];
  const napi_typedarray_type want[2] = {napi_float32_array, napi_int32_array};
  const char *what[2] = {"contract: mem must be a Float32Array", "contract: params must be an Int32Array"};
  for (int i = 0; i < 2; i++) {
    bool is_ta = false;
    napi_typedarray_type type;
    if (i >= (int)argc || napi_is_typedarray(env, argv[i], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[i], &type, &len[i], &data[i], NULL, NULL) != napi_ok ||
        type != want[i]) {
      napi_throw_type_error(env, NULL, what[i]);
      return NULL;
    }
  }
  Problem p;
  int threads;
  char err[256];
  if (!parse(data[1], len[1], len[0], data[0], &p, &threads, err, sizeof err)) {
    napi_throw_error(env, NULL, err);
    return NULL;
  }
  if (!run(&p, threads)) napi_throw_error(env, NULL, "contract: out of memory for packing buffers");
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "contract", NAPI_AUTO_LENGTH, contract, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "contract", fn) != napi_ok)
    return NULL;
  return exports;
}
