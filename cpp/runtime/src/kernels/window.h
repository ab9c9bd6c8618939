// Copying one convolution window out of an NHWC image.
#ifndef DTMM_SRC_KERNELS_WINDOW_H_
#define DTMM_SRC_KERNELS_WINDOW_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace dtmm {

// Copies the kh x kw window at (y0, x0) of `image` ([ih, iw, channels]) into
// `dst` as kh * kw contiguous taps of `channels` bytes; taps outside the image
// get `zero_point`. With the folded bias (bias + input_offset * sum(w)) those
// padded taps add zero_point * w - zero_point * w = 0, exactly as TFLite's
// padding, so a border window runs through the same code as an inner one.
inline void copy_window(const int8_t* image, int32_t ih, int32_t iw, int32_t channels, int32_t y0,
                        int32_t x0, int32_t kh, int32_t kw, int8_t zero_point, int8_t* dst) {
  for (int32_t ky = 0; ky < kh; ++ky) {
    for (int32_t kx = 0; kx < kw; ++kx, dst += channels) {
      const int32_t iy = y0 + ky, ix = x0 + kx;
      if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
        memset(dst, zero_point, static_cast<size_t>(channels));
      } else {
        memcpy(dst, image + (static_cast<ptrdiff_t>(iy) * iw + ix) * channels,
               static_cast<size_t>(channels));
      }
    }
  }
}

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_WINDOW_H_
