# CMake toolchain file for Arm Cortex-M with the GNU Arm Embedded toolchain
# (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi).
#
#   cmake -S . -B build-m55 -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-none-eabi.cmake \
#         -DDTMM_TARGET_CPU=cortex-m55 -DCMAKE_BUILD_TYPE=MinSizeRel
#
# DTMM_TARGET_CPU is a GCC -mcpu string: cortex-m55 (Helium/MVE), cortex-m55+nomve,
# cortex-m85, cortex-m7, cortex-m4, cortex-m33, cortex-m0plus... The float ABI
# and FPU follow from it; MVE needs the hard (or softfp) float ABI, which is
# why -mcpu=cortex-m55 alone gives no Helium.

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

if(NOT DTMM_TARGET_CPU)
  set(DTMM_TARGET_CPU cortex-m55 CACHE STRING "GCC -mcpu value of the target")
endif()
# Try-compiles run in a fresh project: pass the CPU on to them.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DTMM_TARGET_CPU)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_SIZE arm-none-eabi-size)
# No operating system to link a test executable against.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

string(REGEX REPLACE "\\+.*$" "" _dtmm_core "${DTMM_TARGET_CPU}")
if(_dtmm_core MATCHES "^cortex-m(0|0plus|1|3|23)$")
  set(_dtmm_float "-mfloat-abi=soft")
elseif(_dtmm_core STREQUAL "cortex-m4")
  set(_dtmm_float "-mfloat-abi=hard -mfpu=fpv4-sp-d16")
elseif(_dtmm_core STREQUAL "cortex-m7")
  set(_dtmm_float "-mfloat-abi=hard -mfpu=fpv5-d16")
elseif(_dtmm_core MATCHES "^cortex-m(33|35p)$")
  set(_dtmm_float "-mfloat-abi=hard -mfpu=fpv5-sp-d16")
else()  # Armv8.1-M (cortex-m55, cortex-m85): the FPU/MVE come with -mcpu
  set(_dtmm_float "-mfloat-abi=hard")
endif()

set(_dtmm_arch "-mcpu=${DTMM_TARGET_CPU} -mthumb ${_dtmm_float}")
set(CMAKE_C_FLAGS_INIT "${_dtmm_arch} -ffunction-sections -fdata-sections")
set(CMAKE_CXX_FLAGS_INIT "${_dtmm_arch} -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -fno-threadsafe-statics")
set(CMAKE_ASM_FLAGS_INIT "${_dtmm_arch}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections --specs=nano.specs --specs=nosys.specs -nostartfiles")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
