#!/usr/bin/env bash
# Print the CMAKE_ARGS for building llama.cpp on THIS CPU.
#
# -march=native (GGML_NATIVE) is avoided on purpose: on CPUs that report Intel
# AMX it emits AMX tile code that crashes on the first token when the kernel
# only granted AMX permission to the main thread (llama.cpp PR #26954). We turn
# on each SIMD extension the CPU reports instead, and never AMX.
set -euo pipefail

# GGML_RPC: llama.cpp's RPC backend, for models split across machines (quantdesk rpc-worker).
args=(-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DGGML_RPC=ON)

if [[ "$(uname -m)" == "x86_64" && -r /proc/cpuinfo ]]; then
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { [[ "$flags" == *" $1 "* ]]; }
    has avx && args+=(-DGGML_AVX=ON) || args+=(-DGGML_AVX=OFF)
    has avx2 && args+=(-DGGML_AVX2=ON) || args+=(-DGGML_AVX2=OFF)
    has fma && args+=(-DGGML_FMA=ON) || args+=(-DGGML_FMA=OFF)
    has f16c && args+=(-DGGML_F16C=ON) || args+=(-DGGML_F16C=OFF)
    has bmi2 && args+=(-DGGML_BMI2=ON) || args+=(-DGGML_BMI2=OFF)
    has avx_vnni && args+=(-DGGML_AVX_VNNI=ON) || args+=(-DGGML_AVX_VNNI=OFF)
    has avx512f && args+=(-DGGML_AVX512=ON) || args+=(-DGGML_AVX512=OFF)
    has avx512vbmi && args+=(-DGGML_AVX512_VBMI=ON) || args+=(-DGGML_AVX512_VBMI=OFF)
    has avx512_vnni && args+=(-DGGML_AVX512_VNNI=ON) || args+=(-DGGML_AVX512_VNNI=OFF)
    has avx512_bf16 && args+=(-DGGML_AVX512_BF16=ON) || args+=(-DGGML_AVX512_BF16=OFF)
fi
echo "${args[*]}"
