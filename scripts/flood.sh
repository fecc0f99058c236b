#!/usr/bin/env bash
# Benchmark (not part of scripts/test.sh): GET /welcome latency, idle vs. during a sign-in
# flood that saturates the KDF pool. Starts target/release/gatehouse on 127.0.0.1 itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo bench --locked --bench flood
