// The optimized CONV_2D pixel loop: a portable version, and on x86-64 hosts
// an AVX2 version (chosen at run time). Both compute, for each output pixel
// and channel, sum(x * w) over the window plus the folded bias, then TFLite's
// requantization: the same integers, so the same output bytes.
#include "conv_rows.h"

#include <string.h>

#include "../fixedpoint.h"
#include "avx2.h"
#include "dot.h"

// Helium builds convolve with conv_runs.cc instead (see conv2d.cc).
#if !defined(__ARM_FEATURE_MVE)

namespace dtmm {

namespace {

int8_t requantize(const ConvRows& r, int32_t sum, int32_t oc) {
  int32_t v = fx::add(sum, r.folded_bias[oc]);
  v = multiply_by_quantized_multiplier(v, r.multiplier[oc], r.shift[oc]) + r.output_offset;
  return static_cast<int8_t>(clamp_i32(v, r.act_min, r.act_max));
}

// Four consecutive channels.
__attribute__((always_inline)) inline void requantize4(const ConvRows& r, const int32_t sums[4],
                                                       int32_t oc, int8_t* out) {
  for (int32_t j = 0; j < 4; ++j) out[oc + j] = requantize(r, sums[j], oc + j);
}

}  // namespace

void conv_rows_portable(const ConvRows& r) {
  // Windows with short rows (C_in < 16 for KW = 1..5) are first packed into
  // one contiguous row, so each dot product runs over the whole window.
  constexpr ptrdiff_t kPatchMax = 256;
  int8_t patch[kPatchMax];
  const bool pack = r.row_len < 16 && r.kh > 1 && r.filter_len <= kPatchMax;
  const int32_t rows = pack ? 1 : r.kh;
  const int32_t len = pack ? static_cast<int32_t>(r.filter_len) : r.row_len;
  // Nested loops, not one index split by division: 64-bit division is a
  // library call on Cortex-M.
  for (int32_t row = 0; row < r.num_rows; ++row)
    for (int32_t px = 0; px < r.num_pixels; ++px) {
      const int8_t* window = r.window + row * r.window_row_step + px * r.pixel_step;
      ptrdiff_t in_row = r.in_row;
      if (pack) {
        for (int32_t ky = 0; ky < r.kh; ++ky)
          memcpy(patch + ky * r.row_len, window + ky * r.in_row, static_cast<size_t>(r.row_len));
        window = patch;
        in_row = 0;
      }
      int8_t* out = r.out + row * r.out_row_step + px * r.oc_count;
      int32_t oc = 0;
      for (; oc + 4 <= r.oc_count; oc += 4) {
        const int8_t* w = r.filter + oc * r.filter_len;
        int32_t acc[4] = {0, 0, 0, 0};
        for (int32_t ky = 0; ky < rows; ++ky) {
          const ptrdiff_t o = static_cast<ptrdiff_t>(ky) * len;
          dot4_i8(window + ky * in_row, w + o, w + r.filter_len + o, w + 2 * r.filter_len + o,
                  w + 3 * r.filter_len + o, len, acc);
        }
        requantize4(r, acc, oc, out);
      }
      for (; oc < r.oc_count; ++oc) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < rows; ++ky)
          acc += dot_i8(window + ky * in_row,
                        r.filter + oc * r.filter_len + static_cast<ptrdiff_t>(ky) * len, len);
        out[oc] = requantize(r, acc, oc);
      }
    }
}

#if DTMM_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2")

namespace {

int32_t tail_dot(const int8_t* x, const int8_t* w, int32_t from, int32_t n) {
  int32_t s = 0;
  for (int32_t i = from; i < n; ++i) s += x[i] * w[i];
  return s;
}

}  // namespace

// Eight output channels at a time: eight vector accumulators share each
// 16-byte slice of the window (vpmaddwd gives exact int16 products summed in
// pairs), one horizontal reduction gives the eight sums, and the eight
// requantizations run as one vector operation.
static void conv_rows_avx2_dot(const ConvRows& r) {
  using namespace avx2;
  const __m256i lo = _mm256_set1_epi32(r.act_min), hi = _mm256_set1_epi32(r.act_max);
  const __m256i out_offset = _mm256_set1_epi32(r.output_offset);
  const int32_t full = r.row_len / 16 * 16;
  // Keeps the last (row_len % 16) of 16 int16 lanes.
  alignas(32) int16_t keep[16];
  for (int32_t l = 0; l < 16; ++l) keep[l] = l >= 16 - (r.row_len - full) ? -1 : 0;
  const __m256i tail_mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(keep));
  for (int64_t i = 0; i < int64_t{r.num_rows} * r.num_pixels; ++i) {
    const int64_t row = i / r.num_pixels, px = i % r.num_pixels;
    const int8_t* window = r.window + row * r.window_row_step + px * r.pixel_step;
    int8_t* out = r.out + row * r.out_row_step + px * r.oc_count;
    // Blocks of 8 output channels; a last partial block repeats its final
    // channel in the spare lanes (in-bounds reads) and stores only real ones.
    for (int32_t oc = 0; oc < r.oc_count; oc += 8) {
      const int32_t lanes = r.oc_count - oc < 8 ? r.oc_count - oc : 8;
      int64_t woff[8];
      alignas(32) int32_t folded[8], mult[8], shift[8];
      for (int j = 0; j < 8; ++j) {
        const int32_t c = oc + (j < lanes ? j : lanes - 1);
        woff[j] = c * r.filter_len;
        folded[j] = r.folded_bias[c];
        mult[j] = r.multiplier[c];
        shift[j] = r.shift[c];
      }
      __m256i acc[8];
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_si256();
      alignas(32) int32_t tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int32_t ky = 0; ky < r.kh; ++ky) {
        const int8_t* xr = window + ky * r.in_row;
        const int64_t row = static_cast<int64_t>(ky) * r.row_len;
        if (r.filter16) {  // weights already int16: one conversion per 16 bytes, not nine
          for (int32_t i = 0; i < full; i += 16) {
            const __m256i xv = load16(xr + i);
            for (int j = 0; j < 8; ++j)
              acc[j] = _mm256_add_epi32(
                  acc[j], _mm256_madd_epi16(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                                    r.filter16 + woff[j] + row + i))));
          }
        } else {
          for (int32_t i = 0; i < full; i += 16) {
            const __m256i xv = load16(xr + i);
            for (int j = 0; j < 8; ++j)
              acc[j] = _mm256_add_epi32(
                  acc[j], _mm256_madd_epi16(xv, load16(r.filter + woff[j] + row + i)));
          }
        }
        if (full < r.row_len && r.row_len >= 16) {
          // The last 16 bytes of the row, overlapping the previous block: the
          // input lanes already counted are zeroed, so each product counts once.
          const int32_t last = r.row_len - 16;
          const __m256i xv = _mm256_and_si256(load16(xr + last), tail_mask);
          for (int j = 0; j < 8; ++j)
            acc[j] = _mm256_add_epi32(
                acc[j], _mm256_madd_epi16(xv, load16(r.filter + woff[j] + row + last)));
        } else if (full < r.row_len) {
          for (int j = 0; j < 8; ++j)
            tail[j] += tail_dot(xr, r.filter + woff[j] + row, full, r.row_len);
        }
      }
      __m256i v =
          _mm256_add_epi32(hsum8(acc), _mm256_load_si256(reinterpret_cast<const __m256i*>(tail)));
      v = _mm256_add_epi32(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(folded)));
      v = multiply_by_quantized_multiplier8(
          v, _mm256_load_si256(reinterpret_cast<const __m256i*>(mult)),
          _mm256_load_si256(reinterpret_cast<const __m256i*>(shift)));
      v = _mm256_add_epi32(v, out_offset);
      if (lanes == 8) {
        store8_i8(out + oc, v, lo, hi);
      } else {
        alignas(8) int8_t bytes[8];
        store8_i8(bytes, v, lo, hi);
        for (int32_t j = 0; j < lanes; ++j) out[oc + j] = bytes[j];
      }
    }
  }
}

// Short windows (K = KH * KW * C_in <= 64): an outer product instead of dot
// products. The weights are transposed into int16 pairs [K/2][C_out][2]
// (once per op when the caller provides ConvRows::outer_weights, else once
// per call); per pixel, each pair of window values is broadcast and vpmaddwd
// adds x[k] * w[oc][k] + x[k+1] * w[oc][k+1] for 8 channels at once, so no
// horizontal sums are needed.
constexpr int32_t kOuterMaxK = 64;
constexpr int32_t kOuterMaxOc = 256;
static_assert(kConvRowsOuterTable == kOuterMaxK / 2 * kOuterMaxOc * 2, "table size");

static bool outer_applies(const ConvRows& r) {
  return r.filter_len <= kOuterMaxK && r.oc_count <= kOuterMaxOc;
}

static void build_outer(const ConvRows& r, int16_t* table) {
  const int32_t k = static_cast<int32_t>(r.filter_len);
  const int32_t pairs = (k + 1) / 2, padded = (r.oc_count + 7) / 8 * 8;
  for (int32_t p = 0; p < pairs; ++p)
    for (int32_t oc = 0; oc < padded; ++oc)
      for (int32_t e = 0; e < 2; ++e) {
        const int32_t kk = 2 * p + e;
        table[(p * kOuterMaxOc + oc) * 2 + e] =
            (oc < r.oc_count && kk < k) ? r.filter[oc * r.filter_len + kk] : 0;
      }
}

static void conv_rows_avx2_outer(const ConvRows& r) {
  using namespace avx2;
  const int32_t k = static_cast<int32_t>(r.filter_len);
  const int32_t pairs = (k + 1) / 2;
  const int32_t blocks = (r.oc_count + 7) / 8;
  alignas(32) int16_t local[kConvRowsOuterTable];
  const int16_t* wt = r.outer_weights;
  if (!wt) {
    build_outer(r, local);
    wt = local;
  }
  const __m256i lo = _mm256_set1_epi32(r.act_min), hi = _mm256_set1_epi32(r.act_max);
  const __m256i out_offset = _mm256_set1_epi32(r.output_offset);
  alignas(32) int8_t out8[kOuterMaxOc];
  for (int64_t i = 0; i < int64_t{r.num_rows} * r.num_pixels; ++i) {
    const int64_t row = i / r.num_pixels, px = i % r.num_pixels;
    const int8_t* window = r.window + row * r.window_row_step + px * r.pixel_step;
    int8_t* out = r.out + row * r.out_row_step + px * r.oc_count;
    int16_t xs[kOuterMaxK + 1];
    for (int32_t ky = 0; ky < r.kh; ++ky)
      for (int32_t j = 0; j < r.row_len; ++j) xs[ky * r.row_len + j] = window[ky * r.in_row + j];
    xs[k] = 0;
    __m256i bx[kOuterMaxK / 2];
    for (int32_t p = 0; p < pairs; ++p) {
      int32_t pair;
      __builtin_memcpy(&pair, xs + 2 * p, 4);
      bx[p] = _mm256_set1_epi32(pair);
    }
    for (int32_t b = 0; b < blocks; ++b) {
      // Four partial sums break the add chain (latency, not throughput, bounds it).
      __m256i part[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                         _mm256_setzero_si256()};
      for (int32_t p = 0; p < pairs; ++p)
        part[p & 3] = _mm256_add_epi32(
            part[p & 3],
            _mm256_madd_epi16(bx[p], _mm256_load_si256(reinterpret_cast<const __m256i*>(
                                         wt + (p * kOuterMaxOc + b * 8) * 2))));
      const __m256i acc =
          _mm256_add_epi32(_mm256_add_epi32(part[0], part[1]), _mm256_add_epi32(part[2], part[3]));
      const int32_t oc = b * 8;
      if (oc + 8 <= r.oc_count) {
        __m256i v = _mm256_add_epi32(
            acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.folded_bias + oc)));
        v = multiply_by_quantized_multiplier8(
            v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.multiplier + oc)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.shift + oc)));
        store8_i8(out8 + oc, _mm256_add_epi32(v, out_offset), lo, hi);
      } else {
        alignas(32) int32_t sums[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
        for (int32_t j = 0; oc + j < r.oc_count; ++j) out8[oc + j] = requantize(r, sums[j], oc + j);
      }
    }
    __builtin_memcpy(out, out8, static_cast<size_t>(r.oc_count));
  }
}

void conv_rows_avx2(const ConvRows& r) {
  if (outer_applies(r)) {
    conv_rows_avx2_outer(r);
  } else {
    conv_rows_avx2_dot(r);
  }
}

bool conv_rows_prepare_outer(const ConvRows& r, int16_t* table) {
  if (!outer_applies(r)) return false;
  build_outer(r, table);
  return true;
}

#pragma GCC pop_options
#endif  // DTMM_X86_SIMD

ConvRowsFn select_conv_rows() {
#if DTMM_X86_SIMD
  if (avx2::cpu_has_avx2()) return conv_rows_avx2;
#endif
  return conv_rows_portable;
}

bool conv_rows_use_wide_filter() {
  return select_conv_rows() != conv_rows_portable;
}

}  // namespace dtmm

#endif  // !__ARM_FEATURE_MVE
