// LOGISTIC (int8 -> int8, output scale 1/256, zero point -128), in gemmlowp
// fixed point as TFLite's reference: inputs scaled to Q4, result in Q0.
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

constexpr int kInputIntegerBits = 4;

dtmm_status validate_logistic(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_logistic_params>();
  if (!is_int8(in) || !is_int8(out) || num_elements(in) != num_elements(out) ||
      !valid_zero_point(p.input_zero_point) || !valid_multiplier(p.input_multiplier) ||
      !valid_shift(p.input_left_shift) || p.input_range_radius < 0)
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_logistic(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_logistic_params>();
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  const int64_t n = static_cast<int64_t>(num_elements(ctx.in(0)));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = x[i] - p.input_zero_point;
    if (v <= -p.input_range_radius) {
      y[i] = -128;
    } else if (v >= p.input_range_radius) {
      y[i] = 127;
    } else {
      const int32_t q4 =
          multiply_by_quantized_multiplier(v, p.input_multiplier, p.input_left_shift);
      const int32_t q0 = fx::logistic(q4, kInputIntegerBits);
      const int32_t out = rounding_divide_by_pot(q0, 31 - 8) - 128;
      y[i] = static_cast<int8_t>(clamp_i32(out, -128, 127));
    }
  }
}

}  // namespace dtmm
