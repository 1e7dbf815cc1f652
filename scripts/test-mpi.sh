#!/usr/bin/env bash
# The tests of the optional `mpi` feature (pretraining as a group of
# processes under mpirun, docs/scale-out.md): installs Open MPI and libclang
# when missing (scripts/setup.sh --mpi), lints the MPI code, then runs the
# end-to-end tests, which start `mpirun` themselves (allowed to run as root,
# as in CI). The data-parallel code itself is also tested without MPI, in
# `cargo test --workspace` (byol/tests/distributed.rs, threads as ranks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --mpi
cargo clippy -p collective --features mpi --all-targets -- -D warnings
cargo test -p collective --features mpi
cargo test -p cli --features mpi --test mpi
