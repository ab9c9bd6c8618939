// CONV_2D and CONV_2D_FWCS on x86-64 hosts with AVX2, over channel-pair
// planes.
//
// Once per call the input is rewritten as int32 words, each holding one
// pixel's pair of channels (2j, 2j+1) as two int16 values, padded with the
// input zero point (the folded bias cancels it exactly, as in the other fast
// paths). Words of one channel pair and one padded row sit side by side, and
// for stride s the columns are dealt into s phases, so the eight consecutive
// output pixels of a vector read eight consecutive words under every tap.
//
// A filter is a list of filterlets (all of its taps for CONV_2D, the kept
// ones for FWCS), each a tap offset and C_in / 2 weight pairs. vpmaddwd of a
// broadcast weight pair with eight pixels' words adds two exact int16
// products per pixel, so a filterlet costs C_in / 2 multiply-adds per eight
// pixels, a pruned one costs nothing, and no horizontal sums are needed.
// kBlock vectors share each broadcast.
#include "conv_planar.h"

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
  int32_t batches, ih, iw, ic, kh, kw, oh, ow, oc;
  int64_t filterlets;  // stored: oc * kh * kw for CONV_2D, the kept ones for FWCS
};

// Element counts are int32 words; byte offsets index the workspace.
struct Plan {
  int32_t pairs;            // (C_in + 1) / 2
  int32_t vectors_per_row;  // ceil(OW / 8)
  int32_t wq;               // words per phase of a padded row, for one channel pair
  int32_t hp;               // padded rows read
  int64_t pair_stride;      // stride_w * wq
  int64_t row;              // pairs * pair_stride
  size_t weights, taps, start, planes, tile, total;
};

// A 1x1 convolution with stride 1 has no neighbourhood: the image is one
// row of H * W pixels, so vectors run across image rows without waste.
Geometry flatten_pointwise(Geometry g) {
  const auto& c = *g.conv;
  if (g.kh == 1 && g.kw == 1 && c.stride_h == 1 && c.stride_w == 1 && c.pad_h == 0 &&
      c.pad_w == 0 && g.oh == g.ih && g.ow == g.iw) {
    g.iw *= g.ih;
    g.ow *= g.oh;
    g.ih = g.oh = 1;
  }
  return g;
}

Geometry dense_geometry(const OpContext& ctx) {
  const auto& w = ctx.in(1);
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  return flatten_pointwise(Geometry{&ctx.p<dtmm_conv_params>(), in.dims[0], in.dims[1], in.dims[2],
                                    w.dims[3], w.dims[1], w.dims[2], out.dims[1], out.dims[2],
                                    w.dims[0], int64_t{w.dims[0]} * w.dims[1] * w.dims[2]});
}

Geometry fwcs_geometry(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  return flatten_pointwise(Geometry{&p.conv, in.dims[0], in.dims[1], in.dims[2], p.in_channels,
                                    p.kernel_h, p.kernel_w, out.dims[1], out.dims[2],
                                    p.out_channels, ctx.in(1).dims[0]});
}

bool applies(const Geometry& g) {
  return g.conv->dilation_h == 1 && g.conv->dilation_w == 1;
}

Plan plan_for(const Geometry& g) {
  const auto& c = *g.conv;
  Plan l{};
  l.pairs = (g.ic + 1) / 2;
  l.vectors_per_row = (g.ow + kLanes - 1) / kLanes;
  l.wq = l.vectors_per_row * kLanes + (g.kw - 1) / c.stride_w;
  l.hp = (g.oh - 1) * c.stride_h + g.kh;
  l.pair_stride = int64_t{c.stride_w} * l.wq;
  l.row = l.pairs * l.pair_stride;
  l.weights = 0;
  l.taps = align32(l.weights + 4 * static_cast<size_t>(g.filterlets) * l.pairs);
  l.start = align32(l.taps + 8 * (static_cast<size_t>(g.filterlets) + g.kh * g.kw));
  l.planes = align32(l.start + 4 * (static_cast<size_t>(g.oc) + 1));
  l.tile = align32(l.planes + 4 * static_cast<size_t>(l.hp) * l.row);
  l.total = align32(l.tile + planar::tile_bytes(g.oc));
  return l;
}

}  // namespace
#endif  // DTMM_X86_SIMD

size_t conv_planar_workspace(const OpContext& ctx) {
#if DTMM_X86_SIMD
  Geometry g{};
  if (ctx.op->type == DTMM_OP_CONV_2D) {
    if (ctx.in(0).dims[3] != ctx.in(1).dims[3]) return 0;  // grouped
    g = dense_geometry(ctx);
  } else if (ctx.op->type == DTMM_OP_CONV_2D_FWCS) {
    g = fwcs_geometry(ctx);
  } else {
    return 0;
  }
  return applies(g) ? planar::workspace_bytes(plan_for(g).total) : 0;
#else
  (void)ctx;
  return 0;
#endif
}

#if !DTMM_X86_SIMD
bool conv_planar_dense(const OpContext&) {
  return false;
}
bool conv_planar_fwcs(const OpContext&) {
  return false;
}
#else

#pragma GCC push_options
#pragma GCC target("avx2")

namespace {

// The workspace's arrays for one call.
struct Work {
  int32_t* weights;  // [filterlet][pair] words
  int64_t* taps;     // [filterlet] word offset of its tap in the planes, then scratch
  int32_t* start;    // [oc + 1] first filterlet of each filter
  uint32_t* planes;  // [padded row][pair][phase][wq] words
  int8_t* tile;      // planar::store_tile's tile for one block of vectors
};

Work work_for(uint8_t* ws, const Plan& l) {
  return Work{reinterpret_cast<int32_t*>(ws + l.weights), reinterpret_cast<int64_t*>(ws + l.taps),
              reinterpret_cast<int32_t*>(ws + l.start), reinterpret_cast<uint32_t*>(ws + l.planes),
              reinterpret_cast<int8_t*>(ws + l.tile)};
}

// Word offset, in the planes, of each tap (row-major over the kernel) from
// its vector's first word.
void tap_offsets(const Geometry& g, const Plan& l, int64_t* offset) {
  const int32_t sw = g.conv->stride_w;
  for (int32_t ky = 0; ky < g.kh; ++ky)
    for (int32_t kx = 0; kx < g.kw; ++kx)
      offset[ky * g.kw + kx] = ky * l.row + (kx % sw) * int64_t{l.wq} + kx / sw;
}

// `filterlets` filterlets of C_in values, back to back, as weight pairs. For
// an even C_in the pairs are the values widened to int16 in order; an odd
// C_in gives each filterlet's last value a zero partner.
void store_pairs(const int8_t* v, int64_t filterlets, int32_t ic, int32_t* dst) {
  if (ic % 2 == 0) {
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    const int64_t n = filterlets * ic;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), avx2::load16(v + i));
    for (; i < n; ++i) d[i] = v[i];
    return;
  }
  for (int64_t f = 0; f < filterlets; ++f, v += ic)
    for (int32_t j = 0; 2 * j < ic; ++j)
      *dst++ = static_cast<int32_t>(word(v[2 * j], 2 * j + 1 < ic ? v[2 * j + 1] : 0));
}

// The eight words of pairs j0..j0+7 at one pixel.
__m256i pair_words(const int8_t* px, int32_t j0) {
  return avx2::load16(px + 2 * j0);
}

// Image b of the input as padded channel-pair planes. Eight pixels of one
// phase and eight channel pairs at a time take a transpose: eight 16-byte
// loads (one pixel's pairs each) become eight stores (one pair's pixels).
// When the pairs are not a multiple of eight, the last group overlaps the one
// before, or with fewer than eight pairs in all only the real ones are
// stored. Either way a load may reach into the next pixel: for an odd C_in
// the last word then holds a neighbour's byte beside the last channel,
// harmless since that pair's second weight is zero. Pixels near the end of
// the tensor, with nothing after them, take the scalar path.
void build_planes(const Geometry& g, const Plan& l, const int8_t* x, int32_t b, uint32_t* planes) {
  using namespace avx2;
  const auto& c = *g.conv;
  const int32_t zp = -c.input_offset, sw = c.stride_w;
  const uint32_t pad = word(zp, zp);
  const int8_t* x_end = x + int64_t{g.batches} * g.ih * g.iw * g.ic;
  const int32_t last_group = l.pairs > kLanes ? l.pairs - kLanes : 0;  // its first pair
  for (int32_t r = 0; r < l.hp; ++r) {
    uint32_t* dst_row = planes + r * l.row;
    const int32_t iy = r - c.pad_h;
    if (iy < 0 || iy >= g.ih) {
      for (int64_t i = 0; i < l.row; ++i) dst_row[i] = pad;
      continue;
    }
    const int8_t* src_row = x + (int64_t{b} * g.ih + iy) * g.iw * g.ic;
    for (int32_t ph = 0; ph < sw; ++ph) {
      for (int32_t col = 0; col < l.wq;) {
        uint32_t* dst = dst_row + int64_t{ph} * l.wq + col;
        const int32_t ix = col * sw + ph - c.pad_w;
        const int32_t ix_last = ix + (kLanes - 1) * sw;
        if (col + kLanes <= l.wq && ix >= 0 && ix_last < g.iw &&
            src_row + int64_t{ix_last} * g.ic + 2 * last_group + 16 <= x_end) {
          for (int32_t j0 = 0; j0 < l.pairs; j0 += kLanes) {
            if (j0 + kLanes > l.pairs && l.pairs >= kLanes) j0 = l.pairs - kLanes;
            __m256i v[kLanes];
            for (int32_t k = 0; k < kLanes; ++k)
              v[k] = pair_words(src_row + int64_t{ix + k * sw} * g.ic, j0);
            transpose8x8_i32(v);
            const int32_t rows = l.pairs - j0 < kLanes ? l.pairs - j0 : kLanes;
            for (int32_t j = 0; j < rows; ++j)
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (j0 + j) * l.pair_stride), v[j]);
          }
          col += kLanes;
          continue;
        }
        if (ix < 0 || ix >= g.iw) {
          for (int32_t j = 0; j < l.pairs; ++j) dst[j * l.pair_stride] = pad;
        } else {
          const int8_t* src = src_row + int64_t{ix} * g.ic;
          for (int32_t j = 0; j < l.pairs; ++j)
            dst[j * l.pair_stride] = word(src[2 * j], 2 * j + 1 < g.ic ? src[2 * j + 1] : 0);
        }
        ++col;
      }
    }
  }
}

// Every filter over N <= kBlock vectors whose first words are at
// planes + base[i]; outputs go to tile[oc][i * 8 + lane]. Sums start at the
// folded bias.
template <int32_t N>
void block(const Geometry& g, const Plan& l, const Work& w, const planar::Requant& q,
           const int64_t* base) {
  for (int32_t oc = 0; oc < g.oc; ++oc) {
    int8_t* tile = w.tile + int64_t{oc} * planar::kTileRow;
    if (w.start[oc] == w.start[oc + 1]) {  // no filterlet: one constant output
      const int32_t v =
          multiply_by_quantized_multiplier(q.folded_bias[oc], q.multiplier[oc], q.shift[oc]) +
          q.output_offset;
      __builtin_memset(tile, static_cast<int8_t>(clamp_i32(v, q.act_min, q.act_max)), N * kLanes);
      continue;
    }
    __m256i acc[N];
    for (int32_t i = 0; i < N; ++i) acc[i] = _mm256_set1_epi32(q.folded_bias[oc]);
    for (int32_t f = w.start[oc]; f < w.start[oc + 1]; ++f) {
      const int32_t* wp = w.weights + int64_t{f} * l.pairs;
      const uint32_t* xt = w.planes + w.taps[f];
      for (int32_t j = 0; j < l.pairs; ++j, xt += l.pair_stride) {
        const __m256i wb = _mm256_set1_epi32(wp[j]);
        for (int32_t i = 0; i < N; ++i)
          acc[i] = _mm256_add_epi32(
              acc[i], _mm256_madd_epi16(
                          wb, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + base[i]))));
      }
    }
    planar::store_vectors<N>(acc, q, oc, tile);
  }
}

// The whole op, once the filterlet tables are in the workspace.
void run(const OpContext& ctx, const Geometry& g, const Plan& l, const Work& w) {
  const auto& c = *g.conv;
  const planar::Requant q = planar::requant_for(ctx, c, g.oc);
  const int8_t* x = ctx.in_data<int8_t>(0);
  for (int32_t b = 0; b < g.batches; ++b) {
    build_planes(g, l, x, b, w.planes);
    planar::for_each_block(
        ctx.out_data<int8_t>() + int64_t{b} * g.oh * g.ow * g.oc, g.oh, g.ow, g.oc,
        l.vectors_per_row, c.stride_h * l.row, w.tile,
        [&](auto size, const int64_t* base) { block<decltype(size)::value>(g, l, w, q, base); });
  }
}

}  // namespace

bool conv_planar_dense(const OpContext& ctx) {
  if (ctx.in(0).dims[3] != ctx.in(1).dims[3]) return false;  // grouped
  const Geometry g = dense_geometry(ctx);
  if (!applies(g)) return false;
  const Plan l = plan_for(g);
  uint8_t* ws = planar::workspace(ctx, l.total);
  if (!ws) return false;
  const Work w = work_for(ws, l);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t taps = g.kh * g.kw;
  for (int32_t oc = 0; oc <= g.oc; ++oc) w.start[oc] = oc * taps;
  tap_offsets(g, l, w.taps);
  for (int64_t f = taps; f < g.filterlets; ++f) w.taps[f] = w.taps[f - taps];
  store_pairs(filter, g.filterlets, g.ic, w.weights);
  run(ctx, g, l, w);
  return true;
}

bool conv_planar_fwcs(const OpContext& ctx) {
  const Geometry g = fwcs_geometry(ctx);
  if (!applies(g)) return false;
  const Plan l = plan_for(g);
  uint8_t* ws = planar::workspace(ctx, l.total);
  if (!ws) return false;
  const Work w = work_for(ws, l);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t taps = g.kh * g.kw;
  // The kernel's tap offsets, kept past the filterlets' own.
  tap_offsets(g, l, w.taps + g.filterlets);
  int64_t f = 0;
  uint64_t bit = 0;
  for (int32_t oc = 0; oc < g.oc; ++oc) {
    w.start[oc] = static_cast<int32_t>(f);
    for (int32_t t = 0; t < taps; ++t, ++bit) {
      if (!((mask[bit >> 3] >> (bit & 7)) & 1u)) continue;
      w.taps[f++] = w.taps[g.filterlets + t];
    }
  }
  w.start[g.oc] = static_cast<int32_t>(f);
  store_pairs(values, g.filterlets, g.ic, w.weights);
  run(ctx, g, l, w);
  return true;
}

#pragma GCC pop_options
#endif  // DTMM_X86_SIMD

}  // namespace dtmm
