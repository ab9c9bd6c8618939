// Walks an output shape while tracking where two (broadcast) inputs are.
#ifndef DTMM_SRC_KERNELS_BROADCAST_H_
#define DTMM_SRC_KERNELS_BROADCAST_H_

#include "../op_context.h"

namespace dtmm {

// True when `in` broadcasts to `out` (numpy rules, trailing dims aligned).
inline bool broadcastable(const dtmm_tensor_record& in, const dtmm_tensor_record& out) {
  if (in.rank > out.rank) return false;
  const uint32_t lead = out.rank - in.rank;
  for (uint32_t i = 0; i < in.rank; ++i)
    if (in.dims[i] != out.dims[lead + i] && in.dims[i] != 1) return false;
  return true;
}

// Element strides of `in` over the axes of `out`; 0 along broadcast axes.
inline void broadcast_strides(const dtmm_tensor_record& in, const dtmm_tensor_record& out,
                              int64_t strides[DTMM_MAX_RANK]) {
  const uint32_t lead = out.rank - in.rank;
  int64_t stride = 1;
  for (int i = static_cast<int>(out.rank) - 1; i >= 0; --i) {
    const int32_t dim = i >= static_cast<int>(lead) ? in.dims[i - lead] : 1;
    strides[i] = dim == 1 ? 0 : stride;
    stride *= dim;
  }
}

// Calls f(out_index, a_index, b_index) for every output element, in order
// (when the shapes are all the same, from element same_shape_done on).
template <typename F>
void for_each_broadcast(const dtmm_tensor_record& a, const dtmm_tensor_record& b,
                        const dtmm_tensor_record& out, F f, int64_t same_shape_done = 0) {
  if (same_shape(a, out) && same_shape(b, out)) {
    const int64_t n = static_cast<int64_t>(num_elements(out));
    for (int64_t i = same_shape_done; i < n; ++i) f(i, i, i);
    return;
  }
  int64_t sa[DTMM_MAX_RANK], sb[DTMM_MAX_RANK];
  broadcast_strides(a, out, sa);
  broadcast_strides(b, out, sb);
  int32_t idx[DTMM_MAX_RANK] = {0};
  const int64_t n = static_cast<int64_t>(num_elements(out));
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, ia, ib);
    for (int d = static_cast<int>(out.rank) - 1; d >= 0; --d) {
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < out.dims[d]) break;
      ia -= sa[d] * idx[d];
      ib -= sb[d] * idx[d];
      idx[d] = 0;
    }
  }
}

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_BROADCAST_H_
