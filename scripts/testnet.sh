#!/usr/bin/env bash
# Starts a local Varde network: four validator processes on loopback with demo institutions and
# data (the README's quickstart). Installs what the build needs, builds `varde`, and runs
# `varde testnet up`; extra arguments go to it, e.g. `scripts/testnet.sh -n 7 --dir /tmp/net`.
# The network keeps running in the background: `varde testnet status`, `kill I`, `restart I`,
# `partition 0,1/2,3`, `heal`, and `down` to stop it. Running it again after `down` resumes.
# gRPC is TLS: clients trust the network's CA, DIR/tls/ca.pem (`varde --ca-file`, VARDE_CA_FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked --quiet -p varde-cli --bin varde -- testnet up "$@"
