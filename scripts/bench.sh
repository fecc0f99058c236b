#!/usr/bin/env bash
# Benchmarks (not part of scripts/test.sh): where the session lookup runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked --bench session_lookup
