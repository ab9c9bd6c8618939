// CONV_2D_FWCS on x86-64 hosts with AVX2. The mask is decoded once per call
// into a list of (tap offset, widened values) per filter, so the inner loop
// holds no index decoding; eight output pixels share every weight load. Each
// pixel's window is widened to int16 with the input zero point in the
// padding, which the folded bias cancels exactly (as in the dense path).
#include "sparse_conv_host.h"

#include "../fixedpoint.h"
#include "avx2.h"
#include "kernels.h"

namespace dtmm {

#if DTMM_X86_SIMD
namespace {

constexpr int32_t kPixels = 8;  // output pixels sharing each weight load

struct Layout {
  int32_t cp;                                          // in_channels rounded up to 16
  int64_t taps;                                        // kernel_h * kernel_w
  int64_t kept;                                        // stored filterlets
  size_t w16, tap_offset, start, window, sums, total;  // byte offsets in the workspace
};

size_t align32(size_t n) {
  return (n + 31) / 32 * 32;
}

Layout layout(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  Layout l{};
  l.cp = (p.in_channels + 15) / 16 * 16;
  l.taps = int64_t{p.kernel_h} * p.kernel_w;
  l.kept = ctx.in(1).dims[0];
  l.w16 = 0;
  l.tap_offset = align32(l.w16 + 2 * static_cast<size_t>(l.kept) * l.cp);
  l.start = align32(l.tap_offset + 4 * static_cast<size_t>(l.kept));
  l.window = align32(l.start + 4 * (static_cast<size_t>(p.out_channels) + 1));
  l.sums = align32(l.window + 2 * static_cast<size_t>(kPixels) * l.taps * l.cp);
  l.total = align32(l.sums + 4 * static_cast<size_t>(kPixels) * p.out_channels);
  return l;
}

}  // namespace
#endif  // DTMM_X86_SIMD

size_t fwcs_conv_host_workspace(const OpContext& ctx) {
#if DTMM_X86_SIMD
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  if (p.conv.dilation_h != 1 || p.conv.dilation_w != 1) return 0;
  return layout(ctx).total + 32;  // + 32: room to align the base
#else
  (void)ctx;
  return 0;
#endif
}

#if !DTMM_X86_SIMD
bool fwcs_conv_host(const OpContext&) {
  return false;
}
#else

#pragma GCC push_options
#pragma GCC target("avx2")

static void fwcs_pixels(const OpContext& ctx, const Layout& l, uint8_t* ws, const int64_t* pixel,
                        int32_t count) {
  using namespace avx2;
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int32_t ih = in.dims[1], iw = in.dims[2], ic = p.in_channels;
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int16_t* w16 = reinterpret_cast<const int16_t*>(ws + l.w16);
  const int32_t* tap_offset = reinterpret_cast<const int32_t*>(ws + l.tap_offset);
  const int32_t* start = reinterpret_cast<const int32_t*>(ws + l.start);
  int16_t* window = reinterpret_cast<int16_t*>(ws + l.window);
  int32_t* sums = reinterpret_cast<int32_t*>(ws + l.sums);
  const int64_t window_len = l.taps * l.cp;
  const int16_t zp = static_cast<int16_t>(-c.input_offset);

  // Widen each pixel's window; padded taps hold the zero point, padded
  // channels (ic..cp) hold 0 in both window and weights.
  for (int32_t q = 0; q < kPixels; ++q) {
    int16_t* win = window + q * window_len;
    if (q >= count) {  // unused slot: keep it finite, its sums are ignored
      for (int64_t i = 0; i < window_len; ++i) win[i] = 0;
      continue;
    }
    const int64_t n = pixel[q];
    const int32_t ox = static_cast<int32_t>(n % ow), oy = static_cast<int32_t>(n / ow % oh);
    const int32_t b = static_cast<int32_t>(n / (int64_t{ow} * oh));
    const int32_t y0 = oy * c.stride_h - c.pad_h, x0 = ox * c.stride_w - c.pad_w;
    const bool inside = y0 >= 0 && y0 + p.kernel_h <= ih && x0 >= 0 && x0 + p.kernel_w <= iw;
    if (inside && ic % 16 == 0) {  // whole window in the input: widen 16 channels at a time
      for (int32_t ky = 0; ky < p.kernel_h; ++ky) {
        const int8_t* src = x + ((int64_t{b} * ih + y0 + ky) * iw + x0) * ic;
        int16_t* dst = win + int64_t{ky} * p.kernel_w * l.cp;
        for (int32_t i = 0; i < p.kernel_w * ic; i += 16)
          _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), load16(src + i));
      }
      continue;
    }
    for (int64_t t = 0; t < l.taps; ++t) {
      const int32_t iy = y0 + static_cast<int32_t>(t / p.kernel_w);
      const int32_t ix = x0 + static_cast<int32_t>(t % p.kernel_w);
      int16_t* dst = win + t * l.cp;
      if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
        for (int32_t i = 0; i < ic; ++i) dst[i] = zp;
        for (int32_t i = ic; i < l.cp; ++i) dst[i] = 0;
        continue;
      }
      const int8_t* src = x + ((int64_t{b} * ih + iy) * iw + ix) * ic;
      int32_t i = 0;
      for (; i + 16 <= ic; i += 16)
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), load16(src + i));
      for (; i < ic; ++i) dst[i] = src[i];
      for (; i < l.cp; ++i) dst[i] = 0;
    }
  }

  for (int32_t oc = 0; oc < p.out_channels; ++oc) {
    __m256i acc[kPixels];
    for (int32_t q = 0; q < kPixels; ++q) acc[q] = _mm256_setzero_si256();
    for (int32_t k = start[oc]; k < start[oc + 1]; ++k) {
      const int16_t* wk = w16 + int64_t{k} * l.cp;
      const int16_t* xk = window + tap_offset[k];
      for (int32_t i = 0; i < l.cp; i += 16) {
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + i));
        for (int32_t q = 0; q < kPixels; ++q)
          acc[q] = _mm256_add_epi32(
              acc[q], _mm256_madd_epi16(wv, _mm256_load_si256(reinterpret_cast<const __m256i*>(
                                                xk + q * window_len + i))));
      }
    }
    alignas(32) int32_t pixel_sums[kPixels];
    _mm256_store_si256(reinterpret_cast<__m256i*>(pixel_sums), hsum8(acc));
    for (int32_t q = 0; q < kPixels; ++q) sums[q * p.out_channels + oc] = pixel_sums[q];
  }

  const int32_t* folded = ctx.blob_i32(c.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + p.out_channels;
  const __m256i lo = _mm256_set1_epi32(c.act_min), hi = _mm256_set1_epi32(c.act_max);
  const __m256i out_offset = _mm256_set1_epi32(c.output_offset);
  int8_t* y = ctx.out_data<int8_t>();
  for (int32_t q = 0; q < count; ++q) {
    const int32_t* s = sums + q * p.out_channels;
    int8_t* o = y + pixel[q] * p.out_channels;
    int32_t oc = 0;
    for (; oc + 8 <= p.out_channels; oc += 8) {
      __m256i v =
          _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + oc)),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(folded + oc)));
      v = multiply_by_quantized_multiplier8(
          v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult + oc)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift + oc)));
      store8_i8(o + oc, _mm256_add_epi32(v, out_offset), lo, hi);
    }
    for (; oc < p.out_channels; ++oc) {
      const int32_t v =
          multiply_by_quantized_multiplier(fx::add(s[oc], folded[oc]), mult[oc], shift[oc]) +
          c.output_offset;
      o[oc] = static_cast<int8_t>(clamp_i32(v, c.act_min, c.act_max));
    }
  }
}

#pragma GCC pop_options

bool fwcs_conv_host(const OpContext& ctx) {
  const size_t need = fwcs_conv_host_workspace(ctx);
  if (need == 0 || !avx2::cpu_has_avx2() || !ctx.model->workspace ||
      ctx.model->workspace_size < need)
    return false;
  const Layout l = layout(ctx);
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  uint8_t* ws = static_cast<uint8_t*>(ctx.model->workspace);
  ws += (32 - reinterpret_cast<uintptr_t>(ws) % 32) % 32;

  // Decode the mask once: per filter, where its filterlets start, and per
  // filterlet its tap's offset in a widened window.
  int16_t* w16 = reinterpret_cast<int16_t*>(ws + l.w16);
  int32_t* tap_offset = reinterpret_cast<int32_t*>(ws + l.tap_offset);
  int32_t* start = reinterpret_cast<int32_t*>(ws + l.start);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  int32_t k = 0;
  uint64_t bit = 0;
  for (int32_t oc = 0; oc < p.out_channels; ++oc) {
    start[oc] = k;
    for (int64_t t = 0; t < l.taps; ++t, ++bit) {
      if (!(mask[bit >> 3] & (1u << (bit & 7)))) continue;
      tap_offset[k] = static_cast<int32_t>(t * l.cp);
      for (int32_t i = 0; i < l.cp; ++i)
        w16[int64_t{k} * l.cp + i] = i < p.in_channels ? values[int64_t{k} * p.in_channels + i] : 0;
      ++k;
    }
  }
  start[p.out_channels] = k;

  const auto& out = ctx.out();
  const int64_t pixels = int64_t{out.dims[0]} * out.dims[1] * out.dims[2];
  for (int64_t n = 0; n < pixels; n += kPixels) {
    int64_t group[kPixels];
    const int32_t count = static_cast<int32_t>(pixels - n < kPixels ? pixels - n : kPixels);
    for (int32_t q = 0; q < count; ++q) group[q] = n + q;
    fwcs_pixels(ctx, l, ws, group, count);
  }
  return true;
}

#endif  // DTMM_X86_SIMD

}  // namespace dtmm
