#!/usr/bin/env bash
# Varde's test command (the README's): installs what the build needs, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
