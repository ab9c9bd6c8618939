// DEPTHWISE_CONV_2D (multiplier 1) with Helium: one output pixel at a time.
// Depths of a multiple of 8 go eight or sixteen channels per step: inputs
// and weights widened to int16 on load, multiplied into int32 by VMULLB and
// VMULLT (even and odd channels) and added, starting from the folded bias.
// Other depths go four channels per step, widened to int32 on load and
// multiplied and added lane by lane (MVE has no vector-by-vector
// multiply-accumulate). Then TFLite's requantization, four lanes at a time.
// The same integers as the scalar kernel.
#ifndef DTMM_KERNELS_HELIUM_DEPTHWISE_HELIUM_H_
#define DTMM_KERNELS_HELIUM_DEPTHWISE_HELIUM_H_

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/src/fixedpoint.h"
#include "dtmm/format.h"
#include "requantize_helium.h"

namespace dtmm {
namespace helium {

struct DepthwisePixel {
  ptrdiff_t in_row;  // bytes between window rows
  int32_t kh, kw, depth;
  const int8_t* filter;  // [kh][kw][depth]
  const int32_t *folded, *mult, *shift;
  int32_t output_offset, act_min, act_max;
  ShiftForm shifts;  // the channels' shifts (fixedpoint.h)
};

// Any depth, four channels per step, the last step predicated. Taps are
// visited row by row; the window's rows are in_row bytes apart, its taps
// depth bytes apart.
__attribute__((always_inline)) inline void depthwise_pixel(const DepthwisePixel& d,
                                                           const int8_t* window, int8_t* out) {
  const int32x4_t lo = vdupq_n_s32(d.act_min), hi = vdupq_n_s32(d.act_max);
  const ptrdiff_t row_skip = d.in_row - ptrdiff_t{d.kw} * d.depth;
  for (int32_t c = 0; c < d.depth; c += 4) {
    const mve_pred16_t p = vctp32q(static_cast<uint32_t>(d.depth - c));
    int32x4_t acc = vldrwq_z_s32(d.folded + c, p);
    const int8_t* x = window + c;
    const int8_t* w = d.filter + c;
    for (int32_t ky = 0; ky < d.kh; ++ky, x += row_skip) {
      for (int32_t kx = 0; kx < d.kw; ++kx, x += d.depth, w += d.depth) {
        const int32x4_t xv = vldrbq_z_s32(x, p);
        const int32x4_t wv = vldrbq_z_s32(w, p);
        acc = vaddq_s32(acc, vmulq_s32(xv, wv));
      }
    }
    const int32x4_t m = vldrwq_z_s32(d.mult + c, p);
    const int32x4_t s = vldrwq_z_s32(d.shift + c, p);
    int32x4_t v = d.shifts.right
                      ? multiply_by_quantized_multiplier4_right(acc, m, s, d.shifts.twice())
                      : multiply_by_quantized_multiplier4(acc, m, s);
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, d.output_offset), lo), hi);
    vstrbq_p_s32(out + c, v, p);
  }
}

// One 8-channel step of the tap loops below: the window (x) and the filter
// (w) at byte offset OFF widened to int16, and their products (exact in
// int32) of the even channels added into EVEN, of the odd ones into ODD:
// six instructions for eight MACs, where int32 lanes take eight (MVE has no
// vector-by-vector multiply-accumulate).
#define DTMM_DEPTHWISE_STEP(OFF, EVEN, ODD) \
  "   vldrb.s16 q0, [%[x], #" #OFF          \
  "]\n"                                     \
  "   vldrb.s16 q1, [%[w], #" #OFF          \
  "]\n"                                     \
  "   vmullb.s16 q2, q0, q1\n"              \
  "   vadd.i32 %q[" #EVEN "], %q[" #EVEN    \
  "], q2\n"                                 \
  "   vmullt.s16 q2, q0, q1\n"              \
  "   vadd.i32 %q[" #ODD "], %q[" #ODD "], q2\n"

// One window row of `taps` taps, `step` bytes apart in both the window and
// the filter, against sixteen channels: a0/a1 += x * w of channels 0-7's
// even/odd ones, a2/a3 of 8-15's. In assembly: GCC 12 recomputes the
// widening loads' addresses. Widening loads take only r0-r7 as the base
// (constraint "l").
__attribute__((always_inline)) inline void depthwise_row16(const int8_t*& x, const int8_t*& w,
                                                           int32_t taps, int32_t step,
                                                           int32x4_t& a0, int32x4_t& a1,
                                                           int32x4_t& a2, int32x4_t& a3) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1:\n" DTMM_DEPTHWISE_STEP(0, a0, a1) DTMM_DEPTHWISE_STEP(8, a2, a3)
      "   add     %[x], %[x], %[s]\n"
      "   add     %[w], %[w], %[s]\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [x] "+l"(x), [w] "+l"(w), [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3)
      : [n] "r"(taps), [s] "r"(step)
      : "q0", "q1", "q2", "lr", "memory");
}

// The same for eight channels (a0 even, a1 odd).
__attribute__((always_inline)) inline void depthwise_row8(const int8_t*& x, const int8_t*& w,
                                                          int32_t taps, int32_t step, int32x4_t& a0,
                                                          int32x4_t& a1) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1:\n" DTMM_DEPTHWISE_STEP(0, a0, a1)
      "   add     %[x], %[x], %[s]\n"
      "   add     %[w], %[w], %[s]\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [x] "+l"(x), [w] "+l"(w), [a0] "+w"(a0), [a1] "+w"(a1)
      : [n] "r"(taps), [s] "r"(step)
      : "q0", "q1", "q2", "lr", "memory");
}

// Depth a multiple of 4 * kGroups (kGroups 2 or 4): that many channels per
// step, each eight of them in two accumulators (even and odd channels, as
// the widening multiplies leave them), whose folded biases, multipliers and
// shifts are gathered and whose outputs are scattered two bytes apart.
template <int kGroups>
__attribute__((always_inline)) inline void depthwise_pixel_wide(const DepthwisePixel& d,
                                                                const int8_t* window, int8_t* out) {
  static_assert(kGroups == 2 || kGroups == 4, "eight or sixteen channels per step");
  const int32x4_t lo = vdupq_n_s32(d.act_min), hi = vdupq_n_s32(d.act_max);
  const uint32x4_t every_other = vidupq_n_u32(0, 2);
  const ptrdiff_t row_skip = d.in_row - ptrdiff_t{d.kw} * d.depth;
  // accumulator j holds channels c + first(j) + 0, 2, 4, 6
  const auto first = [](int32_t j) { return 8 * (j >> 1) + (j & 1); };
  for (int32_t c = 0; c < d.depth; c += 4 * kGroups) {
    int32x4_t acc[kGroups];
    for (int32_t j = 0; j < kGroups; ++j)
      acc[j] = vldrwq_gather_shifted_offset_s32(d.folded + c + first(j), every_other);
    const int8_t* x = window + c;
    const int8_t* w = d.filter + c;
    for (int32_t ky = 0; ky < d.kh; ++ky, x += row_skip) {
      if constexpr (kGroups == 4) {
        depthwise_row16(x, w, d.kw, d.depth, acc[0], acc[1], acc[2], acc[3]);
      } else {
        depthwise_row8(x, w, d.kw, d.depth, acc[0], acc[1]);
      }
    }
    for (int32_t j = 0; j < kGroups; ++j) {
      const int32_t k = c + first(j);
      const int32x4_t m = vldrwq_gather_shifted_offset_s32(d.mult + k, every_other);
      const int32x4_t s = vldrwq_gather_shifted_offset_s32(d.shift + k, every_other);
      const int32x4_t v =
          d.shifts.right ? multiply_by_quantized_multiplier4_right(acc[j], m, s, d.shifts.twice())
                         : multiply_by_quantized_multiplier4(acc[j], m, s);
      vstrbq_scatter_offset_s32(out + k, every_other,
                                vminq_s32(vmaxq_s32(vaddq_n_s32(v, d.output_offset), lo), hi));
    }
  }
}

// `count` output pixels of one row through `pixel`: windows `step` bytes
// apart, outputs depth bytes apart (one call per row keeps the per-call
// set-up off the pixel loop).
template <void (*kPixel)(const DepthwisePixel&, const int8_t*, int8_t*)>
void depthwise_pixels(const DepthwisePixel& d, const int8_t* window, ptrdiff_t step, int32_t count,
                      int8_t* out) {
  // A copy the output stores cannot alias: GCC keeps its fields out of the
  // loops instead of reloading them after every store.
  const DepthwisePixel local = d;
  for (; count > 0; --count, window += step, out += local.depth) kPixel(local, window, out);
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_DEPTHWISE_HELIUM_H_
