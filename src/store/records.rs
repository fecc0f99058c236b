//! The records storage hands to the flows and the admin commands: plain values, the same
//! whichever backend stores them (see docs/design.md, "Storage interface").

use crate::security::session::SessionState;

/// A user as pages and the API show it (no hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub created_ms: i64,
}

/// What a password check needs.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user_id: i64,
    pub password_hash: String,
    pub active: bool,
    pub password_changed_ms: i64,
    /// When an admin last lifted the fail-lock (0: never); older lock records are forgiven.
    pub unlocked_ms: i64,
    /// The account's address and whether it is confirmed (`--email-verification required`
    /// refuses sign-in until it is).
    pub email: Option<String>,
    pub email_verified: bool,
    /// Whether authenticator codes are on (sign-in then asks for a code, §13.1): read with the
    /// credentials, so a sign-in costs no extra query.
    pub two_step: bool,
}

/// A session joined with the facts that decide its validity.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: i64,
    pub user: User,
    pub state: SessionState,
    /// The user's groups, sorted (forward-auth's `?group=` and `Remote-Groups` read them on
    /// every request, so they come with the session lookup).
    pub groups: Vec<String>,
    /// Whether the user's email is confirmed (§11.3).
    pub email_verified: bool,
}

/// A row of the user's session list on `/account`.
#[derive(Clone, Debug)]
pub struct SessionSummary {
    pub id: i64,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: i64,
    /// The user's `password_changed_at` read with the hash that was just verified: the session
    /// is created only if it is unchanged (and the user active), so a sign-in racing a password
    /// change cannot outlive it. A rehash does not change it, so it cannot fail a sign-in.
    pub password_changed_ms: i64,
    pub now_ms: i64,
    pub expires_ms: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The session being replaced (rotation), deleted in the same transaction.
    pub replaces: Option<[u8; 32]>,
}

/// An event to write. `count` > 1 and `last_ms` > `at_ms` for an aggregated episode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    pub event: &'static str,
    pub outcome: &'static str,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// A stored event, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    pub event: String,
    pub outcome: String,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// What `gatehouse audit` selects; the newest `limit` matching rows, printed oldest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub since_ms: Option<i64>,
    pub event: Option<String>,
    pub limit: usize,
}

/// A user as `gatehouse user list|show` prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDetails {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub active: bool,
    pub created_ms: i64,
    pub password_changed_ms: i64,
    pub unlocked_ms: i64,
    pub sessions: i64,
    /// Whether `email` is confirmed (§11.3).
    pub email_verified: bool,
    /// A new address waiting for confirmation; `email` stays the account's until then.
    pub pending_email: Option<String>,
}

/// The outcome of adding a user to a group or removing them from one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub user_id: i64,
    /// Whether membership changed: `false` when already in (add) or not in (remove) the group.
    pub changed: bool,
}

/// A live session as `gatehouse session list` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionListing {
    pub id: i64,
    pub username: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What `gatehouse db check` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// `PRAGMA integrity_check` and `foreign_key_check` problems; empty when sound.
    pub problems: Vec<String>,
    pub schema_version: i64,
    pub latest_version: i64,
    pub users: i64,
    pub sessions: i64,
}

/// One user of a seed import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported,
    Exists,
}

/// Which unique field a new user collides with: an answer, not a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Taken {
    #[error("username is taken")]
    Username,
    #[error("email is taken")]
    Email,
}

/// A message for the outbox, as `Mailer::compose` (the mail module) makes it: the body is
/// already sealed (it holds live links), the `Message-ID` fixed for every retry.
#[derive(Clone, Debug)]
pub struct NewMail {
    pub message_id: String,
    pub recipient: String,
    /// `MailKind::name`.
    pub kind: &'static str,
    pub sealed_body: Vec<u8>,
    pub created_ms: i64,
    /// When the message stops being worth sending (its link's expiry): it is deleted then.
    pub expires_ms: i64,
}

/// The outbox's bounds: past either, a new message is dropped (and counted), so a flood of
/// requests cannot grow the table or fill one inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Messages waiting at most.
    pub max_queued: i64,
    /// Messages queued for one address (ASCII case ignored) within an hour at most.
    pub per_recipient_per_hour: i64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_queued: 10_000,
            per_recipient_per_hour: 10,
        }
    }
}

/// What became of a message handed to the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// Dropped: the outbox holds [`OutboxLimits::max_queued`] messages.
    DroppedFull,
    /// Dropped: the recipient had [`OutboxLimits::per_recipient_per_hour`] this hour.
    DroppedRate,
}

/// A message the sender claimed: its row, for one delivery attempt.
#[derive(Clone, Debug)]
pub struct QueuedMail {
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    pub kind: String,
    pub sealed_body: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: i64,
}
