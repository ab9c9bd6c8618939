// PAD / PADV2 (int8): copies the input into an output filled with pad_value.
#include <string.h>

#include "kernels.h"

namespace dtmm {

dtmm_status validate_pad(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const auto& p = ctx.p<dtmm_pad_params>();
  if (!is_int8(in) || !is_int8(out) || in.rank != out.rank || in.rank == 0 || p.pad_value < -128 ||
      p.pad_value > 127)
    return DTMM_ERR_BAD_PARAMS;
  for (uint32_t d = 0; d < in.rank; ++d) {
    if (p.before[d] < 0 || p.after[d] < 0 ||
        static_cast<int64_t>(in.dims[d]) + p.before[d] + p.after[d] != out.dims[d])
      return DTMM_ERR_BAD_PARAMS;
  }
  return DTMM_OK;
}

void eval_pad(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_pad_params>();
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  memset(y, p.pad_value, static_cast<size_t>(num_elements(out)));
  const int rank = static_cast<int>(in.rank);
  int64_t out_strides[DTMM_MAX_RANK];
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    out_strides[d] = s;
    s *= out.dims[d];
  }
  const int64_t row = in.dims[rank - 1];
  const int64_t rows = row == 0 ? 0 : num_elements(in) / static_cast<uint32_t>(row);
  int64_t idx[DTMM_MAX_RANK] = {0};
  for (int64_t r = 0; r < rows; ++r) {
    int64_t o = p.before[rank - 1];
    for (int d = 0; d < rank - 1; ++d) o += (idx[d] + p.before[d]) * out_strides[d];
    memcpy(y + o, x + r * row, static_cast<size_t>(row));
    for (int d = rank - 2; d >= 0; --d) {
      if (++idx[d] < in.dims[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace dtmm
