// Checks several kernels share.
#include "kernels.h"

namespace dtmm {

bool valid_quant_table(const OpContext& ctx, uint32_t offset, uint32_t n) {
  if (n == 0 || !ctx.blob_array_ok(offset, uint64_t{8} * n)) return false;
  const int32_t* mult = ctx.blob_i32(offset);
  for (uint32_t i = 0; i < n; ++i)
    if (!valid_multiplier(mult[i]) || !valid_shift(mult[n + i])) return false;
  return true;
}

dtmm_status check_masked_values(const OpContext& ctx, uint32_t values_input, uint32_t mask_input,
                                uint64_t units, int32_t width) {
  const auto& values = ctx.in(values_input);
  const auto& mask = ctx.in(mask_input);
  if (values.dtype != DTMM_INT8 || values.storage != DTMM_STORAGE_CONST || values.rank != 2 ||
      values.dims[1] != width || mask.dtype != DTMM_UINT8 || mask.storage != DTMM_STORAGE_CONST ||
      mask.size != (units + 7) / 8)
    return DTMM_ERR_BAD_PARAMS;
  // The mask must count exactly the stored units, with no stray bits.
  const uint8_t* m = ctx.in_data<uint8_t>(mask_input);
  uint64_t kept = 0;
  for (uint32_t i = 0; i < mask.size; ++i) kept += static_cast<uint64_t>(popcount8(m[i]));
  if (units % 8 && (m[mask.size - 1] >> (units % 8)) != 0) return DTMM_ERR_BAD_PARAMS;
  if (kept != static_cast<uint64_t>(values.dims[0])) return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

}  // namespace dtmm
