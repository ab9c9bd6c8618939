#include "op_registry.h"

#include "kernels/kernels.h"

namespace dtmm {

namespace {
// A constant-initialized table: no static constructor runs on the device.
constexpr OpKernel kKernels[DTMM_OP_COUNT_] = {
    {nullptr, 0, -1, nullptr, nullptr},
    {"CONV_2D", sizeof(dtmm_conv_params), 2, validate_conv2d, eval_conv2d},
    {"DEPTHWISE_CONV_2D", sizeof(dtmm_conv_params), 2, validate_depthwise_conv2d,
     eval_depthwise_conv2d},
    {"FULLY_CONNECTED", sizeof(dtmm_fc_params), 2, validate_fully_connected, eval_fully_connected},
    {"ADD", sizeof(dtmm_add_params), -1, validate_add, eval_add},
    {"MUL", sizeof(dtmm_mul_params), -1, validate_mul, eval_mul},
    {"AVERAGE_POOL_2D", sizeof(dtmm_pool_params), -1, validate_average_pool2d, eval_average_pool2d},
    {"MAX_POOL_2D", sizeof(dtmm_pool_params), -1, validate_max_pool2d, eval_max_pool2d},
    {"MEAN", sizeof(dtmm_mean_params), -1, validate_mean, eval_mean},
    {"PAD", sizeof(dtmm_pad_params), -1, validate_pad, eval_pad},
    {"CONCATENATION", sizeof(dtmm_concat_params), -1, validate_concatenation, eval_concatenation},
    {"RESHAPE", 0, -1, validate_reshape, eval_reshape},
    {"SOFTMAX", sizeof(dtmm_softmax_params), -1, validate_softmax, eval_softmax},
    {"LOGISTIC", sizeof(dtmm_logistic_params), -1, validate_logistic, eval_logistic},
    {"QUANTIZE", sizeof(dtmm_quantize_params), -1, validate_quantize, eval_quantize},
    {"DEQUANTIZE", sizeof(dtmm_dequantize_params), -1, validate_dequantize, eval_dequantize},
    {"CONV_2D_FWCS", sizeof(dtmm_fwcs_conv_params), -1, validate_conv2d_fwcs, eval_conv2d_fwcs},
    {"FULLY_CONNECTED_BLOCK", sizeof(dtmm_block_fc_params), 3, validate_fully_connected_block,
     eval_fully_connected_block},
    {"CONV_2D_CSR", sizeof(dtmm_csr_conv_params), 4, validate_conv2d_csr, eval_conv2d_csr},
    {"FULLY_CONNECTED_CSR", sizeof(dtmm_csr_fc_params), 4, validate_fully_connected_csr,
     eval_fully_connected_csr},
};
}  // namespace

const OpKernel* find_kernel(uint32_t type) {
  if (type == 0 || type >= DTMM_OP_COUNT_) return nullptr;
  return &kKernels[type];
}

}  // namespace dtmm
