// MUL, int8, with numpy broadcasting.
#include "../fixedpoint.h"
#include "broadcast.h"
#include "kernels.h"

namespace dtmm {

dtmm_status validate_mul(const OpContext& ctx) {
  if (ctx.num_inputs() != 2 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& a = ctx.in(0);
  const auto& b = ctx.in(1);
  const auto& out = ctx.out();
  if (!is_int8(a) || !is_int8(b) || !is_int8(out) || !broadcastable(a, out) ||
      !broadcastable(b, out))
    return DTMM_ERR_BAD_PARAMS;
  const auto& p = ctx.p<dtmm_mul_params>();
  if (!valid_zero_point(-p.input1_offset) || !valid_zero_point(-p.input2_offset) ||
      !valid_zero_point(p.output_offset) || !valid_multiplier(p.output_multiplier) ||
      !valid_shift(p.output_shift) || !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_mul(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_mul_params>();
  const int8_t* a = ctx.in_data<int8_t>(0);
  const int8_t* b = ctx.in_data<int8_t>(1);
  int8_t* y = ctx.out_data<int8_t>();
  // Offsets make each factor at most 255 in magnitude: the product fits easily.
  for_each_broadcast(ctx.in(0), ctx.in(1), ctx.out(), [&](int64_t i, int64_t ia, int64_t ib) {
    const int32_t prod = (a[ia] + p.input1_offset) * (b[ib] + p.input2_offset);
    const int32_t v = multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) +
                      p.output_offset;
    y[i] = static_cast<int8_t>(clamp_i32(v, p.act_min, p.act_max));
  });
}

}  // namespace dtmm
