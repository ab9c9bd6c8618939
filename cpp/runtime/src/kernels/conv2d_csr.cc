// CONV_2D_CSR: the unstructured-sparsity baseline. Each output channel keeps
// its nonzero weights as (column, value) pairs over the flattened KH*KW*C_in
// filter, so every weight carries a 2-byte index.
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

// Shared by the conv and FC baselines: values int8 [nnz], columns uint16
// [nnz] strictly increasing within a row and < row_len, row_ptr int32
// [rows + 1] non-decreasing from 0 to nnz.
dtmm_status check_csr(const OpContext& ctx, uint32_t first, int64_t rows, int64_t row_len) {
  const auto& values = ctx.in(first);
  const auto& cols = ctx.in(first + 1);
  const auto& ptr = ctx.in(first + 2);
  if (values.dtype != DTMM_INT8 || cols.dtype != DTMM_UINT16 || ptr.dtype != DTMM_INT32 ||
      values.storage != DTMM_STORAGE_CONST || cols.storage != DTMM_STORAGE_CONST ||
      ptr.storage != DTMM_STORAGE_CONST || num_elements(values) != num_elements(cols) ||
      num_elements(ptr) != static_cast<uint64_t>(rows) + 1)
    return DTMM_ERR_BAD_PARAMS;
  const int32_t* rp = ctx.in_data<int32_t>(first + 2);
  const uint16_t* col = ctx.in_data<uint16_t>(first + 1);
  if (rp[0] != 0 || rp[rows] != static_cast<int64_t>(num_elements(values)))
    return DTMM_ERR_BAD_PARAMS;
  for (int64_t r = 0; r < rows; ++r) {
    if (rp[r + 1] < rp[r]) return DTMM_ERR_BAD_PARAMS;
    for (int32_t k = rp[r]; k < rp[r + 1]; ++k)
      if (col[k] >= row_len || (k > rp[r] && col[k] <= col[k - 1])) return DTMM_ERR_BAD_PARAMS;
  }
  return DTMM_OK;
}

dtmm_status validate_conv2d_csr(const OpContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 5 || ctx.op->num_outputs != 1)
    return DTMM_ERR_BAD_OP;
  const auto& p = ctx.p<dtmm_csr_conv_params>();
  dtmm_status s =
      check_conv_geometry(ctx, p.conv, p.out_channels, p.kernel_h, p.kernel_w, p.in_channels, 4);
  if (s != DTMM_OK) return s;
  if (ctx.in(0).dims[3] != p.in_channels) return DTMM_ERR_BAD_PARAMS;
  return check_csr(ctx, 1, p.out_channels, int64_t{p.kernel_h} * p.kernel_w * p.in_channels);
}

void eval_conv2d_csr(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_csr_conv_params>();
  const auto& c = p.conv;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  const int8_t* values = ctx.in_data<int8_t>(1);
  const uint16_t* cols = ctx.in_data<uint16_t>(2);
  const int32_t* row_ptr = ctx.in_data<int32_t>(3);
  const int32_t* bias = ctx.has_input(4) ? ctx.in_data<int32_t>(4) : nullptr;
  const int32_t* mult = ctx.blob_i32(c.quant_offset);
  const int32_t* shift = mult + p.out_channels;
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], ic = p.in_channels;
  const int32_t oh = out.dims[1], ow = out.dims[2];
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t y0 = oy * c.stride_h - c.pad_h, x0 = ox * c.stride_w - c.pad_w;
        for (int32_t oc = 0; oc < p.out_channels; ++oc) {
          int32_t acc = 0;
          // Columns increase within a row: step (ky, kx, c) along them
          // instead of dividing every column by the filter's row length.
          int32_t ky = 0, kx = 0, ch = 0, at = 0;
          for (int32_t k = row_ptr[oc]; k < row_ptr[oc + 1]; ++k) {
            for (ch += cols[k] - at, at = cols[k]; ch >= ic;) {
              ch -= ic;
              if (++kx == p.kernel_w) {
                kx = 0;
                ++ky;
              }
            }
            const int32_t iy = y0 + ky * c.dilation_h;
            const int32_t ix = x0 + kx * c.dilation_w;
            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue;
            acc += (x[((int64_t{b} * ih + iy) * iw + ix) * ic + ch] + c.input_offset) * values[k];
          }
          if (bias) acc = fx::add(acc, bias[oc]);
          acc = multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + c.output_offset;
          y[((int64_t{b} * oh + oy) * ow + ox) * p.out_channels + oc] =
              static_cast<int8_t>(clamp_i32(acc, c.act_min, c.act_max));
        }
      }
    }
  }
}

}  // namespace dtmm
