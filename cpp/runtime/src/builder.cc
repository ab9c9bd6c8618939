#include "dtmm/builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "crc32.h"

namespace dtmm {

namespace {

[[noreturn]] void fail(const std::string& op, const std::string& what) {
  throw std::invalid_argument("op '" + op + "': " + what);
}

template <typename T>
std::vector<uint8_t> as_bytes(const T& value) {
  std::vector<uint8_t> b(sizeof(T));
  std::memcpy(b.data(), &value, sizeof(T));
  return b;
}

std::string shape_str(const std::vector<int32_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// TFLite's CalculateActivationRangeQuantized for int8 outputs.
void activation_range(int32_t activation, const TensorSpec& out, const std::string& op, int32_t* lo,
                      int32_t* hi) {
  const auto quantize = [&](float f) {
    return out.zero_point + static_cast<int32_t>(std::round(f / out.scale));
  };
  *lo = -128;
  *hi = 127;
  switch (static_cast<Activation>(activation)) {
    case Activation::kNone: break;
    case Activation::kRelu: *lo = std::max(*lo, quantize(0.0f)); break;
    case Activation::kRelu6:
      *lo = std::max(*lo, quantize(0.0f));
      *hi = std::min(*hi, quantize(6.0f));
      break;
    case Activation::kReluN1To1:
      *lo = std::max(*lo, quantize(-1.0f));
      *hi = std::min(*hi, quantize(1.0f));
      break;
    default: fail(op, "unsupported fused activation " + std::to_string(activation));
  }
  if (*lo > *hi) fail(op, "fused activation range is empty for the output quantization");
}

// TFLite's ComputePaddingWithOffset and ComputeOutSize.
int32_t window_out_size(int32_t padding, int32_t in, int32_t filter, int32_t stride,
                        int32_t dilation) {
  const int32_t effective = (filter - 1) * dilation + 1;
  if (padding == DTMM_PAD_SAME) return (in + stride - 1) / stride;
  return (in - effective + stride) / stride;
}

int32_t window_pad(int32_t padding, int32_t in, int32_t filter, int32_t stride, int32_t dilation) {
  if (padding != DTMM_PAD_SAME) return 0;
  const int32_t out = window_out_size(padding, in, filter, stride, dilation);
  const int32_t effective = (filter - 1) * dilation + 1;
  const int32_t total = std::max((out - 1) * stride + effective - in, 0);
  return total / 2;
}

void check_quantized(const TensorSpec& t, const std::string& op) {
  if (t.dtype == DTMM_INT8 && !(t.scale > 0.0f))
    fail(op, "tensor '" + t.name + "' is int8 but has no positive quantization scale");
}

}  // namespace

void quantize_multiplier(double m, int32_t* quantized, int32_t* shift) {
  if (m == 0.0) {
    *quantized = 0;
    *shift = 0;
    return;
  }
  int exponent = 0;
  const double q = std::frexp(m, &exponent);
  int64_t q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) {
    exponent = 0;
    q_fixed = 0;
  }
  *quantized = static_cast<int32_t>(q_fixed);
  *shift = exponent;
}

void weight_multiplier(double m, Rounding rounding, int32_t* quantized, int32_t* shift) {
  // With shift 0 the kernels' rounding high multiply is the only rounding;
  // the multiplier then has fewer significant bits the smaller m is. Below
  // 2^-11 its precision loss would flip more outputs than TFLite's second
  // rounding does.
  constexpr double kSingleFrom = 1.0 / 2048;
  if (rounding == Rounding::kSingle && m >= kSingleFrom && m < 1.0) {
    const double q = std::round(std::ldexp(m, 31));
    if (q < std::ldexp(1.0, 31)) {
      *quantized = static_cast<int32_t>(q);
      *shift = 0;
      return;
    }
  }
  quantize_multiplier(m, quantized, shift);
}

BlobBuilder::BlobBuilder(bool keep_channel_scales, Rounding rounding)
    : keep_channel_scales_(keep_channel_scales), rounding_(rounding) {
  strings_.push_back('\0');
}

uint32_t BlobBuilder::add_data(const void* data, size_t size, size_t align) {
  while ((sizeof(dtmm_blob_header) + data_.size()) % align) data_.push_back(0);
  const uint32_t offset = static_cast<uint32_t>(sizeof(dtmm_blob_header) + data_.size());
  const uint8_t* p = static_cast<const uint8_t*>(data);
  data_.insert(data_.end(), p, p + size);
  return offset;
}

uint32_t BlobBuilder::add_string(const std::string& s) {
  const uint32_t offset = static_cast<uint32_t>(strings_.size());
  strings_ += s;
  strings_.push_back('\0');
  return offset;
}

uint32_t BlobBuilder::add_tensor(const TensorSpec& s, uint8_t storage, uint32_t offset) {
  if (s.shape.size() > DTMM_MAX_RANK)
    throw std::invalid_argument("tensor '" + s.name + "': rank " + std::to_string(s.shape.size()) +
                                " exceeds the maximum of " + std::to_string(DTMM_MAX_RANK));
  dtmm_tensor_record r{};
  r.dtype = static_cast<uint8_t>(s.dtype);
  r.rank = static_cast<uint8_t>(s.shape.size());
  r.storage = storage;
  r.quant_axis = static_cast<uint8_t>(s.quant_axis);
  uint64_t n = 1;
  for (size_t i = 0; i < s.shape.size(); ++i) {
    if (s.shape[i] < (storage == DTMM_STORAGE_CONST ? 0 : 1))
      throw std::invalid_argument("tensor '" + s.name + "': shape " + shape_str(s.shape) +
                                  " has a non-positive dimension");
    r.dims[i] = s.shape[i];
    n *= static_cast<uint64_t>(s.shape[i]);
  }
  const uint64_t es =
      (s.dtype == DTMM_INT8 || s.dtype == DTMM_UINT8) ? 1 : (s.dtype == DTMM_UINT16 ? 2 : 4);
  if (n * es > UINT32_MAX) throw std::invalid_argument("tensor '" + s.name + "' is too large");
  r.size = static_cast<uint32_t>(n * es);
  r.offset = offset;
  r.scale = s.scale;
  r.zero_point = s.zero_point;
  // Sparse value tensors carry the logical filter's per-channel scales for the
  // builder's use only; the record then keeps the per-tensor fields.
  const bool per_channel_record =
      keep_channel_scales_ && s.channel_scales.size() > 1 &&
      static_cast<size_t>(s.quant_axis) < s.shape.size() &&
      static_cast<size_t>(s.shape[static_cast<size_t>(s.quant_axis)]) == s.channel_scales.size();
  if (per_channel_record) {
    r.num_channels = static_cast<uint32_t>(s.channel_scales.size());
    std::vector<int32_t> zps = s.channel_zero_points;
    zps.resize(s.channel_scales.size(), 0);
    r.channels_offset = add_data(s.channel_scales.data(), 4 * s.channel_scales.size(), 4);
    add_data(zps.data(), 4 * zps.size(), 4);
  }
  r.name = add_string(s.name);
  specs_.push_back(s);
  tensors_.push_back(r);
  return static_cast<uint32_t>(tensors_.size() - 1);
}

uint32_t BlobBuilder::add_folded_bias(uint32_t weights, uint32_t bias, int32_t input_offset,
                                      int32_t channels, bool depthwise) {
  const dtmm_tensor_record& w = tensors_.at(weights);
  if (w.storage != DTMM_STORAGE_CONST || w.dtype != DTMM_INT8)
    throw std::invalid_argument("weights '" + specs_[weights].name + "' must be an int8 constant");
  const int8_t* wd =
      reinterpret_cast<const int8_t*>(data_.data() + (w.offset - sizeof(dtmm_blob_header)));
  const size_t per_channel = w.size / static_cast<size_t>(channels);
  std::vector<uint32_t> folded(static_cast<size_t>(channels), 0);
  if (bias != UINT32_MAX) {
    const dtmm_tensor_record& b = tensors_.at(bias);
    if (b.storage != DTMM_STORAGE_CONST || b.dtype != DTMM_INT32 || b.size != 4u * channels)
      throw std::invalid_argument("bias '" + specs_[bias].name +
                                  "' must be an int32 constant with " + std::to_string(channels) +
                                  " values");
    std::memcpy(folded.data(), data_.data() + (b.offset - sizeof(dtmm_blob_header)), b.size);
  }
  for (int32_t c = 0; c < channels; ++c) {
    int64_t sum = 0;
    for (size_t i = 0; i < per_channel; ++i)
      sum += depthwise ? wd[i * channels + c] : wd[c * per_channel + i];
    // Unsigned arithmetic: the device's int32 accumulation wraps the same way.
    folded[c] += static_cast<uint32_t>(input_offset) * static_cast<uint32_t>(sum);
  }
  return add_data(folded.data(), 4 * folded.size(), 4);
}

const uint8_t* BlobBuilder::constant_bytes(uint32_t index, const std::string& op) const {
  if (index >= tensors_.size() || tensors_[index].storage != DTMM_STORAGE_CONST)
    fail(op, "input " + std::to_string(index) + " must be a constant");
  return data_.data() + (tensors_[index].offset - sizeof(dtmm_blob_header));
}

std::vector<int64_t> BlobBuilder::masked_row_sums(uint32_t values, uint32_t mask, int64_t rows,
                                                  int64_t units_per_row,
                                                  const std::string& op) const {
  const int8_t* v = reinterpret_cast<const int8_t*>(constant_bytes(values, op));
  const uint8_t* m = constant_bytes(mask, op);
  const int64_t width = tensors_[values].rank == 2 ? tensors_[values].dims[1] : 0;
  const int64_t kept = tensors_[values].rank == 2 ? tensors_[values].dims[0] : 0;
  if (static_cast<int64_t>(tensors_[mask].size) * 8 < rows * units_per_row)
    fail(op, "mask has " + std::to_string(tensors_[mask].size * 8) + " bits, needs " +
                 std::to_string(rows * units_per_row));
  std::vector<int64_t> sums(static_cast<size_t>(rows), 0);
  int64_t k = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t u = 0; u < units_per_row; ++u) {
      const int64_t bit = r * units_per_row + u;
      if (!(m[bit >> 3] & (1u << (bit & 7)))) continue;
      if (k >= kept) fail(op, "mask keeps more units than values holds");
      for (int64_t i = 0; i < width; ++i) sums[static_cast<size_t>(r)] += v[k * width + i];
      ++k;
    }
  }
  if (k != kept)
    fail(op, "values hold " + std::to_string(kept) + " units, mask keeps " + std::to_string(k));
  return sums;
}

std::vector<int64_t> BlobBuilder::csr_row_sums(uint32_t values, uint32_t row_ptr, int64_t rows,
                                               const std::string& op) const {
  const int8_t* v = reinterpret_cast<const int8_t*>(constant_bytes(values, op));
  std::vector<int32_t> ptr(static_cast<size_t>(rows) + 1);
  if (tensors_[row_ptr].size != 4 * ptr.size()) fail(op, "row_ptr must hold rows + 1 int32 values");
  std::memcpy(ptr.data(), constant_bytes(row_ptr, op), 4 * ptr.size());
  std::vector<int64_t> sums(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    if (ptr[r] < 0 || ptr[r + 1] < ptr[r] ||
        ptr[r + 1] > static_cast<int32_t>(tensors_[values].size))
      fail(op, "row_ptr is not a valid CSR row pointer");
    for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) sums[static_cast<size_t>(r)] += v[k];
  }
  return sums;
}

uint32_t BlobBuilder::add_folded_bias_sums(const std::vector<int64_t>& weight_sums, uint32_t bias,
                                           int32_t input_offset,
                                           const std::vector<int32_t>& bias_values) {
  std::vector<uint32_t> folded(weight_sums.size(), 0);
  if (!bias_values.empty()) {
    if (bias_values.size() != folded.size())
      throw std::invalid_argument("bias has " + std::to_string(bias_values.size()) +
                                  " values, the layer has " + std::to_string(folded.size()) +
                                  " output channels");
    for (size_t c = 0; c < folded.size(); ++c) folded[c] = static_cast<uint32_t>(bias_values[c]);
  }
  if (bias != UINT32_MAX) {
    const dtmm_tensor_record& b = tensors_.at(bias);
    if (b.storage != DTMM_STORAGE_CONST || b.dtype != DTMM_INT32 || b.size != 4 * folded.size())
      throw std::invalid_argument("bias '" + specs_[bias].name +
                                  "' must be an int32 constant with " +
                                  std::to_string(folded.size()) + " values");
    std::memcpy(folded.data(), data_.data() + (b.offset - sizeof(dtmm_blob_header)), b.size);
  }
  for (size_t c = 0; c < folded.size(); ++c)
    folded[c] += static_cast<uint32_t>(input_offset) * static_cast<uint32_t>(weight_sums[c]);
  return add_data(folded.data(), 4 * folded.size(), 4);
}

uint32_t BlobBuilder::add_quant_table(const TensorSpec& x, const TensorSpec& w, const TensorSpec& y,
                                      int32_t channels) {
  std::vector<int32_t> table(2 * static_cast<size_t>(channels));
  for (int32_t c = 0; c < channels; ++c) {
    const float ws =
        w.channel_scales.size() > 1 ? w.channel_scales.at(static_cast<size_t>(c)) : w.scale;
    const double effective =
        static_cast<double>(x.scale) * static_cast<double>(ws) / static_cast<double>(y.scale);
    weight_multiplier(effective, rounding_, &table[c], &table[channels + c]);
  }
  return add_data(table.data(), 4 * table.size(), 4);
}

uint32_t BlobBuilder::add_activation(const TensorSpec& spec, uint32_t arena_offset) {
  return add_tensor(spec, DTMM_STORAGE_ARENA, arena_offset);
}

uint32_t BlobBuilder::add_constant(const TensorSpec& spec, const void* data, size_t size) {
  const uint32_t offset = add_data(data, size, DTMM_CONST_ALIGN);
  const uint32_t index = add_tensor(spec, DTMM_STORAGE_CONST, offset);
  if (tensors_[index].size != size)
    throw std::invalid_argument("constant '" + spec.name + "': " + std::to_string(size) +
                                " bytes given, shape " + shape_str(spec.shape) + " needs " +
                                std::to_string(tensors_[index].size));
  return index;
}

const TensorSpec& BlobBuilder::spec(uint32_t index, const std::string& op) const {
  if (index >= specs_.size()) fail(op, "tensor index " + std::to_string(index) + " out of range");
  return specs_[index];
}

std::vector<uint8_t> BlobBuilder::params_for(int32_t type, const std::vector<uint32_t>& in,
                                             const std::vector<uint32_t>& out, const OpOptions& o,
                                             const std::string& name) {
  const auto need_inputs = [&](size_t lo, size_t hi) {
    if (in.size() < lo || in.size() > hi || out.size() != 1)
      fail(name, "expects " + std::to_string(lo) + ".." + std::to_string(hi) +
                     " inputs and 1 output, got " + std::to_string(in.size()) + " and " +
                     std::to_string(out.size()));
  };
  switch (type) {
    case DTMM_OP_CONV_2D:
    case DTMM_OP_DEPTHWISE_CONV_2D: {
      need_inputs(2, 3);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& w = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      check_quantized(y, name);
      if (x.shape.size() != 4 || w.shape.size() != 4 || y.shape.size() != 4)
        fail(name, "expects 4-D input, filter and output, got " + shape_str(x.shape) + ", " +
                       shape_str(w.shape) + ", " + shape_str(y.shape));
      dtmm_conv_params p{};
      p.stride_h = o.stride_h;
      p.stride_w = o.stride_w;
      p.dilation_h = o.dilation_h;
      p.dilation_w = o.dilation_w;
      if (p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 || p.dilation_w < 1)
        fail(name, "strides and dilations must be >= 1");
      const int32_t kh = w.shape[1], kw = w.shape[2];
      const int32_t oh = window_out_size(o.padding, x.shape[1], kh, p.stride_h, p.dilation_h);
      const int32_t ow = window_out_size(o.padding, x.shape[2], kw, p.stride_w, p.dilation_w);
      if (oh != y.shape[1] || ow != y.shape[2])
        fail(name, "output spatial size " + std::to_string(y.shape[1]) + "x" +
                       std::to_string(y.shape[2]) + " does not match the expected " +
                       std::to_string(oh) + "x" + std::to_string(ow));
      p.pad_h = window_pad(o.padding, x.shape[1], kh, p.stride_h, p.dilation_h);
      p.pad_w = window_pad(o.padding, x.shape[2], kw, p.stride_w, p.dilation_w);
      p.depth_multiplier = type == DTMM_OP_DEPTHWISE_CONV_2D ? o.depth_multiplier : 0;
      p.input_offset = -x.zero_point;
      p.output_offset = y.zero_point;
      activation_range(o.activation, y, name, &p.act_min, &p.act_max);
      const int32_t channels = type == DTMM_OP_CONV_2D ? w.shape[0] : w.shape[3];
      std::vector<int32_t> table(2 * static_cast<size_t>(channels));
      for (int32_t c = 0; c < channels; ++c) {
        const float ws = w.channel_scales.size() > 1 ? w.channel_scales.at(c) : w.scale;
        const double effective =
            static_cast<double>(x.scale) * static_cast<double>(ws) / static_cast<double>(y.scale);
        weight_multiplier(effective, rounding_, &table[c], &table[channels + c]);
      }
      p.quant_offset = add_data(table.data(), 4 * table.size(), 4);
      p.folded_bias_offset =
          add_folded_bias(in[1], in.size() > 2 ? in[2] : UINT32_MAX, p.input_offset, channels,
                          type == DTMM_OP_DEPTHWISE_CONV_2D);
      return as_bytes(p);
    }
    case DTMM_OP_FULLY_CONNECTED: {
      need_inputs(2, 3);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& w = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      check_quantized(y, name);
      if (w.shape.size() != 2) fail(name, "expects 2-D weights, got " + shape_str(w.shape));
      dtmm_fc_params p{};
      p.input_offset = -x.zero_point;
      p.filter_offset = -w.zero_point;
      p.output_offset = y.zero_point;
      activation_range(o.activation, y, name, &p.act_min, &p.act_max);
      const bool per_channel = w.channel_scales.size() > 1;
      p.num_channels = per_channel ? static_cast<uint32_t>(w.shape[0]) : 1;
      std::vector<int32_t> table(2 * static_cast<size_t>(p.num_channels));
      for (uint32_t c = 0; c < p.num_channels; ++c) {
        const float ws = per_channel ? w.channel_scales.at(c) : w.scale;
        const double effective =
            static_cast<double>(x.scale) * static_cast<double>(ws) / static_cast<double>(y.scale);
        weight_multiplier(effective, rounding_, &table[c], &table[p.num_channels + c]);
      }
      p.quant_offset = add_data(table.data(), 4 * table.size(), 4);
      p.folded_bias_offset = add_folded_bias(in[1], in.size() > 2 ? in[2] : UINT32_MAX,
                                             p.input_offset, w.shape[0], false);
      return as_bytes(p);
    }
    case DTMM_OP_ADD: {
      need_inputs(2, 2);
      const TensorSpec& a = spec(in[0], name);
      const TensorSpec& b = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(a, name);
      check_quantized(b, name);
      check_quantized(y, name);
      dtmm_add_params p{};
      p.left_shift = 20;
      p.input1_offset = -a.zero_point;
      p.input2_offset = -b.zero_point;
      p.output_offset = y.zero_point;
      const double twice_max = 2 * static_cast<double>(std::max(a.scale, b.scale));
      quantize_multiplier(static_cast<double>(a.scale) / twice_max, &p.input1_multiplier,
                          &p.input1_shift);
      quantize_multiplier(static_cast<double>(b.scale) / twice_max, &p.input2_multiplier,
                          &p.input2_shift);
      quantize_multiplier(twice_max / ((1 << p.left_shift) * static_cast<double>(y.scale)),
                          &p.output_multiplier, &p.output_shift);
      activation_range(o.activation, y, name, &p.act_min, &p.act_max);
      return as_bytes(p);
    }
    case DTMM_OP_MUL: {
      need_inputs(2, 2);
      const TensorSpec& a = spec(in[0], name);
      const TensorSpec& b = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(a, name);
      check_quantized(b, name);
      check_quantized(y, name);
      dtmm_mul_params p{};
      p.input1_offset = -a.zero_point;
      p.input2_offset = -b.zero_point;
      p.output_offset = y.zero_point;
      quantize_multiplier(static_cast<double>(a.scale) * static_cast<double>(b.scale) /
                              static_cast<double>(y.scale),
                          &p.output_multiplier, &p.output_shift);
      activation_range(o.activation, y, name, &p.act_min, &p.act_max);
      return as_bytes(p);
    }
    case DTMM_OP_AVERAGE_POOL_2D:
    case DTMM_OP_MAX_POOL_2D: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      if (x.shape.size() != 4 || y.shape.size() != 4)
        fail(name, "expects 4-D input and output, got " + shape_str(x.shape) + " and " +
                       shape_str(y.shape));
      if (x.scale != y.scale || x.zero_point != y.zero_point)
        fail(name, "input and output quantization differ (TFLite requires them equal)");
      dtmm_pool_params p{};
      p.stride_h = o.stride_h;
      p.stride_w = o.stride_w;
      p.filter_h = o.filter_h;
      p.filter_w = o.filter_w;
      const int32_t oh = window_out_size(o.padding, x.shape[1], o.filter_h, o.stride_h, 1);
      const int32_t ow = window_out_size(o.padding, x.shape[2], o.filter_w, o.stride_w, 1);
      if (oh != y.shape[1] || ow != y.shape[2])
        fail(name, "output spatial size does not match the pooling window");
      p.pad_h = window_pad(o.padding, x.shape[1], o.filter_h, o.stride_h, 1);
      p.pad_w = window_pad(o.padding, x.shape[2], o.filter_w, o.stride_w, 1);
      activation_range(o.activation, y, name, &p.act_min, &p.act_max);
      return as_bytes(p);
    }
    case DTMM_OP_MEAN: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      check_quantized(y, name);
      dtmm_mean_params p{};
      int64_t count = 1;
      for (int32_t a : o.axes) {
        const int32_t axis = a < 0 ? a + static_cast<int32_t>(x.shape.size()) : a;
        if (axis < 0 || axis >= static_cast<int32_t>(x.shape.size()))
          fail(name, "axis " + std::to_string(a) + " out of range for input " + shape_str(x.shape));
        if (!(p.axis_mask & (1u << axis))) count *= x.shape[axis];
        p.axis_mask |= 1u << axis;
      }
      if (p.axis_mask == 0) fail(name, "no axes to reduce");
      p.input_zero_point = x.zero_point;
      p.output_zero_point = y.zero_point;
      int32_t mult = 0, shift = 0;
      quantize_multiplier(static_cast<double>(x.scale) / static_cast<double>(y.scale), &mult,
                          &shift);
      // Fold 1/count into the multiplier exactly as TFLite's QuantizedMeanOrSum.
      int s = 63;
      for (uint64_t v = static_cast<uint64_t>(count); !(v & (uint64_t{1} << 63)); v <<= 1) --s;
      s = std::min(s, 32);
      s = std::min(s, 31 + shift);
      p.multiplier = static_cast<int32_t>((static_cast<int64_t>(mult) << s) / count);
      p.shift = shift - s;
      return as_bytes(p);
    }
    case DTMM_OP_PAD: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      if (x.scale != y.scale || x.zero_point != y.zero_point)
        fail(name, "input and output quantization differ");
      if (o.pad_before.size() != x.shape.size() || o.pad_after.size() != x.shape.size())
        fail(name, "padding must have one (before, after) pair per input axis");
      dtmm_pad_params p{};
      for (size_t d = 0; d < x.shape.size(); ++d) {
        p.before[d] = o.pad_before[d];
        p.after[d] = o.pad_after[d];
      }
      p.pad_value = o.has_pad_value ? o.pad_value : y.zero_point;
      return as_bytes(p);
    }
    case DTMM_OP_CONCATENATION: {
      if (in.empty() || out.size() != 1) fail(name, "expects inputs and 1 output");
      const TensorSpec& y = spec(out[0], name);
      for (uint32_t t : in) {
        const TensorSpec& x = spec(t, name);
        if (x.scale != y.scale || x.zero_point != y.zero_point)
          fail(name, "input '" + x.name + "' quantization differs from the output's");
      }
      dtmm_concat_params p{};
      p.axis = o.axis < 0 ? o.axis + static_cast<int32_t>(y.shape.size()) : o.axis;
      return as_bytes(p);
    }
    case DTMM_OP_RESHAPE: need_inputs(1, 1); return {};
    case DTMM_OP_SOFTMAX: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      if (y.scale != 1.0f / 256 || y.zero_point != -128)
        fail(name, "int8 softmax output must have scale 1/256 and zero point -128");
      constexpr int kScaledDiffIntegerBits = 5;
      dtmm_softmax_params p{};
      const double real = std::min<double>(
          static_cast<double>(o.beta) * x.scale * (1 << (31 - kScaledDiffIntegerBits)),
          static_cast<double>((int64_t{1} << 31) - 1));
      quantize_multiplier(real, &p.input_multiplier, &p.input_left_shift);
      const double radius = 1.0 * ((1 << kScaledDiffIntegerBits) - 1) *
                            static_cast<double>(int64_t{1} << (31 - kScaledDiffIntegerBits)) /
                            static_cast<double>(int64_t{1} << p.input_left_shift);
      p.diff_min = -static_cast<int32_t>(std::floor(radius));
      return as_bytes(p);
    }
    case DTMM_OP_LOGISTIC: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      if (y.scale != 1.0f / 256 || y.zero_point != -128)
        fail(name, "int8 logistic output must have scale 1/256 and zero point -128");
      constexpr int kInputIntegerBits = 4;
      dtmm_logistic_params p{};
      p.input_zero_point = x.zero_point;
      const double real = static_cast<double>(x.scale) * (1 << (31 - kInputIntegerBits));
      int exponent = 0;
      const double q = std::frexp(real, &exponent);
      p.input_left_shift = exponent;
      p.input_multiplier =
          static_cast<int32_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
      const double radius = 1.0 * ((1 << kInputIntegerBits) - 1) *
                            static_cast<double>(int64_t{1} << (31 - kInputIntegerBits)) /
                            std::ldexp(1.0, exponent);
      p.input_range_radius = static_cast<int32_t>(std::floor(radius));
      return as_bytes(p);
    }
    case DTMM_OP_QUANTIZE: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(y, name);
      dtmm_quantize_params p{};
      p.output_scale = y.scale;
      p.output_zero_point = y.zero_point;
      if (x.dtype == DTMM_INT8) {
        check_quantized(x, name);
        p.input_zero_point = x.zero_point;
        quantize_multiplier(static_cast<double>(x.scale) / static_cast<double>(y.scale),
                            &p.multiplier, &p.shift);
      } else if (x.dtype != DTMM_FLOAT32) {
        fail(name, "QUANTIZE input must be float32 or int8");
      }
      return as_bytes(p);
    }
    case DTMM_OP_DEQUANTIZE: {
      need_inputs(1, 1);
      const TensorSpec& x = spec(in[0], name);
      check_quantized(x, name);
      dtmm_dequantize_params p{};
      p.scale = x.scale;
      p.zero_point = x.zero_point;
      return as_bytes(p);
    }
    case DTMM_OP_CONV_2D_FWCS:
    case DTMM_OP_CONV_2D_CSR: {
      const bool fwcs = type == DTMM_OP_CONV_2D_FWCS;
      need_inputs(fwcs ? 3 : 4, fwcs ? 3 : 5);  // FWCS folds its bias (options.bias)
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& v = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      check_quantized(y, name);
      if (x.shape.size() != 4 || y.shape.size() != 4) fail(name, "expects 4-D input and output");
      dtmm_fwcs_conv_params p{};
      p.out_channels = y.shape[3];
      p.kernel_h = o.kernel_h;
      p.kernel_w = o.kernel_w;
      p.in_channels = x.shape[3];
      if (p.kernel_h < 1 || p.kernel_w < 1) fail(name, "sparse conv needs kernel_h and kernel_w");
      dtmm_conv_params& c = p.conv;
      c.stride_h = o.stride_h;
      c.stride_w = o.stride_w;
      c.dilation_h = o.dilation_h;
      c.dilation_w = o.dilation_w;
      const int32_t oh =
          window_out_size(o.padding, x.shape[1], p.kernel_h, c.stride_h, c.dilation_h);
      const int32_t ow =
          window_out_size(o.padding, x.shape[2], p.kernel_w, c.stride_w, c.dilation_w);
      if (oh != y.shape[1] || ow != y.shape[2]) fail(name, "output spatial size does not match");
      c.pad_h = window_pad(o.padding, x.shape[1], p.kernel_h, c.stride_h, c.dilation_h);
      c.pad_w = window_pad(o.padding, x.shape[2], p.kernel_w, c.stride_w, c.dilation_w);
      c.input_offset = -x.zero_point;
      c.output_offset = y.zero_point;
      activation_range(o.activation, y, name, &c.act_min, &c.act_max);
      c.quant_offset = add_quant_table(x, v, y, p.out_channels);
      const uint32_t bias = !fwcs && in.size() > 4u ? in[4] : UINT32_MAX;
      const std::vector<int64_t> sums =
          fwcs ? masked_row_sums(in[1], in[2], p.out_channels, int64_t{p.kernel_h} * p.kernel_w,
                                 name)
               : csr_row_sums(in[1], in[3], p.out_channels, name);
      c.folded_bias_offset =
          add_folded_bias_sums(sums, bias, c.input_offset, fwcs ? o.bias : std::vector<int32_t>{});
      return as_bytes(p);  // the CSR params struct has the same layout
    }
    case DTMM_OP_FULLY_CONNECTED_BLOCK:
    case DTMM_OP_FULLY_CONNECTED_CSR: {
      const bool block = type == DTMM_OP_FULLY_CONNECTED_BLOCK;
      need_inputs(block ? 3 : 4, block ? 4 : 5);
      const TensorSpec& x = spec(in[0], name);
      const TensorSpec& v = spec(in[1], name);
      const TensorSpec& y = spec(out[0], name);
      check_quantized(x, name);
      check_quantized(y, name);
      dtmm_block_fc_params p{};
      p.units = y.shape.empty() ? 0 : y.shape.back();
      p.depth = o.depth;
      p.block = block ? (v.shape.size() == 2 ? v.shape[1] : 0) : 0;
      if (p.depth < 1 || (block && p.block < 1))
        fail(name, "sparse FC needs depth (and a block size)");
      dtmm_fc_params& f = p.fc;
      f.input_offset = -x.zero_point;
      f.filter_offset = 0;
      f.output_offset = y.zero_point;
      activation_range(o.activation, y, name, &f.act_min, &f.act_max);
      f.num_channels = v.channel_scales.size() > 1 ? static_cast<uint32_t>(p.units) : 1;
      f.quant_offset = add_quant_table(x, v, y, static_cast<int32_t>(f.num_channels));
      const uint32_t bias = in.size() > (block ? 3u : 4u) ? in[block ? 3 : 4] : UINT32_MAX;
      const std::vector<int64_t> sums =
          block ? masked_row_sums(in[1], in[2], p.units, (p.depth + p.block - 1) / p.block, name)
                : csr_row_sums(in[1], in[3], p.units, name);
      f.folded_bias_offset = add_folded_bias_sums(sums, bias, f.input_offset);
      if (block) return as_bytes(p);
      dtmm_csr_fc_params q{};
      q.fc = f;
      q.units = p.units;
      q.depth = p.depth;
      return as_bytes(q);
    }
    default: fail(name, "unknown op type " + std::to_string(type));
  }
}

void BlobBuilder::add_op(int32_t type, const std::vector<uint32_t>& inputs,
                         const std::vector<uint32_t>& outputs, const OpOptions& options,
                         const std::string& name, uint32_t scratch_offset, uint32_t scratch_size) {
  if (inputs.size() + outputs.size() > DTMM_MAX_OP_IO)
    fail(name, "too many inputs and outputs (" + std::to_string(inputs.size() + outputs.size()) +
                   " > " + std::to_string(DTMM_MAX_OP_IO) + ")");
  const std::vector<uint8_t> params = params_for(type, inputs, outputs, options, name);
  dtmm_op_record r{};
  r.type = static_cast<uint16_t>(type);
  r.num_inputs = static_cast<uint8_t>(inputs.size());
  r.num_outputs = static_cast<uint8_t>(outputs.size());
  std::vector<uint32_t> io(inputs);
  io.insert(io.end(), outputs.begin(), outputs.end());
  r.io_offset = add_data(io.data(), 4 * io.size(), 4);
  r.params_offset = add_data(params.data(), params.size(), 4);
  r.params_size = static_cast<uint32_t>(params.size());
  r.scratch_offset = scratch_offset;
  r.scratch_size = scratch_size;
  r.name = add_string(name);
  ops_.push_back(r);
}

void BlobBuilder::set_io(const std::vector<uint32_t>& inputs,
                         const std::vector<uint32_t>& outputs) {
  io_ = inputs;
  io_.insert(io_.end(), outputs.begin(), outputs.end());
  num_inputs_ = static_cast<uint32_t>(inputs.size());
  num_outputs_ = static_cast<uint32_t>(outputs.size());
}

std::vector<uint8_t> BlobBuilder::finish(uint32_t arena_size) {
  // Layout: header | data (constants, params, index arrays) | tensor table |
  // op table | model io | strings. Data comes first so its offsets are final
  // the moment it is added.
  std::vector<uint8_t> blob(sizeof(dtmm_blob_header));
  blob.insert(blob.end(), data_.begin(), data_.end());
  const auto append_table = [&](const void* p, size_t n) {
    while (blob.size() % 16) blob.push_back(0);
    const uint32_t offset = static_cast<uint32_t>(blob.size());
    const uint8_t* b = static_cast<const uint8_t*>(p);
    blob.insert(blob.end(), b, b + n);
    return offset;
  };
  dtmm_blob_header h{};
  std::memcpy(h.magic, DTMM_MAGIC, 4);
  h.version_major = DTMM_VERSION_MAJOR;
  h.version_minor = DTMM_VERSION_MINOR;
  h.arena_size = arena_size;
  h.data_offset = sizeof(dtmm_blob_header);
  h.data_size = static_cast<uint32_t>(data_.size());
  h.num_tensors = static_cast<uint32_t>(tensors_.size());
  h.tensors_offset = append_table(tensors_.data(), tensors_.size() * sizeof(dtmm_tensor_record));
  h.num_ops = static_cast<uint32_t>(ops_.size());
  h.ops_offset = append_table(ops_.data(), ops_.size() * sizeof(dtmm_op_record));
  h.num_inputs = num_inputs_;
  h.num_outputs = num_outputs_;
  h.io_offset = append_table(io_.data(), io_.size() * 4);
  h.strings_offset = append_table(strings_.data(), strings_.size());
  h.strings_size = static_cast<uint32_t>(strings_.size());
  while (blob.size() % 16) blob.push_back(0);
  h.total_size = static_cast<uint32_t>(blob.size());
  std::memcpy(blob.data(), &h, sizeof(h));
  h.checksum = crc32(blob.data() + DTMM_CHECKSUM_START, blob.size() - DTMM_CHECKSUM_START);
  std::memcpy(blob.data(), &h, sizeof(h));
  return blob;
}

}  // namespace dtmm
