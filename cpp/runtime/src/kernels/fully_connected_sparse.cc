// FULLY_CONNECTED_BLOCK (blocks of consecutive inputs per unit, the FC
// analogue of a filterlet) and FULLY_CONNECTED_CSR (the per-weight baseline).
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

dtmm_status check_csr(const OpContext& ctx, uint32_t first, int64_t rows, int64_t row_len);

static int8_t fc_finish(const dtmm_fc_params& p, const int32_t* mult, int32_t acc, int32_t o) {
  const int32_t q = p.num_channels > 1 ? o : 0;
  acc = multiply_by_quantized_multiplier(acc, mult[q], mult[p.num_channels + q]) + p.output_offset;
  return static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
}

dtmm_status validate_fully_connected_block(const OpContext& ctx) {
  if (ctx.num_inputs() < 3 || ctx.num_inputs() > 4 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_block_fc_params>();
  dtmm_status s = check_fc_geometry(ctx, p.fc, p.units, p.depth, 3);
  if (s != DTMM_OK) return s;
  // Pruned weights must contribute nothing: symmetric weights (TFLite's int8 rule).
  if (p.block < 1 || p.block > 4096 || p.fc.filter_offset != 0) return DTMM_ERR_BAD_PARAMS;
  // depth (check_fc_geometry) and block are small: 32-bit.
  const uint32_t per_row = (static_cast<uint32_t>(p.depth) + p.block - 1) / p.block;
  return check_masked_values(
      ctx, 1, 2, static_cast<uint64_t>(per_row) * static_cast<uint32_t>(p.units), p.block);
}

void eval_fully_connected_block(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_block_fc_params>();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint8_t* mask = ctx.in_data<uint8_t>(2);
  const int32_t* bias = ctx.has_input(3) ? ctx.in_data<int32_t>(3) : nullptr;
  const int32_t* mult = ctx.blob_i32(p.fc.quant_offset);
  int8_t* y = ctx.out_data<int8_t>();
  const int64_t batches = static_cast<int64_t>(num_elements(ctx.in(0)) / p.depth);
  const int32_t per_row = (p.depth + p.block - 1) / p.block;
  for (int64_t b = 0; b < batches; ++b) {
    const int8_t* row = x + b * p.depth;
    const int8_t* v = values;
    uint32_t bit = 0;
    for (int32_t o = 0; o < p.units; ++o) {
      int32_t acc = 0;
      for (int32_t j = 0; j < per_row; ++j, ++bit) {
        if (!(mask[bit >> 3] & (1u << (bit & 7)))) continue;
        const int32_t begin = j * p.block;
        const int32_t len = p.depth - begin < p.block ? p.depth - begin : p.block;
        for (int32_t i = 0; i < len; ++i) acc += (row[begin + i] + p.fc.input_offset) * v[i];
        v += p.block;
      }
      if (bias) acc = fx::add(acc, bias[o]);
      y[b * p.units + o] = fc_finish(p.fc, mult, acc, o);
    }
  }
}

dtmm_status validate_fully_connected_csr(const OpContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 5 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_csr_fc_params>();
  dtmm_status s = check_fc_geometry(ctx, p.fc, p.units, p.depth, 4);
  if (s != DTMM_OK) return s;
  if (p.fc.filter_offset != 0) return DTMM_ERR_BAD_PARAMS;  // pruned zeros must contribute 0
  return check_csr(ctx, 1, p.units, p.depth);
}

void eval_fully_connected_csr(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_csr_fc_params>();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint16_t* cols = ctx.in_data<uint16_t>(2);
  const int32_t* row_ptr = ctx.in_data<int32_t>(3);
  const int32_t* bias = ctx.has_input(4) ? ctx.in_data<int32_t>(4) : nullptr;
  const int32_t* mult = ctx.blob_i32(p.fc.quant_offset);
  int8_t* y = ctx.out_data<int8_t>();
  const int64_t batches = static_cast<int64_t>(num_elements(ctx.in(0)) / p.depth);
  for (int64_t b = 0; b < batches; ++b) {
    const int8_t* row = x + b * p.depth;
    for (int32_t o = 0; o < p.units; ++o) {
      int32_t acc = 0;
      for (int32_t k = row_ptr[o]; k < row_ptr[o + 1]; ++k)
        acc += (row[cols[k]] + p.fc.input_offset) * values[k];
      if (bias) acc = fx::add(acc, bias[o]);
      y[b * p.units + o] = fc_finish(p.fc, mult, acc, o);
    }
  }
}

}  // namespace dtmm
