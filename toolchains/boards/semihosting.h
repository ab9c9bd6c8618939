// Arm semihosting (bkpt 0xAB): console output, host files and exit under QEMU
// (-semihosting-config enable=on,target=native).
#ifndef DTMM_BOARDS_SEMIHOSTING_H_
#define DTMM_BOARDS_SEMIHOSTING_H_

#include <stddef.h>
#include <stdint.h>

static inline int32_t semihosting_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return (int32_t)r0;
}

static inline void semihosting_write0(const char* s) {
  semihosting_call(0x04, s);
}

// Returns a handle, or -1. mode: 1 = "rb", 5 = "wb".
static inline int32_t semihosting_open(const char* path, uint32_t mode) {
  uint32_t len = 0;
  while (path[len]) ++len;
  const uint32_t args[3] = {(uint32_t)(uintptr_t)path, mode, len};
  return semihosting_call(0x01, args);
}

static inline int32_t semihosting_flen(int32_t handle) {
  const uint32_t args[1] = {(uint32_t)handle};
  return semihosting_call(0x0C, args);
}

// Bytes NOT transferred (0 on success), as the semihosting spec defines.
static inline int32_t semihosting_read(int32_t handle, void* buf, uint32_t n) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, n};
  return semihosting_call(0x06, args);
}

static inline int32_t semihosting_write(int32_t handle, const void* buf, uint32_t n) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, n};
  return semihosting_call(0x05, args);
}

static inline void semihosting_close(int32_t handle) {
  const uint32_t args[1] = {(uint32_t)handle};
  semihosting_call(0x02, args);
}

// SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `code`.
__attribute__((noreturn)) static inline void semihosting_exit(int32_t code) {
  const uint32_t args[2] = {0x20026u, (uint32_t)code};
  semihosting_call(0x20, args);
  for (;;) {
  }
}

#endif  // DTMM_BOARDS_SEMIHOSTING_H_
