// Host-side writer of the model blob (not part of the device runtime).
//
// The compiler (Python, through pybind11) describes tensors, ops and the
// memory plan; the builder computes every op's fixed-point parameters with
// TFLite's formulas and lays out the bytes defined in format.h. Errors are
// std::invalid_argument with a message naming the op or tensor.
#ifndef DTMM_BUILDER_HPP_
#define DTMM_BUILDER_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "dtmm/format.h"

namespace dtmm {

enum class Activation : int32_t { kNone = 0, kRelu = 1, kReluN1To1 = 2, kRelu6 = 3 };

struct TensorSpec {
  std::string name;
  int32_t dtype = DTMM_INT8;
  std::vector<int32_t> shape;
  float scale = 0.0f;
  int32_t zero_point = 0;
  std::vector<float> channel_scales;  // per-channel quantization (weights)
  std::vector<int32_t> channel_zero_points;
  int32_t quant_axis = 0;
};

struct OpOptions {
  int32_t stride_h = 1, stride_w = 1;
  int32_t dilation_h = 1, dilation_w = 1;
  int32_t padding = DTMM_PAD_VALID;
  int32_t activation = 0;  // Activation
  int32_t depth_multiplier = 1;
  int32_t filter_h = 1, filter_w = 1;  // pooling window
  std::vector<int32_t> axes;           // MEAN
  int32_t axis = 0;                    // CONCATENATION
  std::vector<int32_t> pad_before, pad_after;
  int32_t pad_value = 0;
  bool has_pad_value = false;          // else the output zero point
  float beta = 1.0f;                   // SOFTMAX
  int32_t kernel_h = 0, kernel_w = 0;  // sparse convs: the logical filter's taps
  int32_t depth = 0;                   // sparse fully connected: inputs per unit
  std::vector<int32_t> bias;           // CONV_2D_FWCS: bias folded in, not stored
};

// How the requantization of a conv's or fully connected layer's accumulator
// (real scale m = input scale * weight scale / output scale) is encoded.
// Both run on the same kernels; only the (multiplier, shift) table differs.
enum class Rounding {
  // TFLite's: a Q31 multiplier in [0.5, 1) and a shift. With a right shift
  // the product is rounded twice; bit-exact with TFLite Micro.
  kTflite,
  // One rounding of acc * m, as ONNX's QuantizeLinear after a float conv
  // (what onnxruntime computes): for 2^-11 <= m < 1 the multiplier is
  // m * 2^31 and the shift 0, which the kernels round once; outside that
  // range, kTflite's encoding (there it is the more exact of the two).
  kSingle,
};

class BlobBuilder {
 public:
  // keep_channel_scales: also store per-channel weight scales in the tensor
  // table (the runtime never reads them: they are folded into the
  // requantization tables); off saves 8 bytes per output channel of flash.
  explicit BlobBuilder(bool keep_channel_scales = false, Rounding rounding = Rounding::kTflite);
  // An activation at a planned arena offset; returns its tensor index.
  uint32_t add_activation(const TensorSpec& spec, uint32_t arena_offset);
  // A constant; its bytes are copied into the blob, 16-byte aligned.
  uint32_t add_constant(const TensorSpec& spec, const void* data, size_t size);
  // inputs may contain UINT32_MAX for an absent optional input (bias).
  void add_op(int32_t type, const std::vector<uint32_t>& inputs,
              const std::vector<uint32_t>& outputs, const OpOptions& options,
              const std::string& name, uint32_t scratch_offset = 0, uint32_t scratch_size = 0);
  void set_io(const std::vector<uint32_t>& inputs, const std::vector<uint32_t>& outputs);
  std::vector<uint8_t> finish(uint32_t arena_size);

 private:
  uint32_t add_data(const void* data, size_t size, size_t align);
  uint32_t add_string(const std::string& s);
  uint32_t add_tensor(const TensorSpec& spec, uint8_t storage, uint32_t offset);
  const TensorSpec& spec(uint32_t index, const std::string& op) const;
  std::vector<uint8_t> params_for(int32_t type, const std::vector<uint32_t>& in,
                                  const std::vector<uint32_t>& out, const OpOptions& o,
                                  const std::string& name);
  // bias + input_offset * (sum of each output channel's weights), wrapping.
  uint32_t add_folded_bias(uint32_t weights, uint32_t bias, int32_t input_offset, int32_t channels,
                           bool depthwise);
  uint32_t add_folded_bias_sums(const std::vector<int64_t>& weight_sums, uint32_t bias,
                                int32_t input_offset, const std::vector<int32_t>& bias_values = {});
  // Per-output-channel weight sums of a sparse weight encoding.
  std::vector<int64_t> masked_row_sums(uint32_t values, uint32_t mask, int64_t rows,
                                       int64_t units_per_row, const std::string& op) const;
  std::vector<int64_t> csr_row_sums(uint32_t values, uint32_t row_ptr, int64_t rows,
                                    const std::string& op) const;
  const uint8_t* constant_bytes(uint32_t index, const std::string& op) const;
  // The (multiplier, shift) table for an op whose weights carry the scales.
  uint32_t add_quant_table(const TensorSpec& x, const TensorSpec& w, const TensorSpec& y,
                           int32_t channels);

  std::vector<uint8_t> data_;  // starts at blob offset sizeof(dtmm_blob_header)
  std::string strings_;
  std::vector<TensorSpec> specs_;
  std::vector<dtmm_tensor_record> tensors_;
  std::vector<dtmm_op_record> ops_;
  std::vector<uint32_t> io_;
  uint32_t num_inputs_ = 0, num_outputs_ = 0;
  bool keep_channel_scales_ = false;
  Rounding rounding_ = Rounding::kTflite;
};

// TFLite's QuantizeMultiplier: m = q * 2^shift with q a Q31 value in [0.5, 1).
void quantize_multiplier(double m, int32_t* quantized, int32_t* shift);

// A weight layer's requantization multiplier for real scale m under
// `rounding` (see Rounding).
void weight_multiplier(double m, Rounding rounding, int32_t* quantized, int32_t* shift);

}  // namespace dtmm

#endif  // DTMM_BUILDER_HPP_
