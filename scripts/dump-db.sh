#!/usr/bin/env bash
# Prints the database's users and sessions (hashes shortened; there are no passwords to show).
# Usage: scripts/dump-db.sh [DATABASE]   (default: users.database)
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-users.database}"
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
[ -f "$db" ] || { echo "no database at $db" >&2; exit 1; }
sqlite3 -header -column "$db" <<'SQL'
.print '== users'
SELECT id, username, email, full_name, active,
       substr(password_hash, 1, 30) || '…' AS password_hash,
       datetime(created_at / 1000, 'unixepoch') AS created,
       datetime(password_changed_at / 1000, 'unixepoch') AS password_changed
FROM users ORDER BY id;
.print ''
.print '== sessions'
SELECT s.id, u.username, datetime(s.created_at / 1000, 'unixepoch') AS created,
       datetime(s.last_seen_at / 1000, 'unixepoch') AS last_seen,
       datetime(s.expires_at / 1000, 'unixepoch') AS expires, s.ip, s.user_agent
FROM sessions s JOIN users u ON u.id = s.user_id ORDER BY s.id;
SQL
