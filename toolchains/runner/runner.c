// Generic QEMU runner: runs any compiled model on the board.
//
// Reads model.bin (the blob) and input.bin (N inferences of all inputs,
// concatenated) from the host through semihosting, runs them op by op and
// writes output.bin (N inferences of all outputs). Exit code 0 on success,
// 10 + dtmm_status on a load error, 2 on an I/O error. dtmm_marker() is called
// before every op and after the last, so an instruction-counting QEMU plugin
// can attribute instructions to ops (noipa: GCC must keep every call and
// the symbol, not a specialised clone).
#include <stdint.h>
#include <string.h>

#include "dtmm/dtmm.h"
#include "semihosting.h"

#define BLOB_MAX (4u << 20)
#define ARENA_MAX (2u << 20)
#define IO_MAX (4u << 20)  // each of inputs and outputs; all fit the smallest board (16 MB)

static uint8_t blob[BLOB_MAX] __attribute__((aligned(16), section(".big")));
static uint8_t arena[ARENA_MAX] __attribute__((aligned(16), section(".big")));
static uint8_t inputs[IO_MAX] __attribute__((aligned(16), section(".big")));
static uint8_t outputs[IO_MAX] __attribute__((aligned(16), section(".big")));

__attribute__((noinline, noipa, used)) void dtmm_marker(uint32_t op_index) {
  (void)op_index;
  __asm volatile("" ::: "memory");
}

static int32_t read_file(const char* path, uint8_t* buf, uint32_t max, uint32_t* size) {
  const int32_t h = semihosting_open(path, 1);
  if (h < 0) return -1;
  const int32_t n = semihosting_flen(h);
  if (n < 0 || (uint32_t)n > max || semihosting_read(h, buf, (uint32_t)n) != 0) {
    semihosting_close(h);
    return -1;
  }
  semihosting_close(h);
  *size = (uint32_t)n;
  return 0;
}

int main(void) {
  uint32_t blob_size = 0, input_size = 0;
  if (read_file("model.bin", blob, BLOB_MAX, &blob_size) != 0 ||
      read_file("input.bin", inputs, IO_MAX, &input_size) != 0) {
    semihosting_write0("dtmm runner: cannot read model.bin or input.bin\n");
    return 2;
  }
  dtmm_model model;
  const dtmm_status s = dtmm_init(&model, blob, blob_size, arena, ARENA_MAX);
  if (s != DTMM_OK) {
    semihosting_write0("dtmm runner: ");
    semihosting_write0(dtmm_status_name(s));
    semihosting_write0("\n");
    return 10 + (int)s;
  }
  uint32_t in_bytes = 0, out_bytes = 0;
  for (uint32_t i = 0; i < dtmm_num_inputs(&model); ++i) {
    dtmm_tensor t;
    dtmm_input(&model, i, &t);
    in_bytes += t.size;
  }
  for (uint32_t i = 0; i < dtmm_num_outputs(&model); ++i) {
    dtmm_tensor t;
    dtmm_output(&model, i, &t);
    out_bytes += t.size;
  }
  if (in_bytes == 0 || input_size % in_bytes != 0) return 2;
  const uint32_t count = input_size / in_bytes;
  if ((uint64_t)count * out_bytes > IO_MAX) return 2;

  for (uint32_t n = 0; n < count; ++n) {
    const uint8_t* src = inputs + n * in_bytes;
    for (uint32_t i = 0; i < dtmm_num_inputs(&model); ++i) {
      dtmm_tensor t;
      dtmm_input(&model, i, &t);
      memcpy(t.data, src, t.size);
      src += t.size;
    }
    for (uint32_t k = 0; k < dtmm_num_ops(&model); ++k) {
      dtmm_marker(k);
      dtmm_invoke_op(&model, k);
    }
    dtmm_marker(dtmm_num_ops(&model));
    uint8_t* dst = outputs + n * out_bytes;
    for (uint32_t i = 0; i < dtmm_num_outputs(&model); ++i) {
      dtmm_tensor t;
      dtmm_output(&model, i, &t);
      memcpy(dst, t.data, t.size);
      dst += t.size;
    }
  }
  const int32_t h = semihosting_open("output.bin", 5);
  if (h < 0 || semihosting_write(h, outputs, count * out_bytes) != 0) return 2;
  semihosting_close(h);
  return 0;
}
