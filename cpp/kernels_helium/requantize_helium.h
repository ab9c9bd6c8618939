// TFLite's multiply_by_quantized_multiplier on four int32 lanes with Helium,
// bit-identical to the scalar version (cpp/runtime/src/fixedpoint.h):
// - VQRDMULH is exactly the rounding doubling high multiply: the scalar's
//   nudge-then-truncate is floor((2ab + 2^31) / 2^32), and both saturate only
//   for INT32_MIN * INT32_MIN (impossible here: multipliers are >= 0);
// - VRSHL rounds half up, the scalar rounds half away from zero, so negative
//   lanes are first moved down by one when the shift is nonzero.
#ifndef DTMM_KERNELS_HELIUM_REQUANTIZE_HELIUM_H_
#define DTMM_KERNELS_HELIUM_REQUANTIZE_HELIUM_H_

#include <arm_mve.h>
#include <stdint.h>

namespace dtmm {
namespace helium {

__attribute__((always_inline)) inline int32x4_t multiply_by_quantized_multiplier4(int32x4_t x,
                                                                                  int32x4_t mult,
                                                                                  int32x4_t shift) {
  const int32x4_t zero = vdupq_n_s32(0);
  const int32x4_t v = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), mult);
  // Lanes that will be shifted right (shift >> 31 all ones): -1 when
  // negative (v >> 31).
  const int32x4_t down = vandq_s32(vshrq_n_s32(v, 31), vshrq_n_s32(shift, 31));
  return vrshlq_s32(vaddq_s32(v, down), vminq_s32(shift, zero));
}

// The same when every lane's shift is negative (a right shift, the usual
// case; twice = 1) or every one is 0 (one rounding, Rounding::kSingle;
// twice = 0): no left shift, and the correction, scaled by twice, applies
// to every lane.
__attribute__((always_inline)) inline int32x4_t multiply_by_quantized_multiplier4_right(
    int32x4_t x, int32x4_t mult, int32x4_t shift, int32_t twice) {
  const int32x4_t v = vqrdmulhq_s32(x, mult);
  return vrshlq_s32(vmlaq_n_s32(v, vshrq_n_s32(v, 31), twice), shift);
}

// The same for four lanes that share one (multiplier, shift), e.g. one
// channel's: a right shift, the usual case, takes the correction above; a
// left shift happens before the multiply and needs none.
__attribute__((always_inline)) inline int32x4_t requantize_lanes(int32x4_t v, int32_t mult,
                                                                 int32_t shift) {
  if (shift < 0) {
    v = vqrdmulhq_n_s32(v, mult);
    v = vaddq_s32(v, vshrq_n_s32(v, 31));
    return vrshlq_n_s32(v, shift);
  }
  return vqrdmulhq_n_s32(vshlq_r_s32(v, shift), mult);
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_REQUANTIZE_HELIUM_H_
