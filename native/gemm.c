/*
 * native/gemm.c — one float32 GEMM with element strides, C = A.B (a Mat3), on one thread:
 * packing, the MR x NR microkernel and the blocked loops for big matrices, and unpacked
 * paths for small M (decode's x @ W). pool.c calls gemm_one() for every rectangle of every
 * batch; mmntp_native.h holds the register tile (VW, MR, NR) and Mat3.
 *
 * Layout of this file, in data-flow order:
 *   1. blocking constants and vector helpers   4. small-M paths (decode's x @ W)
 *   2. packing (any strides -> panels)         5. gemm_one: which path runs a Mat3
 *   3. the MR x NR microkernel + blocked loops 6. dots along a unit-stride batch
 *
 * The big-matrix path is the BLIS loop nest (Van Zee & van de Geijn, "BLIS: A Framework
 * for Rapidly Instantiating BLAS Functionality", TOMS 2015, fig. 2): B is packed into
 * KC x NR panels, A into MR x KC panels, and an MR x NR register tile of C is updated with
 * rank-1 FMAs. Edges are handled by zero-padded packing and a masked write-back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmntp_native.h"

/* ---- 1. blocking and vector helpers ------------------------------------------------- */

#ifndef KC              /* (KC, MC, NC can be set with -D when tuning) */
#define KC 256           /* k-block: a KC x NR panel of B (32 KiB) stays in L1 */
#endif
#ifndef MC
#define MC (MR * 24)     /* m-block: MC x KC of packed A (~340 KiB) stays in L2 */
#endif
#ifndef NC
#define NC 1024          /* n-block: KC x NC of packed B (1 MiB) about fills L2 */
#endif


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

/* B rows contiguous (sbn == 1) and C rows contiguous (scn == 1), M <= STREAM_M: B is read
 * row after row, KB rows at a time, and each block's products are added into C, which stays
 * in L1. Decode's weights come from L3 or memory, not L2 (a model's worth is several MiB per
 * token), and walking B a register-wide column chunk at a time over all K (rows_chunk below)
 * jumps a whole row between loads (4 KiB for N = 1024): one page per load, which the
 * hardware prefetchers do not follow. Measured on a 2-core Xeon for a cold [1 x 256].[256 x
 * 1024]: ~200 us chunked, ~55 us streamed; hot in L2 ~14 vs ~19 us. k runs in order into
 * each C element, so the sums equal rows_chunk's bit for bit. */
#define KB 16
#define STREAM_M 16

INLINE void stream_tile(int MM, int nv, int kb, const float *a, long sam, long sak, const float *b,
                        long sbk, float *c, long scm, int first) {
  vf acc[4][2];
  for (int m = 0; m < MM; m++)
    for (int v = 0; v < nv; v++) acc[m][v] = first ? (vf){0} : vload(c + m * scm + v * VW);
  for (int kk = 0; kk < kb; kk++, a += sak, b += sbk) {
    vf bv[2];
    for (int v = 0; v < nv; v++) bv[v] = vload(b + v * VW);
    for (int m = 0; m < MM; m++) {
      vf av = vsplat(a[m * sam]);
      for (int v = 0; v < nv; v++) acc[m][v] += av * bv[v];
    }
  }
  for (int m = 0; m < MM; m++)
    for (int v = 0; v < nv; v++) vstore(c + m * scm + v * VW, acc[m][v]);
}

#define STREAM_DISPATCH(MM, nv, ...)                    \
  switch (MM) {                                          \
    case 1: stream_tile(1, nv, __VA_ARGS__); break;      \
    case 2: stream_tile(2, nv, __VA_ARGS__); break;      \
    case 3: stream_tile(3, nv, __VA_ARGS__); break;      \
    default: stream_tile(4, nv, __VA_ARGS__); break;     \
  }

static void gemm_stream_rows(const Mat3 *g) {
  for (long k0 = 0; k0 < g->K; k0 += KB) {
    const int kb = (int)MIN((long)KB, g->K - k0), first = k0 == 0;
    const float *B = g->B + k0 * g->sbk;
    for (long m0 = 0; m0 < g->M; m0 += 4) {
      const int mm = (int)MIN(4L, g->M - m0);
      const float *A = g->A + m0 * g->sam + k0 * g->sak;
      float *C = g->C + m0 * g->scm;
      long n0 = 0;
      for (; n0 + 2 * VW <= g->N; n0 += 2 * VW) { STREAM_DISPATCH(mm, 2, kb, A, g->sam, g->sak, B + n0, g->sbk, C + n0, g->scm, first); }
      for (; n0 + VW <= g->N; n0 += VW) { STREAM_DISPATCH(mm, 1, kb, A, g->sam, g->sak, B + n0, g->sbk, C + n0, g->scm, first); }
      for (; n0 < g->N; n0++) /* fewer than VW columns left: scalar, k in order as above */
        for (int m = 0; m < mm; m++) {
          float s = first ? 0.0f : C[m * g->scm + n0];
          for (int kk = 0; kk < kb; kk++) s += A[m * g->sam + kk * g->sak] * B[kk * g->sbk + n0];
          C[m * g->scm + n0] = s;
        }
    }
  }
}

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

/* ---- 5. which path runs one Mat3 ---------------------------------------------------- */

/* Does a no-packing path apply? The streamed one needs M <= STREAM_M and B and C rows
 * contiguous; the chunked ones M <= SMALL_M and B rows, or A rows and B columns, contiguous. */
static int stream_fits(const Mat3 *g) { return g->M <= STREAM_M && g->sbn == 1 && g->scn == 1; }
static int small_m_fits(const Mat3 *g) {
  return g->M <= SMALL_M && (g->sbn == 1 || (g->sbk == 1 && g->sak == 1));
}

/* C = A.B for one matrix triple. Small N is the transpose of small M: C^T = B^T A^T.
 * Returns 0 when out of memory. */
int gemm_one(const Mat3 *g) {
  if (g->M == 0 || g->N == 0) return 1;
  if (g->K == 0) {
    for (long m = 0; m < g->M; m++)
      for (long n = 0; n < g->N; n++) g->C[m * g->scm + n * g->scn] = 0;
    return 1;
  }
  Mat3 t = {g->N, g->M, g->K, g->B, g->sbn, g->sbk, g->A, g->sak, g->sam, g->C, g->scn, g->scm};
  if (stream_fits(g)) { gemm_stream_rows(g); return 1; }
  if (small_m_fits(g)) { gemm_small_m(g); return 1; }
  if (stream_fits(&t)) { gemm_stream_rows(&t); return 1; }
  if (small_m_fits(&t)) { gemm_small_m(&t); return 1; }
  return gemm_packed(g);
}

/* ---- 6. many dot products along a unit-stride batch --------------------------------- */

/* M = N = 1 over an innermost batch dim of unit stride in A, B and C: C[b] = sum_k A[k, b] B[k, b]
 * for b in [b0, b1) (a LayerNorm gain's gradient: a column sum of dY * x_hat). One dot product
 * per b would walk A and B a column at a time, a cache line per element; k-outer walks them
 * row by row, a vector of b at a time. 13 ms -> ~0.3 ms for [4096 x 256] here. */
void dots_along_batch(const Mat3 *g, long b0, long b1) {
  float *c = g->C + b0;
  const long n = b1 - b0;
  for (long b = 0; b < n; b++) c[b] = 0.0f;
  for (long k = 0; k < g->K; k++) {
    const float *a = g->A + k * g->sak + b0, *bb = g->B + k * g->sbk + b0;
    for (long b = 0; b < n; b++) c[b] += a[b] * bb[b];
  }
}
