// dtmm_init: validates every byte of a blob before anything runs from it.
// The blob is the trust boundary: a corrupt or hostile blob yields a status,
// never an out-of-bounds access, so each check below guards the next.
#include <math.h>
#include <string.h>

#include "crc32.h"
#include "dtmm/dtmm.h"
#include "op_context.h"
#include "op_registry.h"

namespace dtmm {
namespace {

static_assert(sizeof(dtmm_blob_header) == 64, "format v1 header is 64 bytes");
static_assert(sizeof(dtmm_tensor_record) == 64, "format v1 tensor record is 64 bytes");
static_assert(sizeof(dtmm_op_record) == 32, "format v1 op record is 32 bytes");

constexpr uint32_t kAbsent = UINT32_MAX;

uint32_t dtype_size(uint32_t dtype) {
  switch (dtype) {
    case DTMM_INT8: return 1;
    case DTMM_INT32: return 4;
    case DTMM_FLOAT32: return 4;
    case DTMM_UINT8: return 1;
    case DTMM_UINT16: return 2;
    default: return 0;
  }
}

dtmm_status check_header(const uint8_t* blob, size_t blob_size, const dtmm_blob_header** out) {
  if (!blob) return DTMM_ERR_NULL_ARGUMENT;
  if (reinterpret_cast<uintptr_t>(blob) % DTMM_CONST_ALIGN != 0) return DTMM_ERR_BLOB_ALIGNMENT;
  if (blob_size < sizeof(dtmm_blob_header)) return DTMM_ERR_TRUNCATED;
  const auto* h = reinterpret_cast<const dtmm_blob_header*>(blob);
  if (memcmp(h->magic, DTMM_MAGIC, 4) != 0) return DTMM_ERR_BAD_MAGIC;
  if (h->version_major != DTMM_VERSION_MAJOR) return DTMM_ERR_BAD_VERSION;
  if (h->total_size < sizeof(dtmm_blob_header)) return DTMM_ERR_OUT_OF_BOUNDS;
  if (h->total_size > blob_size) return DTMM_ERR_TRUNCATED;
  *out = h;
  return DTMM_OK;
}

const dtmm_tensor_record& tensor(const dtmm_model& m, uint32_t i) {
  return tensor_records(m)[i];
}

const uint32_t* op_io(const dtmm_model& m, const dtmm_op_record& op) {
  return reinterpret_cast<const uint32_t*>(m.blob + op.io_offset);
}

const uint32_t* model_io(const dtmm_model& m) {
  return reinterpret_cast<const uint32_t*>(m.blob + m.header->io_offset);
}

dtmm_status check_tables(const dtmm_model& m) {
  const dtmm_blob_header& h = *m.header;
  const uint32_t n = h.total_size;
  if (!range_ok(h.tensors_offset, uint64_t{h.num_tensors} * sizeof(dtmm_tensor_record), n, 4) ||
      !range_ok(h.ops_offset, uint64_t{h.num_ops} * sizeof(dtmm_op_record), n, 4) ||
      !range_ok(h.io_offset, (uint64_t{h.num_inputs} + h.num_outputs) * 4, n, 4) ||
      !range_ok(h.strings_offset, h.strings_size, n) || !range_ok(h.data_offset, h.data_size, n))
    return DTMM_ERR_OUT_OF_BOUNDS;
  // A NUL at the end of the string table terminates every name inside it.
  if (h.strings_size == 0 || m.blob[h.strings_offset + h.strings_size - 1] != 0)
    return DTMM_ERR_OUT_OF_BOUNDS;
  if (h.num_inputs == 0 || h.num_outputs == 0 || h.num_ops == 0) return DTMM_ERR_BAD_OP;
  return DTMM_OK;
}

dtmm_status check_tensor(const dtmm_model& m, uint32_t i) {
  const dtmm_tensor_record& t = tensor(m, i);
  const uint32_t es = dtype_size(t.dtype);
  if (es == 0 || t.rank > DTMM_MAX_RANK || t.storage > DTMM_STORAGE_CONST)
    return DTMM_ERR_BAD_TENSOR;
  uint64_t count = 1;
  for (uint32_t d = 0; d < DTMM_MAX_RANK; ++d) {
    if (d < t.rank) {
      // Constants may be empty (the values of a fully pruned sparse layer).
      const int32_t min_dim = t.storage == DTMM_STORAGE_CONST ? 0 : 1;
      if (t.dims[d] < min_dim || t.dims[d] > (1 << 24)) return DTMM_ERR_BAD_TENSOR;
      count *= static_cast<uint64_t>(t.dims[d]);
      if (count > UINT32_MAX) return DTMM_ERR_BAD_TENSOR;
    } else if (t.dims[d] != 0) {
      return DTMM_ERR_BAD_TENSOR;
    }
  }
  if (count * es != t.size) return DTMM_ERR_BAD_TENSOR;
  if (!isfinite(t.scale) || t.scale < 0.0f) return DTMM_ERR_BAD_TENSOR;
  if (t.name >= m.header->strings_size) return DTMM_ERR_OUT_OF_BOUNDS;
  if (t.num_channels != 0) {
    if (t.quant_axis >= t.rank || t.num_channels != static_cast<uint32_t>(t.dims[t.quant_axis]) ||
        !range_ok(t.channels_offset, uint64_t{8} * t.num_channels, m.header->total_size, 4))
      return DTMM_ERR_BAD_TENSOR;
  }
  if (t.storage == DTMM_STORAGE_CONST) {
    if (!range_ok(t.offset, t.size, m.header->total_size, DTMM_CONST_ALIGN))
      return DTMM_ERR_OUT_OF_BOUNDS;
  } else if (!range_ok(t.offset, t.size, m.header->arena_size, es)) {
    return DTMM_ERR_BAD_MEMORY_PLAN;
  }
  return DTMM_OK;
}

dtmm_status check_op_records(dtmm_model& m) {
  const dtmm_blob_header& h = *m.header;
  for (uint32_t k = 0; k < h.num_ops; ++k) {
    m.error_op = k;
    const dtmm_op_record& op = op_records(m)[k];
    const OpKernel* kernel = find_kernel(op.type);
    if (!kernel || op.num_outputs == 0 || uint32_t{op.num_inputs} + op.num_outputs > DTMM_MAX_OP_IO)
      return DTMM_ERR_BAD_OP;
    if (op.name >= h.strings_size) return DTMM_ERR_OUT_OF_BOUNDS;
    if (!range_ok(op.io_offset, (uint64_t{op.num_inputs} + op.num_outputs) * 4, h.total_size, 4))
      return DTMM_ERR_OUT_OF_BOUNDS;
    if (op.params_size != kernel->params_size ||
        !range_ok(op.params_offset, op.params_size, h.total_size, 4))
      return DTMM_ERR_BAD_PARAMS;
    if (!range_ok(op.scratch_offset, op.scratch_size, h.arena_size, 4))
      return DTMM_ERR_BAD_MEMORY_PLAN;
    const uint32_t* io = op_io(m, op);
    for (uint32_t j = 0; j < uint32_t{op.num_inputs} + op.num_outputs; ++j) {
      const bool is_input = j < op.num_inputs;
      if (io[j] == kAbsent && is_input && static_cast<int32_t>(j) == kernel->optional_input)
        continue;
      if (io[j] >= h.num_tensors) return DTMM_ERR_INDEX;
      if (!is_input && tensor(m, io[j]).storage != DTMM_STORAGE_ARENA) return DTMM_ERR_BAD_OP;
    }
  }
  m.error_op = UINT32_MAX;
  return DTMM_OK;
}

// ---- Memory plan: lifetimes in half-steps. Op k reads its inputs at 2k+1
// and writes its outputs at 2k+1, so an op's inputs and outputs (and its
// scratch, live during [2k, 2k+1]) must never share bytes.

bool op_reads(const dtmm_model& m, const dtmm_op_record& op, uint32_t t) {
  const uint32_t* io = op_io(m, op);
  for (uint32_t j = 0; j < op.num_inputs; ++j)
    if (io[j] == t) return true;
  return false;
}

bool op_writes(const dtmm_model& m, const dtmm_op_record& op, uint32_t t) {
  const uint32_t* io = op_io(m, op);
  for (uint32_t j = op.num_inputs; j < uint32_t{op.num_inputs} + op.num_outputs; ++j)
    if (io[j] == t) return true;
  return false;
}

bool is_model_io(const dtmm_model& m, uint32_t t, bool inputs) {
  const uint32_t* io = model_io(m);
  const uint32_t begin = inputs ? 0 : m.header->num_inputs;
  const uint32_t end = inputs ? m.header->num_inputs : m.header->num_inputs + m.header->num_outputs;
  for (uint32_t j = begin; j < end; ++j)
    if (io[j] == t) return true;
  return false;
}

struct Interval {
  int64_t start, end;  // inclusive half-steps; start > end means never live
};

dtmm_status lifetime(const dtmm_model& m, uint32_t t, Interval* out) {
  const uint32_t n = m.header->num_ops;
  int64_t start = is_model_io(m, t, true) ? -1 : INT64_MAX;
  int64_t end = is_model_io(m, t, false) ? 2 * int64_t{n} : -2;
  uint32_t writers = start == -1 ? 1 : 0;
  for (uint32_t k = 0; k < n; ++k) {
    const dtmm_op_record& op = op_records(m)[k];
    if (op_reads(m, op, t)) {
      if (start == INT64_MAX) return DTMM_ERR_BAD_MEMORY_PLAN;  // read before written
      end = end > 2 * int64_t{k} + 1 ? end : 2 * int64_t{k} + 1;
    }
    if (op_writes(m, op, t)) {
      if (++writers > 1) return DTMM_ERR_BAD_MEMORY_PLAN;  // one producer per tensor
      start = 2 * int64_t{k} + 1;
      end = end > start ? end : start;
    }
  }
  out->start = start == INT64_MAX ? 0 : start;
  out->end = start == INT64_MAX ? -1 : end;
  return DTMM_OK;
}

// Storage root: a RESHAPE whose output sits exactly on its input shares it.
uint32_t alias_root(const dtmm_model& m, uint32_t t) {
  for (uint32_t hops = 0; hops < m.header->num_ops; ++hops) {
    bool moved = false;
    for (uint32_t k = 0; k < m.header->num_ops && !moved; ++k) {
      const dtmm_op_record& op = op_records(m)[k];
      if (op.type != DTMM_OP_RESHAPE || !op_writes(m, op, t)) continue;
      const uint32_t src = op_io(m, op)[0];
      if (src == kAbsent) break;
      const dtmm_tensor_record& a = tensor(m, src);
      const dtmm_tensor_record& b = tensor(m, t);
      if (a.storage == DTMM_STORAGE_ARENA && a.offset == b.offset && a.size == b.size) {
        t = src;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return t;
}

bool bytes_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
  return an > 0 && bn > 0 && a < b + bn && b < a + an;
}

dtmm_status check_memory_plan(dtmm_model& m) {
  const uint32_t nt = m.header->num_tensors;
  // The arena must be exactly what the plan uses (rounded up to 16 bytes):
  // a larger figure would make callers reserve memory nothing ever touches.
  uint64_t used = 0;
  for (uint32_t i = 0; i < nt; ++i) {
    const dtmm_tensor_record& t = tensor(m, i);
    if (t.storage == DTMM_STORAGE_ARENA && uint64_t{t.offset} + t.size > used)
      used = uint64_t{t.offset} + t.size;
  }
  for (uint32_t k = 0; k < m.header->num_ops; ++k) {
    const dtmm_op_record& op = op_records(m)[k];
    if (op.scratch_size && uint64_t{op.scratch_offset} + op.scratch_size > used)
      used = uint64_t{op.scratch_offset} + op.scratch_size;
  }
  if (m.header->arena_size > (used + 15) / 16 * 16) return DTMM_ERR_BAD_MEMORY_PLAN;
  for (uint32_t a = 0; a < nt; ++a) {
    const dtmm_tensor_record& ta = tensor(m, a);
    if (ta.storage != DTMM_STORAGE_ARENA) continue;
    m.error_tensor = a;
    Interval la;
    if (lifetime(m, a, &la) != DTMM_OK) return DTMM_ERR_BAD_MEMORY_PLAN;
    for (uint32_t b = a + 1; b < nt; ++b) {
      const dtmm_tensor_record& tb = tensor(m, b);
      if (tb.storage != DTMM_STORAGE_ARENA ||
          !bytes_overlap(ta.offset, ta.size, tb.offset, tb.size))
        continue;
      Interval lb;
      if (lifetime(m, b, &lb) != DTMM_OK) return DTMM_ERR_BAD_MEMORY_PLAN;
      const bool live_together =
          la.start <= lb.end && lb.start <= la.end && la.start <= la.end && lb.start <= lb.end;
      if (live_together && alias_root(m, a) != alias_root(m, b)) return DTMM_ERR_BAD_MEMORY_PLAN;
    }
    for (uint32_t k = 0; k < m.header->num_ops; ++k) {
      const dtmm_op_record& op = op_records(m)[k];
      const int64_t s = 2 * int64_t{k}, e = s + 1;
      if (la.start <= e && s <= la.end && la.start <= la.end &&
          bytes_overlap(ta.offset, ta.size, op.scratch_offset, op.scratch_size))
        return DTMM_ERR_BAD_MEMORY_PLAN;
    }
  }
  m.error_tensor = UINT32_MAX;
  return DTMM_OK;
}

dtmm_status validate_model(dtmm_model& m) {
  const dtmm_blob_header* h = m.header;
  dtmm_status s;
  if ((s = check_tables(m)) != DTMM_OK) return s;
  for (uint32_t i = 0; i < h->num_tensors; ++i) {
    m.error_tensor = i;
    if ((s = check_tensor(m, i)) != DTMM_OK) return s;
  }
  m.error_tensor = UINT32_MAX;
  const uint32_t* io = model_io(m);
  for (uint32_t j = 0; j < h->num_inputs + h->num_outputs; ++j) {
    if (io[j] >= h->num_tensors) return DTMM_ERR_INDEX;
    if (tensor(m, io[j]).storage != DTMM_STORAGE_ARENA) return DTMM_ERR_BAD_TENSOR;
  }
  if ((s = check_op_records(m)) != DTMM_OK) return s;
  for (uint32_t k = 0; k < h->num_ops; ++k) {
    const dtmm_op_record& op = op_records(m)[k];
    const OpContext ctx{&m, &op, op_io(m, op), m.blob + op.params_offset, nullptr};
    m.error_op = k;
    if ((s = find_kernel(op.type)->validate(ctx)) != DTMM_OK) return s;
  }
  m.error_op = UINT32_MAX;
  return check_memory_plan(m);
}

}  // namespace
}  // namespace dtmm

using namespace dtmm;

extern "C" dtmm_status dtmm_blob_arena_size(const void* blob, size_t blob_size,
                                            size_t* arena_size) {
  if (!arena_size) return DTMM_ERR_NULL_ARGUMENT;
  const dtmm_blob_header* h = nullptr;
  const dtmm_status s = check_header(static_cast<const uint8_t*>(blob), blob_size, &h);
  if (s != DTMM_OK) return s;
  *arena_size = h->arena_size;
  return DTMM_OK;
}

extern "C" dtmm_status dtmm_init(dtmm_model* model, const void* blob, size_t blob_size, void* arena,
                                 size_t arena_size) {
  if (!model) return DTMM_ERR_NULL_ARGUMENT;
  memset(model, 0, sizeof(*model));
  model->error_op = UINT32_MAX;
  model->error_tensor = UINT32_MAX;
  const uint8_t* bytes = static_cast<const uint8_t*>(blob);
  const dtmm_blob_header* h = nullptr;
  dtmm_status s = check_header(bytes, blob_size, &h);
  if (s != DTMM_OK) return s;
  if (crc32(bytes + DTMM_CHECKSUM_START, h->total_size - DTMM_CHECKSUM_START) != h->checksum)
    return DTMM_ERR_BAD_CHECKSUM;
  if (h->arena_size > 0 && !arena) return DTMM_ERR_NULL_ARGUMENT;
  if (arena_size < h->arena_size) return DTMM_ERR_ARENA_TOO_SMALL;
  if (reinterpret_cast<uintptr_t>(arena) % 4 != 0) return DTMM_ERR_BLOB_ALIGNMENT;
  model->blob = bytes;
  model->blob_size = h->total_size;
  model->arena = static_cast<uint8_t*>(arena);
  model->arena_size = h->arena_size;
  model->header = h;
  s = validate_model(*model);
  // A model that failed validation must never run: accessors see no header.
  if (s != DTMM_OK) model->header = nullptr;
  return s;
}
