// dtmm firmware example: classify one embedded CIFAR-10 image with an
// embedded ResNet-8 and print the class (semihosting, under QEMU). Exits 0
// when the device's prediction equals the host runtime's.
#include <stdint.h>
#include <string.h>

#include "dtmm/dtmm.h"
#include "image.h"
#include "model.h"
#include "semihosting.h"

static uint8_t arena[RESNET8_MODEL_ARENA_SIZE] __attribute__((aligned(16)));

static void print_digit(const char* label, int value) {
  char line[32];
  size_t n = strlen(label);
  memcpy(line, label, n);
  line[n++] = (char)('0' + value);
  line[n++] = '\n';
  line[n] = 0;
  semihosting_write0(line);
}

int main(void) {
  dtmm_model model;
  dtmm_status s = dtmm_init(&model, resnet8_model, sizeof resnet8_model, arena, sizeof arena);
  if (s != DTMM_OK) {
    semihosting_write0(dtmm_status_name(s));
    return 1;
  }
  dtmm_tensor input, output;
  dtmm_input(&model, 0, &input);
  memcpy(input.data, image, sizeof image);
  dtmm_invoke(&model);
  dtmm_output(&model, 0, &output);
  const int8_t* scores = (const int8_t*)output.data;
  int best = 0;
  for (uint32_t i = 1; i < output.size; ++i)
    if (scores[i] > scores[best]) best = (int)i;
  print_digit("predicted class ", best);
  print_digit("label           ", IMAGE_LABEL);
  return best == HOST_PREDICTION ? 0 : 2;
}
