#!/usr/bin/env bash
# Lighthouse scores (performance, accessibility, best practices, SEO) of /sign-in, /sign-up and
# a signed-in /account, with Debian's Chromium. Not run by the tests: it is a measurement.
#
# Builds the release binary, starts it on a free 127.0.0.1 port with a temporary database,
# signs a user up with curl (plus two more sign-ins, so /account lists other sessions), then
# runs npm's `lighthouse` (installed into target/lighthouse/ when missing) on each page; the
# signed-in page gets the session cookie through --extra-headers. Prints a table of scores and
# every audit that lost points. Reports stay in target/lighthouse/reports/.
#
#   scripts/lighthouse.sh                   # mobile form factor (Lighthouse's default)
#   LIGHTHOUSE_PRESET=desktop scripts/lighthouse.sh
#   PROFILE=dev scripts/lighthouse.sh       # reuse the debug build (faster to get to)
#
# Needs: cargo, curl, node + npm (Lighthouse 12 runs on Node 18.20+), /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
export CHROME_PATH
LH_VERSION=${LH_VERSION:-12}
LH_DIR=target/lighthouse
REPORTS=$LH_DIR/reports

for tool in cargo curl node npm; do
    command -v "$tool" >/dev/null || { echo "lighthouse.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$CHROME_PATH" ] || { echo "lighthouse.sh: no Chromium at $CHROME_PATH" >&2; exit 1; }

if [ "$PROFILE" = release ]; then
    cargo build --release --locked
    BIN=target/release/gatehouse
else
    cargo build --locked
    BIN=target/debug/gatehouse
fi

LH=$LH_DIR/node_modules/.bin/lighthouse
if [ ! -x "$LH" ]; then
    echo "Installing lighthouse@$LH_VERSION into $LH_DIR ..."
    mkdir -p "$LH_DIR"
    npm install --silent --no-audit --no-fund --prefix "$LH_DIR" "lighthouse@$LH_VERSION"
fi
mkdir -p "$REPORTS"

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port, and the server logs the one it got.
GATEHOUSE_LOG=info "$BIN" --bind 127.0.0.1:0 --database "$TMP/users.database" 2>"$TMP/server.log" &
SERVER_PID=$!
ORIGIN=
for _ in $(seq 1 300); do
    ORIGIN=$(grep -o 'listening on http://[0-9.:]*' "$TMP/server.log" | head -n1 | sed 's/listening on //' || true)
    [ -n "$ORIGIN" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$ORIGIN" ] || { echo "lighthouse.sh: the server did not start" >&2; cat "$TMP/server.log" >&2; exit 1; }
echo "Server: $ORIGIN ($PROFILE build)"

# The hidden csrf_token of a page fetched with cookie jar $1.
csrf() {
    curl -fsS -c "$1" -b "$1" "$ORIGIN$2" |
        sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1 |
        sed 's/&#43;/+/g; s/&#47;/\//g; s/&#61;/=/g'
}

USER_NAME=lighthouse_user
PASSWORD='a long lighthouse password'
JAR=$TMP/jar
token=$(csrf "$JAR" /sign-up)
curl -fsS -o /dev/null -c "$JAR" -b "$JAR" \
    --data-urlencode "username=$USER_NAME" --data-urlencode "password=$PASSWORD" \
    --data-urlencode "password_repeat=$PASSWORD" --data-urlencode "full_name=Light House" \
    --data-urlencode "email=lighthouse@example.org" --data-urlencode "csrf_token=$token" \
    "$ORIGIN/sign-up"
for ua in "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" "curl/8.5.0"; do
    other=$TMP/jar-other
    rm -f "$other"
    token=$(csrf "$other" /sign-in)
    curl -fsS -o /dev/null -A "$ua" -c "$other" -b "$other" \
        --data-urlencode "username=$USER_NAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "csrf_token=$token" "$ORIGIN/sign-in"
done
SESSION=$(awk '$6 == "session" { print $7 }' "$JAR")
[ -n "$SESSION" ] || { echo "lighthouse.sh: sign-up gave no session cookie" >&2; exit 1; }

PRESET_ARGS=()
if [ -n "${LIGHTHOUSE_PRESET:-}" ]; then PRESET_ARGS=(--preset="$LIGHTHOUSE_PRESET"); fi

run() { # name, path, extra lighthouse args...
    local name=$1 path=$2
    shift 2
    "$LH" "$ORIGIN$path" --quiet \
        --chrome-flags="--no-sandbox --headless=new --disable-gpu" \
        --only-categories=performance,accessibility,best-practices,seo \
        --output=json --output=html --output-path="$REPORTS/$name" \
        ${PRESET_ARGS[@]+"${PRESET_ARGS[@]}"} "$@"
}

run sign-in /sign-in
run sign-up /sign-up
run account /account --extra-headers "{\"Cookie\": \"session=$SESSION\"}"

node - "$REPORTS" <<'EOF'
const fs = require('fs');
const dir = process.argv[2];
const cats = ['performance', 'accessibility', 'best-practices', 'seo'];
console.log('\npage       ' + cats.map(c => c.padStart(15)).join(''));
const lost = [];
for (const page of ['sign-in', 'sign-up', 'account']) {
  const r = JSON.parse(fs.readFileSync(`${dir}/${page}.report.json`, 'utf8'));
  if (r.finalDisplayedUrl && !r.finalDisplayedUrl.includes(page === 'account' ? '/account' : `/${page}`)) {
    lost.push(`${page}: landed on ${r.finalDisplayedUrl}`);
  }
  console.log(page.padEnd(11) + cats.map(c => String(Math.round(r.categories[c].score * 100)).padStart(15)).join(''));
  for (const c of cats) {
    for (const ref of r.categories[c].auditRefs) {
      const a = r.audits[ref.id];
      if (ref.weight > 0 && a.score !== null && a.score < 1) {
        lost.push(`${page} / ${c}: ${a.id} (${a.score}): ${a.title}`);
      }
    }
  }
}
console.log(lost.length ? '\nAudits that lost points:\n  ' + lost.join('\n  ') : '\nNo audit lost points.');
console.log(`\nReports: ${dir}/*.report.html`);
EOF
