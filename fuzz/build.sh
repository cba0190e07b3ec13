#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on the stable toolchain: the sanitizer-coverage flags that
# cargo-fuzz passes with `--sanitizer none`, given by hand (no nightly, no cargo-fuzz needed).
# `--target` keeps the flags off build scripts and proc macros, which are not linked with libFuzzer.
# Usage: fuzz/build.sh [cargo build arguments, e.g. --bin genesis]
set -euo pipefail
cd "$(dirname "$0")"
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers=yes"
cargo build --release --locked --target "$triple" --bins "$@"
echo "${CARGO_TARGET_DIR:-$PWD/target}/$triple/release"
