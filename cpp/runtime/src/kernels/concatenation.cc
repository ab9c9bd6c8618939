// CONCATENATION along one axis; inputs share the output's quantization, so
// this is a pure copy (TFLite requires the same for int8).
#include <string.h>

#include "kernels.h"

namespace dtmm {

static uint32_t element_size(uint32_t dtype) {
  return dtype == DTMM_INT8 ? 1u : 4u;
}

dtmm_status validate_concatenation(const OpContext& ctx) {
  if (ctx.num_inputs() < 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_concat_params>();
  if (p.axis < 0 || p.axis >= static_cast<int32_t>(out.rank)) return DTMM_ERR_BAD_PARAMS;
  int64_t total = 0;
  for (uint32_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return DTMM_ERR_BAD_PARAMS;
    const auto& in = ctx.in(i);
    if (in.dtype != out.dtype || in.rank != out.rank) return DTMM_ERR_BAD_PARAMS;
    for (uint32_t d = 0; d < out.rank; ++d)
      if (static_cast<int32_t>(d) != p.axis && in.dims[d] != out.dims[d])
        return DTMM_ERR_BAD_PARAMS;
    total += in.dims[p.axis];
  }
  if (total != out.dims[p.axis]) return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_concatenation(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_concat_params>();
  const auto& out = ctx.out();
  const uint32_t es = element_size(out.dtype);
  int64_t outer = 1, inner = es;
  for (int32_t d = 0; d < p.axis; ++d) outer *= out.dims[d];
  for (uint32_t d = static_cast<uint32_t>(p.axis) + 1; d < out.rank; ++d) inner *= out.dims[d];
  uint8_t* y = ctx.out_data<uint8_t>();
  const int64_t out_row = out.dims[p.axis] * inner;
  int64_t col = 0;
  for (uint32_t i = 0; i < ctx.num_inputs(); ++i) {
    const uint8_t* x = ctx.in_data<uint8_t>(i);
    const int64_t row = ctx.in(i).dims[p.axis] * inner;
    for (int64_t o = 0; o < outer; ++o)
      memcpy(y + o * out_row + col, x + o * row, static_cast<size_t>(row));
    col += row;
  }
}

}  // namespace dtmm
