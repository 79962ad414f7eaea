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
 * Files, in data-flow order (mmntp_native.h declares what crosses them):
 *   contract.c  this file: parameter checks and the N-API glue -> a Problem
 *   pool.c      a Problem split over threads (batches or rectangles); the persistent pool
 *   gemm.c      one GEMM: packing, the MR x NR microkernel and blocked loops (BLIS), and
 *               unpacked small-M paths (decode's x @ W)
 */
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "mmntp_native.h"

/* ---- parameter checks and the N-API glue ---------------------------------------------- */

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
      napi_set_named_property(env, exports, "contract", fn) != napi_ok || !register_decode(env, exports))
    return NULL;
  return exports;
}
