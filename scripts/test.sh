#!/usr/bin/env bash
# Runs every test: unit, black-box HTTP and real-browser. Installs what a fresh Debian machine
# lacks first (a C/C++ compiler, pkg-config, Chromium and its driver, nginx and Caddy for the
# forward-auth tests, sqlite3, python3, aiosmtpd as the mail tests' SMTP server) and stops with
# one line when the Rust toolchain is missing or older than Cargo.toml's rust-version. A missing
# browser, proxy or SMTP server is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Rust toolchain comes from rustup (Debian's own cargo is too old for edition 2024): say so in
# one line rather than fail deep inside a build.
need_rust="$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)"
have_rust="$(rustc --version 2>/dev/null | sed -n 's/^rustc \([0-9][0-9.]*\).*/\1/p')"
if [ -z "$have_rust" ] || ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: Rust >= $need_rust is needed: install it with rustup (Debian's cargo is too old)" >&2
  exit 1
fi
if [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -n 1)" != "$need_rust" ]; then
  echo "scripts/test.sh: Rust >= $need_rust is needed, this is $have_rust: run 'rustup update stable'" >&2
  exit 1
fi

need_apt=()
# A C and C++ compiler for the bundled SQLite and libFuzzer, pkg-config for -sys crates.
{ command -v cc && command -v c++ && command -v make; } >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# deploy/'s nginx site and Caddyfile run in front of the server (tests/api/forward_proxies.rs).
# nginx lives in /usr/sbin, which a non-root PATH may lack.
{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)  # the import-seed test builds a demo database with it
# A real SMTP server for the mail tests (tests/common/smtp.rs): Debian's aiosmtpd, which
# lives in Debian's own python3 (/usr/bin/python3), whatever python3 comes first on PATH.
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need_apt+=(python3-aiosmtpd)
# PostgreSQL for the second storage backend (docs/behaviour.md §12): the server binaries and psql.
. scripts/throwaway-postgres.sh  # pg_bin, start_postgres, stop_postgres
{ [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ]; } || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} from Debian"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
chromium --version
chromedriver --version
"$(command -v nginx || echo /usr/sbin/nginx)" -v
echo "caddy $(caddy version)"
echo "aiosmtpd $(/usr/bin/python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)')"
"$(pg_bin)/postgres" --version

# A throwaway PostgreSQL for the tests (scripts/throwaway-postgres.sh), stopped and deleted on
# exit, even when a test fails. Tests create a database each.
trap stop_postgres EXIT
start_postgres 400
export GATEHOUSE_TEST_PG="$PG_ADMIN_URL"
echo "== PostgreSQL for the tests at $PG_ADMIN_URL"

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== TLS without OpenSSL or aws-lc (rustls with ring only)"
if cargo tree -e normal,build --prefix none | grep -iE '^(openssl|native-tls|aws-lc)'; then
  echo "scripts/test.sh: a dependency pulls in OpenSSL or aws-lc (see above)" >&2
  exit 1
fi
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
# Browser and HTTP tests start real servers; a few test threads keep the 2-core machine responsive.
# Benchmarks are not run here (scripts/bench.sh).
# The library example (examples/members.rs) is a program the HTTP tests start: build it first.
cargo build --locked --examples
cargo test --locked --lib --bins --tests -- --test-threads="${TEST_THREADS:-4}"
echo "== doc tests (the library example in the crate docs compiles)"
cargo test --locked --doc
echo "== fuzz: a short run of each target (scripts/fuzz.sh SECONDS for a longer one)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
