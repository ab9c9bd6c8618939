// Helium side of the run convolution (cpp/runtime/src/kernels/conv_runs.cc):
// the four windows of a pixel group, and every filter against them.
//
// Per 16 weight bytes: one weight load, four window loads and four VMLADAVA
// (exact int8 x int8 sums into 32-bit registers), so one weight vector serves
// four output pixels. When C_in is a multiple of 16 every run starts and ends
// on a 16-byte block, and the windows are interleaved block by block
// (window q's block b at 64 * b + 16 * q): one pointer with immediate offsets
// reaches all four, which keeps the loop's registers free. Otherwise the
// windows lie side by side `stride` bytes apart and a run may end in a
// partial vector, whose weight load is predicated (lanes past the run read
// nothing and add zero; the window bytes they meet are in the patch).
#ifndef DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_
#define DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_

#include <arm_mve.h>
#include <stdint.h>

#include "../runtime/src/kernels/conv_runs.h"
#include "requantize_helium.h"

namespace dtmm {
namespace helium {

// Copies `blocks` 16-byte blocks from `src` to every 64th byte of `dst`
// (one window's place in the interleaved patch); returns the next place.
__attribute__((always_inline)) inline int8_t* copy_interleaved(int8_t* dst, const int8_t* src,
                                                               int32_t blocks) {
  for (; blocks > 0; --blocks, src += 16, dst += 64) vstrbq_s8(dst, vldrbq_s8(src));
  return dst;
}

__attribute__((always_inline)) inline int8_t* fill_interleaved(int8_t* dst, int8x16_t value,
                                                               int32_t blocks) {
  for (; blocks > 0; --blocks, dst += 64) vstrbq_s8(dst, value);
  return dst;
}

// Window of the pixel at (y0, x0) of `image` into interleaved slot q; taps
// outside the image get the input zero point (cancelled by the folded bias).
inline void interleave_window(const RunConv& c, const int8_t* image, int32_t y0, int32_t x0,
                              int8_t* patch, int32_t q) {
  const int32_t tap_blocks = c.ic >> 4, row_blocks = c.kw * tap_blocks;
  const int8x16_t pad = vdupq_n_s8(c.pad_value);
  const bool row_inside = x0 >= 0 && x0 + c.kw <= c.iw;
  int8_t* d = patch + 16 * q;
  for (int32_t ky = 0; ky < c.kh; ++ky) {
    const int32_t iy = y0 + ky;
    if (iy < 0 || iy >= c.ih) {
      d = fill_interleaved(d, pad, row_blocks);
      continue;
    }
    const ptrdiff_t row = static_cast<ptrdiff_t>(iy) * c.iw;
    if (row_inside) {
      d = copy_interleaved(d, image + (row + x0) * c.ic, row_blocks);
      continue;
    }
    for (int32_t kx = 0; kx < c.kw; ++kx) {
      const int32_t ix = x0 + kx;
      d = (ix < 0 || ix >= c.iw) ? fill_interleaved(d, pad, tap_blocks)
                                 : copy_interleaved(d, image + (row + ix) * c.ic, tap_blocks);
    }
  }
}

// The two hot loops in assembly: GCC 12 recomputes the interleaved
// window's address every block and spills the side-by-side loop's pointers
// and predicate. VMLADAVA accumulates into even registers only
// (constraint "Te"). Both loops run `blocks` (possibly 0) times with the
// low-overhead loop (WLS/LE).

// Interleaved windows: x advances 64 bytes per block (four 16-byte slices).
__attribute__((always_inline)) inline void mac_interleaved(const int8_t*& w, const int8_t*& x,
                                                           int32_t blocks, int32_t& a0, int32_t& a1,
                                                           int32_t& a2, int32_t& a3) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1: vldrb.8 q0, [%[w]], #16\n"
      "   vldrb.8 q1, [%[x], #16]\n"
      "   vmladava.s8 %[a1], q1, q0\n"
      "   vldrb.8 q2, [%[x], #32]\n"
      "   vmladava.s8 %[a2], q2, q0\n"
      "   vldrb.8 q3, [%[x], #48]\n"
      "   vmladava.s8 %[a3], q3, q0\n"
      "   vldrb.8 q1, [%[x]], #64\n"
      "   vmladava.s8 %[a0], q1, q0\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [w] "+r"(w), [x] "+r"(x), [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3)
      : [n] "r"(blocks)
      : "q0", "q1", "q2", "q3", "lr", "memory");
}

// Side-by-side windows `stride` bytes apart; `len` bytes, the last partial
// vector with a predicated weight load (its window bytes are in the patch).
__attribute__((always_inline)) inline void mac_side_by_side(const int8_t*& w, const int8_t* x,
                                                            int32_t stride, int32_t len,
                                                            int32_t& a0, int32_t& a1, int32_t& a2,
                                                            int32_t& a3) {
  const int8_t *x1, *x2, *x3;
  int32_t t;
  __asm__ volatile(
      "   add     %[x1], %[x0], %[s]\n"
      "   add     %[x2], %[x1], %[s]\n"
      "   add     %[x3], %[x2], %[s]\n"
      "   lsrs    %[t], %[len], #4\n"
      "   wls     lr, %[t], 2f\n"
      "1: vldrb.8 q0, [%[w]], #16\n"
      "   vldrb.8 q1, [%[x0]], #16\n"
      "   vmladava.s8 %[a0], q1, q0\n"
      "   vldrb.8 q2, [%[x1]], #16\n"
      "   vmladava.s8 %[a1], q2, q0\n"
      "   vldrb.8 q3, [%[x2]], #16\n"
      "   vmladava.s8 %[a2], q3, q0\n"
      "   vldrb.8 q1, [%[x3]], #16\n"
      "   vmladava.s8 %[a3], q1, q0\n"
      "   le      lr, 1b\n"
      "2: ands    %[t], %[len], #15\n"
      "   beq     3f\n"
      "   vctp.8  %[t]\n"
      "   vpst\n"
      "   vldrbt.8 q0, [%[w]]\n"
      "   add     %[w], %[w], %[t]\n"
      "   vldrb.8 q1, [%[x0]]\n"
      "   vmladava.s8 %[a0], q1, q0\n"
      "   vldrb.8 q2, [%[x1]]\n"
      "   vmladava.s8 %[a1], q2, q0\n"
      "   vldrb.8 q3, [%[x2]]\n"
      "   vmladava.s8 %[a2], q3, q0\n"
      "   vldrb.8 q1, [%[x3]]\n"
      "   vmladava.s8 %[a3], q1, q0\n"
      "3:\n"
      : [w] "+r"(w), [x0] "+r"(x), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [t] "=&r"(t),
        [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3)
      : [s] "r"(stride), [len] "r"(len)
      : "q0", "q1", "q2", "q3", "lr", "memory", "cc");
}

// Every filter of c against the four windows in `patch`; lanes (1..4) of
// them are real pixels, whose outputs start `out_step` bytes apart at `out`.
// kTail: side-by-side layout with partial vectors; kDense: each filter is
// one run over its whole window (no run table).
template <bool kTail, bool kDense>
void run_filters(const RunConv& c, const int8_t* patch, int32_t stride, int32_t lanes,
                 int8_t* out) {
  const int8_t* w = c.values;
  const ConvRun* run = c.runs;
  const uint16_t* count = c.run_count;
  const int32_t window = c.kh * c.kw * c.ic;
  const uint32x4_t out_offsets =
      vmulq_n_u32(vidupq_n_u32(0, 1), static_cast<uint32_t>(c.out_channels));
  const int32x4_t lo = vdupq_n_s32(c.act_min), hi = vdupq_n_s32(c.act_max);
  for (int32_t oc = c.oc_begin; oc < c.oc_end; ++oc) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int32_t runs = kDense ? 1 : *count++;
    for (int32_t r = 0; r < runs; ++r) {
      int32_t off = 0, len = window;
      if (!kDense) {
        off = run->offset;
        len = run->length;
        ++run;
      }
      if (kTail) {
        mac_side_by_side(w, patch + off, stride, len, a0, a1, a2, a3);
      } else {
        const int8_t* x = patch + 4 * off;
        mac_interleaved(w, x, len >> 4, a0, a1, a2, a3);
      }
    }
    int32x4_t v = vdupq_n_s32(a0);
    v = vsetq_lane_s32(a1, v, 1);
    v = vsetq_lane_s32(a2, v, 2);
    v = vsetq_lane_s32(a3, v, 3);
    v = vaddq_n_s32(v, c.folded_bias[oc]);
    v = requantize_lanes(v, c.multiplier[oc], c.shift[oc]);
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, c.output_offset), lo), hi);
    if (lanes == 4) {
      vstrbq_scatter_offset_s32(out + oc, out_offsets, v);
    } else {
      vstrbq_scatter_offset_p_s32(out + oc, out_offsets, v, vctp32q(static_cast<uint32_t>(lanes)));
    }
  }
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_
