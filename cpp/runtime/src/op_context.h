// What a kernel sees of one op: its validated records, resolved to pointers.
#ifndef DTMM_SRC_OP_CONTEXT_H_
#define DTMM_SRC_OP_CONTEXT_H_

#include <stddef.h>
#include <stdint.h>

#include "dtmm/dtmm.h"

namespace dtmm {

inline const dtmm_tensor_record* tensor_records(const dtmm_model& m) {
  return reinterpret_cast<const dtmm_tensor_record*>(m.blob + m.header->tensors_offset);
}

inline const dtmm_op_record* op_records(const dtmm_model& m) {
  return reinterpret_cast<const dtmm_op_record*>(m.blob + m.header->ops_offset);
}

inline uint8_t* tensor_data(const dtmm_model& m, const dtmm_tensor_record& t) {
  // Constants are never written; the cast only lets one pointer type serve both.
  return t.storage == DTMM_STORAGE_CONST ? const_cast<uint8_t*>(m.blob + t.offset)
                                         : m.arena + t.offset;
}

// True when [offset, offset + size) lies inside [0, limit) and offset is aligned.
// align: a power of two (a mask, not a 64-bit division, on the device).
inline bool range_ok(uint64_t offset, uint64_t size, uint64_t limit, uint32_t align = 1) {
  return offset <= limit && size <= limit - offset && (offset & (align - 1)) == 0;
}

struct OpContext {
  const dtmm_model* model;
  const dtmm_op_record* op;
  const uint32_t* io;  // inputs then outputs
  const void* params;  // the op's params struct (validated size)
  uint8_t* scratch;    // op scratch in the arena, or nullptr

  uint32_t num_inputs() const { return op->num_inputs; }
  // Inputs marked absent (optional bias) carry UINT32_MAX.
  bool has_input(uint32_t i) const { return i < op->num_inputs && io[i] != UINT32_MAX; }
  const dtmm_tensor_record& in(uint32_t i) const { return tensor_records(*model)[io[i]]; }
  const dtmm_tensor_record& out(uint32_t i = 0) const {
    return tensor_records(*model)[io[op->num_inputs + i]];
  }
  template <typename T>
  const T* in_data(uint32_t i) const {
    return reinterpret_cast<const T*>(tensor_data(*model, in(i)));
  }
  template <typename T>
  T* out_data(uint32_t i = 0) const {
    return reinterpret_cast<T*>(tensor_data(*model, out(i)));
  }
  template <typename P>
  const P& p() const {
    return *static_cast<const P*>(params);
  }
  // A validated array of n int32 values at a blob offset.
  const int32_t* blob_i32(uint32_t offset) const {
    return reinterpret_cast<const int32_t*>(model->blob + offset);
  }
  bool blob_array_ok(uint32_t offset, uint64_t bytes) const {
    return range_ok(offset, bytes, model->blob_size, 4);
  }
};

// Of a tensor that check_tensor (loader.cc) passed, which bounds it by
// UINT32_MAX: 32-bit, so the kernels' divisions by it need no 64-bit helper.
inline uint32_t num_elements(const dtmm_tensor_record& t) {
  uint32_t n = 1;
  for (uint32_t i = 0; i < t.rank; ++i) n *= static_cast<uint32_t>(t.dims[i]);
  return n;
}

inline bool same_shape(const dtmm_tensor_record& a, const dtmm_tensor_record& b) {
  if (a.rank != b.rank) return false;
  for (uint32_t i = 0; i < a.rank; ++i)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

inline bool valid_shift(int32_t shift) {
  return shift >= -31 && shift <= 30;
}
inline bool valid_multiplier(int32_t m) {
  return m >= 0;
}
inline bool valid_clamp(int32_t lo, int32_t hi) {
  return -128 <= lo && lo <= hi && hi <= 127;
}

}  // namespace dtmm

#endif  // DTMM_SRC_OP_CONTEXT_H_
