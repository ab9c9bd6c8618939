// CONV_2D, int8 per-channel, NHWC input, OHWI filter (TFLite semantics).
#include "../fixedpoint.h"
#include "dot.h"
#include "kernels.h"

namespace dtmm {

// Largest reduction length (KH * KW * C_in per group). Each product
// (x - zp_in) * w is at most 255 * 128 = 32,640 in magnitude, so 65,536 of
// them sum to at most 2,139,095,040 < 2^31: the int32 accumulator cannot
// overflow before the bias is added (that add wraps, as it does on the device).
constexpr int64_t kMaxConvDepth = 65536;

dtmm_status validate_conv2d(const OpContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  if (!is_int8(in) || !is_int8(w) || !is_int8(out) || in.rank != 4 || w.rank != 4 ||
      out.rank != 4 || w.storage != DTMM_STORAGE_CONST)
    return DTMM_ERR_BAD_PARAMS;
  const int32_t oc = w.dims[0], fc = w.dims[3];
  if (fc <= 0 || in.dims[3] % fc != 0 || out.dims[3] != oc || out.dims[0] != in.dims[0])
    return DTMM_ERR_BAD_PARAMS;
  const int32_t groups = in.dims[3] / fc;
  if (oc % groups != 0) return DTMM_ERR_BAD_PARAMS;
  if (static_cast<int64_t>(w.dims[1]) * w.dims[2] * fc > kMaxConvDepth) return DTMM_ERR_BAD_PARAMS;
  if (ctx.has_input(2)) {
    const auto& b = ctx.in(2);
    if (b.dtype != DTMM_INT32 || num_elements(b) != static_cast<uint64_t>(oc))
      return DTMM_ERR_BAD_PARAMS;
  }
  const auto& p = ctx.p<dtmm_conv_params>();
  if (p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 || p.dilation_w < 1 ||
      p.stride_h > 1024 || p.stride_w > 1024 || p.dilation_h > 1024 || p.dilation_w > 1024 ||
      p.pad_h < 0 || p.pad_w < 0 || p.pad_h > 65536 || p.pad_w > 65536 || p.depth_multiplier != 0 ||
      !valid_zero_point(-p.input_offset) || !valid_zero_point(p.output_offset) ||
      !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  if (!valid_quant_table(ctx, p.quant_offset, static_cast<uint32_t>(oc)) ||
      !ctx.blob_array_ok(p.folded_bias_offset, uint64_t{4} * static_cast<uint32_t>(oc)))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

// Reference loop: one output value at a time, skipping taps that fall in the
// padding (TFLite pads with the input zero point, whose offset product is 0).
static void eval_conv2d_reference(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t oc_count = w.dims[0], kh = w.dims[1], kw = w.dims[2], fc = w.dims[3];
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = in.dims[3];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int32_t filters_per_group = oc_count / (ic / fc);
  const int32_t* shift = mult + oc_count;

  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        for (int32_t oc = 0; oc < oc_count; ++oc) {
          const int32_t c0 = (oc / filters_per_group) * fc;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = y0 + ky * p.dilation_h;
            if (iy < 0 || iy >= ih) continue;
            for (int32_t kx = 0; kx < kw; ++kx) {
              const int32_t ix = x0 + kx * p.dilation_w;
              if (ix < 0 || ix >= iw) continue;
              const int8_t* px = x + ((static_cast<int64_t>(b) * ih + iy) * iw + ix) * ic + c0;
              const int8_t* pw = filter + ((static_cast<int64_t>(oc) * kh + ky) * kw + kx) * fc;
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

// Fast path (groups 1, dilation 1). For a pixel whose window lies inside the
// input, each filter row (ky) meets KW * C_in contiguous input bytes, so the
// sum is KH dot products; the input offset enters once, through the folded
// bias (bias + input_offset * sum(w)), equal to the reference modulo 2^32.
// Border pixels take the reference's per-tap path.
void eval_conv2d(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_conv_params>();
  const auto& in = ctx.in(0);
  const auto& w = ctx.in(1);
  if (ctx.model->reference_kernels || in.dims[3] != w.dims[3] || p.dilation_h != 1 ||
      p.dilation_w != 1) {
    eval_conv2d_reference(ctx);
    return;
  }
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* filter = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  const int32_t* folded = ctx.blob_i32(p.folded_bias_offset);
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t oc_count = w.dims[0], kh = w.dims[1], kw = w.dims[2], ic = w.dims[3];
  const int32_t* shift = mult + oc_count;
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int32_t row_len = kw * ic;  // contiguous bytes per filter row
  const int64_t filter_len = int64_t{kh} * row_len;

  const auto finish = [&](int32_t acc, int32_t oc) {
    acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + p.output_offset;
    return static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
  };

  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        int8_t* out_px = y + ((int64_t{b} * oh + oy) * ow + ox) * oc_count;
        const bool inside = y0 >= 0 && y0 + kh <= ih && x0 >= 0 && x0 + kw <= iw;
        if (!inside) {
          // Clip the window to the input; the offset correction needs the
          // weight sum over the valid taps only.
          const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = ih - y0 < kh ? ih - y0 : kh;
          const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = iw - x0 < kw ? iw - x0 : kw;
          const int32_t len = (kx1 - kx0) * ic;
          for (int32_t oc = 0; oc < oc_count; ++oc) {
            int32_t acc = 0;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
              const int8_t* px = x + ((int64_t{b} * ih + y0 + ky) * iw + x0 + kx0) * ic;
              const int8_t* pw = filter + oc * filter_len + (int64_t{ky} * kw + kx0) * ic;
              acc += dot_i8(px, pw, len) + p.input_offset * sum_i8(pw, len);
            }
            if (bias) acc = fx::add(acc, bias[oc]);
            out_px[oc] = finish(acc, oc);
          }
          continue;
        }
        const int8_t* window = x + ((int64_t{b} * ih + y0) * iw + x0) * ic;
        const int64_t in_row = int64_t{iw} * ic;
        int32_t oc = 0;
        for (; oc + 4 <= oc_count; oc += 4) {
          int32_t acc[4] = {0, 0, 0, 0};
          const int8_t* w0 = filter + oc * filter_len;
          for (int32_t ky = 0; ky < kh; ++ky) {
            const int64_t r = int64_t{ky} * row_len;
            dot4_i8(window + ky * in_row, w0 + r, w0 + filter_len + r, w0 + 2 * filter_len + r,
                    w0 + 3 * filter_len + r, row_len, acc);
          }
          for (int32_t j = 0; j < 4; ++j)
            out_px[oc + j] = finish(fx::add(acc[j], folded[oc + j]), oc + j);
        }
        for (; oc < oc_count; ++oc) {
          int32_t acc = 0;
          for (int32_t ky = 0; ky < kh; ++ky)
            acc += dot_i8(window + ky * in_row, filter + oc * filter_len + int64_t{ky} * row_len,
                          row_len);
          out_px[oc] = finish(fx::add(acc, folded[oc]), oc);
        }
      }
    }
  }
}

}  // namespace dtmm
