// The portable CONV_2D pixel loop for windows too large for the run
// convolution: for each output pixel and channel, sum(x * w) over the window
// plus the folded bias, then TFLite's requantization.
#include "conv_rows.h"

#include <string.h>

#include "../fixedpoint.h"
#include "dot.h"

// Helium builds convolve with conv_runs.cc instead (see conv2d.cc).
#if !defined(__ARM_FEATURE_MVE)

namespace dtmm {

namespace {

int8_t requantize(const ConvRows& r, int32_t sum, int32_t oc) {
  int32_t v = fx::add(sum, r.folded_bias[oc]);
  v = multiply_by_quantized_multiplier(v, r.multiplier[oc], r.shift[oc]) + r.output_offset;
  return static_cast<int8_t>(clamp_i32(v, r.act_min, r.act_max));
}

// Four consecutive channels.
__attribute__((always_inline)) inline void requantize4(const ConvRows& r, const int32_t sums[4],
                                                       int32_t oc, int8_t* out) {
  for (int32_t j = 0; j < 4; ++j) out[oc + j] = requantize(r, sums[j], oc + j);
}

}  // namespace

void conv_rows_portable(const ConvRows& r) {
  // Windows with short rows (C_in < 16 for KW = 1..5) are first packed into
  // one contiguous row, so each dot product runs over the whole window.
  constexpr ptrdiff_t kPatchMax = 256;
  int8_t patch[kPatchMax];
  const bool pack = r.row_len < 16 && r.kh > 1 && r.filter_len <= kPatchMax;
  const int32_t rows = pack ? 1 : r.kh;
  const int32_t len = pack ? static_cast<int32_t>(r.filter_len) : r.row_len;
  // Nested loops, not one index split by division: 64-bit division is a
  // library call on Cortex-M.
  for (int32_t row = 0; row < r.num_rows; ++row)
    for (int32_t px = 0; px < r.num_pixels; ++px) {
      const int8_t* window = r.window + row * r.window_row_step + px * r.pixel_step;
      ptrdiff_t in_row = r.in_row;
      if (pack) {
        for (int32_t ky = 0; ky < r.kh; ++ky)
          memcpy(patch + ky * r.row_len, window + ky * r.in_row, static_cast<size_t>(r.row_len));
        window = patch;
        in_row = 0;
      }
      int8_t* out = r.out + row * r.out_row_step + px * r.oc_count;
      int32_t oc = 0;
      for (; oc + 4 <= r.oc_count; oc += 4) {
        const int8_t* w = r.filter + oc * r.filter_len;
        int32_t acc[4] = {0, 0, 0, 0};
        for (int32_t ky = 0; ky < rows; ++ky) {
          const ptrdiff_t o = static_cast<ptrdiff_t>(ky) * len;
          dot4_i8(window + ky * in_row, w + o, w + r.filter_len + o, w + 2 * r.filter_len + o,
                  w + 3 * r.filter_len + o, len, acc);
        }
        requantize4(r, acc, oc, out);
      }
      for (; oc < r.oc_count; ++oc) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < rows; ++ky)
          acc += dot_i8(window + ky * in_row,
                        r.filter + oc * r.filter_len + static_cast<ptrdiff_t>(ky) * len, len);
        out[oc] = requantize(r, acc, oc);
      }
    }
}

}  // namespace dtmm

#endif  // !__ARM_FEATURE_MVE
