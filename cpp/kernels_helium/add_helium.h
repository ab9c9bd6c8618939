// ADD of two same-shape int8 tensors with Helium, four lanes per step: the
// scalar formula of cpp/runtime/src/kernels/add.cc on each lane.
#ifndef DTMM_KERNELS_HELIUM_ADD_HELIUM_H_
#define DTMM_KERNELS_HELIUM_ADD_HELIUM_H_

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "dtmm/format.h"
#include "requantize_helium.h"

namespace dtmm {
namespace helium {

// One (multiplier, shift) applied to four lanes, branch-free: the left
// shift before the multiply, then the rounding right shift with its
// correction (see requantize_helium.h) only when there is one.
struct LaneRequant {
  int32_t mult, left, right;  // right <= 0: VRSHL's negative shift count
  int32x4_t fix;              // all ones when right < 0, else zero
  LaneRequant(int32_t multiplier, int32_t shift)
      : mult(multiplier),
        left(shift > 0 ? shift : 0),
        right(shift < 0 ? shift : 0),
        fix(vdupq_n_s32(shift < 0 ? -1 : 0)) {}
  // kNoLeft: the shift is known not to be positive.
  template <bool kNoLeft>
  __attribute__((always_inline)) int32x4_t apply(int32x4_t v) const {
    v = vqrdmulhq_n_s32(kNoLeft ? v : vshlq_r_s32(v, left), mult);
    v = vaddq_s32(v, vandq_s32(vshrq_n_s32(v, 31), fix));
    return vrshlq_n_s32(v, right);
  }
};

// kRight, the usual case: the inputs' shifts are not positive (the larger
// input scale gives exactly 0.5 = 2^30 * 2^-31, shift 0) and the output's is
// a right shift, so no left shifts and no output correction mask.
template <bool kRight>
int8_t* add_lanes(const dtmm_add_params& p, const int8_t* a, const int8_t* b, int8_t* y,
                  const int8_t* y_end) {
  // Locals, not reads through p: the int8 stores may alias anything.
  const int32_t scale = 1 << p.left_shift;
  // (x + offset) << left as one multiply-add: x * 2^left + offset * 2^left.
  const int32_t off1 = p.input1_offset * scale, off2 = p.input2_offset * scale;
  const int32_t out_offset = p.output_offset;
  const LaneRequant r1(p.input1_multiplier, p.input1_shift),
      r2(p.input2_multiplier, p.input2_shift), ro(p.output_multiplier, p.output_shift);
  const int32x4_t lo = vdupq_n_s32(p.act_min), hi = vdupq_n_s32(p.act_max);
  const int32x4_t vscale = vdupq_n_s32(scale);
  for (; y < y_end; a += 4, b += 4, y += 4) {
    const int32x4_t sa = vmlasq_n_s32(vldrbq_s32(a), vscale, off1);
    const int32x4_t sb = vmlasq_n_s32(vldrbq_s32(b), vscale, off2);
    const int32x4_t sum = vaddq_s32(r1.apply<kRight>(sa), r2.apply<kRight>(sb));
    const int32x4_t scaled =
        kRight ? requantize_lanes(sum, ro.mult, ro.right) : ro.apply<false>(sum);
    const int32x4_t v = vaddq_n_s32(scaled, out_offset);
    vstrbq_s32(y, vminq_s32(vmaxq_s32(v, lo), hi));
  }
  return y;
}

// Returns how many elements it did (a multiple of 4); the caller does the rest.
inline int64_t add_same_shape(const dtmm_add_params& p, const int8_t* a, const int8_t* b, int8_t* y,
                              int64_t n) {
  int8_t* const end = y + (n & ~int64_t{3});
  const bool right = p.input1_shift <= 0 && p.input2_shift <= 0 && p.output_shift < 0;
  const int8_t* done = right ? add_lanes<true>(p, a, b, y, end) : add_lanes<false>(p, a, b, y, end);
  return done - y;
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_ADD_HELIUM_H_
