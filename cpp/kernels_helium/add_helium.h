// ADD of two same-shape int8 tensors with Helium, four lanes per step: the
// scalar formula of cpp/runtime/src/kernels/add.cc on each lane.
#ifndef DTMM_KERNELS_HELIUM_ADD_HELIUM_H_
#define DTMM_KERNELS_HELIUM_ADD_HELIUM_H_

#include <arm_mve.h>
#include <stdint.h>

#include "dtmm/format.h"
#include "requantize_helium.h"

namespace dtmm {
namespace helium {

// Returns how many elements it did (a multiple of 4); the caller does the rest.
inline int64_t add_same_shape(const dtmm_add_params& p, const int8_t* a, const int8_t* b, int8_t* y,
                              int64_t n) {
  const int32x4_t off1 = vdupq_n_s32(p.input1_offset), off2 = vdupq_n_s32(p.input2_offset);
  const int32x4_t m1 = vdupq_n_s32(p.input1_multiplier), s1 = vdupq_n_s32(p.input1_shift);
  const int32x4_t m2 = vdupq_n_s32(p.input2_multiplier), s2 = vdupq_n_s32(p.input2_shift);
  const int32x4_t mo = vdupq_n_s32(p.output_multiplier), so = vdupq_n_s32(p.output_shift);
  const int32x4_t left = vdupq_n_s32(p.left_shift);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const int32x4_t sa = vshlq_s32(vaddq_s32(vldrbq_s32(a + i), off1), left);
    const int32x4_t sb = vshlq_s32(vaddq_s32(vldrbq_s32(b + i), off2), left);
    const int32x4_t sum = vaddq_s32(multiply_by_quantized_multiplier4(sa, m1, s1),
                                    multiply_by_quantized_multiplier4(sb, m2, s2));
    int32x4_t v = vaddq_n_s32(multiply_by_quantized_multiplier4(sum, mo, so), p.output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(p.act_min)), vdupq_n_s32(p.act_max));
    vstrbq_s32(y + i, v);
  }
  return i;
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_ADD_HELIUM_H_
