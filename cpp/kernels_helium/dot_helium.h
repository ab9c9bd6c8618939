// Helium (MVE) int8 dot products: the same functions as the portable ones in
// cpp/runtime/src/kernels/dot.h, selected when the compiler defines
// __ARM_FEATURE_MVE. Each 16-byte step is one VMLADAVA (multiply the 16 lane
// pairs and add them all to a 32-bit scalar): exact, like the scalar loop.
// Whole 16-byte blocks run unpredicated with post-incremented pointers (GCC
// recomputes every address under a per-iteration VCTP predicate); the tail
// uses a VCTP predicate with zeroing loads, so lanes past n add nothing.
#ifndef DTMM_KERNELS_HELIUM_DOT_HELIUM_H_
#define DTMM_KERNELS_HELIUM_DOT_HELIUM_H_

#include <arm_mve.h>
#include <stdint.h>

namespace dtmm {
namespace helium {

__attribute__((always_inline)) inline int32_t dot_i8(const int8_t* x, const int8_t* w, int32_t n) {
  int32_t acc = 0;
  for (int32_t blocks = n >> 4; blocks > 0; --blocks, x += 16, w += 16)
    acc = vmladavaq_s8(acc, vldrbq_s8(x), vldrbq_s8(w));
  if (n & 15) {
    const mve_pred16_t p = vctp8q(static_cast<uint32_t>(n & 15));
    acc = vmladavaq_s8(acc, vldrbq_z_s8(x, p), vldrbq_z_s8(w, p));
  }
  return acc;
}

// Four weight rows against one input row: each input vector is loaded once.
__attribute__((always_inline)) inline void dot4_i8(const int8_t* x, const int8_t* w0,
                                                   const int8_t* w1, const int8_t* w2,
                                                   const int8_t* w3, int32_t n, int32_t acc[4]) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t blocks = n >> 4; blocks > 0; --blocks) {
    const int8x16_t v = vldrbq_s8(x);
    a0 = vmladavaq_s8(a0, v, vldrbq_s8(w0));
    a1 = vmladavaq_s8(a1, v, vldrbq_s8(w1));
    a2 = vmladavaq_s8(a2, v, vldrbq_s8(w2));
    a3 = vmladavaq_s8(a3, v, vldrbq_s8(w3));
    x += 16;
    w0 += 16;
    w1 += 16;
    w2 += 16;
    w3 += 16;
  }
  if (n & 15) {
    const mve_pred16_t p = vctp8q(static_cast<uint32_t>(n & 15));
    const int8x16_t v = vldrbq_z_s8(x, p);
    a0 = vmladavaq_s8(a0, v, vldrbq_z_s8(w0, p));
    a1 = vmladavaq_s8(a1, v, vldrbq_z_s8(w1, p));
    a2 = vmladavaq_s8(a2, v, vldrbq_z_s8(w2, p));
    a3 = vmladavaq_s8(a3, v, vldrbq_z_s8(w3, p));
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

// One weight row against four input rows: each weight vector is loaded once
// (the FWCS kernel's reuse across output pixels).
__attribute__((always_inline)) inline void dot4x_i8(const int8_t* x0, const int8_t* x1,
                                                    const int8_t* x2, const int8_t* x3,
                                                    const int8_t* w, int32_t n, int32_t acc[4]) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t blocks = n >> 4; blocks > 0; --blocks) {
    const int8x16_t v = vldrbq_s8(w);
    a0 = vmladavaq_s8(a0, vldrbq_s8(x0), v);
    a1 = vmladavaq_s8(a1, vldrbq_s8(x1), v);
    a2 = vmladavaq_s8(a2, vldrbq_s8(x2), v);
    a3 = vmladavaq_s8(a3, vldrbq_s8(x3), v);
    w += 16;
    x0 += 16;
    x1 += 16;
    x2 += 16;
    x3 += 16;
  }
  if (n & 15) {
    const mve_pred16_t p = vctp8q(static_cast<uint32_t>(n & 15));
    const int8x16_t v = vldrbq_z_s8(w, p);
    a0 = vmladavaq_s8(a0, vldrbq_z_s8(x0, p), v);
    a1 = vmladavaq_s8(a1, vldrbq_z_s8(x1, p), v);
    a2 = vmladavaq_s8(a2, vldrbq_z_s8(x2, p), v);
    a3 = vmladavaq_s8(a3, vldrbq_z_s8(x3, p), v);
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

__attribute__((always_inline)) inline int32_t sum_i8(const int8_t* w, int32_t n) {
  int32_t acc = 0;
  for (int32_t blocks = n >> 4; blocks > 0; --blocks, w += 16) acc = vaddvaq_s8(acc, vldrbq_s8(w));
  if (n & 15) acc = vaddvaq_s8(acc, vldrbq_z_s8(w, vctp8q(static_cast<uint32_t>(n & 15))));
  return acc;
}

}  // namespace helium
}  // namespace dtmm

#endif  // DTMM_KERNELS_HELIUM_DOT_HELIUM_H_
