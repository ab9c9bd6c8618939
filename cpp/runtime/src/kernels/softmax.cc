// SOFTMAX (int8 -> int8) over the last axis, in gemmlowp fixed point exactly
// as TFLite's reference: exp of (x - max) in Q0, sum in Q12, reciprocal.
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

constexpr int kScaledDiffIntegerBits = 5;
constexpr int kAccumulationIntegerBits = 12;

dtmm_status validate_softmax(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_softmax_params>();
  if (!is_int8(in) || !is_int8(out) || !same_shape(in, out) || in.rank < 1 ||
      in.dims[in.rank - 1] < 1 || !valid_multiplier(p.input_multiplier) || p.input_left_shift < 0 ||
      p.input_left_shift > 30 || p.diff_min > 0)
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

static int count_leading_zeros(uint32_t x) {
  int n = 0;
  for (uint32_t bit = 0x80000000u; bit && !(x & bit); bit >>= 1) ++n;
  return n;
}

void eval_softmax(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_softmax_params>();
  const auto& in = ctx.in(0);
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t depth = in.dims[in.rank - 1];
  const int64_t rows = num_elements(in) / static_cast<uint32_t>(depth);
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* row = x + r * depth;
    int8_t* out = y + r * depth;
    int32_t max_in_row = -128;
    for (int32_t c = 0; c < depth; ++c) max_in_row = row[c] > max_in_row ? row[c] : max_in_row;

    int32_t sum_of_exps = 0;  // Q12
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = row[c] - max_in_row;
      if (diff >= p.diff_min) {
        const int32_t scaled = multiply_by_quantized_multiplier_greater_than_one(
            diff, p.input_multiplier, p.input_left_shift);
        const int32_t e = fx::exp_on_negative_values(scaled, kScaledDiffIntegerBits);
        sum_of_exps =
            fx::add(sum_of_exps, fx::saturating_rounding_mul_by_pot(e, -kAccumulationIntegerBits));
      }
    }
    // 1 / sum as a Q0 mantissa and a power of two.
    const int headroom = count_leading_zeros(static_cast<uint32_t>(sum_of_exps));
    const int bits_over_unit = kAccumulationIntegerBits - headroom;
    const int32_t shifted_sum_minus_one = static_cast<int32_t>(
        (static_cast<uint32_t>(sum_of_exps) << headroom) - (uint32_t{1} << 31));
    const int32_t reciprocal = fx::one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);

    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = row[c] - max_in_row;
      if (diff >= p.diff_min) {
        const int32_t scaled = multiply_by_quantized_multiplier_greater_than_one(
            diff, p.input_multiplier, p.input_left_shift);
        const int32_t e = fx::exp_on_negative_values(scaled, kScaledDiffIntegerBits);
        const int32_t unsat =
            rounding_divide_by_pot(fx::mul(reciprocal, e), bits_over_unit + 31 - 8);
        out[c] = static_cast<int8_t>(clamp_i32(unsat - 128, -128, 127));
      } else {
        out[c] = -128;
      }
    }
  }
}

}  // namespace dtmm
