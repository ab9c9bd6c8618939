// ADD, int8, with numpy broadcasting: both inputs are rescaled to a common
// scale with 20 bits of headroom, summed, then rescaled to the output.
#include "../fixedpoint.h"
#include "broadcast.h"
#include "kernels.h"

namespace dtmm {

dtmm_status validate_add(const OpContext& ctx) {
  if (ctx.num_inputs() != 2 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& a = ctx.in(0);
  const auto& b = ctx.in(1);
  const auto& out = ctx.out();
  if (!is_int8(a) || !is_int8(b) || !is_int8(out) || !broadcastable(a, out) ||
      !broadcastable(b, out))
    return DTMM_ERR_BAD_PARAMS;
  const auto& p = ctx.p<dtmm_add_params>();
  if (!valid_zero_point(-p.input1_offset) || !valid_zero_point(-p.input2_offset) ||
      !valid_zero_point(p.output_offset) || p.left_shift < 0 || p.left_shift > 20 ||
      !valid_multiplier(p.input1_multiplier) || !valid_multiplier(p.input2_multiplier) ||
      !valid_multiplier(p.output_multiplier) || p.input1_shift > 0 || p.input2_shift > 0 ||
      !valid_shift(p.input1_shift) || !valid_shift(p.input2_shift) ||
      !valid_shift(p.output_shift) || !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_add(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_add_params>();
  const int8_t* a = ctx.in_data<int8_t>(0);
  const int8_t* b = ctx.in_data<int8_t>(1);
  int8_t* y = ctx.out_data<int8_t>();
  // (x - zp) fits in 9 bits; shifted left by at most 20 it stays below 2^29.
  for_each_broadcast(ctx.in(0), ctx.in(1), ctx.out(), [&](int64_t i, int64_t ia, int64_t ib) {
    const int32_t sa = (a[ia] + p.input1_offset) * (1 << p.left_shift);
    const int32_t sb = (b[ib] + p.input2_offset) * (1 << p.left_shift);
    const int32_t ra = multiply_by_quantized_multiplier(sa, p.input1_multiplier, p.input1_shift);
    const int32_t rb = multiply_by_quantized_multiplier(sb, p.input2_multiplier, p.input2_shift);
    const int32_t sum =
        multiply_by_quantized_multiplier(ra + rb, p.output_multiplier, p.output_shift) +
        p.output_offset;
    y[i] = static_cast<int8_t>(clamp_i32(sum, p.act_min, p.act_max));
  });
}

}  // namespace dtmm
