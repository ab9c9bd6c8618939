// DEPTHWISE_CONV_2D, int8 per-channel, filter [1, KH, KW, C_in * multiplier].

#include "../fixedpoint.h"
#include "avx2.h"
#include "depthwise_planar.h"
#include "kernels.h"
#include "window.h"
#if defined(__ARM_FEATURE_MVE)
#include "depthwise_helium.h"
#endif

namespace dtmm {

// Bytes of one copied border window (3x3 taps of 256 channels) for the SIMD
// paths; larger windows take the portable or reference loops.
[[maybe_unused]] constexpr int64_t kDepthwisePatch = 2304;

dtmm_status validate_depthwise_conv2d(const OpContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& w = ctx.in(1);
  if (!is_int8(w) || w.rank != 4 || w.storage != DTMM_STORAGE_CONST || w.dims[0] != 1)
    return DTMM_ERR_BAD_PARAMS;
  return check_conv_geometry(ctx, ctx.p<dtmm_conv_params>(), w.dims[3], w.dims[1], w.dims[2], 1, 2,
                             true);
}

#if DTMM_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2")
// One output pixel, 16 channels per step: int16 products (|x * w| <= 16384
// fits) widened and summed in int32, then the folded bias and 8-lane
// requantization. `window` rows are `in_row` bytes apart, taps `depth` apart.
static void dw_pixel_avx2(const int8_t* window, ptrdiff_t in_row, int32_t kh, int32_t kw,
                          int32_t depth, const int8_t* filter, const int32_t* folded,
                          const int32_t* mult, const int32_t* shift, const dtmm_conv_params& p,
                          int8_t* out) {
  using namespace avx2;
  const __m256i lo = _mm256_set1_epi32(p.act_min), hi = _mm256_set1_epi32(p.act_max);
  const __m256i out_offset = _mm256_set1_epi32(p.output_offset);
  int32_t c = 0;
  for (; c + 16 <= depth; c += 16) {
    __m256i acc_lo = _mm256_setzero_si256(), acc_hi = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < kh; ++ky) {
      for (int32_t kx = 0; kx < kw; ++kx) {
        const __m256i prod = _mm256_mullo_epi16(load16(window + ky * in_row + kx * depth + c),
                                                load16(filter + (ky * kw + kx) * depth + c));
        acc_lo = _mm256_add_epi32(acc_lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
        acc_hi = _mm256_add_epi32(acc_hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
      }
    }
    for (int half = 0; half < 2; ++half) {
      const int32_t cc = c + 8 * half;
      __m256i v =
          _mm256_add_epi32(half ? acc_hi : acc_lo,
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(folded + cc)));
      v = multiply_by_quantized_multiplier8(
          v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult + cc)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift + cc)));
      store8_i8(out + cc, _mm256_add_epi32(v, out_offset), lo, hi);
    }
  }
  for (; c + 8 <= depth; c += 8) {
    __m256i acc = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < kh; ++ky) {
      for (int32_t kx = 0; kx < kw; ++kx) {
        const __m128i xv = _mm_cvtepi8_epi16(_mm_loadl_epi64(
            reinterpret_cast<const __m128i*>(window + ky * in_row + kx * depth + c)));
        const __m128i wv = _mm_cvtepi8_epi16(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(filter + (ky * kw + kx) * depth + c)));
        acc = _mm256_add_epi32(acc, _mm256_cvtepi16_epi32(_mm_mullo_epi16(xv, wv)));
      }
    }
    __m256i v =
        _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(folded + c)));
    v = multiply_by_quantized_multiplier8(
        v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult + c)),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift + c)));
    store8_i8(out + c, _mm256_add_epi32(v, out_offset), lo, hi);
  }
  for (; c < depth; ++c) {
    int32_t acc = 0;
    for (int32_t ky = 0; ky < kh; ++ky)
      for (int32_t kx = 0; kx < kw; ++kx)
        acc += window[ky * in_row + kx * depth + c] * filter[(ky * kw + kx) * depth + c];
    const int32_t v = multiply_by_quantized_multiplier(fx::add(acc, folded[c]), mult[c], shift[c]) +
                      p.output_offset;
    out[c] = static_cast<int8_t>(clamp_i32(v, p.act_min, p.act_max));
  }
}
// Filter taps paired left to right within each filter row (an odd last tap
// with a zero partner), 16 channels per block, interleaved the way
// vpunpck{l,h}wd interleaves two taps' inputs: per (block, ky, pair) one
// vector for channels 0-3 and 8-11, then one for 4-7 and 12-15.
constexpr int32_t kDwPairTable = 4096;  // int16 elements (8 KB, on the stack)

static int32_t dw_pair_table_size(int32_t kh, int32_t kw, int32_t depth) {
  return kh * ((kw + 1) / 2) * depth * 2;
}

static void dw_build_pair_table(const int8_t* filter, int32_t kh, int32_t kw, int32_t depth,
                                int16_t* table) {
  const int32_t pairs = (kw + 1) / 2;
  for (int32_t c0 = 0; c0 < depth; c0 += 16)
    for (int32_t ky = 0; ky < kh; ++ky)
      for (int32_t m = 0; m < pairs; ++m)
        for (int32_t half = 0; half < 2; ++half)
          for (int32_t l = 0; l < 8; ++l) {
            // Lane l of the vector: channel (l < 4 ? l : l + 4) + 4 * half.
            const int32_t ch = c0 + (l < 4 ? l : l + 4) + 4 * half;
            const int8_t* t = filter + (int64_t{ky} * kw + 2 * m) * depth + ch;
            *table++ = t[0];
            *table++ = 2 * m + 1 < kw ? t[depth] : 0;
          }
}

// One output pixel, depth % 16 == 0: two taps' inputs interleaved as int16
// pairs meet the pair table in vpmaddwd, so each instruction adds both taps'
// products for eight channels.
static void dw_pixel_pairs_avx2(const int8_t* window, ptrdiff_t in_row, int32_t kh, int32_t kw,
                                int32_t depth, const int16_t* table, const int32_t* folded,
                                const int32_t* mult, const int32_t* shift,
                                const dtmm_conv_params& p, int8_t* out) {
  using namespace avx2;
  const __m256i lo = _mm256_set1_epi32(p.act_min), hi = _mm256_set1_epi32(p.act_max);
  const __m256i out_offset = _mm256_set1_epi32(p.output_offset);
  const int32_t pairs = (kw + 1) / 2;
  const __m256i* t = reinterpret_cast<const __m256i*>(table);
  for (int32_t c = 0; c < depth; c += 16) {
    __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < kh; ++ky)
      for (int32_t m = 0; m < pairs; ++m, t += 2) {
        const int8_t* px = window + ky * in_row + 2 * m * depth + c;
        const __m256i xa = load16(px);
        const __m256i xb = 2 * m + 1 < kw ? load16(px + depth) : _mm256_setzero_si256();
        acc_a = _mm256_add_epi32(
            acc_a, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), _mm256_load_si256(t)));
        acc_b = _mm256_add_epi32(
            acc_b, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), _mm256_load_si256(t + 1)));
      }
    for (int half = 0; half < 2; ++half) {
      const int32_t cc = c + 8 * half;
      __m256i v = _mm256_permute2x128_si256(acc_a, acc_b, half ? 0x31 : 0x20);
      v = _mm256_add_epi32(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(folded + cc)));
      v = multiply_by_quantized_multiplier8(
          v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult + cc)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift + cc)));
      store8_i8(out + cc, _mm256_add_epi32(v, out_offset), lo, hi);
    }
  }
}

#pragma GCC pop_options

#endif  // DTMM_X86_SIMD

#if DTMM_X86_SIMD
template <typename Weight>
using DwPixelFn = void (*)(const int8_t*, ptrdiff_t, int32_t, int32_t, int32_t, const Weight*,
                           const int32_t*, const int32_t*, const int32_t*, const dtmm_conv_params&,
                           int8_t*);

// All output pixels through `pixel` with `filter` (the op's, or a table made
// from it); border windows are copied with the input zero point in the
// padding (cancelled by the folded bias). False, doing nothing, when a window
// does not fit the stack buffer.
template <typename Weight>
static bool depthwise_by_pixel(const OpContext& ctx, DwPixelFn<Weight> pixel,
                               const Weight* filter) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  const int32_t kh = w.dims[1], kw = w.dims[2], depth = w.dims[3];
  if (int64_t{kh} * kw * depth > kDepthwisePatch) return false;
  int8_t patch[kDepthwisePatch];
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int32_t* folded = ctx.blob_i32(p.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t* shift = mult + depth;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        int8_t* out_px = y + ((int64_t{b} * oh + oy) * ow + ox) * depth;
        if (y0 >= 0 && y0 + kh <= ih && x0 >= 0 && x0 + kw <= iw) {
          pixel(x + ((int64_t{b} * ih + y0) * iw + x0) * depth, int64_t{iw} * depth, kh, kw, depth,
                filter, folded, mult, shift, p, out_px);
          continue;
        }
        copy_window(x + int64_t{b} * ih * iw * depth, ih, iw, depth, y0, x0, kh, kw,
                    static_cast<int8_t>(-p.input_offset), patch);
        pixel(patch, int64_t{kw} * depth, kh, kw, depth, filter, folded, mult, shift, p, out_px);
      }
    }
  }
  return true;
}
#endif

#if defined(__ARM_FEATURE_MVE)
// Every output pixel through the Helium kernels: one call per row for the
// pixels whose window lies inside the image, one per border pixel, whose
// window is copied with the input zero point in the padding (cancelled by
// the folded bias). False, doing nothing, when a window does not fit the
// stack buffer.
static bool depthwise_helium(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  const int32_t kh = w.dims[1], kw = w.dims[2], depth = w.dims[3];
  if (int64_t{kh} * kw * depth > kDepthwisePatch) return false;
  int8_t patch[kDepthwisePatch];
  helium::DepthwisePixel d{};
  d.kh = kh;
  d.kw = kw;
  d.depth = depth;
  d.filter = ctx.in_data<int8_t>(1);
  d.folded = ctx.blob_i32(p.folded_bias_offset);
  d.mult = ctx.blob_i32(p.quant_offset);
  d.shift = d.mult + depth;
  d.output_offset = p.output_offset;
  d.act_min = p.act_min;
  d.act_max = p.act_max;
  d.shifts = shift_form(d.shift, 0, depth);
  void (*const pixels)(const helium::DepthwisePixel&, const int8_t*, ptrdiff_t, int32_t, int8_t*) =
      depth % 16 == 0  ? helium::depthwise_pixels<helium::depthwise_pixel_wide<4>>
      : depth % 8 == 0 ? helium::depthwise_pixels<helium::depthwise_pixel_wide<2>>
                       : helium::depthwise_pixels<helium::depthwise_pixel>;
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const ptrdiff_t image_row = ptrdiff_t{iw} * depth;
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* image = x + ptrdiff_t{b} * ih * image_row;
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      int8_t* out_px = y + (ptrdiff_t{b} * oh + oy) * ow * depth;
      // Columns [ox_lo, ox_hi) have their window inside the image: one call.
      const bool row_inside = y0 >= 0 && y0 + kh <= ih;
      const int32_t ox_lo = (p.pad_w + p.stride_w - 1) / p.stride_w;
      const int32_t last = iw - kw + p.pad_w;
      int32_t ox_hi = last < 0 ? 0 : last / p.stride_w + 1;
      ox_hi = ox_hi > ow ? ow : ox_hi;
      for (int32_t ox = 0; ox < ow; ++ox, out_px += depth) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        if (row_inside && ox == ox_lo && ox_lo < ox_hi) {
          d.in_row = image_row;
          pixels(d, image + y0 * image_row + ptrdiff_t{x0} * depth, ptrdiff_t{p.stride_w} * depth,
                 ox_hi - ox_lo, out_px);
          out_px += ptrdiff_t{ox_hi - ox_lo - 1} * depth;
          ox = ox_hi - 1;
          continue;
        }
        copy_window(image, ih, iw, depth, y0, x0, kh, kw, static_cast<int8_t>(-p.input_offset),
                    patch);
        d.in_row = ptrdiff_t{kw} * depth;
        pixels(d, patch, 0, 1, out_px);
      }
    }
  }
  return true;
}
#endif

#if !defined(__ARM_FEATURE_MVE)
// Portable fast path (multiplier 1, dilation 1): channels are the contiguous inner
// axis of both input and filter, so each tap is a vector multiply-add over a
// block of channels. Inside the input the zero-point correction comes from the
// folded bias; on the border, padded taps are skipped and the offset applied.
static void eval_depthwise_conv2d_blocked(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  constexpr int32_t kBlock = 64;  // channels per pass: a 256-byte accumulator on the stack
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  const int32_t* folded = ctx.blob_i32(p.folded_bias_offset);
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t kh = w.dims[1], kw = w.dims[2], depth = w.dims[3];
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t* shift = mult + depth;

  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = ih - y0 < kh ? ih - y0 : kh;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = iw - x0 < kw ? iw - x0 : kw;
        const bool inside = ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw;
        const int32_t offset = inside ? 0 : p.input_offset;
        int8_t* out_px = y + ((int64_t{b} * oh + oy) * ow + ox) * depth;
        for (int32_t c0 = 0; c0 < depth; c0 += kBlock) {
          const int32_t n = depth - c0 < kBlock ? depth - c0 : kBlock;
          int32_t acc[kBlock] = {0};
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              const int8_t* px = x + ((int64_t{b} * ih + y0 + ky) * iw + x0 + kx) * depth + c0;
              const int8_t* pw = filter + (int64_t{ky} * kw + kx) * depth + c0;
              for (int32_t c = 0; c < n; ++c) acc[c] += (px[c] + offset) * pw[c];
            }
          }
          for (int32_t c = 0; c < n; ++c) {
            const int32_t oc = c0 + c;
            int32_t v =
                inside ? fx::add(acc[c], folded[oc]) : (bias ? fx::add(acc[c], bias[oc]) : acc[c]);
            v = multiply_by_quantized_multiplier(v, mult[oc], shift[oc]) + p.output_offset;
            out_px[oc] = static_cast<int8_t>(clamp_i32(v, p.act_min, p.act_max));
          }
        }
      }
    }
  }
}
#endif

void eval_depthwise_conv2d(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  if (ctx.model->reference_kernels || p.depth_multiplier != 1 || p.dilation_h != 1 ||
      p.dilation_w != 1) {
    conv_reference(ctx, true);
    return;
  }
#if defined(__ARM_FEATURE_MVE)
  // Windows over the stack patch (more than 2,304 bytes) take the reference
  // loop, which keeps Helium builds small.
  if (!depthwise_helium(ctx)) conv_reference(ctx, true);
#else
  if (depthwise_planar(ctx)) return;
#if DTMM_X86_SIMD
  if (avx2::cpu_has_avx2()) {
    const auto& w = ctx.in(1);
    const int32_t kh = w.dims[1], kw = w.dims[2], depth = w.dims[3];
    const int8_t* filter = ctx.in_data<int8_t>(1);
    if (depth % 16 == 0 && dw_pair_table_size(kh, kw, depth) <= kDwPairTable) {
      alignas(32) int16_t table[kDwPairTable];
      dw_build_pair_table(filter, kh, kw, depth, table);
      if (depthwise_by_pixel<int16_t>(ctx, dw_pixel_pairs_avx2, table)) return;
    }
    if (depthwise_by_pixel<int8_t>(ctx, dw_pixel_avx2, filter)) return;
  }
#endif
  eval_depthwise_conv2d_blocked(ctx);
#endif
}

}  // namespace dtmm
