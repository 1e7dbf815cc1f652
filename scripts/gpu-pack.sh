#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh --prebuilt needs on a GPU machine that
# has no Rust toolchain and no package registry (a lent machine that gets
# only a copy of this checkout): the release `byol`, the test binaries
# that hold GPU tests (debug info stripped), and the Vulkan loader and
# GL-vendor libraries as Debian packages (the machine's NVIDIA driver
# brings its Vulkan driver but maybe not the loader). Run it here, then
# send the checkout with the two ignored folders it writes:
#   scripts/gpu-pack.sh          -> .gpucheck/ (binaries), .gl/ (packages)
#   (there) scripts/gpu-check.sh --prebuilt
# The test binaries find their fixtures through this checkout's absolute
# path, compiled in; .gpucheck/root records it so that --prebuilt can link
# it to wherever the copy lands.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
for d in .gpucheck .gl; do
  grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >>.git/info/exclude
done

cargo build -q --release -p cli
list=$(mktemp)
cargo test --workspace --no-run --message-format=short 2>"$list" >/dev/null
rm -rf .gpucheck && mkdir -p .gpucheck/bin
for b in $(sed -n 's/.*Executable .*(\(.*\))/\1/p' "$list"); do
  tests=$("$b" --list 2>/dev/null || true)
  if grep -q 'gpu.*: test' <<<"$tests"; then
    strip -o ".gpucheck/bin/tests-$(basename "$b")" "$b"
  fi
done
rm -f "$list"
# `commands` runs the debug `byol` (CARGO_BIN_EXE_byol) in its GPU test.
strip -o .gpucheck/bin/byol-debug target/debug/byol
strip -o .gpucheck/bin/byol-release target/release/byol
tar -C .gpucheck -cJf .gpucheck/bins.tar.xz bin && rm -rf .gpucheck/bin
echo "$root" >.gpucheck/root

mkdir -p .gl
lists=$(mktemp -d)
apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
mkdir -p "$lists/partial"
apt-get "${apt[@]}" update >/dev/null
(cd .gl && apt-get "${apt[@]}" download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 2>&1 |
  grep -v unsandboxed || true)
rm -rf "$lists"
du -sh .gpucheck .gl
