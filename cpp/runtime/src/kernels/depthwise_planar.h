// Host (x86-64 AVX2) DEPTHWISE_CONV_2D over per-channel planes (depth
// multiplier 1, dilation 1, horizontal stride 1 or 2). Returns false, doing
// nothing, when it does not apply (no AVX2, no or too small host workspace,
// other parameters); the caller then takes another path.
#ifndef DTMM_SRC_KERNELS_DEPTHWISE_PLANAR_H_
#define DTMM_SRC_KERNELS_DEPTHWISE_PLANAR_H_

#include "../op_context.h"

namespace dtmm {

bool depthwise_planar(const OpContext& ctx);

// Host workspace bytes depthwise_planar needs for this op (0 if it never
// applies).
size_t depthwise_planar_workspace(const OpContext& ctx);

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_DEPTHWISE_PLANAR_H_
