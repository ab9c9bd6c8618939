// Host (x86-64 AVX2) path of CONV_2D_FWCS. Returns false, doing nothing,
// when it does not apply (no AVX2, no or too small host workspace, dilation);
// the caller then runs the reference loop.
#ifndef DTMM_SRC_KERNELS_SPARSE_CONV_HOST_H_
#define DTMM_SRC_KERNELS_SPARSE_CONV_HOST_H_

#include "../op_context.h"

namespace dtmm {

bool fwcs_conv_host(const OpContext& ctx);

// Workspace bytes fwcs_conv_host needs for this op (0 if it never applies).
size_t fwcs_conv_host_workspace(const OpContext& ctx);

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_SPARSE_CONV_HOST_H_
