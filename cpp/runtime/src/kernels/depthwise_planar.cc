// DEPTHWISE_CONV_2D on x86-64 hosts with AVX2, over per-channel planes.
//
// Once per call each channel of the input becomes a plane of int32 words,
// each holding two int16 values, padded with the input zero point (the folded
// bias cancels it exactly, as in the other fast paths). A word holds the
// inputs under two horizontally neighbouring taps of one output pixel: with
// stride 2 those are neighbouring input columns, so a plane row is simply the
// input row widened to int16; with stride 1 the word at column q holds
// columns q and q + 1, so each input value is stored twice. vpmaddwd of a
// broadcast pair of filter taps with eight output pixels' words adds both
// taps' products: a 3x3 filter costs six multiply-adds per eight outputs and
// no horizontal sums.
#include "depthwise_planar.h"

#include "kernels.h"
#include "planar_avx2.h"

namespace dtmm {

#if DTMM_X86_SIMD
namespace {

using planar::align32;
using planar::kBlock;
using planar::kLanes;
using planar::word;

struct Geometry {
  const dtmm_conv_params* conv;
  int32_t batches, ih, iw, channels, kh, kw, oh, ow;
};

// Element counts are int32 words (int16 for the widened rows); byte offsets
// index the workspace.
struct Plan {
  int32_t tap_pairs;        // (KW + 1) / 2: words per filter row
  int32_t tap_step;         // words between a filter row's pairs: 2 for stride 1, else 1
  int32_t vectors_per_row;  // ceil(OW / 8)
  int32_t wq;               // words per plane row
  int32_t hp;               // plane rows
  int32_t row16;            // int16 columns of one widened input row
  size_t weights, planes, rows16, tile, total;
};

Geometry geometry(const OpContext& ctx) {
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  return Geometry{&ctx.p<dtmm_conv_params>(),
                  in.dims[0],
                  in.dims[1],
                  in.dims[2],
                  in.dims[3],
                  w.dims[1],
                  w.dims[2],
                  out.dims[1],
                  out.dims[2]};
}

// Output rows under 16 pixels waste much of each vector and of the padded
// planes (measured on VWW: slower than the per-pixel kernel at 12 and below).
bool applies(const Geometry& g) {
  const auto& c = *g.conv;
  return c.depth_multiplier == 1 && c.dilation_h == 1 && c.dilation_w == 1 &&
         (c.stride_w == 1 || c.stride_w == 2) && g.ow >= 2 * kLanes;
}

Plan plan_for(const Geometry& g) {
  const auto& c = *g.conv;
  Plan l{};
  l.tap_pairs = (g.kw + 1) / 2;
  l.tap_step = c.stride_w == 1 ? 2 : 1;
  l.vectors_per_row = (g.ow + kLanes - 1) / kLanes;
  const int32_t words = l.vectors_per_row * kLanes + (l.tap_pairs - 1) * l.tap_step;
  l.wq = (words + kLanes - 1) / kLanes * kLanes;  // whole vectors for the stride-1 pairing
  l.hp = (g.oh - 1) * c.stride_h + g.kh;
  // Stride 1 pairs columns q and q + 1 from a widened row (8 columns of slack
  // for its shifted loads); stride 2 widens straight into the plane.
  l.row16 = c.stride_w == 1 ? l.wq + kLanes : 2 * l.wq;
  const size_t channels = static_cast<size_t>(g.channels);
  l.weights = 0;
  l.planes = align32(l.weights + 4 * channels * g.kh * l.tap_pairs);
  l.rows16 = align32(l.planes + 4 * channels * l.hp * l.wq);
  l.tile = align32(l.rows16 + (c.stride_w == 1 ? 2 * channels * l.row16 : 0));
  l.total = align32(l.tile + planar::tile_bytes(g.channels));
  return l;
}

}  // namespace
#endif  // DTMM_X86_SIMD

size_t depthwise_planar_workspace(const OpContext& ctx) {
#if DTMM_X86_SIMD
  const Geometry g = geometry(ctx);
  return applies(g) ? planar::workspace_bytes(plan_for(g).total) : 0;
#else
  (void)ctx;
  return 0;
#endif
}

#if !DTMM_X86_SIMD
bool depthwise_planar(const OpContext&) {
  return false;
}
#else

#pragma GCC push_options
#pragma GCC target("avx2")

namespace {

struct Work {
  int32_t* weights;  // [channel][ky][pair] words of two filter taps
  uint32_t* planes;  // [channel][row][wq] words
  int16_t* rows16;   // [channel][row16]: one widened input row (stride 1)
  int8_t* tile;
};

// Padded input row r of image b widened to int16, channel c's `cols` columns
// at dst + c * channel_stride. Eight image columns and eight channels at a
// time take a transpose; when the channels are not a multiple of eight the
// last group overlaps the one before, or with fewer than eight in all only
// the real ones are stored. Loads may reach past the row (or a pixel) as long
// as they stay inside the tensor; the padding columns, written last, replace
// whatever a group put beyond the image.
void widen_row(const Geometry& g, const int8_t* x, int32_t b, int32_t r, int16_t* dst,
               ptrdiff_t channel_stride, int32_t cols) {
  const auto& c = *g.conv;
  const int16_t zp = static_cast<int16_t>(-c.input_offset);
  const int32_t iy = r - c.pad_h, depth = g.channels;
  // Columns [first, end) hold image columns.
  const int32_t first = c.pad_w < cols ? c.pad_w : cols;
  const int32_t end =
      iy < 0 || iy >= g.ih ? first : (c.pad_w + g.iw < cols ? c.pad_w + g.iw : cols);
  if (first < end) {
    const int8_t* row = x + (int64_t{b} * g.ih + iy) * g.iw * depth;
    const int8_t* x_end = x + int64_t{g.batches} * g.ih * g.iw * depth;
    const int32_t last_group = depth > kLanes ? depth - kLanes : 0;  // its first channel
    for (int32_t col = first; col < end;) {
      const int8_t* px = row + int64_t{col - c.pad_w} * depth;
      if (col + kLanes <= cols && px + int64_t{kLanes - 1} * depth + last_group + kLanes <= x_end) {
        for (int32_t c0 = 0; c0 < depth; c0 += kLanes) {
          if (c0 + kLanes > depth && depth >= kLanes) c0 = depth - kLanes;
          __m128i v[kLanes];
          for (int32_t k = 0; k < kLanes; ++k)
            v[k] = _mm_cvtepi8_epi16(
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(px + int64_t{k} * depth + c0)));
          avx2::transpose8x8_i16(v);
          const int32_t rows = depth - c0 < kLanes ? depth - c0 : kLanes;
          for (int32_t k = 0; k < rows; ++k)
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (c0 + k) * channel_stride + col),
                             v[k]);
        }
        col += kLanes;
        continue;
      }
      for (int32_t ch = 0; ch < depth; ++ch) dst[ch * channel_stride + col] = px[ch];
      ++col;
    }
  }
  for (int32_t ch = 0; ch < depth; ++ch) {
    int16_t* d = dst + ch * channel_stride;
    for (int32_t col = 0; col < first; ++col) d[col] = zp;
    for (int32_t col = end; col < cols; ++col) d[col] = zp;
  }
}

// Image b's planes.
void build_planes(const Geometry& g, const Plan& l, const Work& w, const int8_t* x, int32_t b) {
  const ptrdiff_t plane = ptrdiff_t{l.hp} * l.wq;
  for (int32_t r = 0; r < l.hp; ++r) {
    if (g.conv->stride_w != 1) {  // a plane row is the widened input row
      widen_row(g, x, b, r, reinterpret_cast<int16_t*>(w.planes + r * l.wq), 2 * plane, l.row16);
      continue;
    }
    widen_row(g, x, b, r, w.rows16, l.row16, l.row16);
    for (int32_t ch = 0; ch < g.channels; ++ch) {
      const int16_t* src = w.rows16 + ch * l.row16;
      uint32_t* dst = w.planes + ch * plane + r * l.wq;
      for (int32_t q = 0; q < l.wq; q += kLanes) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + q));
        const __m128i n = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + q + 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + q), _mm_unpacklo_epi16(a, n));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + q + 4), _mm_unpackhi_epi16(a, n));
      }
    }
  }
}

// Every channel over N <= kBlock vectors whose first words are at
// plane + base[i]; outputs go to tile[channel][i * 8 + lane].
template <int32_t N>
void block(const Geometry& g, const Plan& l, const Work& w, const planar::Requant& q,
           const int64_t* base) {
  const ptrdiff_t plane = ptrdiff_t{l.hp} * l.wq;
  for (int32_t ch = 0; ch < g.channels; ++ch) {
    const uint32_t* xp = w.planes + ch * plane;
    const int32_t* wp = w.weights + ch * g.kh * l.tap_pairs;
    __m256i acc[N];
    for (int32_t i = 0; i < N; ++i) acc[i] = _mm256_set1_epi32(q.folded_bias[ch]);
    for (int32_t ky = 0; ky < g.kh; ++ky, xp += l.wq)
      for (int32_t m = 0; m < l.tap_pairs; ++m) {
        const __m256i wb = _mm256_set1_epi32(*wp++);
        for (int32_t i = 0; i < N; ++i)
          acc[i] = _mm256_add_epi32(
              acc[i], _mm256_madd_epi16(wb, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                                xp + m * l.tap_step + base[i]))));
      }
    planar::store_vectors<N>(acc, q, ch, w.tile + int64_t{ch} * planar::kTileRow);
  }
}

}  // namespace

bool depthwise_planar(const OpContext& ctx) {
  const Geometry g = geometry(ctx);
  if (!applies(g)) return false;
  const Plan l = plan_for(g);
  uint8_t* ws = planar::workspace(ctx, l.total);
  if (!ws) return false;
  const Work w{reinterpret_cast<int32_t*>(ws + l.weights),
               reinterpret_cast<uint32_t*>(ws + l.planes),
               reinterpret_cast<int16_t*>(ws + l.rows16), reinterpret_cast<int8_t*>(ws + l.tile)};

  // Filter [1][KH][KW][C]: per channel and filter row, taps paired left to
  // right, an odd last tap with a zero partner.
  const int8_t* filter = ctx.in_data<int8_t>(1);
  int32_t* wp = w.weights;
  for (int32_t ch = 0; ch < g.channels; ++ch)
    for (int32_t ky = 0; ky < g.kh; ++ky)
      for (int32_t m = 0; m < l.tap_pairs; ++m) {
        const int8_t* t = filter + (int64_t{ky} * g.kw + 2 * m) * g.channels + ch;
        *wp++ = static_cast<int32_t>(word(t[0], 2 * m + 1 < g.kw ? t[g.channels] : 0));
      }

  const auto& c = *g.conv;
  const planar::Requant q = planar::requant_for(ctx, c, g.channels);
  const int8_t* x = ctx.in_data<int8_t>(0);
  for (int32_t b = 0; b < g.batches; ++b) {
    build_planes(g, l, w, x, b);
    planar::for_each_block(
        ctx.out_data<int8_t>() + int64_t{b} * g.oh * g.ow * g.channels, g.oh, g.ow, g.channels,
        l.vectors_per_row, int64_t{c.stride_h} * l.wq, w.tile,
        [&](auto size, const int64_t* base) { block<decltype(size)::value>(g, l, w, q, base); });
  }
  return true;
}

#pragma GCC pop_options
#endif  // DTMM_X86_SIMD

}  // namespace dtmm
