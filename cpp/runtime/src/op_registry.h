// The table from op type to name, arity, params size and kernels.
#ifndef DTMM_SRC_OP_REGISTRY_H_
#define DTMM_SRC_OP_REGISTRY_H_

#include "op_context.h"

namespace dtmm {

struct OpKernel {
  const char* name;
  uint32_t params_size;
  int32_t optional_input;  // index of an input that may be absent, or -1
  dtmm_status (*validate)(const OpContext&);
  void (*eval)(const OpContext&);
};

// nullptr for an unknown type.
const OpKernel* find_kernel(uint32_t type);

}  // namespace dtmm

#endif  // DTMM_SRC_OP_REGISTRY_H_
