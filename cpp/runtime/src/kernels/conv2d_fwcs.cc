// CONV_2D_FWCS: convolution over filterlet-sparse weights (format.h). Only
// kept filterlets are visited; each is a C_in-long dot product with the input
// pixel under its tap. Same semantics and bits as CONV_2D on the same weights
// with the pruned filterlets stored as zeros.
#include <string.h>

#include "../fixedpoint.h"
#include "dot.h"
#include "kernels.h"
#include "sparse_conv_host.h"
#include "window.h"
#if defined(__ARM_FEATURE_MVE)
#include "requantize_helium.h"
#endif

namespace dtmm {

dtmm_status validate_conv2d_fwcs(const OpContext& ctx) {
  if (ctx.num_inputs() != 3 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const dtmm_status s =
      check_conv_geometry(ctx, p.conv, p.out_channels, p.kernel_h, p.kernel_w, p.in_channels, 3);
  if (s != DTMM_OK) return s;
  if (ctx.in(0).dims[3] != p.in_channels || p.conv.dilation_h < 1) return DTMM_ERR_BAD_PARAMS;
  const uint64_t filterlets = uint64_t{static_cast<uint32_t>(p.out_channels)} *
                              static_cast<uint32_t>(p.kernel_h) * static_cast<uint32_t>(p.kernel_w);
  return check_masked_values(ctx, 1, 2, filterlets, p.in_channels);
}

// Reference loop: per output pixel, per filter, walk the filter's mask bits;
// a kept tap inside the input adds (x + input_offset) . values row. The op
// stores no bias: it is recovered exactly (modulo 2^32, as it accumulates)
// from the folded bias minus input_offset times the filter's weight sum.
static void fwcs_reference(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* folded = ctx.blob_i32(c.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + p.out_channels;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = p.in_channels;
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int32_t taps = p.kernel_h * p.kernel_w;
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t y0 = oy * c.stride_h - c.pad_h, x0 = ox * c.stride_w - c.pad_w;
        const int8_t* v = values;
        uint32_t bit = 0;
        for (int32_t oc = 0; oc < p.out_channels; ++oc) {
          int32_t acc = 0, weight_sum = 0;
          for (int32_t t = 0; t < taps; ++t, ++bit) {
            if (!(mask[bit >> 3] & (1u << (bit & 7)))) continue;
            for (int32_t i = 0; i < ic; ++i) weight_sum += v[i];
            const int32_t iy = y0 + (t / p.kernel_w) * c.dilation_h;
            const int32_t ix = x0 + (t % p.kernel_w) * c.dilation_w;
            if (iy >= 0 && iy < ih && ix >= 0 && ix < iw) {
              const int8_t* px = x + ((int64_t{b} * ih + iy) * iw + ix) * ic;
              for (int32_t i = 0; i < ic; ++i) acc += (px[i] + c.input_offset) * v[i];
            }
            v += ic;
          }
          const uint32_t bias =
              static_cast<uint32_t>(folded[oc]) -
              static_cast<uint32_t>(c.input_offset) * static_cast<uint32_t>(weight_sum);
          acc = fx::add(acc, static_cast<int32_t>(bias));
          acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + c.output_offset;
          y[((int64_t{b} * oh + oy) * ow + ox) * p.out_channels + oc] =
              static_cast<int8_t>(clamp_i32(acc, c.act_min, c.act_max));
        }
      }
    }
  }
}

// Portable fast path (dilation 1), Helium-accelerated on the M55. The mask is
// decoded once per call into per-filter lists of kept taps (no bit tests in
// the loops). Output pixels go in groups of four that share every load of a
// kept filterlet: windows inside the input are read in place; windows cut by
// the border are first copied with the input zero point in the padding,
// which the folded bias (bias + input_offset * sum of kept weights) cancels
// exactly, so every pixel takes the same path.
namespace {

constexpr int32_t kMaxTaps = 64;      // KH * KW handled by the fast path
constexpr int32_t kMaxKept = 4608;    // decoded filterlets (uint8 tap index each)
constexpr int32_t kMaxWindow = 1024;  // bytes of one copied border window

// Four pixel sums of one output channel -> that channel's byte in four pixels.
inline void store4(const dtmm_conv_params& c, const int32_t* mult, const int32_t* shift,
                   const int32_t* folded, int32_t oc, const int32_t acc[4], int8_t* const out[4],
                   int32_t lanes) {
#if defined(__ARM_FEATURE_MVE)
  if (lanes == 4) {  // one vector requantization (the lanes share the channel's constants)
    int32x4_t r = vaddq_n_s32(vldrwq_s32(acc), folded[oc]);
    r = helium::multiply_by_quantized_multiplier4(r, vdupq_n_s32(mult[oc]), vdupq_n_s32(shift[oc]));
    r = vaddq_n_s32(r, c.output_offset);
    r = vminq_s32(vmaxq_s32(r, vdupq_n_s32(c.act_min)), vdupq_n_s32(c.act_max));
    const uint32_t offsets[4] = {0, static_cast<uint32_t>(out[1] - out[0]),
                                 static_cast<uint32_t>(out[2] - out[0]),
                                 static_cast<uint32_t>(out[3] - out[0])};
    vstrbq_scatter_offset_s32(out[0] + oc, vldrwq_u32(offsets), r);
    return;
  }
#endif
  for (int32_t q = 0; q < lanes; ++q) {
    int32_t v = multiply_by_quantized_multiplier(fx::add(acc[q], folded[oc]), mult[oc], shift[oc]);
    out[q][oc] = static_cast<int8_t>(clamp_i32(v + c.output_offset, c.act_min, c.act_max));
  }
}

#if defined(__ARM_FEATURE_MVE)
// One filter's kept filterlets against four pixel windows, sums kept in
// registers; kTail adds a predicated step for C_in not a multiple of 16
// (a separate instantiation, so whole-vector layers pay nothing for it).
template <bool kTail>
inline void group_sums(const int8_t* const base[4], const int32_t* offset, const uint8_t* tap,
                       int32_t count, const int8_t* v, int32_t ic, int32_t acc[4]) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const int32_t full = ic & ~15;
  const mve_pred16_t tail = vctp8q(static_cast<uint32_t>(ic & 15));
  for (int32_t k = 0; k < count; ++k, v += ic) {
    const int32_t off = offset[tap[k]];
    const int8_t *x0 = base[0] + off, *x1 = base[1] + off, *x2 = base[2] + off, *x3 = base[3] + off;
    for (int32_t i = 0; i < full; i += 16) {
      const int8x16_t wv = vldrbq_s8(v + i);
      a0 = vmladavaq_s8(a0, vldrbq_s8(x0 + i), wv);
      a1 = vmladavaq_s8(a1, vldrbq_s8(x1 + i), wv);
      a2 = vmladavaq_s8(a2, vldrbq_s8(x2 + i), wv);
      a3 = vmladavaq_s8(a3, vldrbq_s8(x3 + i), wv);
    }
    if (kTail) {
      const int8x16_t wv = vldrbq_z_s8(v + full, tail);
      a0 = vmladavaq_s8(a0, vldrbq_z_s8(x0 + full, tail), wv);
      a1 = vmladavaq_s8(a1, vldrbq_z_s8(x1 + full, tail), wv);
      a2 = vmladavaq_s8(a2, vldrbq_z_s8(x2 + full, tail), wv);
      a3 = vmladavaq_s8(a3, vldrbq_z_s8(x3 + full, tail), wv);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}
#endif

}  // namespace

static bool fwcs_fast(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int32_t kh = p.kernel_h, kw = p.kernel_w, taps = kh * kw, ic = p.in_channels;
  const int32_t oc_count = p.out_channels;
  const int64_t kept_total = ctx.in(1).dims[0];
  if (taps > kMaxTaps || kept_total > kMaxKept || int64_t{taps} * ic > kMaxWindow) return false;

  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* folded = ctx.blob_i32(c.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + oc_count;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];

  uint8_t tap_of[kMaxKept];    // kept filterlet k -> its tap index
  uint8_t count_of[kMaxKept];  // filter -> number of kept filterlets (<= taps <= 64)
  if (oc_count > kMaxKept) return false;
  uint32_t bit = 0;
  for (int32_t oc = 0, k = 0; oc < oc_count; ++oc) {
    count_of[oc] = 0;
    for (int32_t t = 0; t < taps; ++t, ++bit) {
      if (!((mask[bit >> 3] >> (bit & 7)) & 1u)) continue;
      tap_of[k++] = static_cast<uint8_t>(t);
      ++count_of[oc];
    }
  }
  int32_t in_place[kMaxTaps], copied[kMaxTaps];  // tap -> byte offset in each layout
  for (int32_t t = 0; t < taps; ++t) {
    in_place[t] = ((t / kw) * iw + t % kw) * ic;
    copied[t] = t * ic;
  }
  int8_t window[4][kMaxWindow];

  const int64_t pixels = int64_t{batches} * oh * ow;
  int32_t b0 = 0, oy0 = 0, ox0 = 0;  // coordinates of pixel n0
  for (int64_t n0 = 0; n0 < pixels; n0 += 4) {
    if (n0 > 0) {
      ox0 += 4;
      while (ox0 >= ow) {
        ox0 -= ow;
        if (++oy0 == oh) {
          oy0 = 0;
          ++b0;
        }
      }
    }
    const int32_t lanes = pixels - n0 < 4 ? static_cast<int32_t>(pixels - n0) : 4;
    const int8_t* base[4];
    int8_t* outp[4];
    bool all_inside = true;
    for (int32_t q = 0; q < 4; ++q) {
      const int64_t n = n0 + (q < lanes ? q : lanes - 1);  // spare lanes repeat the last
      // (b, oy, ox) of pixel n, stepped from the group's first pixel: no
      // 64-bit division (a library call on Cortex-M) per lane.
      int32_t ox = ox0 + static_cast<int32_t>(n - n0), oy = oy0, b = b0;
      while (ox >= ow) {
        ox -= ow;
        if (++oy == oh) {
          oy = 0;
          ++b;
        }
      }
      const int32_t y0 = oy * c.stride_h - c.pad_h, x0 = ox * c.stride_w - c.pad_w;
      outp[q] = y + n * oc_count;
      if (y0 >= 0 && y0 + kh <= ih && x0 >= 0 && x0 + kw <= iw) {
        base[q] = x + ((int64_t{b} * ih + y0) * iw + x0) * ic;
        continue;
      }
      all_inside = false;
      copy_window(x + int64_t{b} * ih * iw * ic, ih, iw, ic, y0, x0, kh, kw,
                  static_cast<int8_t>(-c.input_offset), window[q]);
      base[q] = window[q];
    }
    // Mixed groups: move the in-place windows into the copy layout too, so
    // one tap offset table serves all four lanes.
    if (!all_inside) {
      for (int32_t q = 0; q < 4; ++q) {
        if (base[q] == window[q]) continue;
        for (int32_t t = 0; t < taps; ++t)
          memcpy(window[q] + t * ic, base[q] + in_place[t], static_cast<size_t>(ic));
        base[q] = window[q];
      }
    }
    const int32_t* offset = all_inside ? in_place : copied;

    const int8_t* v = values;
    const uint8_t* tap = tap_of;
    for (int32_t oc = 0; oc < oc_count; ++oc) {
      int32_t acc[4] = {0, 0, 0, 0};
      const int32_t count = count_of[oc];
#if defined(__ARM_FEATURE_MVE)
      if (ic % 16 == 0) {
        group_sums<false>(base, offset, tap, count, v, ic, acc);
      } else {
        group_sums<true>(base, offset, tap, count, v, ic, acc);
      }
      v += static_cast<ptrdiff_t>(count) * ic;
      tap += count;
      store4(c, mult, shift, folded, oc, acc, outp, lanes);
      continue;
#endif
      for (int32_t k = 0; k < count; ++k, v += ic) {
        const int32_t off = offset[tap[k]];
        dot4x_i8(base[0] + off, base[1] + off, base[2] + off, base[3] + off, v, ic, acc);
      }
      tap += count;
      store4(c, mult, shift, folded, oc, acc, outp, lanes);
    }
  }
  return true;
}

void eval_conv2d_fwcs(const OpContext& ctx) {
  const auto& c = ctx.p<dtmm_fwcs_conv_params>().conv;
  if (ctx.model->reference_kernels || c.dilation_h != 1 || c.dilation_w != 1 ||
      (!fwcs_conv_host(ctx) && !fwcs_fast(ctx)))
    fwcs_reference(ctx);
}

}  // namespace dtmm
