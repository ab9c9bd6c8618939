// The portable CONV_2D loop over output pixels whose window lies inside the
// input, for windows too large for the run convolution (conv_runs.h).
#ifndef DTMM_SRC_KERNELS_CONV_ROWS_H_
#define DTMM_SRC_KERNELS_CONV_ROWS_H_

#include <stddef.h>
#include <stdint.h>

namespace dtmm {

// Offsets are ptrdiff_t: 32-bit arithmetic on Cortex-M (int64 costs two
// instructions per add there), 64-bit on hosts.
struct ConvRows {
  const int8_t* window;       // first input byte of the first pixel's window
  ptrdiff_t pixel_step;       // input bytes between consecutive output pixels
  ptrdiff_t in_row;           // input bytes between window rows (W * C_in)
  int32_t num_pixels;         // consecutive output pixels of one output row
  int32_t num_rows;           // output rows of such pixels
  ptrdiff_t window_row_step;  // input bytes between the windows of successive rows
  ptrdiff_t out_row_step;     // output bytes between successive rows
  int32_t kh;                 // window rows
  int32_t row_len;            // contiguous bytes per window row (KW * C_in)
  const int8_t* filter;       // OHWI: filter_len bytes per output channel
  ptrdiff_t filter_len;       // KH * row_len
  int32_t oc_count;
  const int32_t* folded_bias;
  const int32_t* multiplier;
  const int32_t* shift;
  int32_t output_offset, act_min, act_max;
  int8_t* out;  // first output pixel; oc_count bytes per pixel
};

void conv_rows_portable(const ConvRows& r);

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_CONV_ROWS_H_
