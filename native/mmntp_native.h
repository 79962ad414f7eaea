/*
 * native/mmntp_native.h — what the native GEMM addon's files share: the register tile
 * (MR x NR), the limits on threads and batch dims, one GEMM (Mat3), one whole call
 * (Problem), and the functions that cross files.
 *
 *   contract.c  params -> Problem (checks), the N-API glue       calls run()
 *   pool.c      Problem -> shares on threads; batches; the pool   calls gemm_one()
 *   gemm.c      one Mat3: packing, microkernel, blocked loops, small-M paths;
 *               dots along a unit-stride batch
 *   decode.c    decodeStep: one KV-cached step of the backbone, the N-API glue      calls run()
 */
#ifndef MMNTP_NATIVE_H
#define MMNTP_NATIVE_H

/* ---- vector width and register tile ----------------------------------------------- */

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
#define SMALL_M 4        /* M <= SMALL_M skips packing (matrix-vector products) */
#define MAX_THREADS 64
#define MAX_BATCH_DIMS 8

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- vectors of VW floats (GCC vector extensions; loads and stores need no alignment) -- */

#include <string.h>
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

/* One GEMM with element strides: C[M x N] = A[M x K] . B[K x N]. */
typedef struct {
  long M, N, K;
  const float *A; long sam, sak;
  const float *B; long sbk, sbn;
  float *C; long scm, scn;
} Mat3;

/* A whole call: one Mat3 at batch index 0, plus the batch dims that shift it. */
typedef struct {
  Mat3 g;
  int nb;
  long count[MAX_BATCH_DIMS], sa[MAX_BATCH_DIMS], sb[MAX_BATCH_DIMS], sc[MAX_BATCH_DIMS];
  long nbatch; /* product of counts */
} Problem;

/* Hidden: shared between this addon's files only, never exported from the .node (and
 * called directly, not through the PLT). */
#pragma GCC visibility push(hidden)

/* C = A.B for one matrix triple (gemm.c). Returns 0 when out of memory. */
int gemm_one(const Mat3 *g);

/* C[b] = A[:, b] . B[:, b] for b in [b0, b1), batch index b at unit stride in A, B and C, M = N = 1
 * (gemm.c). */
void dots_along_batch(const Mat3 *g, long b0, long b1);

/* Run the problem on up to `threads` threads (pool.c). Returns 0 when out of memory. */
int run(const Problem *p, int threads);

#ifdef NAPI_VERSION
/* Adds decodeStep (decode.c: one KV-cached step of the backbone) to the addon's exports. */
int register_decode(napi_env env, napi_value exports);
#endif

#pragma GCC visibility pop

#endif
