// What the x86-64 AVX2 planar kernels (conv_planar.cc, depthwise_planar.cc)
// share. They compute one output channel over vectors of eight consecutive
// output pixels at a time, kBlock vectors per block, into a tile of bytes
// [channel][pixel]; the tile is then transposed into the NHWC output. Empty
// unless DTMM_X86_SIMD; the SIMD helpers are reached only after a run-time
// AVX2 check, the plain ones (sizes, layout) from anywhere.
#ifndef DTMM_SRC_KERNELS_PLANAR_AVX2_H_
#define DTMM_SRC_KERNELS_PLANAR_AVX2_H_

#include "avx2.h"  // DTMM_X86_SIMD

#if DTMM_X86_SIMD
#include <type_traits>

#include "../fixedpoint.h"
#include "../op_context.h"

namespace dtmm {
namespace planar {

constexpr int32_t kLanes = 8;                  // output pixels per vector
constexpr int32_t kBlock = 8;                  // vectors per block
constexpr int32_t kTileRow = kBlock * kLanes;  // tile bytes per channel

// The largest block size (8, 4, 2 or 1 vectors) the remaining ones fill.
inline int32_t block_size(int64_t remaining) {
  return remaining >= kBlock ? kBlock : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1;
}

inline size_t align32(size_t n) {
  return (n + 31) / 32 * 32;
}

// Bytes of a tile for `channels` channels.
inline size_t tile_bytes(int32_t channels) {
  return static_cast<size_t>(channels < 16 ? 16 : channels) * kTileRow;
}

// Two int16 values as one word, `lo` in the low half.
inline uint32_t word(int32_t lo, int32_t hi) {
  return static_cast<uint16_t>(lo) | static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16;
}

// Host workspace bytes for a layout of `total` bytes: 32 more, for aligning
// its base.
inline size_t workspace_bytes(size_t total) {
  return total + 32;
}

// The host workspace from its first 32-byte boundary, or nullptr when the
// CPU lacks AVX2 or the workspace is missing or under workspace_bytes(total).
inline uint8_t* workspace(const OpContext& ctx, size_t total) {
  if (!avx2::cpu_has_avx2() || !ctx.model->workspace ||
      ctx.model->workspace_size < workspace_bytes(total))
    return nullptr;
  uint8_t* ws = static_cast<uint8_t*>(ctx.model->workspace);
  return ws + (32 - reinterpret_cast<uintptr_t>(ws) % 32) % 32;
}

}  // namespace planar
}  // namespace dtmm

#pragma GCC push_options
#pragma GCC target("avx2")

namespace dtmm {
namespace planar {

struct Requant {
  const int32_t* folded_bias;
  const int32_t* multiplier;
  const int32_t* shift;
  int32_t output_offset, act_min, act_max;
};

inline Requant requant_for(const OpContext& ctx, const dtmm_conv_params& c, int32_t channels) {
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  return Requant{ctx.blob_i32(c.folded_bias_offset),
                 mult,
                 mult + channels,
                 c.output_offset,
                 c.act_min,
                 c.act_max};
}

// multiply_by_quantized_multiplier on 8 lanes sharing one multiplier and
// shift (one channel at eight pixels): the same integers as the per-lane
// avx2 version, with whole-register shifts.
inline __m256i requantize_uniform(__m256i x, int32_t multiplier, int32_t shift) {
  using namespace avx2;
  const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  const __m256i mult = _mm256_set1_epi32(multiplier);
  if (left) x = _mm256_sll_epi32(x, _mm_cvtsi32_si128(left));
  // srdhm_even leaves bits 31..62 of the rounded product in a lane's low
  // half; for odd lanes one left shift puts the same bits in the high half.
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = srdhm_even(_mm256_mul_epi32(x, mult));
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), mult), nudge), 1);
  const __m256i high = _mm256_blend_epi32(even, odd, 0xAA);
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << right) - 1);
  const __m256i remainder = _mm256_and_si256(high, _mm256_set1_epi32(mask));
  const __m256i threshold =
      _mm256_sub_epi32(_mm256_set1_epi32(mask >> 1), _mm256_srai_epi32(high, 31));
  return _mm256_sub_epi32(_mm256_sra_epi32(high, _mm_cvtsi32_si128(right)),
                          _mm256_cmpgt_epi32(remainder, threshold));
}

// Channel c's N vectors of sums (folded bias included) requantized into
// tile[0 .. 8N). Four vectors are packed to bytes together: int16 saturation
// keeps every value beyond the int8 clamp on its own side, so the output
// offset can be added with int16 saturation and the clamp done on bytes.
template <int32_t N>
inline void store_vectors(__m256i* acc, const Requant& q, int32_t c, int8_t* tile) {
  const __m256i lo = _mm256_set1_epi8(static_cast<int8_t>(q.act_min));
  const __m256i hi = _mm256_set1_epi8(static_cast<int8_t>(q.act_max));
  const __m256i out_offset = _mm256_set1_epi16(static_cast<int16_t>(q.output_offset));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int32_t i = 0; i < N; ++i) acc[i] = requantize_uniform(acc[i], q.multiplier[c], q.shift[c]);
  for (int32_t i = 0; i < N; i += 4) {
    // packs work within 128-bit halves; `order` restores pixel order. Under
    // four vectors, the last one fills the spare places.
    const auto at = [&](int32_t k) { return acc[i + k < N ? i + k : N - 1]; };
    const __m256i a = _mm256_adds_epi16(_mm256_packs_epi32(at(0), at(1)), out_offset);
    const __m256i b = _mm256_adds_epi16(_mm256_packs_epi32(at(2), at(3)), out_offset);
    __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order);
    bytes = _mm256_min_epi8(_mm256_max_epi8(bytes, lo), hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + i * kLanes), bytes);
  }
}

// Where each pixel of a block goes: pixel i * 8 + lane is vector v0 + i's
// lane, real if that vector is in the block and the lane inside the row.
struct BlockPixels {
  int8_t* out[kTileRow];
  bool real[kTileRow];
  int32_t count;  // 8 * vectors in the block
};

inline BlockPixels block_pixels(int8_t* image_out, int32_t ow, int32_t channels,
                                int32_t vectors_per_row, int64_t v0, int32_t n) {
  BlockPixels p{};
  p.count = n * kLanes;
  for (int32_t i = 0; i < kBlock; ++i) {
    const int64_t v = v0 + i;
    const int64_t oy = v / vectors_per_row;
    const int32_t ox0 = static_cast<int32_t>(v % vectors_per_row) * kLanes;
    for (int32_t lane = 0; lane < kLanes; ++lane) {
      const bool inside = i < n && ox0 + lane < ow;
      p.real[i * kLanes + lane] = inside;
      p.out[i * kLanes + lane] = inside ? image_out + (oy * ow + ox0 + lane) * channels : nullptr;
    }
  }
  return p;
}

// n < 16 bytes from `bytes` to `out`, as two overlapping fixed-size copies
// (inlined, unlike a copy of variable length).
inline void store_short(const int8_t* bytes, int32_t n, int8_t* out) {
  if (n >= 8) {
    __builtin_memcpy(out, bytes, 8);
    __builtin_memcpy(out + n - 8, bytes + n - 8, 8);
  } else if (n >= 4) {
    __builtin_memcpy(out, bytes, 4);
    __builtin_memcpy(out + n - 4, bytes + n - 4, 4);
  } else {
    for (int32_t i = 0; i < n; ++i) out[i] = bytes[i];
  }
}

// The tile (max(channels, 16) rows of kTileRow bytes) into the NHWC output:
// 16 channels by 16 pixels per transpose, each resulting row one pixel's
// channels. When the channels are not a multiple of 16 the last group
// overlaps the one before (fewer than 16 in all: each pixel keeps its own).
inline void store_tile(int32_t channels, const int8_t* tile, const BlockPixels& px) {
  for (int32_t c0 = 0; c0 < channels; c0 += 16) {
    if (c0 + 16 > channels && channels >= 16) c0 = channels - 16;
    for (int32_t p0 = 0; p0 < px.count; p0 += 16) {
      __m128i r[16];
      for (int32_t k = 0; k < 16; ++k)
        r[k] = _mm_loadu_si128(
            reinterpret_cast<const __m128i*>(tile + int64_t{c0 + k} * kTileRow + p0));
      avx2::transpose16x16_i8(r);
      for (int32_t k = 0; k < 16; ++k) {
        if (!px.real[p0 + k]) continue;
        if (channels >= 16) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(px.out[p0 + k] + c0), r[k]);
        } else if (channels == 8) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(px.out[p0 + k]), r[k]);
        } else {
          alignas(16) int8_t bytes[16];
          _mm_store_si128(reinterpret_cast<__m128i*>(bytes), r[k]);
          store_short(bytes, channels, px.out[p0 + k]);
        }
      }
    }
  }
}

// Every output vector of one image, at most kBlock at a time: each block of
// n vectors is computed by `block(size, base)`, where `size` is a
// std::integral_constant holding n (8, 4, 2 or 1, so the block's loops can be
// unrolled) and base[i] the plane offset of vector i's first word (output row
// r starts r * row_words words in), into `tile`, which then goes to the NHWC
// output `image_out`.
template <typename Block>
inline void for_each_block(int8_t* image_out, int32_t oh, int32_t ow, int32_t channels,
                           int32_t vectors_per_row, int64_t row_words, const int8_t* tile,
                           Block&& block) {
  const int64_t vectors = int64_t{oh} * vectors_per_row;
  for (int64_t v0 = 0; v0 < vectors;) {
    const int32_t n = block_size(vectors - v0);
    int64_t base[kBlock];
    for (int32_t i = 0; i < n; ++i) {
      const int64_t v = v0 + i;
      base[i] = v / vectors_per_row * row_words + v % vectors_per_row * kLanes;
    }
    if (n == kBlock) {
      block(std::integral_constant<int32_t, kBlock>{}, base);
    } else if (n == 4) {
      block(std::integral_constant<int32_t, 4>{}, base);
    } else if (n == 2) {
      block(std::integral_constant<int32_t, 2>{}, base);
    } else {
      block(std::integral_constant<int32_t, 1>{}, base);
    }
    store_tile(channels, tile, block_pixels(image_out, ow, channels, vectors_per_row, v0, n));
    v0 += n;
  }
}

}  // namespace planar
}  // namespace dtmm

#pragma GCC pop_options
#endif  // DTMM_X86_SIMD

#endif  // DTMM_SRC_KERNELS_PLANAR_AVX2_H_
