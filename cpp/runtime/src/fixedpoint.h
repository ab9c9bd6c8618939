// Integer arithmetic of TensorFlow Lite's int8 quantization specification.
//
// Each function reproduces the rounding of TFLite Micro's reference kernels
// exactly (double rounding: a rounding doubling high multiply, then a rounding
// right shift), because bit identity with those kernels is the contract.
#ifndef DTMM_SRC_FIXEDPOINT_H_
#define DTMM_SRC_FIXEDPOINT_H_

#include <stdint.h>

namespace dtmm {

inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  // The only overflowing case: (-1.0) * (-1.0) in Q31.
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  // Division truncates toward zero, as in the reference (not a shift).
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// Divide by 2^exponent rounding half away from zero; exponent in [0, 31].
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// Size-optimised builds keep one copy of the scalar requantization: GCC
// inlined it into every caller (reference loops, per-channel setup), which
// cost 1,184 bytes of a Cortex-M55 -Os build's flash.
#if defined(__OPTIMIZE_SIZE__)
#define DTMM_SIZE_NOINLINE __attribute__((noinline))
#else
#define DTMM_SIZE_NOINLINE
#endif

// x * multiplier * 2^shift, multiplier a Q31 value in [0.5, 1).
DTMM_SIZE_NOINLINE inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                                   int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier),
                                right_shift);
}

// The form of a layer's per-channel shifts [begin, end) that the Helium
// loops specialise on: every one negative (TFLite's two roundings, the usual
// case) or every one 0 (one rounding, Rounding::kSingle), or a mix of both
// (an ONNX import keeps TFLite's encoding for scales below 2^-11).
struct ShiftForm {
  bool right;        // all negative or all 0 (the depthwise loop's)
  bool single;       // all 0 (and the range not empty)
  bool nonpositive;  // no left shift anywhere (the convolution loops')
  // What scales the correction of negative lanes before the rounding right
  // shift: 1 for negative shifts, 0 when there is no second rounding.
  int32_t twice() const { return single ? 0 : 1; }
};

inline ShiftForm shift_form(const int32_t* shift, int32_t begin, int32_t end) {
  // The least and the greatest shift say it all (and make a reduction that
  // GCC vectorizes).
  int32_t lo = INT32_MAX, hi = INT32_MIN;
  for (int32_t c = begin; c < end; ++c) {
    lo = shift[c] < lo ? shift[c] : lo;
    hi = shift[c] > hi ? shift[c] : hi;
  }
  const bool negative = hi < 0, zero = lo == 0 && hi == 0;
  return ShiftForm{negative || zero, zero, hi <= 0};
}

inline int32_t multiply_by_quantized_multiplier_greater_than_one(int32_t x, int32_t multiplier,
                                                                 int left_shift) {
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return saturating_rounding_doubling_high_mul(shifted, multiplier);
}

inline int32_t clamp_i32(int32_t x, int32_t lo, int32_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// ---- Q-format helpers for softmax and logistic (gemmlowp's fixed point).
// A "Qk" value has k integer bits and 31-k fractional bits in an int32.

namespace fx {

inline int32_t add(int32_t a, int32_t b) {  // wrapping, as the reference's raw add
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
inline int32_t sub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}
inline int32_t mul(int32_t a, int32_t b) {
  return saturating_rounding_doubling_high_mul(a, b);
}

// x * 2^exponent with saturation (exponent > 0) or rounding (exponent < 0).
inline int32_t saturating_rounding_mul_by_pot(int32_t x, int exponent) {
  if (exponent > 0) {
    const int32_t threshold = static_cast<int32_t>((int64_t{1} << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return static_cast<int32_t>(static_cast<uint32_t>(x) << exponent);
  }
  if (exponent < 0) return rounding_divide_by_pot(x, -exponent);
  return x;
}

// Rounded (a + b) / 2 without overflow.
inline int32_t rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = static_cast<int64_t>(a) + static_cast<int64_t>(b);
  const int64_t sign = sum >= 0 ? 1 : -1;
  return static_cast<int32_t>((sum + sign) / 2);
}

constexpr int32_t kQ0One = INT32_MAX;  // 1.0 is not representable in Q0

// exp(a) for a in [-1/4, 0), a in Q0; Taylor series around -1/8.
inline int32_t exp_on_interval_quarter(int32_t a) {
  const int32_t exp_minus_one_eighth = 1895147668;
  const int32_t one_third = 715827883;
  const int32_t x = add(a, 1 << 28);  // a + 1/8
  const int32_t x2 = mul(x, x);
  const int32_t x3 = mul(x2, x);
  const int32_t x4 = mul(x2, x2);
  const int32_t x4_over_4 = saturating_rounding_mul_by_pot(x4, -2);
  const int32_t poly =
      saturating_rounding_mul_by_pot(add(mul(add(x4_over_4, x3), one_third), x2), -1);
  return add(exp_minus_one_eighth, mul(exp_minus_one_eighth, add(x, poly)));
}

// exp(a) for a <= 0 given in Q(integer_bits); result in Q0.
inline int32_t exp_on_negative_values(int32_t a, int integer_bits) {
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = 1 << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_quarter = sub(a & mask, one_quarter);
  // Rescale to Q0: multiply by 2^integer_bits.
  int32_t result = exp_on_interval_quarter(
      saturating_rounding_mul_by_pot(a_mod_quarter_minus_quarter, integer_bits));
  const int32_t remainder = sub(a_mod_quarter_minus_quarter, a);
  // exp(-2^k) in Q0 for k = -2 .. 4: multiply in each bit of the remainder.
  static const int32_t kMultipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                          39332535,   720401,     242};
  for (int k = -2; k <= 4; ++k) {
    if (integer_bits > k) {
      const int shift = fractional_bits + k;
      if (remainder & static_cast<int32_t>(uint32_t{1} << shift)) {
        result = mul(result, kMultipliers[k + 2]);
      }
    }
  }
  if (integer_bits > 5) {
    const int32_t clamp = -(1 << (36 - integer_bits));  // -32.0
    if (a < clamp) result = 0;
  }
  if (a == 0) result = kQ0One;
  return result;
}

// 1 / (1 + a) for a in [0, 1) in Q0; Newton-Raphson division, result in Q0.
inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = rounding_half_sum(a, kQ0One);
  const int32_t c48_over_17 = 1515870810;      // Q2
  const int32_t cneg32_over_17 = -1010580540;  // Q2
  const int32_t q2_one = 1 << 29;
  int32_t x = add(c48_over_17, mul(half_denominator, cneg32_over_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = mul(half_denominator, x);
    const int32_t one_minus = sub(q2_one, half_denominator_times_x);
    // Q2 * Q2 is Q4; back to Q2.
    x = add(x, saturating_rounding_mul_by_pot(mul(x, one_minus), 2));
  }
  // x holds 2/(1+a) in Q2; reading the same bits as Q1 halves it, then Q1 -> Q0.
  return saturating_rounding_mul_by_pot(x, 1);
}

// logistic(a) for a in Q(integer_bits); result in Q0.
inline int32_t logistic(int32_t a, int integer_bits) {
  if (a == 0) return 1 << 30;  // 0.5
  const bool positive = a > 0;
  const int32_t abs_a = positive ? a : sub(0, a);
  const int32_t result_if_positive =
      one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(sub(0, abs_a), integer_bits));
  return positive ? result_if_positive : sub(kQ0One, result_if_positive);
}

}  // namespace fx
}  // namespace dtmm

#endif  // DTMM_SRC_FIXEDPOINT_H_
