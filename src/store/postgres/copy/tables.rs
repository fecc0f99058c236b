//! What `db copy` copies: every table of the SQLite schema with its columns and their
//! PostgreSQL types, in an order that satisfies the foreign keys.

use tokio_postgres::types::Type;

/// How a column is stored on PostgreSQL (SQLite's are looser: a boolean is 0 or 1).
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Int,
    Text,
    Bytes,
    Bool,
}

impl Kind {
    pub(super) fn pg_type(self) -> Type {
        match self {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bytes => Type::BYTEA,
            Kind::Bool => Type::BOOL,
        }
    }
}

use Kind::{Bool, Bytes, Int, Text};

/// A table both schemas share: its columns, and whether its `id` is an identity column.
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) columns: &'static [(&'static str, Kind)],
    pub(super) identity: bool,
}

/// Every table of the SQLite schema, in an order that satisfies the foreign keys.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("email", Text),
            ("full_name", Text),
            ("password_hash", Text),
            ("active", Bool),
            ("created_at", Int),
            ("updated_at", Int),
            ("password_changed_at", Int),
            ("unlocked_at", Int),
            ("email_verified_at", Int),
            ("pending_email", Text),
            ("pending_email_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Int),
            ("token_hash", Bytes),
            ("user_id", Int),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
            ("user_agent", Text),
            ("ip", Text),
        ],
        identity: true,
    },
    Table {
        name: "user_groups",
        columns: &[("user_id", Int), ("name", Text)],
        identity: false,
    },
    Table {
        name: "tokens",
        columns: &[
            ("hash", Bytes),
            ("user_id", Int),
            ("purpose", Text),
            ("email", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "audit_events",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("last_at", Int),
            ("count", Int),
            ("event", Text),
            ("outcome", Text),
            ("username", Text),
            ("user_id", Int),
            ("ip", Text),
            ("user_agent", Text),
            ("detail", Text),
        ],
        identity: true,
    },
    Table {
        name: "retired_usernames",
        columns: &[("username", Text), ("retired_at", Int)],
        identity: false,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("message_id", Text),
            ("recipient", Text),
            ("kind", Text),
            ("body", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("attempts", Int),
            ("next_try_at", Int),
            ("claimed_until", Int),
        ],
        identity: true,
    },
    Table {
        name: "mail_rate",
        columns: &[("recipient", Text), ("at", Int)],
        identity: false,
    },
    Table {
        name: "meta",
        columns: &[("name", Text), ("value", Text)],
        identity: false,
    },
    Table {
        name: "totp",
        columns: &[
            ("user_id", Int),
            ("secret", Bytes),
            ("created_at", Int),
            ("enabled_at", Int),
            ("last_step", Int),
        ],
        identity: false,
    },
    Table {
        name: "recovery_codes",
        columns: &[
            ("user_id", Int),
            ("hash", Bytes),
            ("created_at", Int),
            ("used_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "pending_sign_ins",
        columns: &[
            ("hash", Bytes),
            ("user_id", Int),
            ("password_changed_at", Int),
            ("next_url", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "passkeys",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("credential_id", Bytes),
            ("user_handle", Bytes),
            ("name", Text),
            ("passkey", Text),
            ("counter", Int),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "webauthn_ceremonies",
        columns: &[
            ("hash", Bytes),
            ("kind", Text),
            ("user_id", Int),
            ("address", Text),
            ("state", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        identity: false,
    },
];
