// Int8 × int8 products with Int32 sums (see include/CKernels.h): AVX2 and AVX-512 bodies of one loop,
// each compiled for its instructions with a `target` attribute and chosen at run time.
#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

// The float combination must round exactly as the Swift reference does: no fused multiply–add.
#pragma clang fp contract(off)

int lineage_int8_level(void) {
  __builtin_cpu_init();  // reads CPUID once; the answer does not change while the process runs
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) return 3;
  if (__builtin_cpu_supports("avx512bw")) return 2;
  if (__builtin_cpu_supports("avx2")) return 1;
  return 0;
}

// One block's Σ w·x (block a multiple of 32): 32 int8 weights sign-extended to int16, multiplied with
// 32 int16 activations, adjacent products summed into 16 Int32 lanes (vpmaddwd), lanes summed at the end.
__attribute__((target("avx512f,avx512bw"))) static inline int32_t dot512(const int8_t *w, const int16_t *x, long count) {
  __m512i acc = _mm512_setzero_si512();
  for (long i = 0; i < count; i += 32) {
    __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i)));
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(wv, _mm512_loadu_si512((const void *)(x + i))));
  }
  return _mm512_reduce_add_epi32(acc);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline int32_t dotVNNI(const int8_t *w, const int16_t *x, long count) {
  __m512i acc = _mm512_setzero_si512();
  for (long i = 0; i < count; i += 32) {
    __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i)));
    acc = _mm512_dpwssd_epi32(acc, wv, _mm512_loadu_si512((const void *)(x + i)));
  }
  return _mm512_reduce_add_epi32(acc);
}

__attribute__((target("avx2"))) static inline int32_t dot256(const int8_t *w, const int16_t *x, long count) {
  __m256i acc = _mm256_setzero_si256();
  for (long i = 0; i < count; i += 16) {
    __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(wv, _mm256_loadu_si256((const __m256i *)(x + i))));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// The loop over outputs, rows and blocks, once per instruction set (DOT is inlined into each copy).
#define LINEAR_BODY(DOT)                                                                     \
  long blocks = k / block;                                                                   \
  for (long o = o0; o < o1; o++) {                                                           \
    const int8_t *wRow = w + o * k;                                                          \
    const float *ws = wScales + o * blocks;                                                  \
    for (long r = 0; r < rows; r++) {                                                        \
      const int16_t *xRow = x + r * k;                                                       \
      const float *xs = xScales + r * blocks;                                                \
      float total = 0;                                                                       \
      for (long b = 0; b < blocks; b++) {                                                    \
        int32_t sum = DOT(wRow + b * block, xRow + b * block, block);                        \
        total += (float)sum * (ws[b] * xs[b]);                                               \
      }                                                                                      \
      y[r * n + o] = total;                                                                  \
    }                                                                                        \
  }

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void linearVNNI(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long block, long o0, long o1) {
  LINEAR_BODY(dotVNNI)
}

__attribute__((target("avx512f,avx512bw"))) static void linear512(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long block, long o0, long o1) {
  LINEAR_BODY(dot512)
}

__attribute__((target("avx2"))) static void linear256(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long block, long o0, long o1) {
  LINEAR_BODY(dot256)
}

// Four outputs at a time (AVX-512): for each block, the four weight rows' products with one activation
// row land in four vectors of 16 Int32 lanes, summed together in a transposed tree (unpack, add) into
// one vector of the four block sums, instead of four separate horizontal sums (which cost more than the
// products at k = 128). The float steps are the reference's, lane by lane: total += (float)sum ×
// (wScale × xScale), block after block.
#define FOUR_OUTPUTS_BODY(ACCUMULATE)                                                                  \
  long blocks = k / block;                                                                            \
  for (long o = o0; o < o1; o += 4) {                                                                 \
    const int8_t *wRow = w + o * k;                                                                   \
    for (long r = 0; r < rows; r++) {                                                                 \
      const int16_t *xRow = x + r * k;                                                                \
      __m128 total = _mm_setzero_ps();                                                                \
      for (long b = 0; b < blocks; b++) {                                                             \
        __m512i z[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),       \
                        _mm512_setzero_si512()};                                                      \
        for (long i = b * block; i < (b + 1) * block; i += 32) {                                      \
          __m512i xv = _mm512_loadu_si512((const void *)(xRow + i));                                  \
          for (int j = 0; j < 4; j++) {                                                               \
            __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(wRow + j * k + i))); \
            z[j] = ACCUMULATE(z[j], wv, xv);                                                          \
          }                                                                                           \
        }                                                                                             \
        __m512i a01 = _mm512_add_epi32(_mm512_unpacklo_epi32(z[0], z[1]), _mm512_unpackhi_epi32(z[0], z[1])); \
        __m512i a23 = _mm512_add_epi32(_mm512_unpacklo_epi32(z[2], z[3]), _mm512_unpackhi_epi32(z[2], z[3])); \
        __m512i q = _mm512_add_epi32(_mm512_unpacklo_epi64(a01, a23), _mm512_unpackhi_epi64(a01, a23)); \
        __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64(q, 1));     \
        __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));      \
        __m128 ws = _mm_set_ps(wScales[(o + 3) * blocks + b], wScales[(o + 2) * blocks + b],          \
                               wScales[(o + 1) * blocks + b], wScales[o * blocks + b]);               \
        __m128 scale = _mm_mul_ps(ws, _mm_set1_ps(xScales[r * blocks + b]));                          \
        total = _mm_add_ps(total, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));                          \
      }                                                                                               \
      _mm_storeu_ps(y + r * n + o, total);                                                            \
    }                                                                                                 \
  }

__attribute__((target("avx512f,avx512bw"))) static inline __m512i maddAdd(__m512i acc, __m512i a, __m512i b) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
  return _mm512_dpwssd_epi32(acc, a, b);
}

__attribute__((target("avx512f,avx512bw"))) static void fourOutputs512(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long block, long o0, long o1) {
  FOUR_OUTPUTS_BODY(maddAdd)
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void fourOutputsVNNI(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long block, long o0, long o1) {
  FOUR_OUTPUTS_BODY(dpwssd)
}

// Q8_0 (blocks of 32), four outputs × four blocks at a time: the sixteen block products (16 Int32 lanes
// each) are summed in one transposed tree into one vector whose 128-bit lane b holds block b's sums for
// the four outputs; the scales are laid out the same way (a permutation of the four outputs' scale
// rows), so one multiply scales all sixteen, and each block's four products are then added to the four
// totals block after block, as the reference adds them.
__attribute__((target("avx512f,avx512bw"))) static void q8FourByFour(
    const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y, long rows, long n, long k,
    long o0, long o1) {
  long blocks = k / 32;
  // Output-major scales [o0..o3][b..b+3] → block-major [b..b+3][o0..o3]; a block's scale to each lane of its block.
  const __m512i transpose = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (long o = o0; o < o1; o += 4) {
    const int8_t *wRow = w + o * k;
    for (long r = 0; r < rows; r++) {
      const int16_t *xRow = x + r * k;
      __m128 total = _mm_setzero_ps();
      for (long b = 0; b < blocks; b += 4) {
        __m512i q[4];
        for (int bb = 0; bb < 4; bb++) {
          long at = (b + bb) * 32;
          __m512i xv = _mm512_loadu_si512((const void *)(xRow + at));
          __m512i z[4];
          for (int j = 0; j < 4; j++) {
            z[j] = _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(wRow + j * k + at))), xv);
          }
          __m512i a01 = _mm512_add_epi32(_mm512_unpacklo_epi32(z[0], z[1]), _mm512_unpackhi_epi32(z[0], z[1]));
          __m512i a23 = _mm512_add_epi32(_mm512_unpacklo_epi32(z[2], z[3]), _mm512_unpackhi_epi32(z[2], z[3]));
          q[bb] = _mm512_add_epi32(_mm512_unpacklo_epi64(a01, a23), _mm512_unpackhi_epi64(a01, a23));  // lanes: [o0..o3] partials
        }
        __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i32x4(q[0], q[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(q[0], q[1], _MM_SHUFFLE(3, 1, 3, 1)));
        __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i32x4(q[2], q[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(q[2], q[3], _MM_SHUFFLE(3, 1, 3, 1)));
        __m512i sums = _mm512_add_epi32(_mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));  // lane bb: block b+bb
        __m512 ws = _mm512_castps128_ps512(_mm_loadu_ps(wScales + o * blocks + b));
        ws = _mm512_insertf32x4(ws, _mm_loadu_ps(wScales + (o + 1) * blocks + b), 1);
        ws = _mm512_insertf32x4(ws, _mm_loadu_ps(wScales + (o + 2) * blocks + b), 2);
        ws = _mm512_insertf32x4(ws, _mm_loadu_ps(wScales + (o + 3) * blocks + b), 3);
        __m512 xs = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_loadu_ps(xScales + r * blocks + b)));
        __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(transpose, ws), xs);
        __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), scale);
        total = _mm_add_ps(total, _mm512_castps512_ps128(p));
        total = _mm_add_ps(total, _mm512_extractf32x4_ps(p, 1));
        total = _mm_add_ps(total, _mm512_extractf32x4_ps(p, 2));
        total = _mm_add_ps(total, _mm512_extractf32x4_ps(p, 3));
      }
      _mm_storeu_ps(y + r * n + o, total);
    }
  }
}

void lineage_int8_linear(const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y,
                         long rows, long n, long k, long block, long o0, long o1, int level) {
  if (level >= 2) {  // whole groups of four outputs, then the rest one by one
    long whole = o0 + (o1 - o0) / 4 * 4;
    if (block == 32 && (k / 32) % 4 == 0) q8FourByFour(w, wScales, x, xScales, y, rows, n, k, o0, whole);
    else if (level == 3) fourOutputsVNNI(w, wScales, x, xScales, y, rows, n, k, block, o0, whole);
    else fourOutputs512(w, wScales, x, xScales, y, rows, n, k, block, o0, whole);
    o0 = whole;
    if (o0 == o1) return;
  }
  switch (level) {
  case 3: linearVNNI(w, wScales, x, xScales, y, rows, n, k, block, o0, o1); break;
  case 2: linear512(w, wScales, x, xScales, y, rows, n, k, block, o0, o1); break;
  default: linear256(w, wScales, x, xScales, y, rows, n, k, block, o0, o1); break;
  }
}

__attribute__((target("avx512f,avx512bw"))) void lineage_int8_quantize_rows(
    const float *x, int16_t *q, float *scales, long rows, long k, long block, int level) {
  long blocks = k / block;
  const __m512i signless = _mm512_set1_epi32(0x7fffffff);
  for (long r = 0; r < rows; r++) {
    for (long b = 0; b < blocks; b++) {
      const float *xb = x + r * k + b * block;
      int16_t *qb = q + r * k + b * block;
      __m512 m = _mm512_setzero_ps();
      for (long i = 0; i < block; i += 16) m = _mm512_max_ps(m, _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512((const void *)(xb + i)), signless)));
      float scale = _mm512_reduce_max_ps(m) / 127;
      scales[r * blocks + b] = scale;
      __m512 inverse = _mm512_set1_ps(scale > 0 ? 1 / scale : 0);
      for (long i = 0; i < block; i += 16) {  // cvtps2dq rounds to nearest even (the default MXCSR mode)
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + i), inverse));
        _mm256_storeu_si256((__m256i *)(qb + i), _mm512_cvtepi32_epi16(v));
      }
    }
  }
}

#define PACKED_BODY(ACCUMULATE)                                                                       \
  long blocks = k / block, half = block / 2;                                                          \
  for (long g = g0; g < g1; g++) {                                                                    \
    const int8_t *wg = packed + g * 16 * k;                                                           \
    const float *sg = packedScales + g * 16 * blocks;                                                 \
    for (long r = 0; r < rows; r++) {                                                                 \
      const int16_t *xr = x + r * k;                                                                  \
      __m512 total = _mm512_setzero_ps();                                                             \
      for (long b = 0; b < blocks; b++) {                                                             \
        /* four independent chains (half is a multiple of 16): a single one waits on each add */    \
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),     \
                          _mm512_setzero_si512()};                                                    \
        for (long i = b * half; i < (b + 1) * half; i += 4) {                                         \
          for (int c = 0; c < 4; c++) {                                                               \
            int32_t pair;                                                                             \
            memcpy(&pair, xr + 2 * (i + c), 4);                                                       \
            __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(wg + (i + c) * 32))); \
            acc[c] = ACCUMULATE(acc[c], wv, _mm512_set1_epi32(pair));                                 \
          }                                                                                           \
        }                                                                                             \
        __m512i sum = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3])); \
        __m512 scale = _mm512_mul_ps(_mm512_loadu_ps(sg + b * 16), _mm512_set1_ps(xScales[r * blocks + b])); \
        total = _mm512_add_ps(total, _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale));                  \
      }                                                                                               \
      _mm512_storeu_ps(y + r * n + g * 16, total);                                                    \
    }                                                                                                 \
  }

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void packedVNNI(
    const int8_t *packed, const float *packedScales, const int16_t *x, const float *xScales, float *y, long rows, long n,
    long k, long block, long g0, long g1) {
  PACKED_BODY(dpwssd)
}

__attribute__((target("avx512f,avx512bw"))) static void packed512(
    const int8_t *packed, const float *packedScales, const int16_t *x, const float *xScales, float *y, long rows, long n,
    long k, long block, long g0, long g1) {
  PACKED_BODY(maddAdd)
}

void lineage_int8_linear_packed(const int8_t *packed, const float *packedScales, const int16_t *x, const float *xScales,
                                float *y, long rows, long n, long k, long block, long g0, long g1, int level) {
  if (level == 3) packedVNNI(packed, packedScales, x, xScales, y, rows, n, k, block, g0, g1);
  else packed512(packed, packedScales, x, xScales, y, rows, n, k, block, g0, g1);
}

#else  // no x86 SIMD: the Swift loop does the work

void lineage_int8_linear_packed(const int8_t *packed, const float *packedScales, const int16_t *x, const float *xScales,
                                float *y, long rows, long n, long k, long block, long g0, long g1, int level) {}

void lineage_int8_quantize_rows(const float *x, int16_t *q, float *scales, long rows, long k, long block, int level) {}


int lineage_int8_level(void) { return 0; }

void lineage_int8_linear(const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y,
                         long rows, long n, long k, long block, long o0, long o1, int level) {}

#endif
