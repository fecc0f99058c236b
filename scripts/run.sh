#!/usr/bin/env bash
# Builds and runs the server in release mode; extra arguments go to gatehouse
# (e.g. scripts/run.sh --bind 0.0.0.0:8080). See `gatehouse --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -- "$@"
