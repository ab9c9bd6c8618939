// ADD, int8, with numpy broadcasting: both inputs are rescaled to a common
// scale with 20 bits of headroom, summed, then rescaled to the output.
#include "../fixedpoint.h"
#include "avx2.h"
#include "broadcast.h"
#include "kernels.h"

#if defined(__ARM_FEATURE_MVE)
#include "add_helium.h"
#endif

namespace dtmm {

dtmm_status validate_add(const OpContext& ctx) {
  if (ctx.num_inputs() != 2 || ctx.op->num_outputs != 1) return DTMM_ERR_BAD_OP;
  const auto& a = ctx.in(0);
  const auto& b = ctx.in(1);
  const auto& out = ctx.out();
  if (!is_int8(a) || !is_int8(b) || !is_int8(out) || !broadcastable(a, out) ||
      !broadcastable(b, out))
    return DTMM_ERR_BAD_PARAMS;
  const auto& p = ctx.p<dtmm_add_params>();
  if (!valid_zero_point(-p.input1_offset) || !valid_zero_point(-p.input2_offset) ||
      !valid_zero_point(p.output_offset) || p.left_shift < 0 || p.left_shift > 20 ||
      !valid_multiplier(p.input1_multiplier) || !valid_multiplier(p.input2_multiplier) ||
      !valid_multiplier(p.output_multiplier) || p.input1_shift > 0 || p.input2_shift > 0 ||
      !valid_shift(p.input1_shift) || !valid_shift(p.input2_shift) ||
      !valid_shift(p.output_shift) || !valid_clamp(p.act_min, p.act_max))
    return DTMM_ERR_BAD_PARAMS;
  return DTMM_OK;
}

#if DTMM_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2")
// Same-shape ADD, 8 elements per step, each step the scalar formula on 8 lanes.
static int64_t add_same_shape_avx2(const dtmm_add_params& p, const int8_t* a, const int8_t* b,
                                   int8_t* y, int64_t n) {
  using namespace avx2;
  const __m256i off1 = _mm256_set1_epi32(p.input1_offset),
                off2 = _mm256_set1_epi32(p.input2_offset);
  const __m256i m1 = _mm256_set1_epi32(p.input1_multiplier), s1 = _mm256_set1_epi32(p.input1_shift);
  const __m256i m2 = _mm256_set1_epi32(p.input2_multiplier), s2 = _mm256_set1_epi32(p.input2_shift);
  const __m256i mo = _mm256_set1_epi32(p.output_multiplier), so = _mm256_set1_epi32(p.output_shift);
  const __m256i out_offset = _mm256_set1_epi32(p.output_offset);
  const __m256i lo = _mm256_set1_epi32(p.act_min), hi = _mm256_set1_epi32(p.act_max);
  const __m128i left = _mm_cvtsi32_si128(p.left_shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i sa = _mm256_sll_epi32(_mm256_add_epi32(load8_i32(a + i), off1), left);
    const __m256i sb = _mm256_sll_epi32(_mm256_add_epi32(load8_i32(b + i), off2), left);
    const __m256i sum = _mm256_add_epi32(multiply_by_quantized_multiplier8(sa, m1, s1),
                                         multiply_by_quantized_multiplier8(sb, m2, s2));
    store8_i8(y + i, _mm256_add_epi32(multiply_by_quantized_multiplier8(sum, mo, so), out_offset),
              lo, hi);
  }
  return i;  // elements done; the caller finishes the rest
}
#pragma GCC pop_options
#endif

void eval_add(const OpContext& ctx) {
  const auto& p = ctx.p<dtmm_add_params>();
  const int8_t* a = ctx.in_data<int8_t>(0);
  const int8_t* b = ctx.in_data<int8_t>(1);
  int8_t* y = ctx.out_data<int8_t>();
  int64_t done = 0;  // elements a vector path has already computed
#if defined(__ARM_FEATURE_MVE) || DTMM_X86_SIMD
  if (!ctx.model->reference_kernels && same_shape(ctx.in(0), ctx.out()) &&
      same_shape(ctx.in(1), ctx.out())) {
    const int64_t n = static_cast<int64_t>(num_elements(ctx.out()));
#if defined(__ARM_FEATURE_MVE)
    done = helium::add_same_shape(p, a, b, y, n);
#else
    if (avx2::cpu_has_avx2()) done = add_same_shape_avx2(p, a, b, y, n);
#endif
  }
#endif
  // (x - zp) fits in 9 bits; shifted left by at most 20 it stays below 2^29.
  const auto add_one = [&](int64_t i, int64_t ia, int64_t ib) {
    const int32_t sa = (a[ia] + p.input1_offset) * (1 << p.left_shift);
    const int32_t sb = (b[ib] + p.input2_offset) * (1 << p.left_shift);
    const int32_t ra = multiply_by_quantized_multiplier(sa, p.input1_multiplier, p.input1_shift);
    const int32_t rb = multiply_by_quantized_multiplier(sb, p.input2_multiplier, p.input2_shift);
    const int32_t sum =
        multiply_by_quantized_multiplier(ra + rb, p.output_multiplier, p.output_shift) +
        p.output_offset;
    y[i] = static_cast<int8_t>(clamp_i32(sum, p.act_min, p.act_max));
  };
  for_each_broadcast(ctx.in(0), ctx.in(1), ctx.out(), add_one, done);
}

}  // namespace dtmm
