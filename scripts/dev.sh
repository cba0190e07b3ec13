#!/usr/bin/env bash
# Starts a local Varde node with demo institutions and data (the README's quickstart).
# Installs what the build needs, builds `varde`, and runs `varde dev`; extra arguments go to it,
# e.g. `scripts/dev.sh --data-dir /tmp/varde --grpc-addr 127.0.0.1:50052`. Ctrl-C stops it;
# running it again on the same data directory resumes. gRPC is TLS: clients trust
# DATA_DIR/tls/ca.pem (`varde --ca-file`, VARDE_CA_FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked --quiet -p varde-cli --bin varde -- dev "$@"
