// The run convolution (conv_runs.h): the pixel-group driver, with the Helium
// loops (cpp/kernels_helium/conv_runs_helium.h) or portable ones.
#include "conv_runs.h"

#include "../fixedpoint.h"
#include "dot.h"
#include "window.h"
#if defined(__ARM_FEATURE_MVE)
#include "conv_runs_helium.h"
#include "conv_stream_helium.h"
#endif

namespace dtmm {

bool conv_runs_fits(int32_t kh, int32_t kw, int32_t ic, int32_t pad_h, int32_t pad_w) {
  const int64_t window = int64_t{kh} * kw * ic;
#if !defined(__ARM_FEATURE_MVE)
  // The portable loops read unpadded 1x1 windows in place.
  if (kh == 1 && kw == 1 && pad_h == 0 && pad_w == 0) return window <= UINT16_MAX;
#else
  (void)pad_h;
  (void)pad_w;
#endif
  return window <= kRunConvMaxWindow;
}

RunConv run_conv_for(const OpContext& ctx, const dtmm_conv_params& p, int32_t kh, int32_t kw,
                     int32_t oc_count) {
  const auto& in = ctx.in(0);
  const auto& out = ctx.out();
  RunConv c{};
  c.input = ctx.in_data<int8_t>(0);
  c.batches = in.dims[0];
  c.ih = in.dims[1];
  c.iw = in.dims[2];
  c.ic = in.dims[3];
  c.kh = kh;
  c.kw = kw;
  c.stride_h = p.stride_h;
  c.stride_w = p.stride_w;
  c.pad_h = p.pad_h;
  c.pad_w = p.pad_w;
  c.oh = out.dims[1];
  c.ow = out.dims[2];
  c.pad_value = static_cast<int8_t>(-p.input_offset);
  c.oc_begin = 0;
  c.oc_end = oc_count;
  c.out_channels = oc_count;
  c.folded_bias = ctx.blob_i32(p.folded_bias_offset);
  c.multiplier = ctx.blob_i32(p.quant_offset);
  c.shift = c.multiplier + oc_count;
  c.output_offset = p.output_offset;
  c.act_min = p.act_min;
  c.act_max = p.act_max;
  c.output = ctx.out_data<int8_t>();
  return c;
}

HeadBuilder::HeadBuilder(RunConv& c, int32_t oc_begin, int32_t oc_end, FilterHead* heads,
                         int8_t* row)
    : c_(c), heads_(heads), row_(row), last_(oc_begin - 1) {
  c.oc_begin = oc_begin;
  c.oc_end = oc_end;
  c.heads = heads;
  c.filters = 0;
  c.constants = nullptr;
  c.shifts = shift_form(c.shift, oc_begin, oc_end);
}

void HeadBuilder::add_constant(int32_t oc) {
#if defined(__ARM_FEATURE_MVE)
  // Four channels a vector cost less than the scalar requantization of one
  // (about 56 instructions).
  (void)oc;
  helium::constant_row(c_, row_);
#else
  const int32_t v =
      multiply_by_quantized_multiplier(c_.folded_bias[oc], c_.multiplier[oc], c_.shift[oc]);
  row_[oc - c_.oc_begin] =
      static_cast<int8_t>(clamp_i32(v + c_.output_offset, c_.act_min, c_.act_max));
#endif
  c_.constants = row_;
}

void set_heads(RunConv& c, int32_t oc_begin, int32_t oc_end, FilterHead* heads) {
  HeadBuilder builder(c, oc_begin, oc_end, heads, nullptr);
  for (int32_t oc = oc_begin; oc < oc_end; ++oc) builder.add(oc, 1);
}

namespace {

// An output pixel: its image and the top-left corner of its window there
// (negative or past the edge inside the padding).
struct Pixel {
  const int8_t* image;
  int32_t y0, x0;
};

// Walks the output pixels in NHWC order.
class PixelCursor {
 public:
  explicit PixelCursor(const RunConv& c) : c_(c) {}
  Pixel peek() const {
    return Pixel{c_.input + static_cast<ptrdiff_t>(b_) * c_.ih * c_.iw * c_.ic,
                 y_ * c_.stride_h - c_.pad_h, x_ * c_.stride_w - c_.pad_w};
  }
  Pixel next() {
    const Pixel p = peek();
    advance(1);
    return p;
  }
  // Whether the next four pixels lie on one output row.
  bool four_on_row() const { return x_ + 4 <= c_.ow; }
  // Whether, besides, every window lies inside the image.
  bool four_inside() const {
    const Pixel p = peek();
    return four_on_row() && p.y0 >= 0 && p.y0 + c_.kh <= c_.ih && p.x0 >= 0 &&
           p.x0 + 3 * c_.stride_w + c_.kw <= c_.iw;
  }
  void advance(int32_t n) {  // n <= pixels left in the row
    if ((x_ += n) < c_.ow) return;
    x_ = 0;
    if (++y_ < c_.oh) return;
    y_ = 0;
    ++b_;
  }

 private:
  const RunConv& c_;
  int32_t b_ = 0, y_ = 0, x_ = 0;
};

#if !defined(__ARM_FEATURE_MVE)
// Every filter with runs against the four windows, with the portable dot
// products.
void run_filters(const RunConv& c, const int8_t* const win[4], int32_t lanes, int8_t* out) {
  const int8_t* values = c.values;
  const ConvRun* run = c.runs;
  const FilterHead* h = c.heads;
  int32_t oc = c.oc_begin - 1;
  for (int32_t f = 0; f < c.filters; ++f, ++h) {
    oc += h->step;
    int32_t acc[4] = {0, 0, 0, 0};
    for (int32_t r = 0; r < h->runs; ++r) {
      const int32_t off = run[r].offset, len = run[r].length;
      dot4x_i8(win[0] + off, win[1] + off, win[2] + off, win[3] + off, values, len, acc);
      values += len;
    }
    if (!c.dense) run += h->runs;
    for (int32_t q = 0; q < lanes; ++q) {
      const int32_t v =
          multiply_by_quantized_multiplier(fx::add(acc[q], h->bias), h->multiplier, h->shift);
      out[q * c.out_channels + oc] =
          static_cast<int8_t>(clamp_i32(v + c.output_offset, c.act_min, c.act_max));
    }
  }
}
#endif

// The outputs of c's filters without runs at `pixels` consecutive output
// pixels (the filters with runs then overwrite theirs).
void copy_constants(const RunConv& c, int32_t pixels, int8_t* out) {
#if defined(__ARM_FEATURE_MVE)
  helium::store_constants(c, pixels, out);
#else
  for (int32_t q = 0; q < pixels; ++q, out += c.out_channels) {
    memcpy(out + c.oc_begin, c.constants, static_cast<size_t>(c.oc_end - c.oc_begin));
  }
#endif
}

// Four output pixels at a time, their windows copied side by side (on
// Helium: the layers that stream_rows does not take).
void run_groups(const RunConv& c) {
  const int32_t window = c.kh * c.kw * c.ic;
  // Side-by-side windows are 16-byte multiples apart, with 16 spare bytes
  // after the last for a partial vector's unpredicated window loads.
  const int32_t stride = (window + 15) & ~15;
  alignas(16) int8_t patch[4 * kRunConvMaxWindow + 16];
#if defined(__ARM_FEATURE_MVE)
  // A group on one output row whose windows reach into the padding is first
  // copied, padding included, into a tile after the patch when it fits there
  // (the group's kh rows, 3 * stride + kw taps wide); its windows then lie
  // inside the tile and go into the patch as an inner group's do.
  const int32_t span = 3 * c.stride_w + c.kw;
  const int32_t tile_at = 4 * stride + 16;
  int8_t* const tile = patch + tile_at;
  const bool tiles = tile_at + c.kh * span * c.ic <= static_cast<int32_t>(sizeof(patch));
  const ptrdiff_t step = static_cast<ptrdiff_t>(c.stride_w) * c.ic;
  // Dense windows of at most 16 (32) bytes lie 16 (32) apart: one (two)
  // vectors each, for the assembly loops.
  const bool small_window = c.dense && c.shifts.nonpositive && window <= 32;
  helium::FilterLoop loop(c, 4);
#endif
  const int64_t pixels = int64_t{c.batches} * c.oh * c.ow;
  PixelCursor cursor(c);
  for (int64_t n0 = 0; n0 < pixels; n0 += 4) {
    const int32_t lanes = pixels - n0 < 4 ? static_cast<int32_t>(pixels - n0) : 4;
    int8_t* out = c.output + n0 * c.out_channels;
    Pixel px{};
    if (c.filters == 0) {  // only constant outputs: no window to copy
      copy_constants(c, lanes, out);
      continue;
    }
#if defined(__ARM_FEATURE_MVE)
    const bool inside = cursor.four_inside();
    if (inside || (tiles && cursor.four_on_row())) {
      px = cursor.peek();
      cursor.advance(4);
      const int8_t* origin = px.image + (static_cast<ptrdiff_t>(px.y0) * c.iw + px.x0) * c.ic;
      ptrdiff_t row = static_cast<ptrdiff_t>(c.iw) * c.ic;
      if (!inside) {
        copy_window(px.image, c.ih, c.iw, c.ic, px.y0, px.x0, c.kh, span, c.pad_value, tile);
        origin = tile;
        row = static_cast<ptrdiff_t>(span) * c.ic;
      }
      helium::side_by_side_row_group(c, origin, row, step, patch, stride);
    } else {
      // Spare lanes of the last group repeat its last pixel (computed, and
      // stored to where the last pixel's outputs go, with the same values).
      for (int32_t q = 0; q < 4; ++q) {
        if (q < lanes) px = cursor.next();
        copy_window(px.image, c.ih, c.iw, c.ic, px.y0, px.x0, c.kh, c.kw, c.pad_value,
                    patch + q * stride);
      }
    }
    if (c.constants) copy_constants(c, lanes, out);
    if (lanes < 4) loop = helium::FilterLoop(c, lanes);
    if (small_window && window <= 16) {
      helium::filters_small_window(c, loop, patch, out);
    } else if (small_window) {
      helium::filters_pair_window(c, loop, patch, out);
    } else if (c.dense) {
      helium::filters_side_by_side<true>(c, patch, stride, lanes, out);
    } else {
      helium::filters_side_by_side<false>(c, patch, stride, lanes, out);
    }
#else
    const int8_t* win[4];
    const bool in_place = c.kh == 1 && c.kw == 1 && c.pad_h == 0 && c.pad_w == 0;
    for (int32_t q = 0; q < 4; ++q) {
      if (q < lanes) px = cursor.next();
      if (in_place) {
        win[q] = px.image + (static_cast<ptrdiff_t>(px.y0) * c.iw + px.x0) * c.ic;
        continue;
      }
      copy_window(px.image, c.ih, c.iw, c.ic, px.y0, px.x0, c.kh, c.kw, c.pad_value,
                  patch + q * stride);
      win[q] = patch + q * stride;
    }
    if (c.constants) copy_constants(c, lanes, out);
    run_filters(c, win, lanes, out);
#endif
  }
}

}  // namespace

bool reads_block_lists(const RunConv& c) {
#if defined(__ARM_FEATURE_MVE)
  return helium::stream_shape(c).groups > 0;
#else
  (void)c;
  return false;
#endif
}

void conv_runs(const RunConv& c) {
#if defined(__ARM_FEATURE_MVE)
  const helium::Strip shape = helium::stream_shape(c);
  if (shape.groups > 0) {
    helium::stream_rows(c, shape);
    return;
  }
#endif
  run_groups(c);
}

}  // namespace dtmm
