// MEAN (int8) over any set of axes; the division by the element count is
// folded into the requantization multiplier by the builder, as TFLite does.
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

// Each sum holds at most 2^23 terms of magnitude <= 255: no int32 overflow.
constexpr uint64_t kMaxReduced = uint64_t{1} << 23;

static uint64_t reduced_count(const dtmm_tensor_record& in, uint32_t mask) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < in.rank; ++d)
    if (mask & (1u << d)) n *= static_cast<uint64_t>(in.dims[d]);
  return n;
}

dtmm_status validate_mean(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_mean_params>();
  if (!is_int8(in) || !is_int8(out) || p.axis_mask == 0 || (p.axis_mask >> in.rank) != 0)
    return DTMM_ERR_BAD_PARAMS;
  const uint64_t n = reduced_count(in, p.axis_mask);
  if (n == 0 || n > kMaxReduced || uint64_t{num_elements(out)} * n != num_elements(in))
    return DTMM_ERR_BAD_PARAMS;
  if (!valid_zero_point(p.input_zero_point) || !valid_zero_point(p.output_zero_point) ||
      !valid_multiplier(p.multiplier) || !valid_shift(p.shift))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_mean(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_mean_params>();
  const auto& in = ctx.in(0);
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  // Split the input axes into kept ones (walked by the output index) and
  // reduced ones (walked by the inner sum), with their element strides.
  int64_t kept_dims[DTMM_MAX_RANK], kept_strides[DTMM_MAX_RANK];
  int64_t red_dims[DTMM_MAX_RANK], red_strides[DTMM_MAX_RANK];
  int nk = 0, nr = 0;
  int64_t stride = 1;
  for (int d = static_cast<int>(in.rank) - 1; d >= 0; --d) {
    if (p.axis_mask & (1u << d)) {
      red_dims[nr] = in.dims[d];
      red_strides[nr++] = stride;
    } else {
      kept_dims[nk] = in.dims[d];
      kept_strides[nk++] = stride;
    }
    stride *= in.dims[d];
  }
  const int64_t n = static_cast<int64_t>(reduced_count(in, p.axis_mask));
  const int64_t outputs = num_elements(in) / static_cast<uint32_t>(n);
  int64_t kidx[DTMM_MAX_RANK] = {0};
  int64_t base = 0;
  for (int64_t o = 0; o < outputs; ++o) {
    int32_t sum = 0;
    int64_t ridx[DTMM_MAX_RANK] = {0};
    int64_t off = 0;
    for (int64_t r = 0; r < n; ++r) {
      sum += x[base + off];
      for (int k = 0; k < nr; ++k) {  // innermost reduced axis first
        off += red_strides[k];
        if (++ridx[k] < red_dims[k]) break;
        off -= red_strides[k] * red_dims[k];
        ridx[k] = 0;
      }
    }
    const int32_t centered = sum - p.input_zero_point * static_cast<int32_t>(n);
    const int32_t v =
        multiply_by_quantized_multiplier(centered, p.multiplier, p.shift) + p.output_zero_point;
    y[o] = static_cast<int8_t>(clamp_i32(v, -128, 127));
    for (int k = 0; k < nk; ++k) {
      base += kept_strides[k];
      if (++kidx[k] < kept_dims[k]) break;
      base -= kept_strides[k] * kept_dims[k];
      kidx[k] = 0;
    }
  }
}

}  // namespace dtmm
