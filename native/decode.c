/*
 * native/decode.c — one KV-cached decode step of mmntp's backbone (src/backbone/transformer.ts)
 * in one call, for src/generate/native-decoder.ts:
 *
 *   decodeStep(w, spec, cache, scratch, tokens, positions, logits) -> undefined
 *
 * w: every weight in one Float32Array (offsets in spec); spec: Int32Array, layout in SPEC_*
 * below; cache: Float32Array [L, 2 (k, v), B, S, H, Dh]; scratch: Float32Array of at least
 * scratch_floats(); tokens: Int32Array [B], the tokens at cache slot `slot`; positions:
 * Int32Array [B, 2], each row's position (learned, rope: column 0) or (row, column) ids
 * (rope2d); logits: Float32Array [B, V], written.
 *
 * Why a whole step: a decoded token of the benchmark GPT is ~100 small jax-js kernels, and on
 * a 2-core Xeon their dispatch (~6-15 us each) cost more than the arithmetic; here the step is
 * one N-API call whose time is the weights streamed once (gemm.c's small-M path, through the
 * pool for more threads) plus a little vector work. The maths is transformer.ts's: GPT-2
 * pre-LN blocks, LayerNorm eps 1e-5, tanh-GELU or SwiGLU, learned / rotary (rotate-half,
 * base 10000) / 2-D axial rotary positions, an untied head without bias; summation orders
 * differ from jax-js's, so logits agree to float32 rounding, not bit for bit.
 */
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "mmntp_native.h"

enum { SPEC_V, SPEC_S, SPEC_D, SPEC_L, SPEC_H, SPEC_F, SPEC_MLP, SPEC_POS, SPEC_B, SPEC_SLOT, SPEC_THREADS, SPEC_CTX,
       SPEC_TOK, SPEC_POS_TABLE, SPEC_LNF_G, SPEC_LNF_B, SPEC_HEAD, SPEC_LAYERS };
/* per layer, from SPEC_LAYERS + 14 * l */
enum { L_LN1G, L_LN1B, L_QKVW, L_QKVB, L_OUTW, L_OUTB, L_LN2G, L_LN2B, L_UPW, L_UPB, L_GATEW, L_GATEB, L_DOWNW, L_DOWNB, L_COUNT };
enum { MLP_GELU, MLP_SWIGLU };
enum { POS_LEARNED, POS_ROPE, POS_ROPE2D };

/* sum_i a[i] b[i] in four vector accumulators: without -ffast-math GCC keeps a plain float sum
 * in order, one dependent add after another (~4 cycles each), which made attention's scores
 * the slowest part of a batch-8 step. */
static float dot(const float *a, const float *b, long n) {
  vf acc[4] = {{0}, {0}, {0}, {0}};
  long i = 0;
  for (; i + 4 * VW <= n; i += 4 * VW)
    for (int u = 0; u < 4; u++) acc[u] += vload(a + i + u * VW) * vload(b + i + u * VW);
  for (; i + VW <= n; i += VW) acc[0] += vload(a + i) * vload(b + i);
  float s = vsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* sum_i a[i], the same way. */
static float sum(const float *a, long n) {
  vf acc[4] = {{0}, {0}, {0}, {0}};
  long i = 0;
  for (; i + 4 * VW <= n; i += 4 * VW)
    for (int u = 0; u < 4; u++) acc[u] += vload(a + i + u * VW);
  for (; i + VW <= n; i += VW) acc[0] += vload(a + i);
  float s = vsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
  for (; i < n; i++) s += a[i];
  return s;
}

typedef struct {
  long V, S, D, L, H, F, B, slot, ctx;
  int mlp, pos, threads;
  const int32_t *spec;
} Shape;

/* y[M x N] = x[M x K] . W[K x N] (+ bias), W row-major as mmntp stores linear weights. */
static int linear(const float *x, const float *W, const float *bias, float *y, long M, long K, long N, int threads) {
  Problem p = {.g = {M, N, K, x, K, 1, W, N, 1, y, N, 1}, .nb = 0, .nbatch = 1};
  if (!run(&p, threads)) return 0;
  if (bias)
    for (long m = 0; m < M; m++)
      for (long n = 0; n < N; n++) y[m * N + n] += bias[n];
  return 1;
}

/* LayerNorm over each of M rows of D: (x - mean) / sqrt(var + 1e-5) * g + b, as norm.ts. */
static void layer_norm(const float *x, const float *g, const float *b, float *y, long M, long D) {
  for (long m = 0; m < M; m++, x += D, y += D) {
    const float mean = sum(x, D) / (float)D;
    for (long i = 0; i < D; i++) y[i] = x[i] - mean;
    const float r = 1.0f / sqrtf(dot(y, y, D) / (float)D + 1e-5f);
    for (long i = 0; i < D; i++) y[i] = y[i] * r * g[i] + b[i];
  }
}

/* Rotate-half rotary embedding of one head vector v[dh] in `blocks` channel blocks, block j by
 * angles p[j] * base^(-i/n), n = dh / (2 * blocks) (rope.ts's rotate). */
static void rotate(float *v, long dh, int blocks, const int32_t *p) {
  const long w = dh / (2 * blocks);
  for (int j = 0; j < blocks; j++) {
    float *x1 = v + 2 * j * w, *x2 = x1 + w;
    for (long i = 0; i < w; i++) {
      const float a = (float)p[j] * expf((float)i * (-logf(10000.0f) / (float)w));
      const float c = cosf(a), s = sinf(a), u = x1[i], t = x2[i];
      x1[i] = u * c - t * s;
      x2[i] = t * c + u * s;
    }
  }
}

/* e^x for each lane (Cephes' expf: x = n ln 2 + r, |r| <= ln 2 / 2, a degree-5 polynomial in
 * r, then 2^n into the exponent bits; ~1 ulp). libm's expf is one call per element, which made
 * GELU and softmax a third of a batch-8 step. Lanes below -87.3 give 0, above 88.7 +inf. */
typedef int32_t vi32 __attribute__((vector_size(VW * 4)));
/* a where the mask is all ones, else b (C's vector extensions have no lane-wise ?:) */
static inline vf vsel(vi32 m, vf a, vf b) { return (vf)(((vi32)a & m) | ((vi32)b & ~m)); }

static inline vf vexp(vf x) {
  const vf hi = vsplat(88.7f), lo = vsplat(-87.3f);
  vf xc = vsel(x > hi, hi, x);
  xc = vsel(xc < lo, lo, xc);
  vf n = xc * 1.44269504088896341f + 0.5f; /* floor(x log2 e + 1/2) */
  vi32 ni = __builtin_convertvector(n, vi32);
  ni -= (vi32)(__builtin_convertvector(ni, vf) > n) & 1; /* truncation rounded up negatives */
  const vf fn = __builtin_convertvector(ni, vf);
  vf r = xc - fn * 0.693359375f - fn * -2.12194440e-4f;
  vf p = vsplat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  vi32 bits = (ni + 127) << 23;
  vf scale;
  memcpy(&scale, &bits, sizeof scale);
  vf out = p * scale;
  return vsel(x > hi, vsplat(INFINITY), vsel(x < lo, vsplat(0.0f), out));
}

/* e^x over n floats in place. */
static void exp_all(float *x, long n) {
  long i = 0;
  for (; i + VW <= n; i += VW) vstore(x + i, vexp(vload(x + i)));
  if (i < n) {
    float t[VW] = {0};
    memcpy(t, x + i, (n - i) * sizeof(float));
    vstore(t, vexp(vload(t)));
    memcpy(x + i, t, (n - i) * sizeof(float));
  }
}

/* x[i] / (1 + e^(-c (x[i] + k x[i]^3))) in place: the tanh GELU as u sigma(2y) (c = 2 sqrt(2/pi),
 * k = 0.044715), or SiLU (c = 1, k = 0), then times mul[i] when given (SwiGLU's up). */
static void sigmoid_gate(float *x, const float *mul, long n, float c, float k) {
  long i = 0;
  for (; i + VW <= n; i += VW) {
    vf u = vload(x + i), y = u / (1.0f + vexp(-c * (u + k * u * u * u)));
    vstore(x + i, mul ? y * vload(mul + i) : y);
  }
  for (; i < n; i++) {
    float u = x[i], y = u / (1.0f + expf(-c * (u + k * u * u * u)));
    x[i] = mul ? y * mul[i] : y;
  }
}

/* Attention of each row's one new query over cache slots 0..slot (the new key and value
 * written at `slot` first), all heads of a slot together: the cache is [B, S, H, Dh], so a
 * slot's keys (and values) for every head are one contiguous run, read once in order. qkv:
 * [B, 3D]; scores: [H, S] scratch; out: [B, D]. */
static void attend(const Shape *s, float *qkv, float *kc, float *vc, const int32_t *positions, float *scores, float *out) {
  const long D = s->D, H = s->H, dh = D / H, S = s->S, n = s->slot + 1;
  const float scale = 1.0f / sqrtf((float)dh);
  for (long b = 0; b < s->B; b++) {
    float *q = qkv + b * 3 * D, *k = kc + (b * S + s->slot) * D, *v = vc + (b * S + s->slot) * D;
    memcpy(k, q + D, D * sizeof(float));
    memcpy(v, q + 2 * D, D * sizeof(float));
    if (s->pos != POS_LEARNED) {
      const int blocks = s->pos == POS_ROPE2D ? 2 : 1;
      for (long h = 0; h < H; h++) {
        rotate(q + h * dh, dh, blocks, positions + 2 * b);
        rotate(k + h * dh, dh, blocks, positions + 2 * b);
      }
    }
    const float *K = kc + b * S * D, *V = vc + b * S * D;
    for (long t = 0; t < n; t++)
      for (long h = 0; h < H; h++) scores[h * S + t] = dot(q + h * dh, K + t * D + h * dh, dh) * scale;
    for (long h = 0; h < H; h++) {
      float *sc = scores + h * S, mx = -INFINITY, sum = 0;
      for (long t = 0; t < n; t++) mx = sc[t] > mx ? sc[t] : mx;
      for (long t = 0; t < n; t++) sc[t] -= mx;
      exp_all(sc, n);
      for (long t = 0; t < n; t++) sum += sc[t];
      for (long t = 0; t < n; t++) sc[t] /= sum;
    }
    float *o = out + b * D;
    memset(o, 0, D * sizeof(float));
    for (long t = 0; t < n; t++)
      for (long h = 0; h < H; h++) {
        const float p = scores[h * S + t], *vt = V + t * D + h * dh;
        float *oh = o + h * dh;
        for (long i = 0; i < dh; i++) oh[i] += p * vt[i];
      }
  }
}

/* Floats of scratch a step needs: x, h, attention out [B, D] each, qkv [B, 3D], up and gate
 * [B, F] each, scores [H, S]. */
static long scratch_floats(const Shape *s) { return s->B * (6 * s->D + 2 * s->F) + s->H * s->S; }

static int step(const Shape *s, const float *w, float *cache, float *scratch, const int32_t *tokens, const int32_t *positions, float *logits) {
  const long B = s->B, D = s->D, F = s->F;
  const int T = s->threads;
  float *x = scratch, *h = x + B * D, *att = h + B * D, *qkv = att + B * D, *up = qkv + 3 * B * D, *gate = up + B * F, *scores = gate + B * F;
  const float *tok = w + s->spec[SPEC_TOK];
  for (long b = 0; b < B; b++)
    for (long i = 0; i < D; i++)
      x[b * D + i] = tok[tokens[b] * D + i] + (s->pos == POS_LEARNED ? w[s->spec[SPEC_POS_TABLE] + positions[2 * b] * D + i] : 0.0f);
  for (long l = 0; l < s->L; l++) {
    const int32_t *o = s->spec + SPEC_LAYERS + L_COUNT * l;
    float *kc = cache + (2 * l) * B * s->S * D, *vc = kc + B * s->S * D;
    layer_norm(x, w + o[L_LN1G], w + o[L_LN1B], h, B, D);
    if (!linear(h, w + o[L_QKVW], w + o[L_QKVB], qkv, B, D, 3 * D, T)) return 0;
    attend(s, qkv, kc, vc, positions, scores, att);
    if (!linear(att, w + o[L_OUTW], w + o[L_OUTB], h, B, D, D, T)) return 0;
    for (long i = 0; i < B * D; i++) x[i] += h[i];
    layer_norm(x, w + o[L_LN2G], w + o[L_LN2B], h, B, D);
    if (!linear(h, w + o[L_UPW], w + o[L_UPB], up, B, D, F, T)) return 0;
    float *act = up;
    if (s->mlp == MLP_SWIGLU) {
      if (!linear(h, w + o[L_GATEW], w + o[L_GATEB], gate, B, D, F, T)) return 0;
      sigmoid_gate(gate, up, B * F, 1.0f, 0.0f); /* silu(gate) * up */
      act = gate;
    } else {
      sigmoid_gate(up, NULL, B * F, 2.0f * 0.7978845608028654f, 0.044715f);
    }
    if (!linear(act, w + o[L_DOWNW], w + o[L_DOWNB], h, B, F, D, T)) return 0;
    for (long i = 0; i < B * D; i++) x[i] += h[i];
  }
  layer_norm(x, w + s->spec[SPEC_LNF_G], w + s->spec[SPEC_LNF_B], h, B, D);
  return linear(h, w + s->spec[SPEC_HEAD], NULL, logits, B, D, s->V, T);
}

/* ---- argument checks and the N-API glue ------------------------------------------------ */

/* Fill *s from spec and check every offset and length, or write a message naming the bad value. */
static int parse(const int32_t *q, size_t n, const size_t *len, Shape *s, char *err, size_t errlen) {
  if (n < SPEC_LAYERS) return snprintf(err, errlen, "decodeStep: spec has length %zu, expected >= %d", n, SPEC_LAYERS), 0;
  *s = (Shape){q[SPEC_V], q[SPEC_S], q[SPEC_D], q[SPEC_L], q[SPEC_H], q[SPEC_F], q[SPEC_B], q[SPEC_SLOT], q[SPEC_CTX], q[SPEC_MLP], q[SPEC_POS], q[SPEC_THREADS], q};
  if (n != SPEC_LAYERS + (size_t)L_COUNT * (size_t)(s->L > 0 ? s->L : 0))
    return snprintf(err, errlen, "decodeStep: spec has length %zu, expected %d + %d per layer (%ld layers)", n, SPEC_LAYERS, L_COUNT, s->L), 0;
  if (s->V < 1 || s->S < 1 || s->D < 1 || s->L < 1 || s->H < 1 || s->F < 1 || s->B < 1 || s->ctx < 1 || s->threads < 1 || s->D % s->H)
    return snprintf(err, errlen, "decodeStep: sizes must be >= 1 and D %% H == 0, got V %ld S %ld D %ld L %ld H %ld F %ld B %ld ctx %ld threads %d", s->V, s->S, s->D, s->L, s->H, s->F, s->B, s->ctx, s->threads), 0;
  const long dh = s->D / s->H;
  if (dh > 1024 || (s->pos != POS_LEARNED && dh % (s->pos == POS_ROPE2D ? 4 : 2)))
    return snprintf(err, errlen, "decodeStep: head width %ld must be <= 1024 and divisible by %d for these positions", dh, s->pos == POS_ROPE2D ? 4 : 2), 0;
  if (s->mlp != MLP_GELU && s->mlp != MLP_SWIGLU) return snprintf(err, errlen, "decodeStep: spec[%d] (mlp) = %d, expected 0 (gelu) or 1 (swiglu)", SPEC_MLP, s->mlp), 0;
  if (s->pos < POS_LEARNED || s->pos > POS_ROPE2D) return snprintf(err, errlen, "decodeStep: spec[%d] (positions) = %d, expected 0, 1 or 2", SPEC_POS, s->pos), 0;
  if (s->slot < 0 || s->slot >= s->S) return snprintf(err, errlen, "decodeStep: slot %ld outside the cache's %ld slots", s->slot, s->S), 0;
  /* each weight's offset and size (no position table unless learned, no gate unless SwiGLU) */
  const long D = s->D, F = s->F;
  if (s->L > 1024) return snprintf(err, errlen, "decodeStep: %ld layers, at most 1024", s->L), 0;
#define CHECK_WEIGHT(AT, SIZE, WHAT, LAYER)                                                                              \
  if ((AT) < 0 || (long)(AT) + (SIZE) > (long)len[0])                                                                    \
    return snprintf(err, errlen, "decodeStep: weight %s (layer %ld) at %ld (+%ld) outside w's %zu floats", WHAT, (long)(LAYER), \
                    (long)(AT), (long)(SIZE), len[0]), 0;
  CHECK_WEIGHT(q[SPEC_TOK], s->V * D, "tok.table", -1)
  if (s->pos == POS_LEARNED) { CHECK_WEIGHT(q[SPEC_POS_TABLE], s->ctx * D, "pos.table", -1) }
  CHECK_WEIGHT(q[SPEC_LNF_G], D, "lnf.g", -1)
  CHECK_WEIGHT(q[SPEC_LNF_B], D, "lnf.b", -1)
  CHECK_WEIGHT(q[SPEC_HEAD], D * s->V, "head.w", -1)
  const long sizes[L_COUNT] = {D, D, D * 3 * D, 3 * D, D * D, D, D, D, D * F, F, D * F, F, F * D, D};
  static const char *names[L_COUNT] = {"ln1.g", "ln1.b", "attn.qkv.w", "attn.qkv.b", "attn.out.w", "attn.out.b", "ln2.g", "ln2.b", "mlp.up.w", "mlp.up.b", "mlp.gate.w", "mlp.gate.b", "mlp.down.w", "mlp.down.b"};
  for (long l = 0; l < s->L; l++)
    for (int i = 0; i < L_COUNT; i++)
      if (s->mlp == MLP_SWIGLU || (i != L_GATEW && i != L_GATEB)) { CHECK_WEIGHT(q[SPEC_LAYERS + L_COUNT * l + i], sizes[i], names[i], l) }
#undef CHECK_WEIGHT
  const long need[6] = {0, 0, 2 * s->L * s->B * s->S * D, scratch_floats(s), s->B, 2 * s->B};
  static const char *arg[6] = {"w", "spec", "cache", "scratch", "tokens", "positions"};
  for (int i = 2; i < 6; i++)
    if ((long)len[i] < need[i]) return snprintf(err, errlen, "decodeStep: %s has %zu elements, expected >= %ld", arg[i], len[i], need[i]), 0;
  if ((long)len[6] < s->B * s->V) return snprintf(err, errlen, "decodeStep: logits has %zu elements, expected >= %ld", len[6], s->B * s->V), 0;
  return 1;
}

static napi_value decode_step(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  static const napi_typedarray_type want[7] = {napi_float32_array, napi_int32_array, napi_float32_array, napi_float32_array, napi_int32_array, napi_int32_array, napi_float32_array};
  static const char *what[7] = {"w: Float32Array", "spec: Int32Array", "cache: Float32Array", "scratch: Float32Array", "tokens: Int32Array", "positions: Int32Array", "logits: Float32Array"};
  void *data[7];
  size_t len[7];
  for (int i = 0; i < 7; i++) {
    bool is_ta = false;
    napi_typedarray_type type;
    if (i >= (int)argc || napi_is_typedarray(env, argv[i], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[i], &type, &len[i], &data[i], NULL, NULL) != napi_ok || type != want[i]) {
      char msg[96];
      snprintf(msg, sizeof msg, "decodeStep: argument %d must be %s", i, what[i]);
      napi_throw_type_error(env, NULL, msg);
      return NULL;
    }
  }
  Shape s;
  char err[256];
  if (!parse(data[1], len[1], len, &s, err, sizeof err)) {
    napi_throw_error(env, NULL, err);
    return NULL;
  }
  const int32_t *tokens = data[4], *positions = data[5];
  for (long b = 0; b < s.B; b++) {
    if (tokens[b] < 0 || tokens[b] >= s.V) {
      snprintf(err, sizeof err, "decodeStep: token %d of row %ld outside the vocabulary [0, %ld)", tokens[b], b, s.V);
      napi_throw_error(env, NULL, err);
      return NULL;
    }
    if (s.pos == POS_LEARNED && (positions[2 * b] < 0 || positions[2 * b] >= s.ctx)) {
      snprintf(err, sizeof err, "decodeStep: position %d of row %ld outside the position table's %ld rows", positions[2 * b], b, s.ctx);
      napi_throw_error(env, NULL, err);
      return NULL;
    }
  }
  if (!step(&s, data[0], data[2], data[3], tokens, positions, data[6])) napi_throw_error(env, NULL, "decodeStep: out of memory for packing buffers");
  return NULL;
}

int register_decode(napi_env env, napi_value exports) {
  napi_value fn;
  return napi_create_function(env, "decodeStep", NAPI_AUTO_LENGTH, decode_step, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "decodeStep", fn) == napi_ok;
}
