// Helium convolution by output row segments, for C_in a multiple of 16: the
// device path of CONV_2D and CONV_2D_FWCS (cpp/runtime/src/kernels/conv_runs.cc)
// for such layers.
//
// The pixel-group loop (conv_runs_helium.h) pays, per filter and group of
// four pixels, a head, a requantization and, per run, a decode, and reloads
// each weight vector per group: fixed costs that a pruned filterlet cannot
// remove. Here a filter's kept 16-byte weight blocks are loaded into
// registers once per segment (whole output rows, or part of a wide one: up
// to kStreamGroups groups of four pixels), and the segment's pixels stream
// past them: per block and four pixels, four loads and four VMLADAVA. The
// sums go to a row of int32 (a filter with more than four blocks takes
// several passes that add into it), and one tail-predicated loop
// requantizes the row.
//
// The segment's input is first copied into a strip laid out so that every
// block of every pixel is 16 bytes from the next pixel's, whatever the
// stride and C_in: each channel block v and column phase (column mod
// stride) is a plane, whose slots are the input rows under the segment, each
// `entries` 16-byte entries long. Block v of input column j in row slot t
// is at entry j / stride of slot t of plane (v, j mod stride), so pixel q
// of the segment's output row r finds its tap (ky, kx) at entry
// q + kx / stride of slot r * pitch + ky of plane (v, kx mod stride).
// Padding is written into the strip as the input zero point, which the
// folded bias cancels. The strip and the sums live on the stack (a 6.7 KB
// frame with the block tables), as the pixel-group loop's 4 KB patch does.
// 5 KB holds four output rows of a stride-2 layer over 16 channels and 32
// columns, so its segments' fixed costs are paid four times, not six.
#ifndef DTMM_KERNELS_HELIUM_CONV_STREAM_HELIUM_H_
#define DTMM_KERNELS_HELIUM_CONV_STREAM_HELIUM_H_

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/src/kernels/conv_runs.h"
#include "conv_runs_helium.h"

namespace dtmm {
namespace helium {

constexpr int32_t kStripBytes = 5120;
// Groups of four pixels per segment: the int32 sums hold 4x as many.
constexpr int32_t kStreamGroups = 64;
// Weight blocks of one filter: kRunConvMaxWindow / 16.
constexpr int32_t kStreamBlocks = kRunConvMaxWindow / 16;

// The strip of a segment: `rows` output rows of up to 4 * `groups` pixels.
// Each plane (channel block, column phase) holds `slots` input rows of
// `entries` 16-byte entries; output row r's window row ky is slot
// r * pitch + ky, so rows shared by neighbouring output rows (stride below
// the kernel height) are copied once. An unpadded 1x1 layer's strip is
// flat: its rows of ow entries follow each other, and the group loop runs
// through them as one row (the last group's spare lanes read up to 3
// entries on, into the next plane or the strip's spare bytes).
struct Strip {
  int32_t planes, pitch, slots, entries, groups, rows;
  bool flat;
  int32_t plane_bytes() const { return slots * entries * 16; }
  int32_t bytes() const { return planes * plane_bytes(); }
  // Plane bytes between output rows, past a row's 4 * groups entries.
  int32_t bump() const { return 16 * (pitch * entries - 4 * groups); }
};

inline Strip strip_for(const RunConv& c, int32_t groups, int32_t rows) {
  const int32_t phases = c.stride_w < c.kw ? c.stride_w : c.kw;
  const int32_t pitch = c.stride_h < c.kh ? c.stride_h : c.kh;
  const bool flat = c.kh == 1 && c.kw == 1 && c.pad_h == 0 && c.pad_w == 0;
  const int32_t entries = flat && rows > 1 ? c.ow : 4 * groups + (c.kw - 1) / c.stride_w;
  return Strip{phases * (c.ic >> 4), pitch, (rows - 1) * pitch + c.kh, entries, groups, rows, flat};
}

// Whole output rows, as many as fit, or else the widest part of one row
// that fits; groups 0 when not even one group does.
__attribute__((noinline)) inline Strip strip_shape(const RunConv& c) {
  // One row of g groups takes planes * kh * (4 * g + reach) entries.
  const Strip one = strip_for(c, 0, 1);
  const int32_t row_groups = (c.ow + 3) >> 2, entries = kStripBytes / 16 / one.planes;
  int32_t groups = (entries / c.kh - one.entries) >> 2;
  if (groups > row_groups) groups = row_groups;
  if (groups > kStreamGroups) groups = kStreamGroups;
  if (groups <= 0) return strip_for(c, 0, 1);
  int32_t rows = 1;
  if (groups == row_groups) {
    // Rows of ow entries (flat), or of 4 * groups + reach entries in
    // (rows - 1) * pitch + kh slots.
    const Strip two = strip_for(c, groups, 2);
    rows = one.flat ? entries / c.ow : (entries / two.entries - c.kh) / two.pitch + 1;
    if (rows > c.oh) rows = c.oh;
    if (rows > kStreamGroups / groups) rows = kStreamGroups / groups;
    if (rows < 1) rows = 1;
  }
  return strip_for(c, groups, rows);
}

// n 16-byte entries from src, `step` bytes apart, to dst; returns the next.
__attribute__((always_inline)) inline int8_t* copy_entries(int8_t* dst, const int8_t* src,
                                                           int32_t step, int32_t n) {
  __asm__ volatile(
      "   wls     lr, %[n], 2f\n"
      "1: vldrb.8 q0, [%[s]]\n"
      "   add     %[s], %[s], %[step]\n"
      "   vstrb.8 q0, [%[d]], #16\n"
      "   le      lr, 1b\n"
      "2:\n"
      : [d] "+r"(dst), [s] "+r"(src)
      : [n] "r"(n), [step] "r"(step)
      : "q0", "lr", "memory");
  return dst;
}

// The first of `entries` entries at columns x, x + stride, ... that is at
// or past `bound` (entries if none).
inline int32_t entries_before(int32_t x, int32_t bound, int32_t stride, int32_t entries) {
  if (x >= bound) return 0;
  const int32_t i = (bound - x + stride - 1) / stride;
  return i < entries ? i : entries;
}

// The strip of the segment of `image` whose first window row is y0 and
// first window column x0, plane by plane; outside the image, the input zero
// point.
inline void fill_strip(const RunConv& c, const Strip& s, const int8_t* image, int32_t y0,
                       int32_t x0, int8_t* strip) {
  const int8x16_t pad = vdupq_n_s8(c.pad_value);
  const int32_t phases = s.planes / (c.ic >> 4), step = c.stride_w * c.ic;
  for (int32_t plane = 0; plane < s.planes; ++plane) {
    const int32_t v = plane / phases, x = x0 + plane % phases;
    const int32_t lo = entries_before(x, 0, c.stride_w, s.entries);
    const int32_t hi = entries_before(x, c.iw, c.stride_w, s.entries);
    int8_t* d = strip + plane * s.plane_bytes();
    for (int32_t slot = 0; slot < s.slots; ++slot) {
      const int32_t iy = y0 + slot / s.pitch * c.stride_h + slot % s.pitch;
      if (iy < 0 || iy >= c.ih) {
        d = fill_entries(d, pad, s.entries);
        continue;
      }
      d = fill_entries(d, pad, lo);
      const int8_t* src =
          image + (static_cast<ptrdiff_t>(iy) * c.iw + x + lo * c.stride_w) * c.ic + 16 * v;
      d = copy_entries(d, src, step, hi - lo);
      d = fill_entries(d, pad, s.entries - hi);
    }
  }
}

// One block against the four pixels of a group: four loads from its plane
// pointer P, which so advances a group, and four dot products with the
// weights W. OP is vmladav for a filter's first block, else vmladava.
// clang-format off
#define DTMM_STREAM_BLOCK(OP, P, W)         \
  "   vldrb.8 q4, [%[" P "]], #16\n"        \
  "   " OP ".s8 %[a0], q4, %q[" W "]\n"     \
  "   vldrb.8 q4, [%[" P "]], #16\n"        \
  "   " OP ".s8 %[a1], q4, %q[" W "]\n"     \
  "   vldrb.8 q4, [%[" P "]], #16\n"        \
  "   " OP ".s8 %[a2], q4, %q[" W "]\n"     \
  "   vldrb.8 q4, [%[" P "]], #16\n"        \
  "   " OP ".s8 %[a3], q4, %q[" W "]\n"
// clang-format on
// The row loop around the group loop: `rn` holds the groups of a row in its
// low half and the rows left after this one in its high half (one register
// for both).
#define DTMM_STREAM_LOOP    \
  "0: uxth    lr, %[rn]\n"  \
  "   wls     lr, lr, 2f\n" \
  "1:\n"
#define DTMM_STREAM_STORE                 \
  "   strd    %[a0], %[a1], [%[s]], #8\n" \
  "   strd    %[a2], %[a3], [%[s]], #8\n" \
  "   le      lr, 1b\n"                   \
  "2:\n"
#define DTMM_STREAM_BUMP(P) "   add     %[" P "], %[" P "], %[bump]\n"
#define DTMM_STREAM_NEXT_ROW          \
  "   subs    %[rn], %[rn], #65536\n" \
  "   bcs     0b\n"
#define DTMM_STREAM_PASS(BODY)                                                                     \
  __asm__ volatile(                                                                                \
      BODY                                                                                         \
      : [s] "+r"(sums), [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [rn] "+r"(rn), \
        [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)                         \
      : [bump] "r"(g.bump), [w0] "w"(w0), [w1] "w"(w1), [w2] "w"(w2), [w3] "w"(w3)                 \
      : "q4", "lr", "memory", "cc")

// A segment's loop counts (groups of a row in the low half, rows after the
// first in the high half: the asm's `rn`) and the plane bytes between its rows.
struct Segment {
  Segment(int32_t groups, int32_t rows, int32_t bump_)
      : loops(groups | (rows - 1) << 16), bump(bump_) {}
  int32_t loops, bump;
};

// A filter's first kBlocks (1 to 4) blocks (weights at w, block indices at
// b, which advance past them; `at` the blocks' plane pointers) against the
// segment: the sums of their products, written to `sums`.
template <int kBlocks>
__attribute__((always_inline)) inline void stream_first(const int8_t*& w, const uint8_t*& b,
                                                        const int8_t* const* at, int32_t* sums,
                                                        const Segment& g) {
  const int8_t *p0 = at[b[0]], *p1 = at[b[kBlocks > 1]], *p2 = at[b[kBlocks > 2 ? 2 : 0]],
               *p3 = at[b[kBlocks > 3 ? 3 : 0]];
  const int8x16_t w0 = vldrbq_s8(w), w1 = vldrbq_s8(w + (kBlocks > 1 ? 16 : 0)),
                  w2 = vldrbq_s8(w + (kBlocks > 2 ? 32 : 0)),
                  w3 = vldrbq_s8(w + (kBlocks > 3 ? 48 : 0));
  w += 16 * kBlocks;
  b += kBlocks;
  int32_t rn = g.loops, a0, a1, a2, a3;
  if constexpr (kBlocks == 1) {
    DTMM_STREAM_PASS(DTMM_STREAM_LOOP DTMM_STREAM_BLOCK("vmladav", "p0", "w0")
                         DTMM_STREAM_STORE DTMM_STREAM_BUMP("p0") DTMM_STREAM_NEXT_ROW);
  } else if constexpr (kBlocks == 2) {
    DTMM_STREAM_PASS(DTMM_STREAM_LOOP DTMM_STREAM_BLOCK("vmladav", "p0", "w0") DTMM_STREAM_BLOCK(
        "vmladava", "p1", "w1") DTMM_STREAM_STORE DTMM_STREAM_BUMP("p0") DTMM_STREAM_BUMP("p1")
                         DTMM_STREAM_NEXT_ROW);
  } else if constexpr (kBlocks == 3) {
    DTMM_STREAM_PASS(DTMM_STREAM_LOOP DTMM_STREAM_BLOCK("vmladav", "p0", "w0") DTMM_STREAM_BLOCK(
        "vmladava", "p1", "w1") DTMM_STREAM_BLOCK("vmladava", "p2", "w2")
                         DTMM_STREAM_STORE DTMM_STREAM_BUMP("p0") DTMM_STREAM_BUMP("p1")
                             DTMM_STREAM_BUMP("p2") DTMM_STREAM_NEXT_ROW);
  } else {
    DTMM_STREAM_PASS(
        DTMM_STREAM_LOOP DTMM_STREAM_BLOCK("vmladav", "p0", "w0")
            DTMM_STREAM_BLOCK("vmladava", "p1", "w1") DTMM_STREAM_BLOCK("vmladava", "p2", "w2")
                DTMM_STREAM_BLOCK("vmladava", "p3", "w3") DTMM_STREAM_STORE DTMM_STREAM_BUMP("p0")
                    DTMM_STREAM_BUMP("p1") DTMM_STREAM_BUMP("p2") DTMM_STREAM_BUMP("p3")
                        DTMM_STREAM_NEXT_ROW);
  }
}

// Four more blocks of the filter, added to the sums.
__attribute__((always_inline)) inline void stream_more(const int8_t*& w, const uint8_t*& b,
                                                       const int8_t* const* at, int32_t* sums,
                                                       const Segment& g) {
  const int8_t *p0 = at[b[0]], *p1 = at[b[1]], *p2 = at[b[2]], *p3 = at[b[3]];
  const int8x16_t w0 = vldrbq_s8(w), w1 = vldrbq_s8(w + 16), w2 = vldrbq_s8(w + 32),
                  w3 = vldrbq_s8(w + 48);
  w += 64;
  b += 4;
  int32_t rn = g.loops, a0, a1, a2, a3;
  DTMM_STREAM_PASS(DTMM_STREAM_LOOP
                   "   ldrd    %[a0], %[a1], [%[s]]\n"
                   "   ldrd    %[a2], %[a3], [%[s], #8]\n" DTMM_STREAM_BLOCK("vmladava", "p0", "w0")
                       DTMM_STREAM_BLOCK("vmladava", "p1", "w1") DTMM_STREAM_BLOCK(
                           "vmladava", "p2", "w2") DTMM_STREAM_BLOCK("vmladava", "p3", "w3")
                           DTMM_STREAM_STORE DTMM_STREAM_BUMP("p0") DTMM_STREAM_BUMP("p1")
                               DTMM_STREAM_BUMP("p2") DTMM_STREAM_BUMP("p3") DTMM_STREAM_NEXT_ROW);
}

#undef DTMM_STREAM_BLOCK
#undef DTMM_STREAM_LOOP
#undef DTMM_STREAM_STORE
#undef DTMM_STREAM_BUMP
#undef DTMM_STREAM_NEXT_ROW
#undef DTMM_STREAM_PASS

// A filter's k (> 0) blocks, listed at b: the odd ones first, then four at a
// time. Inlined into its one caller: as a call it cost about 15 instructions
// per filter and segment in arguments and spills.
__attribute__((always_inline)) inline void stream_filter(const int8_t*& w, const uint8_t* b,
                                                         int32_t k, const int8_t* const* at,
                                                         int32_t* sums, const Segment& g) {
  // Unsigned: k > 0, and GCC's code for a signed % and / cost 9 more.
  const uint32_t rest = static_cast<uint32_t>(k) - 1;
  switch (rest & 3) {
    case 0: stream_first<1>(w, b, at, sums, g); break;
    case 1: stream_first<2>(w, b, at, sums, g); break;
    case 2: stream_first<3>(w, b, at, sums, g); break;
    default: stream_first<4>(w, b, at, sums, g); break;
  }
  for (uint32_t more = rest >> 2; more > 0; --more) stream_more(w, b, at, sums, g);
}

// n sums of c's filter with head h to output bytes at out (its channel of
// the first pixel), `out_channels` apart: the requantization of
// requantize_lanes with a shift of at most 0, in a tail-predicated loop.
inline void requantize_sums(const RunConv& c, const FilterHead& h, const int32_t* sums, int32_t n,
                            int8_t* out) {
  const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), static_cast<uint32_t>(c.out_channels));
  __asm__ volatile(
      "   wlstp.32 lr, %[n], 2f\n"
      "1: vldrw.32 q0, [%[s]], #16\n"
      "   vadd.i32 q0, q0, %[bias]\n" DTMM_REQUANTIZE_Q0_STORE("mult", "shift", "sign")
      "   add     %[o], %[o], %[next]\n"
      "   letp    lr, 1b\n"
      "2:\n"
      : [s] "+r"(sums), [o] "+r"(out)
      : [n] "r"(n), [bias] "r"(h.bias), [mult] "r"(h.multiplier), [shift] "r"(h.shift),
        [sign] "r"(h.shift >> 31), [next] "r"(4 * c.out_channels), [offs] "w"(offs),
        [lo] "w"(vdupq_n_s32(c.act_min)), [hi] "w"(vdupq_n_s32(c.act_max)),
        [off] "w"(vdupq_n_s32(c.output_offset))
      : "q0", "q1", "lr", "memory");
}

#undef DTMM_REQUANTIZE_Q0_STORE

// The strip stream_rows takes c in, or one of 0 groups where it does not
// serve c: whole blocks, no left shift, and at least one group within
// kStripBytes.
inline Strip stream_shape(const RunConv& c) {
  if (c.ic % 16 != 0 || !c.shifts.nonpositive) return Strip{};
  return strip_shape(c);
}

// The convolution of c's filters (dense, or as block lists: RunConv::blocks),
// segment by segment, in strips of `shape` (stream_shape(c)).
inline void stream_rows(const RunConv& c, const Strip& shape) {
  const int32_t per_tap = c.ic >> 4, blocks = c.kh * c.kw * per_tap;
  const int32_t phases = shape.planes / per_tap;
  alignas(16) int8_t strip[kStripBytes + 48];
  alignas(16) int32_t sums[4 * kStreamGroups];
  // Where each window block of a segment's first pixel lies in the strip,
  // and a dense filter's block list.
  const int8_t* at[kStreamBlocks];
  uint8_t every[kStreamBlocks];
  const int32_t plane_bytes = shape.plane_bytes();
  for (int32_t b = 0; b < blocks; ++b) {
    const int32_t tap = b / per_tap, ky = tap / c.kw, kx = tap % c.kw;
    const int32_t plane = b % per_tap * phases + kx % c.stride_w;
    at[b] = strip + plane * plane_bytes + 16 * (ky * shape.entries + kx / c.stride_w);
    every[b] = static_cast<uint8_t>(b);
  }
  for (int32_t b = 0; b < c.batches; ++b) {
    const int8_t* image = c.input + static_cast<ptrdiff_t>(b) * c.ih * c.iw * c.ic;
    for (int32_t oy = 0; oy < c.oh; oy += shape.rows) {
      const int32_t rows = c.oh - oy < shape.rows ? c.oh - oy : shape.rows;
      for (int32_t x = 0; x < c.ow; x += 4 * shape.groups) {
        // n pixels of each of the segment's rows, from column x; a flat
        // strip holds them all in one row.
        const int32_t n = c.ow - x < 4 * shape.groups ? c.ow - x : 4 * shape.groups;
        const Segment seg = shape.flat ? Segment{(rows * n + 3) >> 2, 1, 0}
                                       : Segment{(n + 3) >> 2, rows, shape.bump()};
        int8_t* out =
            c.output + ((static_cast<ptrdiff_t>(b) * c.oh + oy) * c.ow + x) * c.out_channels;
        // The segment's outputs follow each other: whole rows or part of one.
        const int32_t pixels = rows * n, row_sums = 4 * ((n + 3) >> 2);
        const int32_t per_call = shape.flat || n == row_sums ? pixels : n;
        if (c.constants) store_constants(c, pixels, out);
        if (c.filters == 0) continue;
        fill_strip(c, shape, image, oy * c.stride_h - c.pad_h, x * c.stride_w - c.pad_w, strip);
        const int8_t* w = c.values;
        const uint8_t* list = c.blocks;
        int32_t oc = c.oc_begin - 1;
        // Locals: every asm statement clobbers memory, and c's fields were
        // loaded again for each filter.
        const FilterHead* const end = c.heads + c.filters;
        const bool dense = c.dense;
        for (const FilterHead* h = c.heads; h < end; ++h) {
          oc += h->step;
          const int32_t k = dense ? blocks : h->runs;
          stream_filter(w, dense ? every : list, k, at, sums, seg);
          list += k;
          // The sums of a row fill whole groups: when its outputs do not,
          // each row is requantized apart.
          if (per_call == pixels) {
            requantize_sums(c, *h, sums, pixels, out + oc);
            continue;
          }
          for (int32_t done = 0, r = 0; done < pixels; done += per_call, ++r)
            requantize_sums(c, *h, sums + r * row_sums, per_call, out + done * c.out_channels + oc);
        }
      }
    }
  }
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_CONV_STREAM_HELIUM_H_
