// int8 dot products, the inner loops of the conv and fully connected
// kernels: portable loops, or the Helium versions (cpp/kernels_helium) when
// the compiler targets MVE. Both return the exact integer sums.
#ifndef DTMM_SRC_KERNELS_DOT_H_
#define DTMM_SRC_KERNELS_DOT_H_

#include <stdint.h>

#if defined(__ARM_FEATURE_MVE)
#include "dot_helium.h"
#endif

namespace dtmm {

#if defined(__ARM_FEATURE_MVE)
using helium::dot4_i8;
using helium::dot4x_i8;
using helium::dot_i8;
using helium::sum_i8;
#else

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

// Four weight rows against one input row; the x loads are shared.
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

// One weight row against four input rows; the w loads are shared.
inline void dot4x_i8(const int8_t* __restrict x0, const int8_t* __restrict x1,
                     const int8_t* __restrict x2, const int8_t* __restrict x3,
                     const int8_t* __restrict w, int32_t n, int32_t acc[4]) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int16_t v = w[i];
    s0 += v * static_cast<int16_t>(x0[i]);
    s1 += v * static_cast<int16_t>(x1[i]);
    s2 += v * static_cast<int16_t>(x2[i]);
    s3 += v * static_cast<int16_t>(x3[i]);
  }
  acc[0] += s0;
  acc[1] += s1;
  acc[2] += s2;
  acc[3] += s3;
}

#endif  // __ARM_FEATURE_MVE

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_DOT_H_
