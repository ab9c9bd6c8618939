// CONV_2D_FWCS: convolution over filterlet-sparse weights (format.h). Only
// kept filterlets are visited; each is a C_in-long dot product with the input
// pixel under its tap. Same semantics and bits as CONV_2D on the same weights
// with the pruned filterlets stored as zeros.
#include <string.h>

#include "../fixedpoint.h"
#include "dot.h"
#include "kernels.h"
#if defined(__ARM_FEATURE_MVE)
#include "requantize_helium.h"
#endif
#include "sparse_conv_host.h"

namespace dtmm {

dtmm_status validate_conv2d_fwcs(const OpContext& ctx) {
  if (ctx.num_inputs() < 3 || ctx.num_inputs() > 4 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const dtmm_status s =
      check_conv_geometry(ctx, p.conv, p.out_channels, p.kernel_h, p.kernel_w, p.in_channels, 3);
  if (s != DTMM_OK) return s;
  if (ctx.in(0).dims[3] != p.in_channels || p.conv.dilation_h < 1) return DTMM_ERR_BAD_PARAMS;
  const auto& values = ctx.in(1);
  const auto& mask = ctx.in(2);
  const uint64_t bits = uint64_t{static_cast<uint32_t>(p.out_channels)} *
                        static_cast<uint32_t>(p.kernel_h) * static_cast<uint32_t>(p.kernel_w);
  if (values.dtype != DTMM_INT8 || values.storage != DTMM_STORAGE_CONST || values.rank != 2 ||
      values.dims[1] != p.in_channels || mask.dtype != DTMM_UINT8 ||
      mask.storage != DTMM_STORAGE_CONST || mask.size != (bits + 7) / 8)
    return DTMM_ERR_BAD_PARAMS;
  // The mask must count exactly the stored filterlets, with no stray bits.
  const uint8_t* m = ctx.in_data<uint8_t>(2);
  uint64_t kept = 0;
  for (uint32_t i = 0; i < mask.size; ++i) kept += static_cast<uint64_t>(popcount8(m[i]));
  if (bits % 8 && (m[mask.size - 1] >> (bits % 8)) != 0) return DTMM_ERR_BAD_PARAMS;
  if (kept != static_cast<uint64_t>(values.dims[0])) return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

// Reference loop: per output pixel, per filter, walk the filter's mask bits;
// a kept tap inside the input adds (x + input_offset) . values row.
static void fwcs_reference(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* bias = ctx.has_input(3) ? ctx.in_data<int32_t>(3) : nullptr;
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
          int32_t acc = 0;
          for (int32_t t = 0; t < taps; ++t, ++bit) {
            if (!(mask[bit >> 3] & (1u << (bit & 7)))) continue;
            const int32_t iy = y0 + (t / p.kernel_w) * c.dilation_h;
            const int32_t ix = x0 + (t % p.kernel_w) * c.dilation_w;
            if (iy >= 0 && iy < ih && ix >= 0 && ix < iw) {
              const int8_t* px = x + ((int64_t{b} * ih + iy) * iw + ix) * ic;
              for (int32_t i = 0; i < ic; ++i) acc += (px[i] + c.input_offset) * v[i];
            }
            v += ic;
          }
          if (bias) acc = fx::add(acc, bias[oc]);
          acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + c.output_offset;
          y[((int64_t{b} * oh + oy) * ow + ox) * p.out_channels + oc] =
              static_cast<int8_t>(clamp_i32(acc, c.act_min, c.act_max));
        }
      }
    }
  }
}

// Portable fast path (dilation 1), Helium-accelerated through dot.h: four
// consecutive output pixels whose windows lie inside the input share every
// load of a kept filterlet (dot4x), and the input offset comes from the
// folded bias; other pixels take the per-pixel formula with the bias. The
// mask is walked per filter, outside the dot products.
static void fwcs_fast(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* bias = ctx.has_input(3) ? ctx.in_data<int32_t>(3) : nullptr;
  const int32_t* folded = ctx.blob_i32(c.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + p.out_channels;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = p.in_channels;
  const int32_t oh = out.dims[1], ow = out.dims[2], oc_count = p.out_channels;
  const int32_t kh = p.kernel_h, kw = p.kernel_w, taps = kh * kw;
  const auto finish = [&](int32_t acc, int32_t oc) {
    acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + c.output_offset;
    return static_cast<int8_t>(clamp_i32(acc, c.act_min, c.act_max));
  };
  const auto kept = [&](uint32_t bit) { return (mask[bit >> 3] >> (bit & 7)) & 1u; };
#if defined(__ARM_FEATURE_MVE)
  const uint32_t oc_u = static_cast<uint32_t>(oc_count);
  const uint32x4_t pixel_offsets = vmulq_n_u32(vidupq_n_u32(0, 1), oc_u);
#endif

  // One output pixel by the reference formula (windows cut by the border).
  const auto pixel = [&](int32_t b, int32_t y0, int32_t ox, int8_t* out_row) {
    const int32_t x0 = ox * c.stride_w - c.pad_w;
    const int8_t* v = values;
    uint32_t bit = 0;
    for (int32_t oc = 0; oc < oc_count; ++oc) {
      int32_t acc = 0;
      for (int32_t t = 0; t < taps; ++t, ++bit) {
        if (!kept(bit)) continue;
        const int32_t iy = y0 + t / kw, ix = x0 + t % kw;
        if (iy >= 0 && iy < ih && ix >= 0 && ix < iw) {
          const int8_t* px = x + ((int64_t{b} * ih + iy) * iw + ix) * ic;
          acc += dot_i8(px, v, ic) + c.input_offset * sum_i8(v, ic);
        }
        v += ic;
      }
      if (bias) acc = fx::add(acc, bias[oc]);
      out_row[int64_t{ox} * oc_count + oc] = finish(acc, oc);
    }
  };

  // Output columns [ox_lo, ox_hi) have their windows inside the input.
  const int32_t ox_lo = (c.pad_w + c.stride_w - 1) / c.stride_w;
  const int32_t last = iw - kw + c.pad_w;
  const int32_t ox_hi = last < 0 ? 0 : (last / c.stride_w + 1 < ow ? last / c.stride_w + 1 : ow);
  const int32_t groups = ox_hi > ox_lo ? (ox_hi - ox_lo) / 4 : 0;
  constexpr int32_t kMaxTaps = 64;  // decoded tap list on the stack
  int32_t tap_offset[kMaxTaps];
  const int64_t step = int64_t{c.stride_w} * ic;

  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * c.stride_h - c.pad_h;
      int8_t* out_row = y + (int64_t{b} * oh + oy) * ow * oc_count;
      const bool rows_inside = y0 >= 0 && y0 + kh <= ih && taps <= kMaxTaps && groups > 0;
      const int32_t g_end = rows_inside ? ox_lo + 4 * groups : ox_lo;
      if (rows_inside) {
        // Per filter: decode its kept taps once, then run every 4-pixel group.
        const int8_t* v = values;
        uint32_t bit = 0;
        for (int32_t oc = 0; oc < oc_count; ++oc) {
          int32_t count = 0;
          for (int32_t ky = 0; ky < kh; ++ky)
            for (int32_t kx = 0; kx < kw; ++kx, ++bit)
              if (kept(bit)) tap_offset[count++] = (ky * iw + kx) * ic;
          for (int32_t g = 0; g < groups; ++g) {
            const int32_t ox = ox_lo + 4 * g;
            const int8_t* win = x + ((int64_t{b} * ih + y0) * iw + ox * c.stride_w - c.pad_w) * ic;
#if defined(__ARM_FEATURE_MVE)
            int32_t acc[4] = {0, 0, 0, 0};
            if (ic % 16 == 0) {  // whole vectors: accumulators stay in registers
              int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
              const int8_t* wt = v;
              for (int32_t t = 0; t < count; ++t) {
                const int8_t* xt = win + tap_offset[t];
                for (int32_t i = 0; i < ic; i += 16, wt += 16, xt += 16) {
                  const int8x16_t wv = vldrbq_s8(wt);
                  a0 = vmladavaq_s8(a0, vldrbq_s8(xt), wv);
                  a1 = vmladavaq_s8(a1, vldrbq_s8(xt + step), wv);
                  a2 = vmladavaq_s8(a2, vldrbq_s8(xt + 2 * step), wv);
                  a3 = vmladavaq_s8(a3, vldrbq_s8(xt + 3 * step), wv);
                }
              }
              acc[0] = a0;
              acc[1] = a1;
              acc[2] = a2;
              acc[3] = a3;
            } else {
              for (int32_t t = 0; t < count; ++t) {
                const int8_t* xt = win + tap_offset[t];
                dot4x_i8(xt, xt + step, xt + 2 * step, xt + 3 * step, v + int64_t{t} * ic, ic, acc);
              }
            }
#else
            int32_t acc[4] = {0, 0, 0, 0};
            for (int32_t t = 0; t < count; ++t) {
              const int8_t* xt = win + tap_offset[t];
              dot4x_i8(xt, xt + step, xt + 2 * step, xt + 3 * step, v + int64_t{t} * ic, ic, acc);
            }
#endif
#if defined(__ARM_FEATURE_MVE)
            // The 4 pixels share the channel's constants: one vector
            // requantization, scattered to the pixels' output bytes.
            int32x4_t r = vaddq_n_s32(vldrwq_s32(acc), folded[oc]);
            r = helium::multiply_by_quantized_multiplier4(r, vdupq_n_s32(mult[oc]),
                                                          vdupq_n_s32(shift[oc]));
            r = vaddq_n_s32(r, c.output_offset);
            r = vminq_s32(vmaxq_s32(r, vdupq_n_s32(c.act_min)), vdupq_n_s32(c.act_max));
            vstrbq_scatter_offset_s32(out_row + int64_t{ox} * oc_count + oc, pixel_offsets, r);
#else
            for (int32_t q = 0; q < 4; ++q)
              out_row[int64_t{ox + q} * oc_count + oc] = finish(fx::add(acc[q], folded[oc]), oc);
#endif
          }
          v += int64_t{count} * ic;
        }
      }
      for (int32_t ox = 0; ox < ow; ++ox)
        if (ox < ox_lo || ox >= g_end) pixel(b, y0, ox, out_row);
    }
  }
}

void eval_conv2d_fwcs(const OpContext& ctx) {
  const auto& c = ctx.p<dtmm_fwcs_conv_params>().conv;
  if (ctx.model->reference_kernels || c.dilation_h != 1 || c.dilation_w != 1) {
    fwcs_reference(ctx);
  } else if (!fwcs_conv_host(ctx)) {
    fwcs_fast(ctx);
  }
}

}  // namespace dtmm
