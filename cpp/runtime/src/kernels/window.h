// Copying one convolution window out of an NHWC image.
#ifndef DTMM_SRC_KERNELS_WINDOW_H_
#define DTMM_SRC_KERNELS_WINDOW_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#endif

namespace dtmm {

// Short copies inline: on Helium whole vectors, then one predicated vector
// for the rest (GCC spends several instructions setting each predicate),
// instead of a library call whose set-up outweighs a 3- to 256-byte row.
inline void copy_bytes(int8_t* dst, const int8_t* src, int32_t n) {
#if defined(__ARM_FEATURE_MVE)
  for (; n >= 16; n -= 16, src += 16, dst += 16) vstrbq_s8(dst, vldrbq_s8(src));
  if (n > 0) {
    const mve_pred16_t p = vctp8q(static_cast<uint32_t>(n));
    vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
  }
#else
  memcpy(dst, src, static_cast<size_t>(n));
#endif
}

// The same for filling n bytes with one value.
inline void fill_bytes(int8_t* dst, int8_t value, int32_t n) {
#if defined(__ARM_FEATURE_MVE)
  const int8x16_t v = vdupq_n_s8(value);
  for (; n >= 16; n -= 16, dst += 16) vstrbq_s8(dst, v);
  if (n > 0) vstrbq_p_s8(dst, v, vctp8q(static_cast<uint32_t>(n)));
#else
  memset(dst, value, static_cast<size_t>(n));
#endif
}

// Copies the kh x kw window at (y0, x0) of `image` ([ih, iw, channels]) into
// `dst` as kh * kw contiguous taps of `channels` bytes; taps outside the image
// get `zero_point`. With the folded bias (bias + input_offset * sum(w)) those
// padded taps add zero_point * w - zero_point * w = 0, exactly as TFLite's
// padding, so a border window runs through the same code as an inner one.
inline void copy_window(const int8_t* image, int32_t ih, int32_t iw, int32_t channels, int32_t y0,
                        int32_t x0, int32_t kh, int32_t kw, int8_t zero_point, int8_t* dst) {
  // Each row: taps left of the image, taps inside it, taps right of it.
  const int32_t left = x0 < 0 ? (-x0 < kw ? -x0 : kw) : 0;
  const int32_t past = x0 + kw - iw, right = past > 0 ? (past < kw - left ? past : kw - left) : 0;
  const int32_t row_bytes = kw * channels, inside = (kw - left - right) * channels;
  for (int32_t ky = 0; ky < kh; ++ky, dst += row_bytes) {
    const int32_t iy = y0 + ky;
    if (iy < 0 || iy >= ih) {
      fill_bytes(dst, zero_point, row_bytes);
      continue;
    }
    fill_bytes(dst, zero_point, left * channels);
    copy_bytes(dst + left * channels,
               image + (static_cast<ptrdiff_t>(iy) * iw + x0 + left) * channels, inside);
    fill_bytes(dst + left * channels + inside, zero_point, right * channels);
  }
}

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_WINDOW_H_
