-- Gatehouse schema. Each section, headed "@version N", upgrades the database from the version
-- before it and ends by setting PRAGMA user_version; the server applies, in order, every section
-- newer than the file (`sqlite3 users.database < users.database.sql` also builds a fresh file).
-- Times are Unix milliseconds (UTC).

-- @version 1
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL UNIQUE
                        CHECK (length(username) BETWEEN 3 AND 32 AND username NOT GLOB '*[^a-z0-9_]*'),
    email               TEXT    UNIQUE COLLATE NOCASE CHECK (email IS NULL OR length(email) <= 254),
    full_name           TEXT    CHECK (full_name IS NULL OR length(full_name) BETWEEN 1 AND 100),
    password_hash       TEXT    NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    active              INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- public id shown on /account
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),  -- SHA-256 of the cookie
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_by_user ON sessions(user_id, created_at);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

PRAGMA user_version = 1;

-- @version 2
-- An admin's `gatehouse user unlock` (or set-password): the server forgives fail-lock records
-- that began before this time, so the unlock takes effect on a running server at once.
ALTER TABLE users ADD COLUMN unlocked_at INTEGER NOT NULL DEFAULT 0;

-- The audit trail. Locked and throttled attempts are one row per episode: `count` attempts
-- between `at` and `last_at`. No foreign key on user_id: the trail outlives a deleted user.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    count      INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
    event      TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    username   TEXT,
    user_id    INTEGER,
    ip         TEXT,
    user_agent TEXT    CHECK (user_agent IS NULL OR length(user_agent) <= 256),
    detail     TEXT
);
CREATE INDEX audit_by_time ON audit_events(last_at);
CREATE INDEX audit_by_user ON audit_events(user_id, event, at);
CREATE INDEX audit_by_username ON audit_events(username, at);

PRAGMA user_version = 2;

-- @version 3
-- Lets the purge of idle sessions (and `session list`) use an index instead of scanning every
-- session: with a million sessions the scan cost ~100 ms and pulled the whole table into memory.
CREATE INDEX sessions_by_last_seen ON sessions(last_seen_at);

PRAGMA user_version = 3;

-- @version 4
-- User groups (docs/operations.md, "Groups"): what forward-auth's `?group=` checks. A group is
-- only a name on its members; it goes with the user.
CREATE TABLE user_groups (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name    TEXT    NOT NULL
            CHECK (length(name) BETWEEN 1 AND 32 AND name NOT GLOB '*[^a-z0-9_-]*'),
    PRIMARY KEY (user_id, name)
);

PRAGMA user_version = 4;

-- @version 5
-- Mail, account recovery and verified addresses (docs/behaviour.md §11).
-- `email_verified_at`: when the user confirmed `email` (NULL: not confirmed). `pending_email`:
-- an address the user asked to move to, not yet confirmed (the old one stays in `email`).
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
ALTER TABLE users ADD COLUMN pending_email TEXT COLLATE NOCASE
    CHECK (pending_email IS NULL OR length(pending_email) <= 254);
ALTER TABLE users ADD COLUMN pending_email_at INTEGER;

-- One-time links (password reset, email verification): only SHA-256 of the token is stored.
CREATE TABLE tokens (
    hash       BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('reset', 'verify')),
    email      TEXT,            -- for 'verify': the address the link confirms
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX tokens_by_user ON tokens(user_id, purpose);
CREATE INDEX tokens_by_expiry ON tokens(expires_at);
-- A password change by any route (the account page, an admin, a reset link) kills every reset
-- link of the user, here once rather than in each of them.
CREATE TRIGGER password_change_kills_reset_links AFTER UPDATE OF password_changed_at ON users
WHEN NEW.password_changed_at <> OLD.password_changed_at
BEGIN
    DELETE FROM tokens WHERE user_id = NEW.id AND purpose = 'reset';
END;

-- Usernames of deleted accounts: apps behind forward-auth key on them, so none is reused.
CREATE TABLE retired_usernames (
    username   TEXT    PRIMARY KEY,
    retired_at INTEGER NOT NULL
);
-- Every deletion retires the name, whichever route deletes (the account page, the API, an
-- admin): the user's audit events stay, keyed by the same name.
CREATE TRIGGER deleted_users_retire_their_names AFTER DELETE ON users
BEGIN
    INSERT OR IGNORE INTO retired_usernames (username, retired_at)
    VALUES (OLD.username, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

-- Mail waiting to be sent, written in the transaction of the change that causes it. `body` is
-- the rendered message sealed with an AEAD keyed from the site key (it holds live links); the
-- row is deleted once delivered, refused for good, or past `expires_at` (its link's expiry).
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT    NOT NULL UNIQUE,
    recipient     TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_try_at   INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(next_try_at);

-- Messages recently queued per recipient (lower-cased), for the per-address mail rate; rows
-- older than an hour are purged.
CREATE TABLE mail_rate (
    recipient TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX mail_rate_by_recipient ON mail_rate(recipient, at);

PRAGMA user_version = 5;

-- @version 6
-- Facts about the installation: `key_fingerprint` (a server started with a different secret
-- key than the one the database was used with refuses to start, rather than reject every
-- cookie and fail to open the mail it sealed).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

PRAGMA user_version = 6;

-- @version 7
-- Second factors and passkeys (docs/behaviour.md §13). Everything goes with the user.
-- `secret` is the TOTP secret sealed with an AEAD keyed from the site key (its own label);
-- `enabled_at` is NULL while set-up waits for its confirming code. `last_step` is the highest
-- RFC 6238 time step accepted for this user: one `UPDATE … WHERE last_step < ?` both checks and
-- records it, so a code is never accepted twice (replay), on any instance.
CREATE TABLE totp (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    last_step  INTEGER NOT NULL DEFAULT -1
);

-- Single-use recovery codes: SHA-256 of the normalised code; `used_at` set by one update.
CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, hash)
);

-- A sign-in whose password step passed and whose code step is pending: the cookie holds a
-- random id, only its SHA-256 is kept. Five minutes; deleted on success, on expiry and by a
-- password change (the trigger below). `next_url` is the signed return address, kept as sent.
CREATE TABLE pending_sign_ins (
    hash                BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_changed_at INTEGER NOT NULL,
    next_url            TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL
);
CREATE INDEX pending_sign_ins_by_user ON pending_sign_ins(user_id);
CREATE INDEX pending_sign_ins_by_expiry ON pending_sign_ins(expires_at);
CREATE TRIGGER password_change_kills_pending_sign_ins AFTER UPDATE OF password_changed_at ON users
WHEN NEW.password_changed_at <> OLD.password_changed_at
BEGIN
    DELETE FROM pending_sign_ins WHERE user_id = NEW.id;
END;

-- Passkeys (WebAuthn discoverable credentials). `passkey` is webauthn-rs's serialised
-- credential (public key, counter, flags); `counter` mirrors its signature counter for
-- display and checks. `user_handle` is the random WebAuthn user id, the same for all of a
-- user's passkeys; discoverable sign-in finds the user from it and the credential id.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL UNIQUE,
    user_handle   BLOB    NOT NULL,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    passkey       TEXT    NOT NULL,
    counter       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_by_user ON passkeys(user_id);
CREATE INDEX passkeys_by_handle ON passkeys(user_handle);

-- WebAuthn ceremonies in progress (registration or sign-in): the challenge state webauthn-rs
-- needs to finish it, keyed by SHA-256 of a random id the browser holds. Single use (deleted
-- when taken), five minutes, a bounded number live per address group.
CREATE TABLE webauthn_ceremonies (
    hash       BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    kind       TEXT    NOT NULL CHECK (kind IN ('register', 'authenticate')),
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    address    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_by_address ON webauthn_ceremonies(address, expires_at);
CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies(expires_at);

PRAGMA user_version = 7;
