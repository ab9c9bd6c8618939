// AVERAGE_POOL_2D and MAX_POOL_2D, int8 NHWC. Windows are clipped to the
// input: padding never contributes (TFLite counts only valid elements).
#include "../fixedpoint.h"
#include "kernels.h"

namespace dtmm {

static dtmm_status validate_pool(const OpContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  if (!is_int8(in) || !is_int8(out) || in.rank != 4 || out.rank != 4 || in.dims[0] != out.dims[0] ||
      in.dims[3] != out.dims[3])
    return DTMM_ERR_BAD_PARAMS;
  const auto& p = ctx.p<dtmm_pool_params>();
  // A window of at most 65,536 int8 values sums without int32 overflow.
  if (p.stride_h < 1 || p.stride_w < 1 || p.filter_h < 1 || p.filter_w < 1 || p.filter_h > 256 ||
      p.filter_w > 256 || p.stride_h > 1024 || p.stride_w > 1024 || p.pad_h < 0 || p.pad_w < 0 ||
      p.pad_h > 65536 || p.pad_w > 65536 || !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

dtmm_status validate_average_pool2d(const OpContext& ctx) {
  return validate_pool(ctx);
}
dtmm_status validate_max_pool2d(const OpContext& ctx) {
  return validate_pool(ctx);
}

template <bool kAverage>
static void pool(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_pool_params>();
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  const int8_t* x = ctx.in_data<int8_t>(0);
  int8_t* y = ctx.out_data<int8_t>();
  const int32_t batches = in.dims[0], ih = in.dims[1], iw = in.dims[2], depth = in.dims[3];
  const int32_t oh = out.dims[1], ow = out.dims[2];
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t oy = 0; oy < oh; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      const int32_t ky0 = y0 < 0 ? -y0 : 0;
      const int32_t ky1 = ih - y0 < p.filter_h ? ih - y0 : p.filter_h;
      for (int32_t ox = 0; ox < ow; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        const int32_t kx0 = x0 < 0 ? -x0 : 0;
        const int32_t kx1 = iw - x0 < p.filter_w ? iw - x0 : p.filter_w;
        for (int32_t c = 0; c < depth; ++c) {
          int32_t acc = kAverage ? 0 : -128;
          int32_t count = 0;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              const int32_t v =
                  x[((static_cast<int64_t>(b) * ih + y0 + ky) * iw + x0 + kx) * depth + c];
              if (kAverage) {
                acc += v;
              } else if (v > acc) {
                acc = v;
              }
              ++count;
            }
          }
          if (kAverage) {
            // Round half away from zero; an empty window (all padding) gives 0.
            if (count == 0) {
              acc = 0;
            } else {
              acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
            }
          }
          y[((static_cast<int64_t>(b) * oh + oy) * ow + ox) * depth + c] =
              static_cast<int8_t>(clamp_i32(acc, p.act_min, p.act_max));
        }
      }
    }
  }
}

void eval_average_pool2d(const OpContext& ctx) {
  pool<true>(ctx);
}
void eval_max_pool2d(const OpContext& ctx) {
  pool<false>(ctx);
}

}  // namespace dtmm
