// CONV_2D_FWCS: convolution over filterlet-sparse weights (format.h). Only
// kept filterlets are visited; each is a C_in-long dot product with the input
// pixel under its tap. Same semantics and bits as CONV_2D on the same weights
// with the pruned filterlets stored as zeros.
#include <string.h>

#include "../fixedpoint.h"
#include "kernels.h"
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

void eval_conv2d_fwcs(const OpContext& ctx) {
  if (!ctx.model->reference_kernels && fwcs_conv_host(ctx)) return;
  fwcs_reference(ctx);
}

}  // namespace dtmm
