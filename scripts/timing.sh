#!/usr/bin/env bash
# Benchmark (not part of scripts/test.sh): failed sign-in latency, unknown username vs. known
# username with a wrong password (user enumeration by timing). SAMPLES=N changes the count
# (default 200 of each). Starts target/release/gatehouse on 127.0.0.1 itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo bench --locked --bench enumeration_timing
