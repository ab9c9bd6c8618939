// FULLY_CONNECTED, int8: output[b, o] = sum_i (x[b, i] - zp_x) * (w[o, i] - zp_w) + bias[o].
#include "../fixedpoint.h"
#include "dot.h"
#include "kernels.h"

namespace dtmm {

// |(x - zp_x) * (w - zp_w)| <= 255 * 255 = 65,025, so up to 33,025 inputs sum
// without int32 overflow; the limit below leaves that margin.
constexpr int64_t kMaxFcDepth = 32768;

dtmm_status check_fc_geometry(const OpContext& ctx, const dtmm_fc_params& p, int32_t units,
                              int32_t depth, uint32_t bias_input) {
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  if (!is_int8(in) || !is_int8(out) || out.rank < 1) return DTMM_ERR_BAD_PARAMS;
  if (units < 1 || depth <= 0 || depth > kMaxFcDepth || num_elements(in) % depth != 0)
    return DTMM_ERR_BAD_PARAMS;
  const uint64_t batches = num_elements(in) / depth;
  if (out.dims[out.rank - 1] != units || num_elements(out) != batches * units)
    return DTMM_ERR_BAD_PARAMS;
  if (ctx.has_input(bias_input)) {
    const auto& b = ctx.in(bias_input);
    if (b.dtype != DTMM_INT32 || num_elements(b) != static_cast<uint64_t>(units))
      return DTMM_ERR_BAD_PARAMS;
  }
  if (!valid_zero_point(-p.input_offset) || !valid_zero_point(-p.filter_offset) ||
      !valid_zero_point(p.output_offset) || !valid_clamp(p.act_min, p.act_max) ||
      (p.num_channels != 1 && p.num_channels != static_cast<uint32_t>(units)))
    return DTMM_ERR_BAD_PARAMS;
  if (!valid_quant_table(ctx, p.quant_offset, p.num_channels) ||
      !ctx.blob_array_ok(p.folded_bias_offset, uint64_t{4} * static_cast<uint64_t>(units)))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

dtmm_status validate_fully_connected(const OpContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& w = ctx.in(1);
  if (!is_int8(w) || w.rank != 2 || w.storage != DTMM_STORAGE_CONST) return DTMM_ERR_BAD_PARAMS;
  return check_fc_geometry(ctx, ctx.p<dtmm_fc_params>(), w.dims[0], w.dims[1], 2);
}

void eval_fully_connected(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_fc_params>();
  const auto& w = ctx.in(1);
  const int32_t units = w.dims[0], depth = w.dims[1];
  const int64_t batches = static_cast<int64_t>(num_elements(ctx.in(0)) / depth);
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* weights = ctx.in_data<int8_t>(1);
  const int32_t* bias = ctx.has_input(2) ? ctx.in_data<int32_t>(2) : nullptr;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t* mult = ctx.blob_i32(p.quant_offset);
  const int32_t* shift = mult + p.num_channels;
  const bool per_channel = p.num_channels > 1;
  const auto finish = [&](int32_t acc, int32_t o) {
    const int32_t q = per_channel ? o : 0;
    acc = multiply_by_quantized_multiplier(acc, mult[q], shift[q]) + p.output_offset;
    return static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
  };

  if (!ctx.model->reference_kernels && p.filter_offset == 0) {
    // sum (x + off) * w == sum x * w + off * sum w: the second term is folded
    // into the bias offline, leaving plain dot products (equal modulo 2^32).
    const int32_t* folded = ctx.blob_i32(p.folded_bias_offset);
    for (int64_t b = 0; b < batches; ++b) {
      const int8_t* row = x + b * depth;
      int8_t* out = y + b * units;
      int32_t o = 0;
      for (; o + 4 <= units; o += 4) {
        int32_t acc[4] = {0, 0, 0, 0};
        const int8_t* w0 = weights + int64_t{o} * depth;
        dot4_i8(row, w0, w0 + depth, w0 + 2 * depth, w0 + 3 * depth, depth, acc);
        for (int32_t j = 0; j < 4; ++j) out[o + j] = finish(fx::add(acc[j], folded[o + j]), o + j);
      }
      for (; o < units; ++o)
        out[o] = finish(fx::add(dot_i8(row, weights + int64_t{o} * depth, depth), folded[o]), o);
    }
    return;
  }

  // Reference loop.
  for (int64_t b = 0; b < batches; ++b) {
    const int8_t* row = x + b * depth;
    for (int32_t o = 0; o < units; ++o) {
      const int8_t* wr = weights + static_cast<int64_t>(o) * depth;
      int32_t acc = 0;
      for (int32_t i = 0; i < depth; ++i)
        acc += (row[i] + p.input_offset) * (wr[i] + p.filter_offset);
      if (bias) acc = fx::add(acc, bias[o]);
      y[b * units + o] = finish(acc, o);
    }
  }
}

}  // namespace dtmm
