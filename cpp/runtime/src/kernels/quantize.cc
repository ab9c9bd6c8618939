// QUANTIZE (float32 -> int8, or int8 -> int8 requantization) and DEQUANTIZE.
#include <math.h>

#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

dtmm_status validate_quantize(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_quantize_params>();
  if (!is_int8(out) || num_elements(in) != num_elements(out) ||
      !valid_zero_point(p.output_zero_point))
    return DTMM_ERR_BAD_PARAMS;
  if (in.dtype == DTMM_FLOAT32) {
    if (!(p.output_scale > 0.0f) || !isfinite(p.output_scale)) return DTMM_ERR_BAD_PARAMS;
  } else if (in.dtype == DTMM_INT8) {
    if (!valid_zero_point(p.input_zero_point) || !valid_multiplier(p.multiplier) ||
        !valid_shift(p.shift))
      return DTMM_ERR_BAD_PARAMS;
  } else {
    return DTMM_ERR_BAD_PARAMS;
  }
  return DTMM_OK;
}

void eval_quantize(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_quantize_params>();
  const int64_t n = static_cast<int64_t>(num_elements(ctx.in(0)));
  int8_t* y = ctx.out_data<int8_t>();
  if (ctx.in(0).dtype == DTMM_FLOAT32) {
    const float* x = ctx.in_data<float>(0);
    for (int64_t i = 0; i < n; ++i) {
      const float r = roundf(x[i] / p.output_scale);
      // Out-of-range and NaN inputs saturate (NaN to -128) instead of
      // converting with undefined behaviour.
      const int32_t q = r >= 256.0f ? 256 : (r > -512.0f ? static_cast<int32_t>(r) : -512);
      y[i] = static_cast<int8_t>(clamp_i32(q + p.output_zero_point, -128, 127));
    }
  } else {
    const int8_t* x = ctx.in_data<int8_t>(0);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v =
          multiply_by_quantized_multiplier(x[i] - p.input_zero_point, p.multiplier, p.shift) +
          p.output_zero_point;
      y[i] = static_cast<int8_t>(clamp_i32(v, -128, 127));
    }
  }
}

dtmm_status validate_dequantize(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_dequantize_params>();
  if (!is_int8(in) || out.dtype != DTMM_FLOAT32 || num_elements(in) != num_elements(out) ||
      !valid_zero_point(p.zero_point) || !isfinite(p.scale))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_dequantize(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_dequantize_params>();
  const int8_t* x = ctx.in_data<int8_t>(0);
  float* y = ctx.out_data<float>();
  const int64_t n = static_cast<int64_t>(num_elements(ctx.in(0)));
  const double scale = p.scale;  // the reference multiplies in double
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(scale * (x[i] - p.zero_point));
}

}  // namespace dtmm
