// RESHAPE (also SQUEEZE, EXPAND_DIMS, flatten): the memory planner aliases
// output to input, so there is usually nothing to do; otherwise a copy.
#include <string.h>

#include "kernels.h"

namespace dtmm {

dtmm_status validate_reshape(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  if (in.dtype != out.dtype || in.size != out.size || num_elements(in) != num_elements(out))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

void eval_reshape(const OpContext& ctx) {
  const uint8_t* x = ctx.in_data<uint8_t>(0);
  uint8_t* y = ctx.out_data<uint8_t>();
  if (x != y) memmove(y, x, ctx.out().size);
}

}  // namespace dtmm
