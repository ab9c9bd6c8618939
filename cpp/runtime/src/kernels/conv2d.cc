// CONV_2D, int8 per-channel, NHWC input, OHWI filter (TFLite semantics).

#include "../fixedpoint.h"
#include "conv_planar.h"
#include "conv_rows.h"
#include "conv_runs.h"
#include "dot.h"
#include "kernels.h"
#include "window.h"

namespace dtmm {

// Largest reduction length (KH * KW * C_in per group). Each product
// (x - zp_in) * w is at most 255 * 128 = 32,640 in magnitude, so 65,536 of
// them sum to at most 2,139,095,040 < 2^31: the int32 accumulator cannot
// overflow before the bias is added (that add wraps, as it does on the device).

dtmm_status check_conv_geometry(const OpContext& ctx, const dtmm_conv_params& p, int32_t oc,
                                int32_t kh, int32_t kw, int32_t fc, uint32_t bias_input,
                                bool depthwise) {
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  if (!is_int8(in) || !is_int8(out) || in.rank != 4 || out.rank != 4) return DTMM_ERR_BAD_PARAMS;
  if (oc < 1 || kh < 1 || kw < 1 || fc <= 0 || in.dims[3] % fc != 0 || out.dims[3] != oc ||
      out.dims[0] != in.dims[0])
    return DTMM_ERR_BAD_PARAMS;
  if (oc % (in.dims[3] / fc) != 0) return DTMM_ERR_BAD_PARAMS;
  // A depthwise conv (fc 1) has depth_multiplier filters per input channel;
  // other convs leave it 0.
  const int64_t multiplier = depthwise ? oc / in.dims[3] : 0;
  if (p.depth_multiplier != multiplier || (depthwise && multiplier < 1)) return DTMM_ERR_BAD_PARAMS;
  if (static_cast<int64_t>(kh) * kw * fc > kMaxConvReduction) return DTMM_ERR_BAD_PARAMS;
  if (ctx.has_input(bias_input)) {
    const auto& b = ctx.in(bias_input);
    if (b.dtype != DTMM_INT32 || num_elements(b) != static_cast<uint64_t>(oc))
      return DTMM_ERR_BAD_PARAMS;
  }
  if (p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 || p.dilation_w < 1 ||
      p.stride_h > 1024 || p.stride_w > 1024 || p.dilation_h > 1024 || p.dilation_w > 1024 ||
      p.pad_h < 0 || p.pad_w < 0 || p.pad_h > 65536 || p.pad_w > 65536 ||
      !valid_zero_point(-p.input_offset) || !valid_zero_point(p.output_offset) ||
      !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  if (!valid_quant_table(ctx, p.quant_offset, static_cast<uint32_t>(oc)) ||
      !ctx.blob_array_ok(p.folded_bias_offset, uint64_t{4} * static_cast<uint32_t>(oc)))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

dtmm_status validate_conv2d(const OpContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& w = ctx.in(1);
  if (!is_int8(w) || w.rank != 4 || w.storage != DTMM_STORAGE_CONST) return DTMM_ERR_BAD_PARAMS;
  return check_conv_geometry(ctx, ctx.p<dtmm_conv_params>(), w.dims[0], w.dims[1], w.dims[2],
                             w.dims[3], 2);
}

// One output value at a time, skipping taps that fall in the padding (TFLite
// pads with the input zero point, whose offset product is 0).
void conv_reference(const OpContext& ctx, bool depthwise) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  // Output channel oc reads input channels from (oc / per_group) * fc, and
  // its weight (ky, kx, c) is at oc * oc_stride + (ky * kw + kx) * tap_stride + c.
  const int32_t kh = w.dims[1], kw = w.dims[2];
  const int32_t oc_count = depthwise ? w.dims[3] : w.dims[0], fc = depthwise ? 1 : w.dims[3];
  const int32_t per_group = depthwise ? p.depth_multiplier : oc_count / (in.dims[3] / fc);
  const int32_t oc_stride = depthwise ? 1 : kh * kw * fc, tap_stride = depthwise ? oc_count : fc;
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t* shift = mult + oc_count;
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = in.dims[3];
  const int32_t oh = out.dims[1], ow = out.dims[2];

  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        for (int32_t oc = 0; oc < oc_count; ++oc) {
          const int32_t c0 = (oc / per_group) * fc;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = y0 + ky * p.dilation_h;
            if (iy < 0 || iy >= ih) continue;
            for (int32_t kx = 0; kx < kw; ++kx) {
              const int32_t ix = x0 + kx * p.dilation_w;
              if (ix < 0 || ix >= iw) continue;
              const int8_t* px = x + ((static_cast<int64_t>(b) * ih + iy) * iw + ix) * ic + c0;
              const int8_t* pw =
                  filter + static_cast<int64_t>(oc) * oc_stride + (ky * kw + kx) * tap_stride;
              for (int32_t c = 0; c < fc; ++c) acc += (px[c] + p.input_offset) * pw[c];
            }
          }
          if (bias) acc = fx::add(acc, bias[oc]);
          acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + p.output_offset;
          y[((static_cast<int64_t>(b) * oh + oy) * ow + ox) * oc_count + oc] =
              static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
        }
      }
    }
  }
}

#if !defined(__ARM_FEATURE_MVE)
// Reference formula for one output pixel whose window is clipped by the
// input border: raw dot products over the valid taps, plus the input offset
// times the weight sum over those taps.
static void conv_border_pixel(const OpContext& ctx, int32_t b, int32_t y0, int32_t x0,
                              int8_t* out_px) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t oc_count = w.dims[0], kh = w.dims[1], kw = w.dims[2], ic = w.dims[3];
  const int32_t* shift = mult + oc_count;
  const int32_t ih = in.dims[1], iw = in.dims[2];
  const int64_t filter_len = int64_t{kh} * kw * ic;
  const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = ih - y0 < kh ? ih - y0 : kh;
  const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = iw - x0 < kw ? iw - x0 : kw;
  const int32_t len = kx1 > kx0 ? (kx1 - kx0) * ic : 0;
  for (int32_t oc = 0; oc < oc_count; ++oc) {
    int32_t acc = 0;
    for (int32_t ky = ky0; ky < ky1; ++ky) {
      const int8_t* px = x + ((int64_t{b} * ih + y0 + ky) * iw + x0 + kx0) * ic;
      const int8_t* pw = filter + oc * filter_len + (int64_t{ky} * kw + kx0) * ic;
      acc += dot_i8(px, pw, len) + p.input_offset * sum_i8(pw, len);
    }
    if (bias) acc = fx::add(acc, bias[oc]);
    acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + p.output_offset;
    out_px[oc] = static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
  }
}

// The host path (groups 1, dilation 1): for a pixel whose window lies inside
// the input, each window row meets KW * C_in contiguous input bytes, so the
// sum is KH dot products (conv_rows); the input offset
// enters once, through the folded bias (bias + input_offset * sum(w)), equal
// to the reference modulo 2^32. Border pixels use the reference formula.
static void eval_conv2d_rows(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const int32_t oc_count = w.dims[0], kh = w.dims[1], kw = w.dims[2], ic = w.dims[3];
  const auto& out = ctx.out();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  // Output columns [ox_lo, ox_hi) have their window inside the input.
  const int32_t ox_lo = (p.pad_w + p.stride_w - 1) / p.stride_w;
  const int32_t last = iw - kw + p.pad_w;
  int32_t ox_hi = last < 0 ? 0 : last / p.stride_w + 1;
  ox_hi = ox_hi > ow ? ow : ox_hi;

  ConvRows r{};
  r.pixel_step = int64_t{p.stride_w} * ic;
  r.in_row = int64_t{iw} * ic;
  r.kh = kh;
  r.row_len = kw * ic;
  r.filter = ctx.in_data<int8_t>(1);
  r.filter_len = int64_t{kh} * kw * ic;
  r.oc_count = oc_count;
  r.folded_bias = ctx.blob_i32(p.folded_bias_offset);
  r.multiplier = ctx.blob_i32(p.quant_offset);
  r.shift = r.multiplier + oc_count;
  r.output_offset = p.output_offset;
  r.act_min = p.act_min;
  r.act_max = p.act_max;
  // Border windows are copied here (on the stack: at most 1 KB).
  constexpr int64_t kPatchMax = 1024;
  int8_t patch[kPatchMax];

  // Output rows [oy_lo, oy_hi) have their window inside the input vertically.
  const int32_t oy_lo = (p.pad_h + p.stride_h - 1) / p.stride_h;
  const int32_t last_y = ih - kh + p.pad_h;
  int32_t oy_hi = last_y < 0 ? 0 : last_y / p.stride_h + 1;
  oy_hi = oy_hi > oh ? oh : oy_hi;
  const bool has_interior = oy_lo < oy_hi && ox_lo < ox_hi;

  for (int32_t b = 0; b < batches; ++b) {
    if (has_interior) {  // the whole interior block in one call
      r.window = x + ((int64_t{b} * ih + oy_lo * p.stride_h - p.pad_h) * iw + ox_lo * p.stride_w -
                      p.pad_w) *
                         ic;
      r.num_pixels = ox_hi - ox_lo;
      r.num_rows = oy_hi - oy_lo;
      r.window_row_step = int64_t{p.stride_h} * iw * ic;
      r.out_row_step = int64_t{ow} * oc_count;
      r.out = y + ((int64_t{b} * oh + oy_lo) * ow + ox_lo) * oc_count;
      conv_rows_portable(r);
    }
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      int8_t* out_row = y + (int64_t{b} * oh + oy) * ow * oc_count;
      const bool row_inside = oy >= oy_lo && oy < oy_hi;
      for (int32_t ox = 0; ox < ow; ++ox) {
        if (row_inside && ox >= ox_lo && ox < ox_hi) {
          ox = ox_hi - 1;  // done by the interior call
          continue;
        }
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        int8_t* out_px = out_row + int64_t{ox} * oc_count;
        if (r.filter_len > kPatchMax) {
          conv_border_pixel(ctx, b, y0, x0, out_px);
          continue;
        }
        copy_window(x + int64_t{b} * ih * iw * ic, ih, iw, ic, y0, x0, kh, kw,
                    static_cast<int8_t>(-p.input_offset), patch);
        ConvRows one = r;
        one.window = patch;
        one.in_row = r.row_len;
        one.num_pixels = 1;
        one.num_rows = 1;
        one.out = out_px;
        conv_rows_portable(one);
      }
    }
  }
}
#endif

// Groups 1 and dilation 1 take a fast path: on x86 hosts with the host
// workspace the planar kernel (conv_planar.h), elsewhere the run convolution
// (conv_runs.h), or conv_rows for windows too large for it.
void eval_conv2d(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  if (ctx.model->reference_kernels || in.dims[3] != w.dims[3] || p.dilation_h != 1 ||
      p.dilation_w != 1) {
    conv_reference(ctx, false);
    return;
  }
#if !defined(__ARM_FEATURE_MVE)
  if (conv_planar_dense(ctx)) return;
#endif
  const int32_t oc_count = w.dims[0], kh = w.dims[1], kw = w.dims[2], ic = w.dims[3];
  if (conv_runs_fits(kh, kw, ic, p.pad_h, p.pad_w)) {
    // Each filter is one run over its whole window.
    RunConv c = run_conv_for(ctx, p, kh, kw, oc_count);
    const ConvRun whole{0, static_cast<uint16_t>(kh * kw * ic)};
    c.runs = &whole;
    c.dense = true;
    FilterHead heads[kRunConvChunk];
    for (int32_t oc = 0; oc < oc_count; oc += kRunConvChunk) {
      set_heads(c, oc, oc + kRunConvChunk < oc_count ? oc + kRunConvChunk : oc_count, heads);
      c.values = ctx.in_data<int8_t>(1) + int64_t{oc} * whole.length;
      conv_runs(c);
    }
    return;
  }
#if defined(__ARM_FEATURE_MVE)
  // Windows over kRunConvMaxWindow bytes (3x3 with C_in > 113) are rare on
  // microcontrollers; the reference loop serves them and keeps Helium builds
  // small.
  conv_reference(ctx, false);
#else
  eval_conv2d_rows(ctx);
#endif
}

}  // namespace dtmm
