#!/usr/bin/env bash
# A short pass of every fuzz target (fuzz/, libFuzzer on the stable toolchain) from the committed
# seed corpus; fails on any crash, failed check or hang. RELIABILITY.md has the long runs.
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
# libFuzzer's runtime is C++, built by libfuzzer-sys with the system's C++ compiler.
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz-smoke: a C++ compiler is needed (apt-get install g++)" >&2
    exit 1
fi
bin="$(fuzz/build.sh | tail -n 1)"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^varde-fuzz$')
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for target in $targets; do
    # A scratch corpus: what the pass adds is thrown away, the seeds stay as committed.
    mkdir -p "$work/$target"
    if "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work/$target" "fuzz/seeds/$target" >"$work/$target.log" 2>&1; then
        echo "fuzz-smoke: $target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" | tail -n 1)"
    else
        echo "fuzz-smoke: $target FAILED; its log:" >&2
        tail -n 40 "$work/$target.log" >&2
        failed=1
    fi
done
exit "$failed"
