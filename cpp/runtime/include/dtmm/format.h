// dtmm model blob, format v1: the one definition of every byte.
//
// The host builder (builder.hpp) writes these records and the loader
// (dtmm_init) validates them before first use; docs/format.md describes the
// same layout in prose. All integers are little-endian; every offset is in
// bytes from the start of the blob (constants, params, strings) or of the
// arena (activations, scratch). Records are 4-byte aligned and contain only
// 4-byte fields (or byte groups filling 4 bytes), so they can be read in place.
#ifndef DTMM_FORMAT_H_
#define DTMM_FORMAT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DTMM_MAGIC "DTMM"
#define DTMM_VERSION_MAJOR 1
#define DTMM_VERSION_MINOR 0
#define DTMM_MAX_RANK 6
#define DTMM_MAX_OP_IO 64       // inputs + outputs of one op (CONCATENATION)
#define DTMM_CONST_ALIGN 16     // constant data alignment, for vector loads
#define DTMM_CHECKSUM_START 16  // the CRC-32 covers bytes [16, total_size)

typedef enum {
  DTMM_INT8 = 1,
  DTMM_INT32 = 2,
  DTMM_FLOAT32 = 3,
  DTMM_UINT8 = 4,   // bitmasks of sparse formats
  DTMM_UINT16 = 5,  // column indices of the CSR baseline
} dtmm_dtype;

typedef enum {
  DTMM_STORAGE_ARENA = 0,  // activation: offset is into the arena
  DTMM_STORAGE_CONST = 1,  // constant: offset is into the blob, read in place
} dtmm_storage;

// Op codes are part of the format: never renumber, only append.
typedef enum {
  DTMM_OP_CONV_2D = 1,
  DTMM_OP_DEPTHWISE_CONV_2D = 2,
  DTMM_OP_FULLY_CONNECTED = 3,
  DTMM_OP_ADD = 4,
  DTMM_OP_MUL = 5,
  DTMM_OP_AVERAGE_POOL_2D = 6,
  DTMM_OP_MAX_POOL_2D = 7,
  DTMM_OP_MEAN = 8,
  DTMM_OP_PAD = 9,
  DTMM_OP_CONCATENATION = 10,
  DTMM_OP_RESHAPE = 11,
  DTMM_OP_SOFTMAX = 12,
  DTMM_OP_LOGISTIC = 13,
  DTMM_OP_QUANTIZE = 14,
  DTMM_OP_DEQUANTIZE = 15,
  DTMM_OP_CONV_2D_FWCS = 16,           // filterlet-sparse conv (FWCS)
  DTMM_OP_FULLY_CONNECTED_BLOCK = 17,  // block-sparse fully connected
  DTMM_OP_CONV_2D_CSR = 18,            // baseline: per-weight sparse conv
  DTMM_OP_FULLY_CONNECTED_CSR = 19,    // baseline: per-weight sparse FC
  DTMM_OP_COUNT_ = 20
} dtmm_op_type;

typedef struct {
  char magic[4];           // "DTMM"
  uint16_t version_major;  // DTMM_VERSION_MAJOR: a reader rejects any other
  uint16_t version_minor;  // additions a v1 reader may ignore
  uint32_t total_size;     // bytes in the blob, header included
  uint32_t checksum;       // CRC-32 (IEEE) of bytes [16, total_size)
  uint32_t arena_size;     // bytes of arena the caller must provide
  uint32_t num_tensors;
  uint32_t tensors_offset;  // dtmm_tensor_record[num_tensors]
  uint32_t num_ops;
  uint32_t ops_offset;  // dtmm_op_record[num_ops], in execution order
  uint32_t num_inputs;
  uint32_t num_outputs;
  uint32_t io_offset;       // uint32 tensor index[num_inputs + num_outputs]
  uint32_t strings_offset;  // NUL-terminated names
  uint32_t strings_size;
  uint32_t data_offset;  // constants and op params
  uint32_t data_size;
} dtmm_blob_header;

typedef struct {
  uint8_t dtype;                // dtmm_dtype
  uint8_t rank;                 // 0..DTMM_MAX_RANK
  uint8_t storage;              // dtmm_storage
  uint8_t quant_axis;           // axis of per-channel quantization
  int32_t dims[DTMM_MAX_RANK];  // unused trailing dims are 0
  uint32_t offset;              // arena or blob offset, per storage
  uint32_t size;                // bytes: product(dims) * sizeof(dtype)
  float scale;                  // per-tensor scale (0 = not quantized)
  int32_t zero_point;
  uint32_t num_channels;     // per-channel quantization entries, 0 if none
  uint32_t channels_offset;  // float scale[num_channels], int32 zp[num_channels]
  uint32_t name;             // offset into the string table
  uint32_t reserved[2];
} dtmm_tensor_record;

typedef struct {
  uint16_t type;  // dtmm_op_type
  uint8_t num_inputs;
  uint8_t num_outputs;
  uint32_t io_offset;       // blob offset of uint32 index[num_inputs + num_outputs]
  uint32_t params_offset;   // blob offset of the op's params struct below
  uint32_t params_size;     // must equal sizeof(that struct)
  uint32_t scratch_offset;  // arena offset of the op's scratch buffer
  uint32_t scratch_size;
  uint32_t name;  // offset into the string table
  uint32_t reserved;
} dtmm_op_record;

// ---- Op parameters. Requantization constants are precomputed by the builder
// with TFLite's formulas, so the device never touches floating point for them.

typedef enum { DTMM_PAD_VALID = 0, DTMM_PAD_SAME = 1 } dtmm_padding;

// CONV_2D and DEPTHWISE_CONV_2D. inputs: input, filter, bias(optional) -> output
typedef struct {
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;      // top/left padding, computed from dtmm_padding
  int32_t depth_multiplier;  // depthwise only; 0 for CONV_2D
  int32_t input_offset;      // -input zero point
  int32_t output_offset;     // output zero point
  int32_t act_min, act_max;  // fused activation clamp, in output units
  uint32_t quant_offset;     // int32 multiplier[out_ch], int32 shift[out_ch]
  // int32[out_ch]: bias + input_offset * sum(filter[oc]), for pixels whose
  // window lies inside the input (the zero-point correction folded offline).
  uint32_t folded_bias_offset;
} dtmm_conv_params;

// FULLY_CONNECTED. inputs: input, weights [out, in], bias(optional) -> output
typedef struct {
  int32_t input_offset;
  int32_t filter_offset;  // -weights zero point (0 for symmetric weights)
  int32_t output_offset;
  int32_t act_min, act_max;
  uint32_t num_channels;        // 1 (per-tensor) or out (per-channel)
  uint32_t quant_offset;        // int32 multiplier[num_channels], int32 shift[num_channels]
  uint32_t folded_bias_offset;  // int32[units]: bias + input_offset * sum(w[o]) (filter_offset 0)
} dtmm_fc_params;

// CONV_2D_FWCS. inputs: input, values, mask, bias(optional) -> output.
// The filter is [out_channels, kernel_h, kernel_w, in_channels] (OHWI) with
// whole filterlets (the in_channels weights at one tap) pruned. `mask` (uint8)
// holds out_channels * kernel_h * kernel_w bits, LSB first, bit
// (oc * kernel_h + ky) * kernel_w + kx set when that filterlet is kept; unused
// bits of the last byte are 0. `values` (int8 [kept, in_channels]) holds the
// kept filterlets in mask order. conv.folded_bias uses the kept weights.
typedef struct {
  dtmm_conv_params conv;
  int32_t out_channels, kernel_h, kernel_w, in_channels;
} dtmm_fwcs_conv_params;

// FULLY_CONNECTED_BLOCK. inputs: input, values, mask, bias(optional) -> output.
// Weights [units, depth] cut into blocks of `block` consecutive inputs per
// unit (the last block of a row may be shorter); mask bit u * blocks_per_row
// + j set when block j of unit u is kept; values (int8 [kept, block]) hold
// the kept blocks in mask order, a short last block zero-padded.
typedef struct {
  dtmm_fc_params fc;
  int32_t units, depth, block;
} dtmm_block_fc_params;

// CONV_2D_CSR / FULLY_CONNECTED_CSR (baselines). inputs: input, values (int8
// [nnz]), columns (uint16 [nnz], index into the flattened KH*KW*C_in filter
// or the FC row, increasing within a row), row_ptr (int32 [rows + 1]),
// bias(optional) -> output.
typedef struct {
  dtmm_conv_params conv;
  int32_t out_channels, kernel_h, kernel_w, in_channels;
} dtmm_csr_conv_params;

typedef struct {
  dtmm_fc_params fc;
  int32_t units, depth;
} dtmm_csr_fc_params;

// ADD: inputs a, b (broadcast to the output shape) -> output
typedef struct {
  int32_t input1_offset, input2_offset, output_offset;
  int32_t left_shift;
  int32_t input1_multiplier, input1_shift;
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
} dtmm_add_params;

// MUL: inputs a, b (broadcast) -> output
typedef struct {
  int32_t input1_offset, input2_offset, output_offset;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
} dtmm_mul_params;

// AVERAGE_POOL_2D and MAX_POOL_2D
typedef struct {
  int32_t stride_h, stride_w;
  int32_t filter_h, filter_w;
  int32_t pad_h, pad_w;
  int32_t act_min, act_max;
} dtmm_pool_params;

// MEAN over the axes in axis_mask (bit i = input axis i)
typedef struct {
  uint32_t axis_mask;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier, shift;  // already divided by the reduced element count
} dtmm_mean_params;

// PAD: output = input surrounded by pad_value
typedef struct {
  int32_t before[DTMM_MAX_RANK];
  int32_t after[DTMM_MAX_RANK];
  int32_t pad_value;
} dtmm_pad_params;

// CONCATENATION of all inputs along axis (same quantization everywhere)
typedef struct {
  int32_t axis;
} dtmm_concat_params;

// SOFTMAX over the last axis; output scale 1/256, zero point -128
typedef struct {
  int32_t input_multiplier;
  int32_t input_left_shift;
  int32_t diff_min;
} dtmm_softmax_params;

// LOGISTIC; output scale 1/256, zero point -128
typedef struct {
  int32_t input_zero_point;
  int32_t input_range_radius;
  int32_t input_multiplier;
  int32_t input_left_shift;
} dtmm_logistic_params;

// QUANTIZE: float32 -> int8, or int8 -> int8 requantization
typedef struct {
  float output_scale;
  int32_t output_zero_point;
  int32_t input_zero_point;   // int8 input only
  int32_t multiplier, shift;  // int8 input only
} dtmm_quantize_params;

// DEQUANTIZE: int8 -> float32
typedef struct {
  float scale;
  int32_t zero_point;
} dtmm_dequantize_params;

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // DTMM_FORMAT_H_
