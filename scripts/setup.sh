#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing:
#   mesa-vulkan-drivers    a software Vulkan adapter (llvmpipe), so the GPU
#                          tests run on machines without a GPU;
#   dataset-fashion-mnist  the real Fashion-MNIST data set, for the tests that
#                          read it (the embedded subset covers the rest).
# With --mpi, also what the optional `mpi` feature needs (training as a group
# of processes, docs/scale-out.md):
#   libopenmpi-dev openmpi-bin  Open MPI's library and mpirun;
#   libclang-dev                for bindgen, which the `mpi` crate builds with.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(mesa-vulkan-drivers dataset-fashion-mnist)
if [ "${1:-}" = "--mpi" ]; then
  packages+=(libopenmpi-dev openmpi-bin libclang-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: ${missing[*]} missing and not root; run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
