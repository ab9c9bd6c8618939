// Helium side of the pixel-group convolution (cpp/runtime/src/kernels/
// conv_runs.cc), for the layers that the row loop (conv_stream_helium.h)
// does not take: C_in not a multiple of 16, left shifts, windows too wide
// for its strip. The four windows of a pixel group lie side by side in a
// patch, `stride` bytes apart, and every filter goes against them.
//
// Per 16 weight bytes: one weight load, four window loads and four VMLADAVA
// (exact int8 x int8 sums into 32-bit registers), so one weight vector serves
// four output pixels. A run may end in a partial vector, whose weight load
// is predicated (lanes past the run read nothing and add zero; the window
// bytes they meet are in the patch).
#ifndef DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_
#define DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/src/kernels/conv_runs.h"
#include "requantize_helium.h"

namespace dtmm {
namespace helium {

// Copies n bytes from src to dst in whole vectors, the last one under a
// predicate (a window's row into the patch, a row of constant outputs).
__attribute__((always_inline)) inline void copy_bytes(int8_t* dst, const int8_t* src, int32_t n) {
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
      "   vpstt\n"
      "   vldrbt.8 q0, [%[s]]\n"
      "   vstrbt.8 q0, [%[d]]\n"
      "3:\n"
      : [d] "+r"(dst), [s] "+r"(src), [t] "=&r"(t)
      : [n] "r"(n)
      : "q0", "lr", "p0", "memory", "cc");
}

// The four windows of pixels on one output row whose windows all lie inside
// the source (the image, or a padded copy of the group's rows), `row` bytes
// per source row, into the patch `stride` bytes apart, row by row; each row
// is contiguous in the source. `step` is the bytes between the pixels'
// window origins (stride * C_in).
inline void side_by_side_row_group(const RunConv& c, const int8_t* origin, ptrdiff_t row,
                                   ptrdiff_t step, int8_t* patch, int32_t stride) {
  const int32_t row_bytes = c.kw * c.ic;
  for (int32_t q = 0; q < 4; ++q, origin += step, patch += stride) {
    const int8_t* src = origin;
    int8_t* dst = patch;
    for (int32_t ky = 0; ky < c.kh; ++ky, src += row, dst += row_bytes)
      copy_bytes(dst, src, row_bytes);
  }
}

// The MAC loop in assembly: GCC 12 spills its pointers and predicate.
// VMLADAVA accumulates into even registers only (constraint "Te"). It runs
// `blocks` (possibly 0) times with the low-overhead loop (WLS/LE).

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

// The whole filter loop of the small windows (below) in assembly. A head is
// read with two LDRDs (bias and step, then multiplier and shift); the four
// sums enter the vector as two doublewords (VMOV Dm, Rt, Rt2 puts Rt in the low word). The
// MVE two-lane VMOV would do as well, but QEMU puts its first register in
// the lower lane while LLVM's code for building a vector names the upper
// lane's value first (vmov q0[2], q0[0], r2, r0): one of them is not what
// silicon does, and no test under QEMU can tell which. No shift may be
// positive (c.shifts.nonpositive). The loop runs at least once:
// c.filters > 0.

// A filter's head: its bias into the four sums, its output channel into o.
#define DTMM_FILTER_HEAD                 \
  "0: ldrd    %[a0], %[t], [%[h]], #8\n" \
  "   uxtah   %[o], %[o], %[t]\n"        \
  "   mov     %[a1], %[a0]\n"            \
  "   mov     %[a2], %[a0]\n"            \
  "   mov     %[a3], %[a0]\n"

// Four sums in q0 to bytes (the requantization of requantize_lanes with a
// shift of at most 0: multiplier in register MULT, shift in SHIFT) and their
// scatter store at [o] + offs; q1 is clobbered. Register SIGN holds the
// shift's sign (shift >> 31): a negative shift (TFLite's second rounding)
// adds -1 to the negative lanes before the rounding right shift, a shift of
// 0 (one rounding) nothing, so a layer may mix both. Both Helium
// convolution drivers use it.
// clang-format off
#define DTMM_REQUANTIZE_Q0_STORE(MULT, SHIFT, SIGN) \
  "   vqrdmulh.s32 q0, q0, %[" MULT "]\n"     \
  "   vshr.u32 q1, q0, #31\n"                 \
  "   vmla.s32 q0, q1, %[" SIGN "]\n"         \
  "   vrshl.s32 q0, %[" SHIFT "]\n"           \
  "   vadd.i32 q0, q0, %q[off]\n"             \
  "   vmax.s32 q0, q0, %q[lo]\n"              \
  "   vmin.s32 q0, q0, %q[hi]\n"              \
  "   vstrb.32 q0, [%[o], %q[offs]]\n"
// clang-format on

// Sums of a filter to bytes, then the store and the filter loop's end.
// clang-format off
#define DTMM_REQUANTIZE_STORE_NEXT        \
  "   vmov    d0, %[a0], %[a1]\n"         \
  "   vmov    d1, %[a2], %[a3]\n"         \
  "   ldrd    %[t], %[x], [%[h]], #8\n"   \
  "   asr     %[sign], %[x], #31\n"       \
  DTMM_REQUANTIZE_Q0_STORE("t", "x", "sign") \
  "   cmp     %[h], %[end]\n"             \
  "   bne     0b\n"
// clang-format on

// Byte offsets of the group's four outputs of one channel: `out_channels`
// apart, spare lanes (past `lanes`) on the last real one, whose value they
// hold too (run_groups), so the store needs no predicate.
__attribute__((always_inline)) inline uint32x4_t output_offsets(const RunConv& c, int32_t lanes) {
  const uint32x4_t q = vminq_u32(vidupq_n_u32(0, 1), vdupq_n_u32(static_cast<uint32_t>(lanes - 1)));
  return vmulq_n_u32(q, static_cast<uint32_t>(c.out_channels));
}

// n 16-byte entries of `value`, 16 bytes apart from dst; returns the next.
__attribute__((always_inline)) inline int8_t* fill_entries(int8_t* dst, int8x16_t value,
                                                           int32_t n) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1: vstrb.8 %q[v], [%[d]], #16\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [d] "+r"(dst)
      : [n] "r"(n), [v] "w"(value)
      : "lr", "memory");
  return dst;
}

// The chunk's row of constant outputs (its filters without runs) to each of
// `pixels` consecutive output pixels, `out_channels` bytes apart: a row of
// all 16, 32 or 64 channels as consecutive copies, others four pixels at a
// time, where one load serves four stores, in a tail-predicated loop (no scalar
// tail). A last group of fewer stores its spare lanes to its last pixel, as
// the filter loops do. One copy, out of line, for both drivers.
__attribute__((noinline)) inline void store_constants(const RunConv& c, int32_t pixels,
                                                      int8_t* out) {
  const auto four = [&c](int8_t* d0, int8_t* d1, int8_t* d2, int8_t* d3) {
    const int8_t* row = c.constants;
    __asm__ volatile(
        "   wlstp.8 lr, %[n], 2f\n"
        "1: vldrb.8 q0, [%[s]], #16\n"
        "   vstrb.8 q0, [%[d0]], #16\n"
        "   vstrb.8 q0, [%[d1]], #16\n"
        "   vstrb.8 q0, [%[d2]], #16\n"
        "   vstrb.8 q0, [%[d3]], #16\n"
        "   letp    lr, 1b\n"
        "2:\n"
        : [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2), [d3] "+r"(d3), [s] "+r"(row)
        : [n] "r"(c.oc_end - c.oc_begin)
        : "q0", "lr", "memory");
  };
  const int32_t n = c.oc_end - c.oc_begin;
  if (n == c.out_channels && (n == 16 || n == 32 || n == 64)) {
    // The row is every channel's: the pixels' outputs are one run of
    // copies of it, one store per 16 channels and pixel.
    const int8_t* row = c.constants;
    const int8x16_t r0 = vldrbq_s8(row), r1 = vldrbq_s8(row + (n > 16 ? 16 : 0)),
                    r2 = vldrbq_s8(row + (n > 32 ? 32 : 0)),
                    r3 = vldrbq_s8(row + (n > 32 ? 48 : 0));
    if (n == 16) {
      fill_entries(out, r0, pixels);
    } else if (n == 32) {
      __asm__ volatile(
          "   wls     lr, %[p], 2f\n"
          "1: vstrb.8 %q[r0], [%[d]], #16\n"
          "   vstrb.8 %q[r1], [%[d]], #16\n"
          "   le      lr, 1b\n"
          "2:\n"
          : [d] "+r"(out)
          : [p] "r"(pixels), [r0] "w"(r0), [r1] "w"(r1)
          : "lr", "memory");
    } else {
      __asm__ volatile(
          "   wls     lr, %[p], 2f\n"
          "1: vstrb.8 %q[r0], [%[d]], #16\n"
          "   vstrb.8 %q[r1], [%[d]], #16\n"
          "   vstrb.8 %q[r2], [%[d]], #16\n"
          "   vstrb.8 %q[r3], [%[d]], #16\n"
          "   le      lr, 1b\n"
          "2:\n"
          : [d] "+r"(out)
          : [p] "r"(pixels), [r0] "w"(r0), [r1] "w"(r1), [r2] "w"(r2), [r3] "w"(r3)
          : "lr", "memory");
    }
    return;
  }
  const ptrdiff_t pitch = c.out_channels;
  int8_t* d = out + c.oc_begin;
  for (; pixels >= 4; pixels -= 4, d += 4 * pitch) four(d, d + pitch, d + 2 * pitch, d + 3 * pitch);
  if (pixels > 0) {
    const ptrdiff_t last = (pixels - 1) * pitch;
    four(d, d + (pixels > 1 ? pitch : 0), d + (pixels > 2 ? 2 * pitch : last), d + last);
  }
}

// The outputs of c's filters without runs (RunConv::constants) when the
// chunk has any: each filter's folded bias requantized, four filters a
// vector (the filters with runs get theirs too, and overwrite them):
// multiply_by_quantized_multiplier4 in a tail-predicated loop, 17
// instructions per four channels (GCC's code for the intrinsics, with a
// predicate per load, took 31).
inline void constant_row(const RunConv& c, int8_t* row) {
  const int32_t *bias = c.folded_bias + c.oc_begin, *mult = c.multiplier + c.oc_begin,
                *shift = c.shift + c.oc_begin;
  __asm__ volatile(
      "   wlstp.32 lr, %[n], 2f\n"
      "1: vldrw.32 q0, [%[b]], #16\n"
      "   vldrw.32 q1, [%[m]], #16\n"
      "   vldrw.32 q2, [%[e]], #16\n"
      "   vmax.s32 q3, q2, %q[zero]\n"
      "   vshl.s32 q0, q0, q3\n"
      "   vqrdmulh.s32 q0, q0, q1\n"
      "   vshr.s32 q1, q0, #31\n"
      "   vshr.s32 q3, q2, #31\n"
      "   vand    q1, q1, q3\n"
      "   vadd.i32 q0, q0, q1\n"
      "   vmin.s32 q2, q2, %q[zero]\n"
      "   vrshl.s32 q0, q0, q2\n"
      "   vadd.i32 q0, q0, %q[off]\n"
      "   vmax.s32 q0, q0, %q[lo]\n"
      "   vmin.s32 q0, q0, %q[hi]\n"
      "   vstrb.32 q0, [%[r]], #4\n"
      "   letp    lr, 1b\n"
      "2:\n"
      : [b] "+r"(bias), [m] "+r"(mult), [e] "+r"(shift), [r] "+r"(row)
      : [n] "r"(c.oc_end - c.oc_begin), [zero] "w"(vdupq_n_s32(0)),
        [off] "w"(vdupq_n_s32(c.output_offset)), [lo] "w"(vdupq_n_s32(c.act_min)),
        [hi] "w"(vdupq_n_s32(c.act_max))
      : "q0", "q1", "q2", "q3", "lr", "memory");
}

// What the assembly filter loops take besides the patch and the output, the
// same for every whole group of a chunk (run_groups makes it once, and again
// for a last partial group): where the heads end, the output offsets of the
// group's lanes (1..4 real pixels) and the clamp.
struct FilterLoop {
  FilterLoop(const RunConv& c, int32_t lanes)
      : end(c.heads + c.filters),
        offs(output_offsets(c, lanes)),
        lo(vdupq_n_s32(c.act_min)),
        hi(vdupq_n_s32(c.act_max)),
        off(vdupq_n_s32(c.output_offset)) {}
  const FilterHead* end;
  uint32x4_t offs;
  int32x4_t lo, hi, off;
};

// The address the loops' first head step moves into the group's output row
// at `out` (an address, not a pointer: it starts one channel early).
__attribute__((always_inline)) inline uintptr_t output_address(const RunConv& c, int8_t* out) {
  return reinterpret_cast<uintptr_t>(out) + static_cast<uint32_t>(c.oc_begin - 1);
}

// Dense filters whose window is at most 16 bytes (a 1x1 layer with C_in
// below 16, a 3x3 one with C_in 1), over side-by-side windows 16 bytes
// apart: each filter is one weight load, predicated to the window so that
// it reads no further and the patch bytes past each window meet zero
// weights, and four VMLADAVA. No shift may be positive
// (c.shifts.nonpositive).
inline void filters_small_window(const RunConv& c, const FilterLoop& l, const int8_t* patch,
                                 int8_t* out) {
  const int32_t n = c.kh * c.kw * c.ic;
  const int8_t* w = c.values;
  const FilterHead* head = c.heads;
  uintptr_t o = output_address(c, out);
  const uint32_t window = vctp8q(static_cast<uint32_t>(n));
  int32_t a0, a1, a2, a3, t, sign;
  const int8_t* x;
  __asm__ volatile(
      "   vmsr    p0, %[window]\n" DTMM_FILTER_HEAD
      "   vpst\n"
      "   vldrbt.8 q0, [%[w]]\n"
      "   add     %[w], %[w], %[n]\n"
      "   vldrb.8 q1, [%[p]]\n"
      "   vmladava.s8 %[a0], q1, q0\n"
      "   vldrb.8 q2, [%[p], #16]\n"
      "   vmladava.s8 %[a1], q2, q0\n"
      "   vldrb.8 q3, [%[p], #32]\n"
      "   vmladava.s8 %[a2], q3, q0\n"
      "   vldrb.8 q1, [%[p], #48]\n"
      "   vmladava.s8 %[a3], q1, q0\n" DTMM_REQUANTIZE_STORE_NEXT
      : [w] "+r"(w), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x), [sign] "=&r"(sign),
        [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
      : [p] "r"(patch), [n] "r"(n), [end] "r"(l.end), [window] "r"(window), [offs] "w"(l.offs),
        [lo] "w"(l.lo), [hi] "w"(l.hi), [off] "w"(l.off)
      : "q0", "q1", "q2", "q3", "p0", "memory", "cc");
}

// The same for windows of 17 to 32 bytes (a 3x3 stem over RGB, 27 bytes),
// side by side 32 bytes apart: two weight vectors per filter, the second
// predicated to the window's rest, and eight VMLADAVA.
inline void filters_pair_window(const RunConv& c, const FilterLoop& l, const int8_t* patch,
                                int8_t* out) {
  const int32_t n = c.kh * c.kw * c.ic;
  const int8_t* w = c.values;
  const FilterHead* head = c.heads;
  uintptr_t o = output_address(c, out);
  const uint32_t rest = vctp8q(static_cast<uint32_t>(n - 16));
  int32_t a0, a1, a2, a3, t, sign;
  const int8_t* x;
  __asm__ volatile(
      "   vmsr    p0, %[rest]\n" DTMM_FILTER_HEAD
      "   vldrb.8 q0, [%[w]]\n"
      "   vpst\n"
      "   vldrbt.8 q1, [%[w], #16]\n"
      "   add     %[w], %[w], %[n]\n"
      "   vldrb.8 q2, [%[p]]\n"
      "   vmladava.s8 %[a0], q2, q0\n"
      "   vldrb.8 q3, [%[p], #16]\n"
      "   vmladava.s8 %[a0], q3, q1\n"
      "   vldrb.8 q2, [%[p], #32]\n"
      "   vmladava.s8 %[a1], q2, q0\n"
      "   vldrb.8 q3, [%[p], #48]\n"
      "   vmladava.s8 %[a1], q3, q1\n"
      "   vldrb.8 q2, [%[p], #64]\n"
      "   vmladava.s8 %[a2], q2, q0\n"
      "   vldrb.8 q3, [%[p], #80]\n"
      "   vmladava.s8 %[a2], q3, q1\n"
      "   vldrb.8 q2, [%[p], #96]\n"
      "   vmladava.s8 %[a3], q2, q0\n"
      "   vldrb.8 q3, [%[p], #112]\n"
      "   vmladava.s8 %[a3], q3, q1\n" DTMM_REQUANTIZE_STORE_NEXT
      : [w] "+r"(w), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x), [sign] "=&r"(sign),
        [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
      : [p] "r"(patch), [n] "r"(n), [end] "r"(l.end), [rest] "r"(rest), [offs] "w"(l.offs),
        [lo] "w"(l.lo), [hi] "w"(l.hi), [off] "w"(l.off)
      : "q0", "q1", "q2", "q3", "p0", "memory", "cc");
}

#undef DTMM_FILTER_HEAD
#undef DTMM_REQUANTIZE_STORE_NEXT

__attribute__((always_inline)) inline int32x4_t lanes_of(int32_t a0, int32_t a1, int32_t a2,
                                                         int32_t a3) {
  int32x4_t v = vdupq_n_s32(a0);
  v = vsetq_lane_s32(a1, v, 1);
  v = vsetq_lane_s32(a2, v, 2);
  return vsetq_lane_s32(a3, v, 3);
}

// Every filter of c with runs against the four side-by-side windows in
// `patch` (`stride` bytes apart), in C++: the path for C_in that is not a
// multiple of 16, and for layers with a left shift. kDense: each filter is
// the one run runs[0] (a loop over that one run cost a dense stem a sixth
// more).
template <bool kDense>
void filters_side_by_side(const RunConv& c, const int8_t* patch, int32_t stride, int32_t lanes,
                          int8_t* out) {
  const int8_t* w = c.values;
  const ConvRun* run = c.runs;
  const uint32x4_t out_offsets = output_offsets(c, lanes);
  const int32x4_t lo = vdupq_n_s32(c.act_min), hi = vdupq_n_s32(c.act_max);
  const FilterHead* h = c.heads;
  const FilterHead* const end = h + c.filters;
  for (int32_t oc = c.oc_begin - 1; h < end; ++h) {
    oc += h->step;
    // The sums start at the folded bias: the int32 adds wrap, as the
    // reference's bias add does.
    int32_t a0 = h->bias, a1 = a0, a2 = a0, a3 = a0;
    if (kDense) {
      mac_side_by_side(w, patch, stride, run->length, a0, a1, a2, a3);
    } else {
      for (int32_t r = h->runs; r > 0; --r, ++run)
        mac_side_by_side(w, patch + run->offset, stride, run->length, a0, a1, a2, a3);
    }
    int32x4_t v = requantize_lanes(lanes_of(a0, a1, a2, a3), h->multiplier, h->shift);
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, c.output_offset), lo), hi);
    vstrbq_scatter_offset_s32(out + oc, out_offsets, v);
  }
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_CONV_RUNS_HELIUM_H_
