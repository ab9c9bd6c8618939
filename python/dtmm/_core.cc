// pybind11 bindings: the blob builder and a host interpreter over the C API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../cpp/runtime/src/fixedpoint.h"
#include "dtmm/builder.hpp"
#include "dtmm/dtmm.h"

namespace py = pybind11;

namespace {

// 16-byte aligned storage owned by the interpreter (left uninitialized: the
// loader guarantees every activation is written before it is read).
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : raw(new uint8_t[n + 16]) {
    auto p = reinterpret_cast<uintptr_t>(raw.get());
    offset = (16 - p % 16) % 16;
  }
  uint8_t* data() { return raw.get() + offset; }
  std::unique_ptr<uint8_t[]> raw;
  size_t offset;
};

// The host refuses arenas beyond this before allocating them: a hostile
// header must not be able to make the process reserve gigabytes.
constexpr size_t kMaxHostArena = size_t{1} << 30;

py::dtype numpy_dtype(uint32_t dtype) {
  switch (dtype) {
    case DTMM_INT8: return py::dtype::of<int8_t>();
    case DTMM_INT32: return py::dtype::of<int32_t>();
    default: return py::dtype::of<float>();
  }
}

class Interpreter {
 public:
  Interpreter(py::bytes blob_bytes, bool reference, bool workspace) {
    const std::string blob = blob_bytes;
    blob_ = std::make_unique<AlignedBuffer>(blob.size());
    std::memcpy(blob_->data(), blob.data(), blob.size());
    size_t arena_size = 0;
    dtmm_status s = dtmm_blob_arena_size(blob_->data(), blob.size(), &arena_size);
    if (s == DTMM_OK && arena_size > kMaxHostArena)
      throw py::value_error("invalid dtmm model blob: it asks for an arena of " +
                            std::to_string(arena_size) + " bytes (the host limit is 1 GiB)");
    if (s == DTMM_OK) {
      arena_ = std::make_unique<AlignedBuffer>(arena_size);
      s = dtmm_init(&model_, blob_->data(), blob.size(), arena_->data(), arena_size);
    }
    if (s != DTMM_OK) {
      std::string msg = std::string("invalid dtmm model blob: ") + dtmm_status_name(s);
      if (model_.error_op != UINT32_MAX) msg += " (op #" + std::to_string(model_.error_op) + ")";
      if (model_.error_tensor != UINT32_MAX)
        msg += " (tensor #" + std::to_string(model_.error_tensor) + ")";
      throw py::value_error(msg);
    }
    model_.reference_kernels = reference ? 1 : 0;
    const size_t bytes = workspace ? dtmm_host_workspace_size(&model_) : 0;
    if (bytes > 0 && bytes <= kMaxHostArena) {
      workspace_ = std::make_unique<AlignedBuffer>(bytes);
      model_.workspace = workspace_->data();
      model_.workspace_size = static_cast<uint32_t>(bytes);
    }
  }

  size_t arena_size() const { return model_.arena_size; }

  py::list describe(bool inputs) const {
    py::list out;
    const uint32_t n = inputs ? dtmm_num_inputs(&model_) : dtmm_num_outputs(&model_);
    for (uint32_t i = 0; i < n; ++i) {
      dtmm_tensor t;
      if (inputs)
        dtmm_input(&model_, i, &t);
      else
        dtmm_output(&model_, i, &t);
      py::dict d;
      d["name"] = std::string(t.name);
      d["shape"] = py::tuple(py::cast(std::vector<int32_t>(t.dims, t.dims + t.rank)));
      d["dtype"] = numpy_dtype(t.dtype);
      d["scale"] = t.scale;
      d["zero_point"] = t.zero_point;
      out.append(d);
    }
    return out;
  }

  void set_input(uint32_t index, py::buffer data) {
    dtmm_tensor t;
    if (dtmm_input(&model_, index, &t) != DTMM_OK) throw py::index_error("no such input");
    const py::buffer_info info = data.request();
    if (static_cast<size_t>(info.size * info.itemsize) != t.size)
      throw py::value_error("input byte size mismatch");
    std::memcpy(t.data, info.ptr, t.size);
  }

  py::array get_output(uint32_t index) const {
    dtmm_tensor t;
    if (dtmm_output(&model_, index, &t) != DTMM_OK) throw py::index_error("no such output");
    std::vector<py::ssize_t> shape(t.dims, t.dims + t.rank);
    py::array a(numpy_dtype(t.dtype), shape);
    std::memcpy(a.mutable_data(), t.data, t.size);
    return a;
  }

  void invoke() {
    py::gil_scoped_release release;
    dtmm_invoke(&model_);
  }

  // Runs every op once, returning seconds spent in each.
  std::vector<double> invoke_timed() {
    std::vector<double> times(dtmm_num_ops(&model_));
    py::gil_scoped_release release;
    for (uint32_t k = 0; k < times.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      dtmm_invoke_op(&model_, k);
      times[k] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return times;
  }

  py::list ops() const {
    py::list out;
    const auto* records =
        reinterpret_cast<const dtmm_op_record*>(model_.blob + model_.header->ops_offset);
    for (uint32_t k = 0; k < dtmm_num_ops(&model_); ++k) {
      const dtmm_op_record& r = records[k];
      const auto* io = reinterpret_cast<const uint32_t*>(model_.blob + r.io_offset);
      py::dict d;
      d["name"] = std::string(dtmm_op_name(&model_, k));
      d["type"] = std::string(dtmm_op_type_name(dtmm_op_kind(&model_, k)));
      std::vector<int64_t> ins, outs;
      for (uint32_t j = 0; j < r.num_inputs; ++j)
        ins.push_back(io[j] == UINT32_MAX ? int64_t{-1} : static_cast<int64_t>(io[j]));
      for (uint32_t j = 0; j < r.num_outputs; ++j) outs.push_back(io[r.num_inputs + j]);
      d["inputs"] = ins;
      d["outputs"] = outs;
      d["scratch"] = r.scratch_size;
      // The logical dense weight shape of the sparse formats, for inspection.
      if (r.type == DTMM_OP_CONV_2D_FWCS || r.type == DTMM_OP_CONV_2D_CSR) {
        const auto* p =
            reinterpret_cast<const dtmm_fwcs_conv_params*>(model_.blob + r.params_offset);
        d["dense_shape"] =
            py::make_tuple(p->out_channels, p->kernel_h, p->kernel_w, p->in_channels);
      } else if (r.type == DTMM_OP_FULLY_CONNECTED_BLOCK) {
        const auto* p =
            reinterpret_cast<const dtmm_block_fc_params*>(model_.blob + r.params_offset);
        d["dense_shape"] = py::make_tuple(p->units, p->depth);
      } else if (r.type == DTMM_OP_FULLY_CONNECTED_CSR) {
        const auto* p = reinterpret_cast<const dtmm_csr_fc_params*>(model_.blob + r.params_offset);
        d["dense_shape"] = py::make_tuple(p->units, p->depth);
      }
      out.append(d);
    }
    return out;
  }

  py::list tensors() const {
    py::list out;
    const uint32_t n = model_.header->num_tensors;
    const auto* records =
        reinterpret_cast<const dtmm_tensor_record*>(model_.blob + model_.header->tensors_offset);
    for (uint32_t i = 0; i < n; ++i) {
      dtmm_tensor t;
      dtmm_tensor_info(&model_, i, &t);
      py::dict d;
      d["name"] = std::string(t.name);
      d["shape"] = py::tuple(py::cast(std::vector<int32_t>(t.dims, t.dims + t.rank)));
      d["dtype"] = static_cast<int>(t.dtype);
      d["bytes"] = t.size;
      d["constant"] = records[i].storage == DTMM_STORAGE_CONST;
      d["offset"] = records[i].offset;
      out.append(d);
    }
    return out;
  }

 private:
  std::unique_ptr<AlignedBuffer> blob_;
  std::unique_ptr<AlignedBuffer> arena_;
  std::unique_ptr<AlignedBuffer> workspace_;
  dtmm_model model_{};
};

dtmm::TensorSpec make_spec(const std::string& name, int32_t dtype, std::vector<int32_t> shape,
                           float scale, int32_t zero_point, std::vector<float> channel_scales,
                           std::vector<int32_t> channel_zero_points, int32_t quant_axis) {
  dtmm::TensorSpec s;
  s.name = name;
  s.dtype = dtype;
  s.shape = std::move(shape);
  s.scale = scale;
  s.zero_point = zero_point;
  s.channel_scales = std::move(channel_scales);
  s.channel_zero_points = std::move(channel_zero_points);
  s.quant_axis = quant_axis;
  return s;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "dtmm native core: model blob builder and host runtime";
  py::register_exception<std::invalid_argument>(m, "BuildError", PyExc_ValueError);

  py::class_<dtmm::OpOptions>(m, "OpOptions")
      .def(py::init<>())
      .def_readwrite("stride_h", &dtmm::OpOptions::stride_h)
      .def_readwrite("stride_w", &dtmm::OpOptions::stride_w)
      .def_readwrite("dilation_h", &dtmm::OpOptions::dilation_h)
      .def_readwrite("dilation_w", &dtmm::OpOptions::dilation_w)
      .def_readwrite("padding", &dtmm::OpOptions::padding)
      .def_readwrite("activation", &dtmm::OpOptions::activation)
      .def_readwrite("depth_multiplier", &dtmm::OpOptions::depth_multiplier)
      .def_readwrite("filter_h", &dtmm::OpOptions::filter_h)
      .def_readwrite("filter_w", &dtmm::OpOptions::filter_w)
      .def_readwrite("axes", &dtmm::OpOptions::axes)
      .def_readwrite("axis", &dtmm::OpOptions::axis)
      .def_readwrite("pad_before", &dtmm::OpOptions::pad_before)
      .def_readwrite("pad_after", &dtmm::OpOptions::pad_after)
      .def_readwrite("pad_value", &dtmm::OpOptions::pad_value)
      .def_readwrite("has_pad_value", &dtmm::OpOptions::has_pad_value)
      .def_readwrite("beta", &dtmm::OpOptions::beta)
      .def_readwrite("kernel_h", &dtmm::OpOptions::kernel_h)
      .def_readwrite("kernel_w", &dtmm::OpOptions::kernel_w)
      .def_readwrite("depth", &dtmm::OpOptions::depth)
      .def_readwrite("bias", &dtmm::OpOptions::bias);

  py::class_<dtmm::BlobBuilder>(m, "BlobBuilder")
      .def(py::init([](bool keep_channel_scales, bool single_rounding) {
             return dtmm::BlobBuilder(keep_channel_scales, single_rounding
                                                               ? dtmm::Rounding::kSingle
                                                               : dtmm::Rounding::kTflite);
           }),
           py::arg("keep_channel_scales") = false, py::arg("single_rounding") = false)
      .def(
          "add_activation",
          [](dtmm::BlobBuilder& b, const std::string& name, int32_t dtype,
             std::vector<int32_t> shape, float scale, int32_t zp, uint32_t offset) {
            return b.add_activation(make_spec(name, dtype, std::move(shape), scale, zp, {}, {}, 0),
                                    offset);
          },
          py::arg("name"), py::arg("dtype"), py::arg("shape"), py::arg("scale"),
          py::arg("zero_point"), py::arg("offset"))
      .def(
          "add_constant",
          [](dtmm::BlobBuilder& b, const std::string& name, int32_t dtype,
             std::vector<int32_t> shape, float scale, int32_t zp, std::vector<float> ch_scales,
             std::vector<int32_t> ch_zps, int32_t axis, py::bytes data) {
            const std::string bytes = data;
            return b.add_constant(make_spec(name, dtype, std::move(shape), scale, zp,
                                            std::move(ch_scales), std::move(ch_zps), axis),
                                  bytes.data(), bytes.size());
          },
          py::arg("name"), py::arg("dtype"), py::arg("shape"), py::arg("scale"),
          py::arg("zero_point"), py::arg("channel_scales"), py::arg("channel_zero_points"),
          py::arg("quant_axis"), py::arg("data"))
      .def("add_op", &dtmm::BlobBuilder::add_op, py::arg("type"), py::arg("inputs"),
           py::arg("outputs"), py::arg("options"), py::arg("name"), py::arg("scratch_offset") = 0,
           py::arg("scratch_size") = 0)
      .def("set_io", &dtmm::BlobBuilder::set_io)
      .def("finish", [](dtmm::BlobBuilder& b, uint32_t arena_size) {
        const std::vector<uint8_t> blob = b.finish(arena_size);
        return py::bytes(reinterpret_cast<const char*>(blob.data()), blob.size());
      });

  py::class_<Interpreter>(m, "Interpreter")
      .def(py::init<py::bytes, bool, bool>(), py::arg("blob"), py::arg("reference") = false,
           py::arg("workspace") = true)
      .def_property_readonly("arena_size", &Interpreter::arena_size)
      .def("inputs", [](const Interpreter& i) { return i.describe(true); })
      .def("outputs", [](const Interpreter& i) { return i.describe(false); })
      .def("set_input", &Interpreter::set_input)
      .def("get_output", &Interpreter::get_output)
      .def("invoke", &Interpreter::invoke)
      .def("invoke_timed", &Interpreter::invoke_timed)
      .def("ops", &Interpreter::ops)
      .def("tensors", &Interpreter::tensors);

  m.def(
      "quantize_multiplier",
      [](double real) {
        int32_t q = 0, shift = 0;
        dtmm::quantize_multiplier(real, &q, &shift);
        return py::make_tuple(q, shift);
      },
      "TFLite's QuantizeMultiplier: (q, shift) with real = q * 2^(shift - 31)");
  m.def(
      "weight_multiplier",
      [](double real, bool single_rounding) {
        int32_t q = 0, shift = 0;
        dtmm::weight_multiplier(
            real, single_rounding ? dtmm::Rounding::kSingle : dtmm::Rounding::kTflite, &q, &shift);
        return py::make_tuple(q, shift);
      },
      py::arg("real"), py::arg("single_rounding") = false,
      "A conv or fully connected layer's (q, shift) as the compiler encodes it");
  m.def("multiply_by_quantized_multiplier", &dtmm::multiply_by_quantized_multiplier,
        "TFLite's MultiplyByQuantizedMultiplier (the runtime's own implementation)");

  py::dict ops;
  for (int t = 1; t < DTMM_OP_COUNT_; ++t) ops[dtmm_op_type_name(t)] = t;
  m.attr("OP_TYPES") = ops;
  m.attr("INT8") = static_cast<int>(DTMM_INT8);
  m.attr("INT32") = static_cast<int>(DTMM_INT32);
  m.attr("FLOAT32") = static_cast<int>(DTMM_FLOAT32);
  m.attr("UINT8") = static_cast<int>(DTMM_UINT8);
  m.attr("UINT16") = static_cast<int>(DTMM_UINT16);
  m.attr("PAD_VALID") = static_cast<int>(DTMM_PAD_VALID);
  m.attr("PAD_SAME") = static_cast<int>(DTMM_PAD_SAME);
}
