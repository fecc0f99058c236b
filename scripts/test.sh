#!/usr/bin/env bash
# Runs every test: unit, black-box HTTP and real-browser. Installs what a fresh Debian machine
# lacks (Chromium and its driver) first. A missing browser is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)  # the import-seed test builds a demo database with it
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} from Debian"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
chromium --version
chromedriver --version

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
# Browser and HTTP tests start real servers; a few test threads keep the 2-core machine responsive.
# Benchmarks are not run here (scripts/bench.sh).
cargo test --locked --lib --bins --tests -- --test-threads="${TEST_THREADS:-4}"
echo "== fuzz: a short run of each target (scripts/fuzz.sh SECONDS for a longer one)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
