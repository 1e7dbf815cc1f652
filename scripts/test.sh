#!/usr/bin/env bash
# The project's test command: installs what the tests need (scripts/setup.sh),
# then runs every crate's tests, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Mesa's software Vulkan driver complains on every start when there is no
# runtime directory (a login session normally provides one); give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
cargo test --workspace
# The hardware GPU kernels (workgroup-memory tiles, split-k, implicit-GEMM
# convolution) are what a real GPU runs; here they run on the software
# adapter too: every unit test again with them forced, and the test files
# that compare the GPU with the CPU or PyTorch (the layers, gradients, the
# ResNet, the BYOL step). Selected by target over the whole workspace, so
# the build is the one above (selecting packages would rebuild).
BYOL_GPU_KERNELS=hardware cargo test --workspace --lib --test pytorch_fixtures \
  --test gradcheck --test memory --test gpu_machinery --test resnet_parity \
  --test pytorch_step
# Winograd F(2x2, 3x3) runs the CPU's wide 3x3 stride-1 layers (64 channels
# and more); the test networks are narrower, so the files that check layers,
# gradients, the ResNet and the BYOL step against PyTorch run again with it
# forced on every 3x3 stride-1 layer.
BYOL_CPU_CONV=winograd cargo test --workspace --test pytorch_fixtures \
  --test gradcheck --test resnet_parity --test pytorch_step
# The packed implicit GEMM (AVX2 or AVX-512) runs the deep layers on small
# planes (at most 8x8, 64 to 128 channels; the weight gradient at most
# 4x4); the same files again with it forced on every layer it computes,
# where the CPU has AVX2 and FMA (with AVX-512 its AVX-512 kernels run; the
# unit tests check that both sets give the same bits).
# Winograd F(4x4, 3x3) on the packed kernels runs the forward pass and
# input gradient of the 3x3 stride-1 layers of 64 channels and more, and
# the weight gradient of those of 64 to 256; the same files once more with
# it forced on every 3x3 stride-1 layer.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  BYOL_CPU_CONV=packed cargo test --workspace --test pytorch_fixtures \
    --test gradcheck --test resnet_parity --test pytorch_step
  BYOL_CPU_CONV=winograd4 cargo test --workspace --test pytorch_fixtures \
    --test gradcheck --test resnet_parity --test pytorch_step
  # The direct kernel (AVX2 or AVX-512) runs the forward pass and input
  # gradient of the stride-1 layers of 16 and 32 channels on planes of
  # 14x14 and more, the forward pass of the 3x3 stride-2 layers of up to 64
  # output channels, and the weight gradient (row dots over the padded
  # image) of the stride-1 layers of at most 16 channels; the same files
  # with it forced on every layer it computes (forward: stride 1 or 2 and
  # channels in sixteens; input gradient: stride 1; weight gradient: every
  # stride-1 layer).
  BYOL_CPU_CONV=direct cargo test --workspace --test pytorch_fixtures \
    --test gradcheck --test resnet_parity --test pytorch_step
else
  echo "BYOL_CPU_CONV=packed, winograd4 and direct runs skipped: this CPU has no AVX2"
fi
