// Host (x86-64 AVX2) convolution over channel-pair planes, for CONV_2D and
// CONV_2D_FWCS alike. Each call returns false, doing nothing, when it does
// not apply (no AVX2, no or too small host workspace, dilation, groups); the
// caller then takes another path.
#ifndef DTMM_SRC_KERNELS_CONV_PLANAR_H_
#define DTMM_SRC_KERNELS_CONV_PLANAR_H_

#include "../op_context.h"

namespace dtmm {

bool conv_planar_dense(const OpContext& ctx);
bool conv_planar_fwcs(const OpContext& ctx);

// Host workspace bytes the calls above need for this CONV_2D or CONV_2D_FWCS
// op (0 if they never apply to it).
size_t conv_planar_workspace(const OpContext& ctx);

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_CONV_PLANAR_H_
