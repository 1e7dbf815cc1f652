#!/usr/bin/env bash
# The project's test command: installs what the tests need (scripts/setup.sh),
# then runs every crate's tests, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace
