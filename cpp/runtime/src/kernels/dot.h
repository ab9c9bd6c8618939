// int8 dot products written so that compilers vectorize them (one input
// vector against one or four weight rows; the x loads are shared).
#ifndef DTMM_SRC_KERNELS_DOT_H_
#define DTMM_SRC_KERNELS_DOT_H_

#include <stdint.h>

namespace dtmm {

inline int32_t dot_i8(const int8_t* __restrict x, const int8_t* __restrict w, int32_t n) {
  int32_t s = 0;
  for (int32_t i = 0; i < n; ++i) s += static_cast<int16_t>(x[i]) * static_cast<int16_t>(w[i]);
  return s;
}

inline int32_t sum_i8(const int8_t* w, int32_t n) {
  int32_t s = 0;
  for (int32_t i = 0; i < n; ++i) s += w[i];
  return s;
}

inline void dot4_i8(const int8_t* __restrict x, const int8_t* __restrict w0,
                    const int8_t* __restrict w1, const int8_t* __restrict w2,
                    const int8_t* __restrict w3, int32_t n, int32_t acc[4]) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int16_t v = x[i];
    s0 += v * static_cast<int16_t>(w0[i]);
    s1 += v * static_cast<int16_t>(w1[i]);
    s2 += v * static_cast<int16_t>(w2[i]);
    s3 += v * static_cast<int16_t>(w3[i]);
  }
  acc[0] += s0;
  acc[1] += s1;
  acc[2] += s2;
  acc[3] += s3;
}

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_DOT_H_
