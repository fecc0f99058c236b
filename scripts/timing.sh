#!/usr/bin/env bash
# Benchmark (not part of scripts/test.sh): failed sign-in latency, unknown username vs. known
# username with a wrong password vs. a dormant username whose hash has older, cheaper Argon2
# costs (user enumeration by timing, also after a cost change); then `POST /password-reset` for a
# known login with a verified email vs. an unknown login. SAMPLES=N changes the count
# (default 200 of each). Starts target/release/gatehouse on 127.0.0.1 itself (three times: once with
# the old costs to create the dormant users, then with the defaults, then with mail on).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo bench --locked --bench enumeration_timing
