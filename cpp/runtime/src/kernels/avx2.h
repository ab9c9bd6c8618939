// AVX2 building blocks for the x86-64 host paths (never part of a device
// build). Every function here is compiled for AVX2 by the pragma below and is
// only reached after a run-time check that the CPU has AVX2 (cpu_has_avx2,
// defined outside the region). The region is closed at the end of the file,
// so nothing defined elsewhere is compiled for AVX2.
#ifndef DTMM_SRC_KERNELS_AVX2_H_
#define DTMM_SRC_KERNELS_AVX2_H_

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DTMM_X86_SIMD 1
#else
#define DTMM_X86_SIMD 0
#endif

#if DTMM_X86_SIMD
#include <immintrin.h>
#include <stdint.h>

#pragma GCC push_options
#pragma GCC target("avx2")

namespace dtmm {
namespace avx2 {

inline bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2");
}

// 16 int8 values sign-extended to 16 int16 lanes.
inline __m256i load16(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 8 int8 values sign-extended to 8 int32 lanes.
inline __m256i load8_i32(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Lane j of the result is the sum of all lanes of v[j].
inline __m256i hsum8(const __m256i v[8]) {
  const __m256i a = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i b = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i c = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i d = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i ab = _mm256_hadd_epi32(a, b);  // [0 1 2 3 | 0 1 2 3] halves
  const __m256i cd = _mm256_hadd_epi32(c, d);  // [4 5 6 7 | 4 5 6 7] halves
  const __m256i lo = _mm256_permute2x128_si256(ab, cd, 0x20);
  const __m256i hi = _mm256_permute2x128_si256(ab, cd, 0x31);
  return _mm256_add_epi32(lo, hi);
}

// saturating_rounding_doubling_high_mul for 64-bit products ab: the scalar
// form is (ab + nudge) / 2^31 truncated toward zero, nudge = 2^30 for
// ab >= 0 and 1 - 2^30 for ab < 0. For ab < 0 truncation is a floor after
// adding 2^31 - 1, so both cases are floor((ab + 2^30) / 2^31): one add and
// one shift. The int32 result is the low half of each 64-bit lane (bits
// 31..62 of the sum, the same for a logical or an arithmetic shift).
inline __m256i srdhm_even(__m256i prod) {
  return _mm256_srli_epi64(_mm256_add_epi64(prod, _mm256_set1_epi64x(int64_t{1} << 30)), 31);
}

// multiply_by_quantized_multiplier on 8 lanes, bit-identical to the scalar
// version for multipliers >= 0 (the loader guarantees it, so the product has
// the sign of x and the scalar's INT32_MIN * INT32_MIN case cannot occur).
inline __m256i multiply_by_quantized_multiplier8(__m256i x, __m256i mult, __m256i shift) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i left = _mm256_max_epi32(shift, zero);
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
  x = _mm256_sllv_epi32(x, left);
  const __m256i even = srdhm_even(_mm256_mul_epi32(x, mult));
  const __m256i odd =
      srdhm_even(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mult, 32)));
  const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  // rounding_divide_by_pot with a per-lane exponent.
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(high, mask);
  const __m256i threshold =
      _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_srai_epi32(high, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

// Clamp 8 int32 lanes to [lo, hi] and store them as int8.
inline void store8_i8(int8_t* out, __m256i v, __m256i lo, __m256i hi) {
  v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w, w));
}

// In place: r[i] holds row i of an 8x8 int32 matrix on entry, column i on
// return.
inline void transpose8x8_i32(__m256i r[8]) {
  __m256i a[8], b[8];
  for (int i = 0; i < 4; ++i) {
    a[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i)
    for (int h = 0; h < 2; ++h) {
      b[4 * i + 2 * h] = _mm256_unpacklo_epi64(a[4 * i + h], a[4 * i + 2 + h]);
      b[4 * i + 2 * h + 1] = _mm256_unpackhi_epi64(a[4 * i + h], a[4 * i + 2 + h]);
    }
  // b[k] holds, per 128-bit half, columns (k % 4) and (k % 4) + 4 of rows
  // 4 * (k / 4) .. + 3.
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2x128_si256(b[k], b[4 + k], 0x20);
    r[k + 4] = _mm256_permute2x128_si256(b[k], b[4 + k], 0x31);
  }
}

// In place: r[i] holds row i of an 8x8 int16 matrix on entry, column i on
// return.
inline void transpose8x8_i16(__m128i r[8]) {
  __m128i a[8], b[8];
  for (int i = 0; i < 4; ++i) {  // a[h * 4 + i]: columns 4h..4h+3 of rows 2i, 2i+1
    a[i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
    a[4 + i] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h)  // b[g * 2 + q]: columns 2g, 2g+1 of rows 4q..4q+3
    for (int q = 0; q < 2; ++q) {
      b[(2 * h) * 2 + q] = _mm_unpacklo_epi32(a[h * 4 + 2 * q], a[h * 4 + 2 * q + 1]);
      b[(2 * h + 1) * 2 + q] = _mm_unpackhi_epi32(a[h * 4 + 2 * q], a[h * 4 + 2 * q + 1]);
    }
  for (int g = 0; g < 4; ++g) {
    r[2 * g] = _mm_unpacklo_epi64(b[2 * g], b[2 * g + 1]);
    r[2 * g + 1] = _mm_unpackhi_epi64(b[2 * g], b[2 * g + 1]);
  }
}

// In place: r[i] holds row i of a 16x16 int8 matrix on entry, column i on
// return. Four rounds interleave ever wider units of neighbouring rows.
inline void transpose16x16_i8(__m128i r[16]) {
  __m128i a[16], b[16];
  for (int i = 0; i < 8; ++i) {  // a[h * 8 + i]: columns 8h..8h+7 of rows 2i, 2i+1
    a[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
    a[8 + i] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h)  // b[g * 4 + q]: columns 4g..4g+3 of rows 4q..4q+3
    for (int q = 0; q < 4; ++q) {
      b[(2 * h) * 4 + q] = _mm_unpacklo_epi16(a[h * 8 + 2 * q], a[h * 8 + 2 * q + 1]);
      b[(2 * h + 1) * 4 + q] = _mm_unpackhi_epi16(a[h * 8 + 2 * q], a[h * 8 + 2 * q + 1]);
    }
  for (int g = 0; g < 4; ++g)  // a[p * 2 + o]: columns 2p, 2p+1 of rows 8o..8o+7
    for (int o = 0; o < 2; ++o) {
      a[(2 * g) * 2 + o] = _mm_unpacklo_epi32(b[g * 4 + 2 * o], b[g * 4 + 2 * o + 1]);
      a[(2 * g + 1) * 2 + o] = _mm_unpackhi_epi32(b[g * 4 + 2 * o], b[g * 4 + 2 * o + 1]);
    }
  for (int p = 0; p < 8; ++p) {
    r[2 * p] = _mm_unpacklo_epi64(a[2 * p], a[2 * p + 1]);
    r[2 * p + 1] = _mm_unpackhi_epi64(a[2 * p], a[2 * p + 1]);
  }
}

}  // namespace avx2
}  // namespace dtmm

#pragma GCC pop_options
#endif  // DTMM_X86_SIMD

#endif  // DTMM_SRC_KERNELS_AVX2_H_
