// Convolution over weight runs, the device path of CONV_2D and CONV_2D_FWCS.
//
// A run is a stretch of a filter's flattened window (taps in (ky, kx) order,
// C_in bytes each) whose weights are stored back to back. A dense filter is
// one run over the whole window; an FWCS filter has one run per stretch of
// consecutive kept taps, so at 0% sparsity it costs what the dense filter
// costs, and each pruned filterlet removes its multiply-accumulates outright.
//
// Output pixels go four at a time: the four windows are copied into a patch
// (taps outside the input get the input zero point, which the folded bias
// cancels exactly), then every loaded weight vector serves all four. The
// portable loops read an unpadded 1x1 convolution's windows in place. On
// Helium, layers with C_in a multiple of 16 go by row segments instead
// (cpp/kernels_helium/conv_stream_helium.h): each filter's weights stay in
// registers while a segment's pixels stream past them.
#ifndef DTMM_SRC_KERNELS_CONV_RUNS_H_
#define DTMM_SRC_KERNELS_CONV_RUNS_H_

#include <stddef.h>
#include <stdint.h>

#include "../fixedpoint.h"
#include "../op_context.h"
#include "dtmm/format.h"

namespace dtmm {

struct ConvRun {
  uint16_t offset;  // first window byte
  uint16_t length;  // bytes
};

// What the inner loop needs of one filter with runs, read with two LDRDs.
// Filters without runs have no head: their constant outputs are copied in a
// row per pixel (RunConv::constants) before the heads' filters run.
struct FilterHead {
  int32_t bias;   // folded bias (bias + input_offset * weight sum)
  uint16_t step;  // output channels from the previous head's (from
                  // oc_begin - 1 for the first)
  uint16_t runs;  // runs of this filter (1 for a dense filter); its kept
                  // 16-byte blocks where reads_block_lists
  int32_t multiplier;
  int32_t shift;
};

// Filters per conv_runs call: the callers keep this many heads on the stack.
constexpr int32_t kRunConvChunk = 64;

struct RunConv {
  const int8_t* input;  // NHWC
  int32_t batches, ih, iw, ic;
  int32_t kh, kw, stride_h, stride_w, pad_h, pad_w;
  int32_t oh, ow;
  int8_t pad_value;  // the input zero point

  // Output channels [oc_begin, oc_end) of out_channels; `values` holds the
  // runs' weights of exactly those filters, filter by filter.
  int32_t oc_begin, oc_end, out_channels;
  const int8_t* values;
  const ConvRun* runs;      // the runs of those filters, filter by filter,
  bool dense;               // or (dense) runs[0] alone, for every filter
  const uint8_t* blocks;    // where reads_block_lists (and not dense), instead of
                            // runs: each filter's kept 16-byte blocks of the
                            // window, as block indices, filter by filter
  const FilterHead* heads;  // of those filters with runs (at most kRunConvChunk)
  int32_t filters;          // heads
  const int8_t* constants;  // if not null, oc_end - oc_begin bytes that hold
                            // the outputs of the filters without runs
  // No head's shift positive (negative: TFLite's two roundings; 0:
  // Rounding::kSingle's one; a layer may mix them): shifts.nonpositive, the
  // assembly loops' requantization. Left shifts take the C++ loops.
  ShiftForm shifts;

  // The op's per-channel tables (indexed by output channel), for HeadBuilder.
  const int32_t* folded_bias;  // bias + input_offset * sum of the filter's weights
  const int32_t* multiplier;
  const int32_t* shift;
  int32_t output_offset, act_min, act_max;
  int8_t* output;  // NHWC
};

// Largest window (KH * KW * C_in bytes) that conv_runs copies; four are
// copied at once, on the stack. Windows read in place may be up to 65,535.
constexpr int32_t kRunConvMaxWindow = 1024;

// Whether conv_runs handles this geometry (dilation 1 is the caller's check).
bool conv_runs_fits(int32_t kh, int32_t kw, int32_t ic, int32_t pad_h, int32_t pad_w);

void conv_runs(const RunConv& c);

// Whether conv_runs(c) takes the Helium row loop (conv_stream_helium.h),
// which reads a sparse filter's weights as a list of 16-byte blocks
// (RunConv::blocks) instead of runs (c's chunk must be set: HeadBuilder).
bool reads_block_lists(const RunConv& c);

// A RunConv for all `oc_count` filters of a conv op (input 0, output 0,
// kh x kw filters); the caller sets values and runs, and per chunk of at
// most kRunConvChunk filters the heads (HeadBuilder, set_heads).
RunConv run_conv_for(const OpContext& ctx, const dtmm_conv_params& p, int32_t kh, int32_t kw,
                     int32_t oc_count);

// Builds the heads of one chunk of c's filters, [oc_begin, oc_end), from the
// op's tables and points c at them: a filter with runs gets a head, one
// without has a constant output, which goes into `row` (c.constants) instead.
// Filters are added in increasing order.
class HeadBuilder {
 public:
  // On Helium the first filter without runs requantizes the constant outputs
  // of the chunk's every filter, four to a vector; elsewhere each its own.
#if defined(__ARM_FEATURE_MVE)
  static constexpr bool kWholeConstantRow = true;
#else
  static constexpr bool kWholeConstantRow = false;
#endif

  HeadBuilder(RunConv& c, int32_t oc_begin, int32_t oc_end, FilterHead* heads, int8_t* row);
  // Inline: the FWCS decode adds every filter at every inference.
  void add(int32_t oc, int32_t runs) {
    if (runs == 0) {
      if (!kWholeConstantRow || c_.constants == nullptr) add_constant(oc);
      return;
    }
    heads_[c_.filters++] = FilterHead{c_.folded_bias[oc], static_cast<uint16_t>(oc - last_),
                                      static_cast<uint16_t>(runs), c_.multiplier[oc], c_.shift[oc]};
    last_ = oc;
  }

 private:
  void add_constant(int32_t oc);

  RunConv& c_;
  FilterHead* heads_;
  int8_t* row_;
  int32_t last_;  // the channel of the last head
};

// Heads for a chunk of dense filters (one run each).
void set_heads(RunConv& c, int32_t oc_begin, int32_t oc_end, FilterHead* heads);

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_CONV_RUNS_H_
