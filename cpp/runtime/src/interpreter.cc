// Running a validated model, and the accessors of the C API.
#include "dtmm/dtmm.h"
#include "kernels/conv_planar.h"
#include "kernels/depthwise_planar.h"
#include "op_context.h"
#include "op_registry.h"

using namespace dtmm;

namespace {

dtmm_status fill_tensor(const dtmm_model* m, uint32_t index, dtmm_tensor* out) {
  if (!m || !m->header || !out) return DTMM_ERR_NULL_ARGUMENT;
  if (index >= m->header->num_tensors) return DTMM_ERR_INDEX;
  const dtmm_tensor_record& t = tensor_records(*m)[index];
  out->data = tensor_data(*m, t);
  out->dims = t.dims;
  out->rank = t.rank;
  out->dtype = t.dtype;
  out->size = t.size;
  out->scale = t.scale;
  out->zero_point = t.zero_point;
  out->name = reinterpret_cast<const char*>(m->blob + m->header->strings_offset + t.name);
  return DTMM_OK;
}

const uint32_t* model_io(const dtmm_model* m) {
  return reinterpret_cast<const uint32_t*>(m->blob + m->header->io_offset);
}

}  // namespace

extern "C" {

const char* dtmm_status_name(dtmm_status status) {
  switch (status) {
    case DTMM_OK: return "DTMM_OK";
    case DTMM_ERR_NULL_ARGUMENT: return "DTMM_ERR_NULL_ARGUMENT";
    case DTMM_ERR_BLOB_ALIGNMENT: return "DTMM_ERR_BLOB_ALIGNMENT";
    case DTMM_ERR_TRUNCATED: return "DTMM_ERR_TRUNCATED";
    case DTMM_ERR_BAD_MAGIC: return "DTMM_ERR_BAD_MAGIC";
    case DTMM_ERR_BAD_VERSION: return "DTMM_ERR_BAD_VERSION";
    case DTMM_ERR_BAD_CHECKSUM: return "DTMM_ERR_BAD_CHECKSUM";
    case DTMM_ERR_OUT_OF_BOUNDS: return "DTMM_ERR_OUT_OF_BOUNDS";
    case DTMM_ERR_BAD_TENSOR: return "DTMM_ERR_BAD_TENSOR";
    case DTMM_ERR_BAD_OP: return "DTMM_ERR_BAD_OP";
    case DTMM_ERR_BAD_PARAMS: return "DTMM_ERR_BAD_PARAMS";
    case DTMM_ERR_ARENA_TOO_SMALL: return "DTMM_ERR_ARENA_TOO_SMALL";
    case DTMM_ERR_BAD_MEMORY_PLAN: return "DTMM_ERR_BAD_MEMORY_PLAN";
    case DTMM_ERR_INDEX: return "DTMM_ERR_INDEX";
    default: return "DTMM_ERR_UNKNOWN";
  }
}

uint32_t dtmm_num_inputs(const dtmm_model* m) {
  return m && m->header ? m->header->num_inputs : 0;
}
uint32_t dtmm_num_outputs(const dtmm_model* m) {
  return m && m->header ? m->header->num_outputs : 0;
}
uint32_t dtmm_num_ops(const dtmm_model* m) {
  return m && m->header ? m->header->num_ops : 0;
}

dtmm_status dtmm_tensor_info(const dtmm_model* m, uint32_t index, dtmm_tensor* out) {
  return fill_tensor(m, index, out);
}

dtmm_status dtmm_input(const dtmm_model* m, uint32_t index, dtmm_tensor* out) {
  if (!m || !m->header) return DTMM_ERR_NULL_ARGUMENT;
  if (index >= m->header->num_inputs) return DTMM_ERR_INDEX;
  return fill_tensor(m, model_io(m)[index], out);
}

dtmm_status dtmm_output(const dtmm_model* m, uint32_t index, dtmm_tensor* out) {
  if (!m || !m->header) return DTMM_ERR_NULL_ARGUMENT;
  if (index >= m->header->num_outputs) return DTMM_ERR_INDEX;
  return fill_tensor(m, model_io(m)[m->header->num_inputs + index], out);
}

dtmm_status dtmm_invoke_op(dtmm_model* m, uint32_t index) {
  if (!m || !m->header) return DTMM_ERR_NULL_ARGUMENT;
  if (index >= m->header->num_ops) return DTMM_ERR_INDEX;
  const dtmm_op_record& op = op_records(*m)[index];
  const OpContext ctx{m, &op, reinterpret_cast<const uint32_t*>(m->blob + op.io_offset),
                      m->blob + op.params_offset,
                      op.scratch_size ? m->arena + op.scratch_offset : nullptr};
  find_kernel(op.type)->eval(ctx);
  return DTMM_OK;
}

size_t dtmm_host_workspace_size(const dtmm_model* m) {
  if (!m || !m->header) return 0;
  size_t need = 0;
  for (uint32_t k = 0; k < m->header->num_ops; ++k) {
    const dtmm_op_record& op = op_records(*m)[k];
    const OpContext ctx{m, &op, reinterpret_cast<const uint32_t*>(m->blob + op.io_offset),
                        m->blob + op.params_offset, nullptr};
    size_t bytes = 0;
    if (op.type == DTMM_OP_CONV_2D || op.type == DTMM_OP_CONV_2D_FWCS)
      bytes = conv_planar_workspace(ctx);
    if (op.type == DTMM_OP_DEPTHWISE_CONV_2D) bytes = depthwise_planar_workspace(ctx);
    need = bytes > need ? bytes : need;
  }
  return need;
}

dtmm_status dtmm_invoke(dtmm_model* m) {
  if (!m || !m->header) return DTMM_ERR_NULL_ARGUMENT;
  for (uint32_t k = 0; k < m->header->num_ops; ++k) dtmm_invoke_op(m, k);
  return DTMM_OK;
}

const char* dtmm_op_name(const dtmm_model* m, uint32_t index) {
  if (!m || !m->header || index >= m->header->num_ops) return nullptr;
  return reinterpret_cast<const char*>(m->blob + m->header->strings_offset +
                                       op_records(*m)[index].name);
}

int dtmm_op_kind(const dtmm_model* m, uint32_t index) {
  if (!m || !m->header || index >= m->header->num_ops) return -1;
  return op_records(*m)[index].type;
}

const char* dtmm_op_type_name(int op_type) {
  const OpKernel* k = op_type < 0 ? nullptr : find_kernel(static_cast<uint32_t>(op_type));
  return k ? k->name : "UNKNOWN";
}

}  // extern "C"
