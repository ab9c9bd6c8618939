// CONV_2D_FWCS: convolution over filterlet-sparse weights (format.h). Only
// kept filterlets are visited; each is a C_in-long dot product with the input
// pixel under its tap. Same semantics and bits as CONV_2D on the same weights
// with the pruned filterlets stored as zeros.
#include <string.h>

#include "../fixedpoint.h"
#include "conv_planar.h"
#include "conv_runs.h"
#include "kernels.h"

namespace dtmm {

dtmm_status validate_conv2d_fwcs(const OpContext& ctx) {
  if (ctx.num_inputs() != 3 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const dtmm_status s =
      check_conv_geometry(ctx, p.conv, p.out_channels, p.kernel_h, p.kernel_w, p.in_channels, 3);
  if (s != DTMM_OK) return s;
  if (ctx.in(0).dims[3] != p.in_channels || p.conv.dilation_h < 1) return DTMM_ERR_BAD_PARAMS;
  const uint64_t filterlets = uint64_t{static_cast<uint32_t>(p.out_channels)} *
                              static_cast<uint32_t>(p.kernel_h) * static_cast<uint32_t>(p.kernel_w);
  return check_masked_values(ctx, 1, 2, filterlets, p.in_channels);
}

// Reference loop: per output pixel, per filter, walk the filter's mask bits;
// a kept tap inside the input adds (x + input_offset) . values row. The op
// stores no bias: it is recovered exactly (modulo 2^32, as it accumulates)
// from the folded bias minus input_offset times the filter's weight sum.
static void fwcs_reference(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* folded = ctx.blob_i32(c.folded_bias_offset);
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + p.out_channels;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = p.in_channels;
  const int32_t oh = out.dims[1], ow = out.dims[2];
  const int32_t taps = p.kernel_h * p.kernel_w;
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t y0 = oy * c.stride_h - c.pad_h, x0 = ox * c.stride_w - c.pad_w;
        const int8_t* v = values;
        uint32_t bit = 0;
        for (int32_t oc = 0; oc < p.out_channels; ++oc) {
          int32_t acc = 0, weight_sum = 0;
          for (int32_t t = 0; t < taps; ++t, ++bit) {
            if (!(mask[bit >> 3] & (1u << (bit & 7)))) continue;
            for (int32_t i = 0; i < ic; ++i) weight_sum += v[i];
            const int32_t iy = y0 + (t / p.kernel_w) * c.dilation_h;
            const int32_t ix = x0 + (t % p.kernel_w) * c.dilation_w;
            if (iy >= 0 && iy < ih && ix >= 0 && ix < iw) {
              const int8_t* px = x + ((int64_t{b} * ih + iy) * iw + ix) * ic;
              for (int32_t i = 0; i < ic; ++i) acc += (px[i] + c.input_offset) * v[i];
            }
            v += ic;
          }
          const uint32_t bias =
              static_cast<uint32_t>(folded[oc]) -
              static_cast<uint32_t>(c.input_offset) * static_cast<uint32_t>(weight_sum);
          acc = fx::add(acc, static_cast<int32_t>(bias));
          acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + c.output_offset;
          y[((int64_t{b} * oh + oy) * ow + ox) * p.out_channels + oc] =
              static_cast<int8_t>(clamp_i32(acc, c.act_min, c.act_max));
        }
      }
    }
  }
}

// Device path (dilation 1): the mask decoded into runs of consecutive kept
// taps (conv_runs.h), for as many filters at a time as the run table holds
// (all of a chunk's 3x3 filters, however their taps alternate).
namespace {
constexpr int32_t kMaxRuns = 5 * kRunConvChunk;
}  // namespace

// Reads the mask in order, up to 25 bits at a time, first tap in bit 0. It
// keeps the bits of the byte last read, so a filter's taps cost a shift and
// a mask, and it reads no byte past the last bit taken.
class MaskReader {
 public:
  explicit MaskReader(const uint8_t* mask) : byte_(mask) {}
  uint32_t take(int32_t n) {
    // A byte at a time, and the first apart: GCC makes a counted loop of
    // the whole, whose set-up costs more than the one or two bytes a 3x3 or
    // 1x1 filter needs.
    if (have_ < n) {
      bits_ |= uint32_t{*byte_++} << have_;
      have_ += 8;
      while (have_ < n) {
        bits_ |= uint32_t{*byte_++} << have_;
        have_ += 8;
      }
    }
    const uint32_t m = bits_ & ((1u << n) - 1);
    bits_ >>= n;
    have_ -= n;
    return m;
  }

 private:
  const uint8_t* byte_;
  uint32_t bits_ = 0;  // the next have_ bits
  int32_t have_ = 0;
};

// Appends the runs of one filter's taps to runs[n...]. Up to 5x5 taps, each
// stretch of set bits is found with count-trailing-zeros (the bitwise decode
// was a twentieth of a sparse 3x3 layer's instructions on the M55); larger
// windows go bit by bit. Offsets and lengths count bytes. Returns the new n
// and advances `values` past the kept taps.
static int32_t filter_runs(MaskReader& mask, int32_t taps, int32_t ic, ConvRun* runs, int32_t n,
                           const int8_t*& values) {
  if (taps <= 25) {
    for (uint32_t m = mask.take(taps); m != 0;) {
      const int32_t start = __builtin_ctz(m);
      const int32_t len = __builtin_ctz(~(m >> start));
      m &= m + (m & (0u - m));  // clears the lowest run of set bits
      runs[n++] = ConvRun{static_cast<uint16_t>(start * ic), static_cast<uint16_t>(len * ic)};
      values += len * ic;
    }
  } else {
    bool extend = false;
    for (int32_t t = 0; t < taps; ++t) {
      const bool kept = mask.take(1) != 0;
      if (kept && extend) {
        runs[n - 1].length = static_cast<uint16_t>(runs[n - 1].length + ic);
      } else if (kept) {
        runs[n++] = ConvRun{static_cast<uint16_t>(t * ic), static_cast<uint16_t>(ic)};
      }
      if (kept) values += ic;
      extend = kept;
    }
  }
  return n;
}

// The block lists of the chunk's filters (builder's), for the Helium row
// loop, which would otherwise expand runs into blocks at every segment: the
// indices of each filter's kept 16-byte blocks (per_tap of each kept tap),
// one after another at `blocks`. The kept taps of each 24 are found with
// count-trailing-zeros; a tap's indices are written four to a word (up to 3
// bytes past the last are written too). Returns the bytes of weights the
// kept blocks hold.
static int32_t chunk_blocks(MaskReader& mask, int32_t taps, int32_t per_tap, int32_t begin,
                            int32_t end, HeadBuilder& builder, uint8_t* blocks) {
  uint32_t step = static_cast<uint32_t>(per_tap) * 0x01010101u;
  // (kept in a register: GCC would otherwise multiply by per_tap and spread
  // the product by shifts at every tap)
  __asm__("" : "+r"(step));
  // Taps [base, base + n) of the next filter, n <= 24.
  const auto add_taps = [&](uint8_t* next, int32_t base, int32_t n) {
    // little-endian: indices b, b + 1, b + 2, b + 3 of tap `base`'s first block b
    const uint32_t word0 = static_cast<uint32_t>(base) * step + 0x03020100u;
    uint32_t m = mask.take(n);
    for (; m != 0 && per_tap <= 4; m &= m - 1, next += per_tap) {
      const uint32_t word = word0 + static_cast<uint32_t>(__builtin_ctz(m)) * step;
      memcpy(next, &word, 4);
    }
    for (; m != 0; m &= m - 1, next += per_tap) {
      const uint32_t word = word0 + static_cast<uint32_t>(__builtin_ctz(m)) * step;
      for (int32_t v = 0; v < per_tap; v += 4) {
        const uint32_t more = word + static_cast<uint32_t>(v) * 0x01010101u;
        memcpy(next + v, &more, 4);
      }
    }
    return next;
  };
  uint8_t* next = blocks;
  for (int32_t oc = begin; oc < end; ++oc) {
    uint8_t* const first = next;
    if (taps <= 24) {
      next = add_taps(next, 0, taps);
    } else {
      for (int32_t base = 0; base < taps; base += 24)
        next = add_taps(next, base, taps - base < 24 ? taps - base : 24);
    }
    builder.add(oc, static_cast<int32_t>(next - first));
  }
  return 16 * static_cast<int32_t>(next - blocks);
}

// Not vectorized: chunk_blocks's few words per filter would pay a vector
// loop's set-up each.
__attribute__((optimize("no-tree-vectorize"))) static bool fwcs_runs(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fwcs_conv_params>();
  const int32_t kh = p.kernel_h, kw = p.kernel_w, taps = kh * kw, ic = p.in_channels;
  const int32_t oc_count = p.out_channels;
  const int32_t most_runs = (taps + 1) / 2;  // of one filter: kept and pruned taps alternate
  if (!conv_runs_fits(kh, kw, ic, p.conv.pad_h, p.conv.pad_w) || most_runs > kMaxRuns) return false;
  int32_t chunk = kMaxRuns / most_runs < kRunConvChunk ? kMaxRuns / most_runs : kRunConvChunk;
  ConvRun runs[kMaxRuns];
#if defined(__ARM_FEATURE_MVE)
  // Block lists (reads_block_lists: Helium only) share the run table: a
  // chunk's filters must fit in it whole, with the 3 bytes filter_blocks may
  // write past them.
  const int32_t window_blocks = taps * ic / 16, room = static_cast<int32_t>(sizeof(runs)) - 3;
  if (ic % 16 == 0 && taps > 1 && window_blocks * chunk > room) chunk = room / window_blocks;
#endif
  RunConv c = run_conv_for(ctx, p.conv, kh, kw, oc_count);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  FilterHead heads[kRunConvChunk];
  int8_t constants[kRunConvChunk];
  c.runs = runs;
  uint8_t* const blocks = reinterpret_cast<uint8_t*>(runs);
  c.blocks = blocks;
  // A 1x1 filter is whole or empty: the dense loop serves it with the one
  // run {0, C_in}, and its mask bit is all there is to decode.
  c.dense = taps == 1;
  runs[0] = ConvRun{0, static_cast<uint16_t>(ic)};
  MaskReader reader(mask);
  for (int32_t begin = 0; begin < oc_count; begin += chunk) {
    HeadBuilder builder(c, begin, oc_count - begin < chunk ? oc_count : begin + chunk, heads,
                        constants);
    c.values = values;
#if defined(__ARM_FEATURE_MVE)
    const bool by_block = reads_block_lists(c);
#else
    constexpr bool by_block = false;  // (so chunk_blocks is not built)
#endif
    if (by_block && !c.dense) {
      values += chunk_blocks(reader, taps, ic / 16, begin, c.oc_end, builder, blocks);
      conv_runs(c);
      continue;
    }
    int32_t n = 0;
    for (int32_t oc = begin; oc < c.oc_end; ++oc) {
      if (c.dense) {
        const int32_t kept = static_cast<int32_t>(reader.take(1));
        values += kept * ic;
        builder.add(oc, kept);
        continue;
      }
      const int32_t first = n;
      n = filter_runs(reader, taps, ic, runs, n, values);
      builder.add(oc, n - first);
    }
    conv_runs(c);
  }
  return true;
}

void eval_conv2d_fwcs(const OpContext& ctx) {
  const auto& c = ctx.p<dtmm_fwcs_conv_params>().conv;
  if (ctx.model->reference_kernels || c.dilation_h != 1 || c.dilation_w != 1 ||
      (!conv_planar_fwcs(ctx) && !fwcs_runs(ctx)))
    fwcs_reference(ctx);
}

}  // namespace dtmm
