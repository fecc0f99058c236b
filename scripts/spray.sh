#!/usr/bin/env bash
# The username-spray test (tests/spray.rs) at full size: N failed sign-ins for N distinct
# usernames against a release build, checking that the fail-lock table stops at its bound
# (--lock-max-entries, N/5 by default), that memory stays bounded and that a locked username
# stays locked. Prints a "spray summary:" line. Usage: scripts/spray.sh [N] (default 1000000).
# SPRAY_LOCK_MAX_ENTRIES and SPRAY_CONCURRENCY override the bound and the client connections.
set -euo pipefail
cd "$(dirname "$0")/.."
SPRAY_USERNAMES="${1:-1000000}" exec cargo test --release --locked --test spray -- --nocapture
