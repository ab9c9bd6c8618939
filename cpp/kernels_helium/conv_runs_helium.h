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
// Low-overhead loops: GCC 12's took three times the instructions per block.
__attribute__((always_inline)) inline int8_t* copy_interleaved(int8_t* dst, const int8_t* src,
                                                               int32_t blocks) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1: vldrb.8 q0, [%[s]], #16\n"
      "   vstrb.8 q0, [%[d]], #64\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [d] "+r"(dst), [s] "+r"(src)
      : [n] "r"(blocks)
      : "q0", "lr", "memory");
  return dst;
}

__attribute__((always_inline)) inline int8_t* fill_interleaved(int8_t* dst, int8x16_t value,
                                                               int32_t blocks) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1: vstrb.8 %q[v], [%[d]], #64\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [d] "+r"(dst)
      : [n] "r"(blocks), [v] "w"(value)
      : "lr", "memory");
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

// Side-by-side version of interleave_row_group (below): the four windows,
// `stride` bytes apart, row by row; each row is contiguous in the source.
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

// The four windows of pixels on one output row whose windows all lie inside
// the source (the image, or a padded copy of the group's rows), `row` bytes
// per source row: window row by window row, block by block, the four
// pixels' blocks land side by side. `origin` is pixel 0's window origin,
// `step` the bytes between the pixels' origins (stride * C_in).
inline void interleave_row_group(const RunConv& c, const int8_t* origin, ptrdiff_t row,
                                 ptrdiff_t step, int8_t* patch) {
  const int32_t row_blocks = (c.kw * c.ic) >> 4;
  for (int32_t ky = 0; ky < c.kh; ++ky, origin += row) {
    const int8_t *s0 = origin, *s1 = s0 + step, *s2 = s1 + step, *s3 = s2 + step;
    __asm__ volatile(
        "   wls     lr, %[n], 2f\n"
        "1: vldrb.8 q0, [%[s0]], #16\n"
        "   vstrb.8 q0, [%[d]], #16\n"
        "   vldrb.8 q1, [%[s1]], #16\n"
        "   vstrb.8 q1, [%[d]], #16\n"
        "   vldrb.8 q0, [%[s2]], #16\n"
        "   vstrb.8 q0, [%[d]], #16\n"
        "   vldrb.8 q1, [%[s3]], #16\n"
        "   vstrb.8 q1, [%[d]], #16\n"
        "   le      lr, 1b\n"
        "2:\n"
        : [d] "+r"(patch), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3)
        : [n] "r"(row_blocks)
        : "q0", "q1", "lr", "memory");
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

// The whole filter loop over interleaved windows in assembly. Per filter and
// pixel group, the bookkeeping is what a sparse filter cannot shed, so it is
// kept to 18 instructions, and 5 per run (GCC 12 spilled the loop's
// pointers around the MAC loops and took about 35). A head is read with two
// LDRDs (bias and step, then multiplier and shift); the four sums enter the
// vector as two doublewords (VMOV Dm, Rt, Rt2 puts Rt in the low word). The
// MVE two-lane VMOV would do as well, but QEMU puts its first register in
// the lower lane while LLVM's code for building a vector names the upper
// lane's value first (vmov q0[2], q0[0], r2, r0): one of them is not what
// silicon does, and no test under QEMU can tell which. The shifts must be
// all negative or all 0 (c.shifts.right). The loop runs at least once:
// c.filters > 0.

// A filter's head: its bias into the four sums, its output channel into o.
#define DTMM_FILTER_HEAD                 \
  "0: ldrd    %[a0], %[t], [%[h]], #8\n" \
  "   uxtah   %[o], %[o], %[t]\n"        \
  "   mov     %[a1], %[a0]\n"            \
  "   mov     %[a2], %[a0]\n"            \
  "   mov     %[a3], %[a0]\n"

// Sums of a filter to bytes (the requantization of requantize_lanes with a
// shift of at most 0), then the store and the filter loop's end. The
// correction of negative lanes before a rounding right shift is scaled by
// [twice]: 1 where shifts are negative, 0 where they are all 0 (one rounding,
// Rounding::kSingle), at no cost in instructions.
#define DTMM_REQUANTIZE_STORE_NEXT      \
  "   vmov    d0, %[a0], %[a1]\n"       \
  "   vmov    d1, %[a2], %[a3]\n"       \
  "   ldrd    %[t], %[x], [%[h]], #8\n" \
  "   vqrdmulh.s32 q0, q0, %[t]\n"      \
  "   vshr.s32 q1, q0, #31\n"           \
  "   vmla.s32 q0, q1, %[twice]\n"      \
  "   vrshl.s32 q0, %[x]\n"             \
  "   vadd.i32 q0, q0, %q[off]\n"       \
  "   vmax.s32 q0, q0, %q[lo]\n"        \
  "   vmin.s32 q0, q0, %q[hi]\n"        \
  "   vstrb.32 q0, [%[o], %q[offs]]\n"  \
  "   cmp     %[h], %[end]\n"           \
  "   bne     0b\n"

// Byte offsets of the group's four outputs of one channel: `out_channels`
// apart, spare lanes (past `lanes`) on the last real one, whose value they
// hold too (run_groups), so the store needs no predicate.
__attribute__((always_inline)) inline uint32x4_t output_offsets(const RunConv& c, int32_t lanes) {
  const uint32x4_t q = vminq_u32(vidupq_n_u32(0, 1), vdupq_n_u32(static_cast<uint32_t>(lanes - 1)));
  return vmulq_n_u32(q, static_cast<uint32_t>(c.out_channels));
}

// The chunk's row of constant outputs (its filters without runs) to each of
// the group's four pixels, `out_channels` bytes apart; spare lanes store to
// the last real pixel, as the filter loops do. One load serves four stores,
// in a tail-predicated loop (no scalar tail).
__attribute__((always_inline)) inline void store_constants(const RunConv& c, int32_t lanes,
                                                           int8_t* out) {
  const auto pixel = [&](int32_t q) {
    return out + c.oc_begin + static_cast<ptrdiff_t>(q < lanes ? q : lanes - 1) * c.out_channels;
  };
  int8_t *d0 = pixel(0), *d1 = pixel(1), *d2 = pixel(2), *d3 = pixel(3);
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
}

// What the assembly filter loops take besides the patch and the output, the
// same for every whole group of a chunk (run_groups makes it once, and again
// for a last partial group): where the heads end, the output offsets of the
// group's lanes (1..4 real pixels) and the clamp.
struct FilterLoop {
  FilterLoop(const RunConv& c, int32_t lanes)
      : end(c.heads + c.filters),
        twice(c.shifts.twice()),
        offs(output_offsets(c, lanes)),
        lo(vdupq_n_s32(c.act_min)),
        hi(vdupq_n_s32(c.act_max)),
        off(vdupq_n_s32(c.output_offset)) {}
  const FilterHead* end;
  int32_t twice;  // 1: the shifts are negative (two roundings); 0: all 0
  uint32x4_t offs;
  int32x4_t lo, hi, off;
};

// The address the loops' first head step moves into the group's output row
// at `out` (an address, not a pointer: it starts one channel early).
__attribute__((always_inline)) inline uintptr_t output_address(const RunConv& c, int8_t* out) {
  return reinterpret_cast<uintptr_t>(out) + static_cast<uint32_t>(c.oc_begin - 1);
}

template <bool kDense>
void filters_interleaved(const RunConv& c, const FilterLoop& l, const int8_t* patch, int8_t* out) {
  static_assert(sizeof(ConvRun) == 4 && offsetof(ConvRun, length) == 2,
                "run = offset | length << 16");
  static_assert(sizeof(FilterHead) == 16 && offsetof(FilterHead, step) == 4,
                "head = (bias, step | runs << 16), (multiplier, shift)");
  const int8_t* w = c.values;
  const FilterHead* head = c.heads;
  uintptr_t o = output_address(c, out);
  int32_t a0, a1, a2, a3, t;
  const int8_t* x;
  if (kDense) {
    // Every filter with runs is one run of `blocks` blocks over the window.
    const int32_t blocks = (c.kh * c.kw * c.ic) >> 4;
    __asm__ volatile(DTMM_FILTER_HEAD
                     "   mov     %[x], %[p]\n"
                     "   wls     lr, %[n], 2f\n" DTMM_MAC4_INTERLEAVED_LOOP
                     "2:\n" DTMM_REQUANTIZE_STORE_NEXT
                     : [w] "+r"(w), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x),
                       [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
                     : [p] "r"(patch), [n] "r"(blocks), [end] "r"(l.end), [twice] "r"(l.twice),
                       [offs] "w"(l.offs), [lo] "w"(l.lo), [hi] "w"(l.hi), [off] "w"(l.off)
                     : "q0", "q1", "q2", "q3", "lr", "memory", "cc");
    return;
  }
  // A run word is its patch offset | length << 16. Its blocks are the length
  // >> 4; the LSRS that takes them leaves kRunContinues (bit 19 of the word)
  // in the carry, which nothing in the MAC loop changes, for the branch back
  // to the filter's next run.
  const ConvRun* run = c.runs;
  __asm__ volatile(
      DTMM_FILTER_HEAD
      "4: ldr     %[t], [%[r]], #4\n"
      "   uxtah   %[x], %[p], %[t]\n"
      "   lsrs    %[t], %[t], #20\n"
      "   wls     lr, %[t], 2f\n" DTMM_MAC4_INTERLEAVED_LOOP
      "2: bcs     4b\n" DTMM_REQUANTIZE_STORE_NEXT
      : [w] "+r"(w), [r] "+r"(run), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x),
        [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
      : [p] "r"(patch), [end] "r"(l.end), [twice] "r"(l.twice), [offs] "w"(l.offs), [lo] "w"(l.lo),
        [hi] "w"(l.hi), [off] "w"(l.off)
      : "q0", "q1", "q2", "q3", "lr", "memory", "cc");
}

// Dense filters whose window is at most 16 bytes (a 1x1 layer with C_in
// below 16, a 3x3 one with C_in 1), over side-by-side windows 16 bytes
// apart: each filter is one weight load, predicated to the window so that
// it reads no further and the patch bytes past each window meet zero
// weights, and four VMLADAVA. The shifts must be all negative or all 0
// (c.shifts.right).
inline void filters_small_window(const RunConv& c, const FilterLoop& l, const int8_t* patch,
                                 int8_t* out) {
  const int32_t n = c.kh * c.kw * c.ic;
  const int8_t* w = c.values;
  const FilterHead* head = c.heads;
  uintptr_t o = output_address(c, out);
  const uint32_t window = vctp8q(static_cast<uint32_t>(n));
  int32_t a0, a1, a2, a3, t;
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
      : [w] "+r"(w), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x), [a0] "=&Te"(a0),
        [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
      : [p] "r"(patch), [n] "r"(n), [end] "r"(l.end), [window] "r"(window), [twice] "r"(l.twice),
        [offs] "w"(l.offs), [lo] "w"(l.lo), [hi] "w"(l.hi), [off] "w"(l.off)
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
  int32_t a0, a1, a2, a3, t;
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
      : [w] "+r"(w), [h] "+r"(head), [o] "+r"(o), [t] "=&r"(t), [x] "=&r"(x), [a0] "=&Te"(a0),
        [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
      : [p] "r"(patch), [n] "r"(n), [end] "r"(l.end), [rest] "r"(rest), [twice] "r"(l.twice),
        [offs] "w"(l.offs), [lo] "w"(l.lo), [hi] "w"(l.hi), [off] "w"(l.off)
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
// the one run runs[0].
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
