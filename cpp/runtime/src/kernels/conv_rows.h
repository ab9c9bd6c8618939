// The hot loop of the optimized CONV_2D: output pixels whose window lies
// inside the input. A portable version and, on x86-64 hosts, an AVX2 version
// of the same loop (chosen at run time) compute identical integers.
#ifndef DTMM_SRC_KERNELS_CONV_ROWS_H_
#define DTMM_SRC_KERNELS_CONV_ROWS_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DTMM_X86_SIMD 1
#else
#define DTMM_X86_SIMD 0
#endif

namespace dtmm {

// Offsets are ptrdiff_t: 32-bit arithmetic on Cortex-M (int64 costs two
// instructions per add there), 64-bit on hosts.
struct ConvRows {
  const int8_t* window;          // first input byte of the first pixel's window
  ptrdiff_t pixel_step;          // input bytes between consecutive output pixels
  ptrdiff_t in_row;              // input bytes between window rows (W * C_in)
  int32_t num_pixels;            // consecutive output pixels of one output row
  int32_t num_rows;              // output rows of such pixels
  ptrdiff_t window_row_step;     // input bytes between the windows of successive rows
  ptrdiff_t out_row_step;        // output bytes between successive rows
  int32_t kh;                    // window rows
  int32_t row_len;               // contiguous bytes per window row (KW * C_in)
  const int8_t* filter;          // OHWI: filter_len bytes per output channel
  const int16_t* filter16;       // the same widened to int16 (host workspace), or nullptr
  const int16_t* outer_weights;  // conv_rows_prepare_outer's table, or nullptr
  ptrdiff_t filter_len;          // KH * row_len
  int32_t oc_count;
  const int32_t* folded_bias;
  const int32_t* multiplier;
  const int32_t* shift;
  int32_t output_offset, act_min, act_max;
  int8_t* out;  // first output pixel; oc_count bytes per pixel
};

using ConvRowsFn = void (*)(const ConvRows&);

void conv_rows_portable(const ConvRows& r);
#if DTMM_X86_SIMD
void conv_rows_avx2(const ConvRows& r);

// int16 elements of the AVX2 short-window kernel's transposed weights.
constexpr int32_t kConvRowsOuterTable = 32 * 256 * 2;

// Builds that table for r's filter into `table` (32-byte aligned) once per
// op, so that every conv_rows_avx2 call for the op (one per border pixel)
// reuses it; false, doing nothing, when that kernel does not apply.
bool conv_rows_prepare_outer(const ConvRows& r, int16_t* table);
#endif

// The fastest variant this CPU runs.
ConvRowsFn select_conv_rows();

// Whether that variant uses ConvRows::filter16 when the caller provides it.
bool conv_rows_use_wide_filter();

}  // namespace dtmm

#endif  // DTMM_SRC_KERNELS_CONV_ROWS_H_
