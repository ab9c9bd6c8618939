// Bare-metal start-up shared by the QEMU boards: vector table, a reset
// handler that enables the FPU/MVE coprocessors before any C code runs (GCC
// may emit MVE or FP instructions in ordinary loops), .data/.bss set-up, and
// semihosting exit with main's return value.
#include <stdint.h>

#include "semihosting.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[], __big_start[], __big_end[];
extern uint32_t __stack_top[];
int main(void);

void dtmm_board_start(void);

__attribute__((naked, noreturn)) void reset_handler(void) {
  __asm volatile(
      "ldr r0, =0xE000ED88\n"  // CPACR
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"  // CP10 and CP11: full access
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
      "ldr r0, =__stack_top\n"
      "mov sp, r0\n"
      "b dtmm_board_start\n");
}

static void fault_handler(void) {
  semihosting_write0("dtmm runner: hard fault\n");
  semihosting_exit(99);
}

__attribute__((section(".vectors"), used))
const void* const dtmm_vectors[16] = {__stack_top,
                                      (const void*)reset_handler,
                                      (const void*)fault_handler,
                                      (const void*)fault_handler,
                                      (const void*)fault_handler,
                                      (const void*)fault_handler,
                                      (const void*)fault_handler,
                                      0,
                                      0,
                                      0,
                                      0,
                                      (const void*)fault_handler,
                                      0,
                                      0,
                                      (const void*)fault_handler,
                                      (const void*)fault_handler};

void dtmm_board_start(void) {
  for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (uint32_t* p = __bss_start; p < __bss_end;) *p++ = 0;
  for (uint32_t* p = __big_start; p < __big_end;) *p++ = 0;
  semihosting_exit(main());
}
