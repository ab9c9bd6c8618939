// Every op: a validate function (run once by dtmm_init, before any eval) and
// an eval function that may assume everything validate checked.
#ifndef DTMM_SRC_KERNELS_KERNELS_H_
#define DTMM_SRC_KERNELS_KERNELS_H_

#include "../op_context.h"

namespace dtmm {

#define DTMM_DECLARE_OP(name)                        \
  dtmm_status validate_##name(const OpContext& ctx); \
  void eval_##name(const OpContext& ctx);

DTMM_DECLARE_OP(conv2d)
DTMM_DECLARE_OP(depthwise_conv2d)
DTMM_DECLARE_OP(fully_connected)
DTMM_DECLARE_OP(add)
DTMM_DECLARE_OP(mul)
DTMM_DECLARE_OP(average_pool2d)
DTMM_DECLARE_OP(max_pool2d)
DTMM_DECLARE_OP(mean)
DTMM_DECLARE_OP(pad)
DTMM_DECLARE_OP(concatenation)
DTMM_DECLARE_OP(reshape)
DTMM_DECLARE_OP(softmax)
DTMM_DECLARE_OP(logistic)
DTMM_DECLARE_OP(quantize)
DTMM_DECLARE_OP(dequantize)
DTMM_DECLARE_OP(conv2d_fwcs)
DTMM_DECLARE_OP(fully_connected_block)
DTMM_DECLARE_OP(conv2d_csr)
DTMM_DECLARE_OP(fully_connected_csr)

#undef DTMM_DECLARE_OP

// Checks shared by the int8 ops.
inline bool is_int8(const dtmm_tensor_record& t) {
  return t.dtype == DTMM_INT8;
}
inline bool valid_zero_point(int32_t zp) {
  return zp >= -128 && zp <= 127;
}
// A per-channel (multiplier, shift) table of n entries at a blob offset.
bool valid_quant_table(const OpContext& ctx, uint32_t offset, uint32_t n);

// Largest conv reduction length KH * KW * C_in (see conv2d.cc for why).
constexpr int64_t kMaxConvReduction = 65536;

// The reference loop of CONV_2D (grouped: filters over fc input channels)
// and DEPTHWISE_CONV_2D (depthwise: one input channel per filter).
void conv_reference(const OpContext& ctx, bool depthwise);

// Checks every conv variant shares: input/output shapes for a filter of
// [oc, kh, kw, fc], the bias at input `bias_input` if present, the params
// (for a depthwise conv, fc 1 and depth_multiplier = oc / C_in).
dtmm_status check_conv_geometry(const OpContext& ctx, const dtmm_conv_params& p, int32_t oc,
                                int32_t kh, int32_t kw, int32_t fc, uint32_t bias_input,
                                bool depthwise = false);

// Checks a fully connected op shares: input/output shapes for [units, depth]
// weights, the bias at input `bias_input` if present, the params.
dtmm_status check_fc_geometry(const OpContext& ctx, const dtmm_fc_params& p, int32_t units,
                              int32_t depth, uint32_t bias_input);

// Sparse values (int8 [kept, width]) and their bitmask over `units` units:
// types, sizes, popcount == kept, no bits past the last unit.
dtmm_status check_masked_values(const OpContext& ctx, uint32_t values_input, uint32_t mask_input,
                                uint64_t units, int32_t width);

inline int popcount8(uint8_t v) {
  int n = 0;
  for (; v; v &= static_cast<uint8_t>(v - 1)) ++n;
  return n;
}

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_KERNELS_H_
