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
#include <stddef.h>
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
// Each window row is taps in the left padding, taps inside, taps in the
// right padding: at most three short loops, the same for every row.
inline void interleave_window(const RunConv& c, const int8_t* image, int32_t y0, int32_t x0,
                              int8_t* patch, int32_t q) {
  const int32_t tap_blocks = c.ic >> 4, row_blocks = c.kw * tap_blocks;
  const int32_t left = x0 < 0 ? (-x0 < c.kw ? -x0 : c.kw) : 0;
  const int32_t past = x0 + c.kw - c.iw,
                right = past > 0 ? (past < c.kw - left ? past : c.kw - left) : 0;
  const int32_t inside = (c.kw - left - right) * tap_blocks;
  const int8x16_t pad = vdupq_n_s8(c.pad_value);
  int8_t* d = patch + 16 * q;
  for (int32_t ky = 0; ky < c.kh; ++ky) {
    const int32_t iy = y0 + ky;
    if (iy < 0 || iy >= c.ih) {
      d = fill_interleaved(d, pad, row_blocks);
      continue;
    }
    d = fill_interleaved(d, pad, left * tap_blocks);
    d = copy_interleaved(d, image + (static_cast<ptrdiff_t>(iy) * c.iw + x0 + left) * c.ic, inside);
    d = fill_interleaved(d, pad, right * tap_blocks);
  }
}

// Copies exactly n source bytes to dst in whole vectors (the last one read
// under a predicate), so up to 15 bytes past dst + n are overwritten: the
// side-by-side layout writes windows in address order and keeps 16 spare
// bytes after the last, so later writes or nothing live there.
__attribute__((always_inline)) inline void copy_spill(int8_t* dst, const int8_t* src, int32_t n) {
  int32_t t;
  __asm__ volatile(
      "   lsrs    %[t], %[n], #4\n"
      "   wls     lr, %[t], 2f\n"
      "1: vldrb.8 q0, [%[s]], #16\n"
      "   vstrb.8 q0, [%[d]], #16\n"
      "   le      lr, 1b\n"
      "2: ands    %[t], %[n], #15\n"
      "   beq     3f\n"
      "   vctp.8  %[t]\n"
      "   vpst\n"
      "   vldrbt.8 q0, [%[s]]\n"
      "   vstrb.8 q0, [%[d]]\n"
      "3:\n"
      : [d] "+r"(dst), [s] "+r"(src), [t] "=&r"(t)
      : [n] "r"(n)
      : "q0", "lr", "p0", "memory", "cc");
}

// Side-by-side version of interleave_inner_row (below): the four windows,
// `stride` bytes apart, row by row; each row is contiguous in the image.
inline void side_by_side_inner_row(const RunConv& c, const int8_t* origin, ptrdiff_t step,
                                   int8_t* patch, int32_t stride) {
  const int32_t row_bytes = c.kw * c.ic;
  const ptrdiff_t in_row = static_cast<ptrdiff_t>(c.iw) * c.ic;
  for (int32_t q = 0; q < 4; ++q, origin += step, patch += stride) {
    const int8_t* src = origin;
    int8_t* dst = patch;
    for (int32_t ky = 0; ky < c.kh; ++ky, src += in_row, dst += row_bytes)
      copy_spill(dst, src, row_bytes);
  }
}

// The four windows of pixels on one output row whose windows all lie inside
// the image (the common case): window row by window row, block by block, the
// four pixels' blocks land side by side. `origin` is pixel 0's window
// origin, `step` the bytes between the pixels' origins (stride * C_in).
inline void interleave_inner_row(const RunConv& c, const int8_t* origin, ptrdiff_t step,
                                 int8_t* patch) {
  const int32_t row_blocks = (c.kw * c.ic) >> 4;
  const ptrdiff_t in_row = static_cast<ptrdiff_t>(c.iw) * c.ic;
  for (int32_t ky = 0; ky < c.kh; ++ky, origin += in_row) {
    const int8_t *s0 = origin, *s1 = origin + step, *s2 = origin + 2 * step,
                 *s3 = origin + 3 * step;
    for (int32_t j = 0; j < row_blocks; ++j, patch += 64) {
      vstrbq_s8(patch, vldrbq_s8(s0));
      vstrbq_s8(patch + 16, vldrbq_s8(s1));
      vstrbq_s8(patch + 32, vldrbq_s8(s2));
      vstrbq_s8(patch + 48, vldrbq_s8(s3));
      s0 += 16;
      s1 += 16;
      s2 += 16;
      s3 += 16;
    }
  }
}

// The two hot loops in assembly: GCC 12 recomputes the interleaved
// window's address every block and spills the side-by-side loop's pointers
// and predicate. VMLADAVA accumulates into even registers only
// (constraint "Te"). Both loops run `blocks` (possibly 0) times with the
// low-overhead loop (WLS/LE).

// The interleaved loop body (label 1, low-overhead loop on lr): per block,
// one weight vector against the four windows' slices at x, x + 16, x + 32
// and x + 48; x advances 64 bytes, w 16.
#define DTMM_MAC4_INTERLEAVED_LOOP \
  "1: vldrb.8 q0, [%[w]], #16\n"   \
  "   vldrb.8 q1, [%[x], #16]\n"   \
  "   vmladava.s8 %[a1], q1, q0\n" \
  "   vldrb.8 q2, [%[x], #32]\n"   \
  "   vmladava.s8 %[a2], q2, q0\n" \
  "   vldrb.8 q3, [%[x], #48]\n"   \
  "   vmladava.s8 %[a3], q3, q0\n" \
  "   vldrb.8 q1, [%[x]], #64\n"   \
  "   vmladava.s8 %[a0], q1, q0\n" \
  "   le      lr, 1b\n"

// Interleaved windows: x advances 64 bytes per block (four 16-byte slices).
__attribute__((always_inline)) inline void mac_interleaved(const int8_t*& w, const int8_t*& x,
                                                           int32_t blocks, int32_t& a0, int32_t& a1,
                                                           int32_t& a2, int32_t& a3) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n" DTMM_MAC4_INTERLEAVED_LOOP "2:\n"
      : [w] "+r"(w), [x] "+r"(x), [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3)
      : [n] "r"(blocks)
      : "q0", "q1", "q2", "q3", "lr", "memory");
}

// Interleaved windows, one filter's `runs` runs (FWCS): each run's offset
// and length, read as one word, become the window address and the block
// count; the weights follow one another.
__attribute__((always_inline)) inline void mac_runs_interleaved(const int8_t*& w,
                                                                const int8_t* patch,
                                                                const ConvRun*& run, int32_t runs,
                                                                int32_t& a0, int32_t& a1,
                                                                int32_t& a2, int32_t& a3) {
  static_assert(sizeof(ConvRun) == 4 && offsetof(ConvRun, length) == 2,
                "run = offset | length << 16");
  const int8_t* x;
  int32_t t;
  __asm__ volatile(
      "   cbz     %[k], 3f\n"
      "4: ldr     %[t], [%[r]], #4\n"
      "   uxth    %[x], %[t]\n"
      "   add     %[x], %[p], %[x], lsl #2\n"
      "   lsrs    %[t], %[t], #20\n"
      "   wls     lr, %[t], 2f\n" DTMM_MAC4_INTERLEAVED_LOOP
      "2: subs    %[k], %[k], #1\n"
      "   bne     4b\n"
      "3:\n"
      : [w] "+r"(w), [r] "+r"(run), [k] "+l"(runs), [x] "=&r"(x), [t] "=&r"(t), [a0] "+Te"(a0),
        [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3)
      : [p] "r"(patch)
      : "q0", "q1", "q2", "q3", "lr", "memory", "cc");
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
      : "q0", "q1", "q2", "q3", "lr", "p0", "memory", "cc");
}

// Every filter of c against the four windows in `patch`; lanes (1..4) of
// them are real pixels, whose outputs start `out_step` bytes apart at `out`.
// kTail: side-by-side layout with partial vectors; kDense: each filter is
// one run over its whole window (no run table).
__attribute__((always_inline)) inline int32x4_t lanes_of(int32_t a0, int32_t a1, int32_t a2,
                                                         int32_t a3) {
  int32x4_t v = vdupq_n_s32(a0);
  v = vsetq_lane_s32(a1, v, 1);
  v = vsetq_lane_s32(a2, v, 2);
  return vsetq_lane_s32(a3, v, 3);
}

template <bool kTail, bool kDense>
void run_filters(const RunConv& c, const int8_t* patch, int32_t stride, int32_t lanes,
                 int8_t* out) {
  const int8_t* w = c.values;
  const ConvRun* run = c.runs;
  const uint16_t* count = c.run_count;
  const int32_t window = c.kh * c.kw * c.ic;
  const int32_t* bias = c.folded_bias + c.oc_begin;
  const int32_t* mult = c.multiplier + c.oc_begin;
  const int32_t* shift = c.shift + c.oc_begin;
  const int32_t out_offset = c.output_offset;
  const uint32x4_t out_offsets =
      vmulq_n_u32(vidupq_n_u32(0, 1), static_cast<uint32_t>(c.out_channels));
  const int32x4_t lo = vdupq_n_s32(c.act_min), hi = vdupq_n_s32(c.act_max);
  const mve_pred16_t real = vctp32q(static_cast<uint32_t>(lanes));
  int8_t* const end = out + c.oc_end;
  for (out += c.oc_begin; out < end; ++out) {
    // The sums start at the folded bias: the int32 adds wrap, as the
    // reference's bias add does.
    int32_t a0 = *bias++, a1 = a0, a2 = a0, a3 = a0;
    if (kDense) {
      if (kTail) {
        mac_side_by_side(w, patch, stride, window, a0, a1, a2, a3);
      } else {
        const int8_t* x = patch;
        mac_interleaved(w, x, window >> 4, a0, a1, a2, a3);
      }
    } else if (kTail) {
      for (int32_t r = *count++; r > 0; --r, ++run)
        mac_side_by_side(w, patch + run->offset, stride, run->length, a0, a1, a2, a3);
    } else {
      mac_runs_interleaved(w, patch, run, *count++, a0, a1, a2, a3);
    }
    int32x4_t v = requantize_lanes(lanes_of(a0, a1, a2, a3), *mult++, *shift++);
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, out_offset), lo), hi);
    vstrbq_scatter_offset_p_s32(out, out_offsets, v, real);
  }
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_
