// dtmm runtime: C API for firmware.
//
// Usage:
//   1. dtmm_blob_arena_size(blob, size, &n)   bytes of arena the model needs
//                                             (also DTMM_MODEL_ARENA_SIZE in a
//                                             generated model header)
//   2. dtmm_init(&model, blob, size, arena, n) validates the whole blob; the
//                                             blob must stay alive and is
//                                             never written
//   3. dtmm_input(&model, 0) -> write input data into tensor.data
//   4. dtmm_invoke(&model)
//   5. dtmm_output(&model, 0) -> read the result
// No heap, no exceptions, no static state; every function returns a status.
#ifndef DTMM_DTMM_H_
#define DTMM_DTMM_H_

#include <stddef.h>
#include <stdint.h>

#include "dtmm/format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  DTMM_OK = 0,
  DTMM_ERR_NULL_ARGUMENT,
  DTMM_ERR_BLOB_ALIGNMENT,  // blob pointer not 16-byte aligned
  DTMM_ERR_TRUNCATED,       // blob shorter than its header says
  DTMM_ERR_BAD_MAGIC,
  DTMM_ERR_BAD_VERSION,
  DTMM_ERR_BAD_CHECKSUM,
  DTMM_ERR_OUT_OF_BOUNDS,    // an offset or length points outside the blob
  DTMM_ERR_BAD_TENSOR,       // dtype, rank, dims or size inconsistent
  DTMM_ERR_BAD_OP,           // unknown op type or wrong arity
  DTMM_ERR_BAD_PARAMS,       // op parameters out of range or shapes mismatch
  DTMM_ERR_ARENA_TOO_SMALL,  // caller's arena smaller than the model needs
  DTMM_ERR_BAD_MEMORY_PLAN,  // activation outside the arena or live overlap
  DTMM_ERR_INDEX,            // tensor/input/output index out of range
  DTMM_STATUS_COUNT_
} dtmm_status;

// Readable name of a status, e.g. "DTMM_ERR_BAD_CHECKSUM".
const char* dtmm_status_name(dtmm_status status);

typedef struct {
  void* data;  // in the arena (activations) or the blob (constants)
  const int32_t* dims;
  uint32_t rank;
  uint32_t dtype;  // dtmm_dtype
  uint32_t size;   // bytes
  float scale;
  int32_t zero_point;
  const char* name;
} dtmm_tensor;

typedef struct {
  const uint8_t* blob;
  uint8_t* arena;
  uint32_t blob_size;
  uint32_t arena_size;
  const dtmm_blob_header* header;
  // Index of the op that failed validation (or UINT32_MAX): for error messages.
  uint32_t error_op;
  uint32_t error_tensor;
  // Set to 1 after dtmm_init to run the readable reference kernels instead of
  // the optimized ones (both are bit-identical; tests compare them).
  uint32_t reference_kernels;
  // Optional, hosts only: memory the x86 SIMD kernels use for rewritten inputs
  // and weight tables (dtmm_host_workspace_size bytes); without it they fall
  // back to the portable kernels. Firmware leaves it NULL.
  void* workspace;
  uint32_t workspace_size;
} dtmm_model;

// Arena bytes a blob needs, after checking its header only.
dtmm_status dtmm_blob_arena_size(const void* blob, size_t blob_size, size_t* arena_size);

dtmm_status dtmm_init(dtmm_model* model, const void* blob, size_t blob_size, void* arena,
                      size_t arena_size);

uint32_t dtmm_num_inputs(const dtmm_model* model);
uint32_t dtmm_num_outputs(const dtmm_model* model);
uint32_t dtmm_num_ops(const dtmm_model* model);
dtmm_status dtmm_input(const dtmm_model* model, uint32_t index, dtmm_tensor* out);
dtmm_status dtmm_output(const dtmm_model* model, uint32_t index, dtmm_tensor* out);
dtmm_status dtmm_tensor_info(const dtmm_model* model, uint32_t tensor_index, dtmm_tensor* out);

// Bytes of optional host workspace that lets the x86 SIMD kernels run fastest
// (0 when none would help). Call after dtmm_init.
size_t dtmm_host_workspace_size(const dtmm_model* model);

// Runs every op in order.
dtmm_status dtmm_invoke(dtmm_model* model);

// Runs op `index` alone (for per-op profiling and device instruction counts).
dtmm_status dtmm_invoke_op(dtmm_model* model, uint32_t index);
// Op type and name of op `index` (NULL on bad index).
const char* dtmm_op_name(const dtmm_model* model, uint32_t index);
int dtmm_op_kind(const dtmm_model* model, uint32_t index);
const char* dtmm_op_type_name(int op_type);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // DTMM_DTMM_H_
