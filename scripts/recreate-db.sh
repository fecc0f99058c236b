#!/usr/bin/env bash
# Recreates the database from users.database.sql (deleting every user and session).
# Usage: scripts/recreate-db.sh [DATABASE]   (default: users.database)
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-users.database}"
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
rm -f -- "$db" "$db-wal" "$db-shm"
sqlite3 "$db" < users.database.sql
sqlite3 "$db" 'PRAGMA journal_mode=WAL;' >/dev/null
echo "created $db (schema version $(sqlite3 "$db" 'PRAGMA user_version;'))"
