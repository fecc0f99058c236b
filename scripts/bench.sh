#!/usr/bin/env bash
# The ceilings benchmark (issue 6; not part of scripts/test.sh). Builds the release binary,
# makes a 1 k and a 1 M bench database with `gatehouse bench-data`, starts one server on each
# (2 workers, per-address limits off), measures the raw Argon2id rate K, then runs wrk in
# interleaved rounds over the cells R0 P A F S L (and P, S on 1 M; K, the raw rate again, next
# to S in every round), and the protecting cells
# FA (forward-auth), M (a members-folder file), NX0/NXA (a page through nginx without and with
# auth_request), and on PostgreSQL PGP/PGS (P and S against a throwaway PostgreSQL) and NU1/NU2
# (a page through nginx with one or two instances as its upstream), at 16 and 64 connections,
# each first checked for its status. Prints medians and per-round ratios, records RSS, and
# rewrites the measured part of docs/performance.md and docs/performance.svg.
#
# Usage: scripts/bench.sh [ROUNDS]   (default 3)
# Env:   BENCH_SECONDS (per wrk run, default 8), BENCH_LARGE (default 1000000),
#        BENCH_KDF_THREADS (default 2), BENCH_NO_DOCS=1 (print only),
#        BENCH_CELLS="R0 P FA" (run only these cells; implies BENCH_NO_DOCS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${BENCH_SECONDS:-8}
LARGE=${BENCH_LARGE:-1000000}
KDF_THREADS=${BENCH_KDF_THREADS:-2}
ARGON2_M=19456
ARGON2_T=2

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "== installing ${need[*]} from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building the release binary"
cargo build --release --locked --bin gatehouse
BIN=$PWD/target/release/gatehouse
OUT=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
echo "== results in $OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== bench databases (1 k and $LARGE users and sessions)"
# The sign-in cells rotate over this many users, each with its own hash. Every sign-in opens a
# session, and a user's 51st ends the oldest (behaviour.md's cap of 50, on PostgreSQL with a
# cross-instance notification): with 128 users a 5-round run brought each to about 47, so the
# last rounds would have measured cap deletions the first ones did not. With 512 a full run
# opens about a dozen sessions per user. bench999 is L's locked user: keep below it.
SIGN_IN_USERS=512
# The sign-in bodies name users of every database, so the 1 M one must hold them all.
if [ "$LARGE" -lt "$SIGN_IN_USERS" ]; then
  echo "BENCH_LARGE=$LARGE is below the $SIGN_IN_USERS users the sign-in cells rotate over" >&2
  exit 2
fi
"$BIN" bench-data --database "$OUT/small.db" --users 1000 --sessions 1000 --sign-in-users "$SIGN_IN_USERS" \
  --sample-cookies "$OUT/small.cookies" --sign-in-bodies "$OUT/bodies" >"$OUT/small.env"
"$BIN" bench-data --database "$OUT/large.db" --users "$LARGE" --sessions "$LARGE" --sign-in-users "$SIGN_IN_USERS" \
  --sample-cookies "$OUT/large.cookies" >"$OUT/large.env"
DIGEST=$(sed -n 's/^password_digest=//p' "$OUT/small.env")
DIGEST_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$DIGEST")

echo "== K: raw Argon2id m=$ARGON2_M t=$ARGON2_T p=1 on $KDF_THREADS threads (3 × 5 s)"
KDF_RATES=()
for _ in 1 2 3; do
  KDF_RATES+=("$("$BIN" bench-kdf --threads "$KDF_THREADS" --seconds 5)")
done
echo "   ${KDF_RATES[*]} hashes/s"

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# start_server NAME DB [flags...] → sets ${NAME}_URL and ${NAME}_PID
start_server() {
  local name=$1 db=$2 log="$OUT/$1.log"; shift 2
  "$BIN" serve --database "$db" --bind 127.0.0.1:0 --workers 2 --kdf-threads "$KDF_THREADS" \
    --ip-failures 0 --ip-kdf-rate 0 --session-idle 24h --session-max 30d --log-level info \
    "$@" 2>"$log" &
  local pid=$!
  PIDS+=("$pid")
  local url=""
  for _ in $(seq 1 300); do
    url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "server $name did not start:"; cat "$log"; exit 1; }
  printf -v "${name}_URL" '%s' "$url"
  printf -v "${name}_PID" '%s' "$pid"
}

# The members folder holds one 1 KiB page (cell M).
mkdir -p "$OUT/members"
python3 -c 'import sys; sys.stdout.write("<!doctype html><title>m</title>" + "x" * 993 + "\n")' >"$OUT/members/page.html"
start_server SMALL "$OUT/small.db" --protect-dir "$OUT/members"
start_server LARGE "$OUT/large.db"
declare -A RSS
sleep 1
RSS[idle_1k]=$(rss "$SMALL_PID")
RSS[idle_1m]=$(rss "$LARGE_PID")
echo "   RSS after start-up: 1 k $((RSS[idle_1k] / 1024)) MiB, 1 M $((RSS[idle_1m] / 1024)) MiB"

# PostgreSQL (cells PGP, PGS, NU1, NU2): a throwaway cluster, a 1 k bench database made the same
# way, and two instances sharing it and one key.
. scripts/throwaway-postgres.sh
trap 'cleanup; stop_postgres' EXIT
start_postgres 200
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE bench" >/dev/null
PG_DB="${PG_ADMIN_URL%/postgres}/bench"
"$BIN" bench-data --database "$PG_DB" --users 1000 --sessions 1000 --sign-in-users "$SIGN_IN_USERS" \
  --sample-cookies "$OUT/pg.cookies" >"$OUT/pg.env"
export GATEHOUSE_SECRET_KEY
GATEHOUSE_SECRET_KEY=$(python3 -c 'import os; print(os.urandom(32).hex())')
start_server PG1 "$PG_DB"
start_server PG2 "$PG_DB"
FIRST_PG=$(sed -n 's/^session_first=//p' "$OUT/pg.env")

# nginx in front of the 1 k server: /open/ proxies a static file, /app/ the same file behind
# auth_request (cells NX0, NXA). Keep-alive to Gatehouse, as a production set-up would.
NGINX_DIR="$OUT/nginx"
mkdir -p "$NGINX_DIR/logs"
NGINX_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$NGINX_DIR/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/body; proxy_temp_path $NGINX_DIR/proxy;
  fastcgi_temp_path $NGINX_DIR/fastcgi; uwsgi_temp_path $NGINX_DIR/uwsgi; scgi_temp_path $NGINX_DIR/scgi;
  upstream gatehouse { server ${SMALL_URL#http://}; keepalive 32; }
  upstream pg_one { server ${PG1_URL#http://}; keepalive 32; }
  upstream pg_two { server ${PG1_URL#http://}; server ${PG2_URL#http://}; keepalive 32; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /open/ { proxy_pass http://gatehouse/static/; }
    location /app/ { auth_request /_auth; proxy_pass http://gatehouse/static/; }
    location /one/ { proxy_pass http://pg_one/; }
    location /two/ { proxy_pass http://pg_two/; }
    location = /_auth {
      internal;
      proxy_pass http://gatehouse/auth/request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
    }
  }
}
NGINX
nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" 2>>"$NGINX_DIR/logs/error.log" &
PIDS+=("$!")
NGINX_URL="http://127.0.0.1:$NGINX_PORT"
for _ in $(seq 1 100); do curl -s -o /dev/null "$NGINX_URL/" && break; sleep 0.1; done

status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect() { # expect STATUS DESCRIPTION curl-args...
  local want=$1 what=$2; shift 2
  local got; got=$(status_of "$@")
  [ "$got" = "$want" ] || { echo "check failed: $what answered $got, not $want"; exit 1; }
}

CSS=$(curl -s "$SMALL_URL/sign-in" | grep -o '/static/style[^"]*\.css' | head -1)
FIRST_SMALL=$(sed -n 's/^session_first=//p' "$OUT/small.env")
FIRST_LARGE=$(sed -n 's/^session_first=//p' "$OUT/large.env")

# A CSRF cookie and its token for the form POSTs, per server.
csrf_for() { # csrf_for URL → "COOKIE TOKEN"
  local jar="$OUT/jar.$RANDOM" html token cookie
  html=$(curl -s -c "$jar" "$1/sign-in")
  token=$(printf '%s' "$html" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
  cookie=$(awk '$6 == "csrf" {print "csrf=" $7}' "$jar")
  echo "$cookie $token"
}
read -r CSRF_SMALL_COOKIE CSRF_SMALL_TOKEN < <(csrf_for "$SMALL_URL")
read -r CSRF_LARGE_COOKIE CSRF_LARGE_TOKEN < <(csrf_for "$LARGE_URL")
read -r CSRF_PG_COOKIE CSRF_PG_TOKEN < <(csrf_for "$PG1_URL")
SIGN_IN_PG="username=bench0&password_digest=$DIGEST_ENC&csrf_token=$CSRF_PG_TOKEN"
SIGN_IN_SMALL="username=bench0&password_digest=$DIGEST_ENC&csrf_token=$CSRF_SMALL_TOKEN"
SIGN_IN_LARGE="username=bench0&password_digest=$DIGEST_ENC&csrf_token=$CSRF_LARGE_TOKEN"
# A wrong digest (valid form) locks bench999 (not one of the sign-in users) after three tries.
WRONG=$(python3 -c 'import base64; print(base64.b64encode(bytes(64)).decode())' | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
LOCKED_BODY="username=bench999&password_digest=$WRONG&csrf_token=$CSRF_SMALL_TOKEN"

echo "== checking every cell's status first"
expect 200 R0 "$SMALL_URL$CSS"
expect 200 P -H "Cookie: session=$FIRST_SMALL" "$SMALL_URL/welcome"
expect 200 A -H "Cookie: session=$FIRST_SMALL" "$SMALL_URL/api/me"
expect 200 F "$SMALL_URL/sign-in"
expect 303 S -H "Cookie: $CSRF_SMALL_COOKIE" -d "$SIGN_IN_SMALL" "$SMALL_URL/sign-in"
expect 303 "S (1 M)" -H "Cookie: $CSRF_LARGE_COOKIE" -d "$SIGN_IN_LARGE" "$LARGE_URL/sign-in"
expect 200 "P (1 M)" -H "Cookie: session=$FIRST_LARGE" "$LARGE_URL/welcome"
expect 200 FA -H "Cookie: session=$FIRST_SMALL" "$SMALL_URL/auth/request"
expect 401 "FA (anonymous)" "$SMALL_URL/auth/request"
expect 200 M -H "Cookie: session=$FIRST_SMALL" "$SMALL_URL/members/page.html"
expect 200 NX0 "$NGINX_URL/open${CSS#/static}"
expect 200 NXA -H "Cookie: session=$FIRST_SMALL" "$NGINX_URL/app${CSS#/static}"
expect 401 "NXA (anonymous)" "$NGINX_URL/app${CSS#/static}"
for _ in 1 2 3; do expect 401 "L (locking)" -H "Cookie: $CSRF_SMALL_COOKIE" -d "$LOCKED_BODY" "$SMALL_URL/sign-in"; done
expect 429 L -H "Cookie: $CSRF_SMALL_COOKIE" -d "$LOCKED_BODY" "$SMALL_URL/sign-in"
expect 200 PGP -H "Cookie: session=$FIRST_PG" "$PG1_URL/welcome"
expect 200 "PGP (second instance)" -H "Cookie: session=$FIRST_PG" "$PG2_URL/welcome"
expect 303 PGS -H "Cookie: $CSRF_PG_COOKIE" -d "$SIGN_IN_PG" "$PG1_URL/sign-in"
expect 200 NU1 -H "Cookie: session=$FIRST_PG" "$NGINX_URL/one/welcome"
expect 200 NU2 -H "Cookie: session=$FIRST_PG" "$NGINX_URL/two/welcome"

RSS[after_checks_1m]=$(rss "$LARGE_PID")

to_ms() { # wrk latency "1.23ms" / "456.00us" / "1.20s" → ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

FLOOD_PEAK=0
run_cell() { # run_cell ROUND CELL CONNS URL [wrk args...]
  local round=$1 cell=$2 conns=$3 url=$4; shift 4
  if [ -n "${BENCH_CELLS:-}" ] && [[ " $BENCH_CELLS " != *" $cell "* ]]; then return; fi
  local f="$OUT/wrk.$round.$cell.$conns.txt" sampler=""
  if [ "$cell" = FLOOD ]; then
    ( while kill -0 "$LARGE_PID" 2>/dev/null; do rss "$LARGE_PID"; sleep 0.25; done ) >"$OUT/rss.flood" &
    sampler=$!
  fi
  wrk -t2 -c"$conns" -d"${SECS}s" --timeout 10s --latency "$@" "$url" >"$f"
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  # A sign-in cell leaves up to one hash per connection queued on its server's KDF threads when
  # wrk stops (at 64 connections about 0.6 s of both cores): let it drain, or the next cell,
  # on whichever server, runs on what is left.
  case "$cell" in S | S1M | PGS) sleep 1.5 ;; esac
  local rps p50 p99 bad reqs
  rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
  bad=$(awk '/Non-2xx or 3xx/ {print $5}' "$f"); bad=${bad:-0}
  reqs=$(awk '/requests in/ {print $1}' "$f")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cell" "$conns" "$rps" "$p50" "$p99" "$bad" "$reqs" >>"$OUT/results.tsv"
  printf '   round %s %-4s c=%-3s %10s req/s  p50 %8s ms  p99 %8s ms  non-2xx/3xx %s\n' "$round" "$cell" "$conns" "$rps" "$p50" "$p99" "$bad"
}

# The reference for S and PGS, measured on both sides of them in every round (cells K before
# and K2 after: the raw Argon2id rate, as at the start). The machine's speed drifts by a
# quarter within a run, so a K from the start alone would compare sign-ins with a different
# machine, and one K next to them still moves by a tenth between two samples a few seconds
# apart; the report divides by the mean of the two.
run_kdf() { # run_kdf ROUND CONNS [CELL]
  local round=$1 conns=$2 cell=${3:-K} rate
  if [ -n "${BENCH_CELLS:-}" ] && [[ " $BENCH_CELLS " != *" S "* && " $BENCH_CELLS " != *" PGS "* ]]; then return; fi
  rate=$("$BIN" bench-kdf --threads "$KDF_THREADS" --seconds "$SECS")
  printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\n' "$round" "$cell" "$conns" "$rate" >>"$OUT/results.tsv"
  printf '   round %s %-4s c=%-3s %10s hashes/s (raw Argon2id)\n' "$round" "$cell" "$conns" "$rate"
}

LUA=$PWD/scripts/bench
# Warm-up, not reported: a second of sign-ins at 64 connections on each sign-in server, so
# round 1 does not pay for what every later round finds done (a PostgreSQL instance opening its
# pool's connections, each preparing its statements; the KDF threads' working memory).
warm_up() { # warm_up URL CSRF_TOKEN CSRF_COOKIE
  BENCH_BODIES="$OUT/bodies" BENCH_CSRF_TOKEN="$2" BENCH_COOKIE="$3" \
    wrk -t2 -c64 -d1s --timeout 10s -s "$LUA/signin.lua" "$1/sign-in" >/dev/null
  sleep 1.5
}
if [ -z "${BENCH_CELLS:-}" ] || [[ " $BENCH_CELLS " =~ \ (S|S1M|PGS)\  ]]; then
  warm_up "$SMALL_URL" "$CSRF_SMALL_TOKEN" "$CSRF_SMALL_COOKIE"
  warm_up "$LARGE_URL" "$CSRF_LARGE_TOKEN" "$CSRF_LARGE_COOKIE"
  warm_up "$PG1_URL" "$CSRF_PG_TOKEN" "$CSRF_PG_COOKIE"
fi
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for conns in 16 64; do
    run_cell "$round" R0 "$conns" "$SMALL_URL$CSS"
    BENCH_COOKIES="$OUT/small.cookies" run_cell "$round" P "$conns" "$SMALL_URL/welcome" -s "$LUA/cookies.lua"
    # Right after P, which it is compared with: after the sign-in cells the KDF pool is still
    # draining and would slow whichever cell came next.
    BENCH_COOKIES="$OUT/small.cookies" run_cell "$round" FA "$conns" "$SMALL_URL/auth/request" -s "$LUA/cookies.lua"
    BENCH_COOKIES="$OUT/small.cookies" run_cell "$round" A "$conns" "$SMALL_URL/api/me" -s "$LUA/cookies.lua"
    run_cell "$round" F "$conns" "$SMALL_URL/sign-in"
    BENCH_BODY="$LOCKED_BODY" BENCH_COOKIE="$CSRF_SMALL_COOKIE" run_cell "$round" L "$conns" "$SMALL_URL/sign-in" -s "$LUA/post.lua"
    BENCH_COOKIES="$OUT/large.cookies" run_cell "$round" P1M "$conns" "$LARGE_URL/welcome" -s "$LUA/cookies.lua"
    run_kdf "$round" "$conns"
    BENCH_BODIES="$OUT/bodies" BENCH_CSRF_TOKEN="$CSRF_SMALL_TOKEN" BENCH_COOKIE="$CSRF_SMALL_COOKIE" \
      run_cell "$round" S "$conns" "$SMALL_URL/sign-in" -s "$LUA/signin.lua"
    # Next to K, which it is compared with (after S has drained: see run_cell).
    BENCH_BODIES="$OUT/bodies" BENCH_CSRF_TOKEN="$CSRF_PG_TOKEN" BENCH_COOKIE="$CSRF_PG_COOKIE" \
      run_cell "$round" PGS "$conns" "$PG1_URL/sign-in" -s "$LUA/signin.lua"
    run_kdf "$round" "$conns" K2
    BENCH_BODIES="$OUT/bodies" BENCH_CSRF_TOKEN="$CSRF_LARGE_TOKEN" BENCH_COOKIE="$CSRF_LARGE_COOKIE" \
      run_cell "$round" S1M "$conns" "$LARGE_URL/sign-in" -s "$LUA/signin.lua"
    BENCH_COOKIES="$OUT/small.cookies" run_cell "$round" M "$conns" "$SMALL_URL/members/page.html" -s "$LUA/cookies.lua"
    run_cell "$round" NX0 "$conns" "$NGINX_URL/open${CSS#/static}"
    BENCH_COOKIES="$OUT/small.cookies" run_cell "$round" NXA "$conns" "$NGINX_URL/app${CSS#/static}" -s "$LUA/cookies.lua"
    BENCH_COOKIES="$OUT/pg.cookies" run_cell "$round" PGP "$conns" "$PG1_URL/welcome" -s "$LUA/cookies.lua"
    BENCH_COOKIES="$OUT/pg.cookies" run_cell "$round" NU1 "$conns" "$NGINX_URL/one/welcome" -s "$LUA/cookies.lua"
    BENCH_COOKIES="$OUT/pg.cookies" run_cell "$round" NU2 "$conns" "$NGINX_URL/two/welcome" -s "$LUA/cookies.lua"
  done
  [ "$round" = 1 ] && RSS[after_p_1m]=$(rss "$LARGE_PID")
done
RSS[after_rounds_1m]=$(rss "$LARGE_PID")
RSS[after_rounds_1m_anon]=$(awk '/RssAnon/ {print $2}' "/proc/$LARGE_PID/status")

# The sign-in flood's memory, on a freshly started 1 M server (the page cells above leave the
# file pages they read mapped, which would blur what the flood itself costs).
if [ -z "${BENCH_CELLS:-}" ] || [[ " $BENCH_CELLS " == *" FLOOD "* ]]; then
echo "== sign-in flood on a fresh 1 M server (memory)"
kill "$LARGE_PID"; wait "$LARGE_PID" 2>/dev/null || true
start_server LARGE "$OUT/large.db"
sleep 1
RSS[fresh_1m]=$(rss "$LARGE_PID")
read -r CSRF_LARGE_COOKIE CSRF_LARGE_TOKEN < <(csrf_for "$LARGE_URL")
BENCH_BODIES="$OUT/bodies" BENCH_CSRF_TOKEN="$CSRF_LARGE_TOKEN" BENCH_COOKIE="$CSRF_LARGE_COOKIE" \
  run_cell 0 FLOOD 64 "$LARGE_URL/sign-in" -s "$LUA/signin.lua"
RSS[flood_1m]=$(sort -n "$OUT/rss.flood" | tail -1)
sleep 2
RSS[after_flood_1m]=$(rss "$LARGE_PID")
fi

python3 - "$OUT" "$KDF_THREADS" "$ARGON2_M" "$ARGON2_T" "${KDF_RATES[@]}" <<PY
import json, statistics, sys
out, threads, m, t, *rates = sys.argv[1:]
rates = [float(r) for r in rates]
rss = {k: int(v) for k, v in [$(for k in "${!RSS[@]}"; do printf '("%s", "%s"),' "$k" "${RSS[$k]}"; done)] if v}
json.dump(dict(kdf_rate=statistics.median(rates), kdf_rates=rates, kdf_threads=int(threads),
               argon2_m_kib=int(m), argon2_t=int(t), rss_kib=rss), open(f"{out}/meta.json", "w"))
PY
echo
python3 scripts/bench/report.py "$OUT"

gnuplot <<GP
set terminal svg size 820,420 font "sans,12" background rgb "white"
set output "$OUT/performance.svg"
set title "Gatehouse on 2 cores: median req/s (wrk, 2 workers)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "requests per second"
set format y "%.0s%c"
set grid ytics
set yrange [0:*]
set key top right
plot "$OUT/chart.dat" using 2:xtic(1) title "16 connections" lc rgb "#3465a4", \
     "" using 3 title "64 connections" lc rgb "#f57900"
GP

if [ "${BENCH_NO_DOCS:-0}" != 1 ] && [ -z "${BENCH_CELLS:-}" ]; then
  cp "$OUT/performance.svg" docs/performance.svg
  python3 - "$OUT" "$ROUNDS" "$SECS" "$LARGE" <<'PY'
import datetime, os, re, subprocess, sys
out, rounds, secs, large = sys.argv[1:]
tables = open(f"{out}/tables.md").read()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
head = (f"Measured {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC at commit `{commit}` on {os.cpu_count()} cores "
        f"({cpu}); `scripts/bench.sh {rounds}` with {secs} s per wrk run, 1 M = {int(large):,} users and sessions.\n\n"
        "![median req/s per cell](performance.svg)\n\n")
path = "docs/performance.md"
doc = open(path).read()
new = re.sub(r"<!-- bench:begin -->.*<!-- bench:end -->",
             lambda _: "<!-- bench:begin -->\n" + head + tables + "<!-- bench:end -->", doc, flags=re.S)
open(path, "w").write(new)
print(f"== wrote {path} and docs/performance.svg")
PY
fi
