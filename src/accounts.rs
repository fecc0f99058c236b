//! The account flows shared by the HTML pages and the JSON API: sign-up, sign-in and password
//! change. Each takes already-read request fields and returns a typed outcome that the caller
//! renders; the rules (validation order, fail-lock, KDF, conditional writes) live here once.

use std::time::Duration;

use crate::audit::EventExt;
use crate::domain::{Email, FullName, PlainPassword, Username};
use crate::security::digest::PasswordDigest;
use crate::security::faillock::Reservation;
use crate::security::limits::{LimitsError, UNAVAILABLE_RETRY};
use crate::security::session::SessionId;
use crate::security::throttle::{Refusal, Reserved};
use crate::state::AppState;
use crate::store::{NewSession, Taken, User};
use crate::web::error::AppError;
use std::net::IpAddr;

/// How a password arrived: pre-digested by the page's JS, or typed (no JS, or the API).
pub enum PasswordInput<'a> {
    Digest(&'a str),
    Plain {
        password: &'a str,
        repeat: Option<&'a str>,
    },
    Missing,
}

impl<'a> PasswordInput<'a> {
    /// From form fields: a non-empty digest wins over a plain field; empty counts as absent.
    pub fn from_form(
        digest: Option<&'a str>,
        plain: Option<&'a str>,
        repeat: Option<&'a str>,
    ) -> Self {
        match (
            digest.filter(|d| !d.is_empty()),
            plain.filter(|p| !p.is_empty()),
        ) {
            (Some(d), _) => PasswordInput::Digest(d),
            (None, Some(p)) => PasswordInput::Plain {
                password: p,
                repeat,
            },
            (None, None) => PasswordInput::Missing,
        }
    }
}

/// Messages by field name, in the order found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who is asking, for the address limits, the session row and logs.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
    /// The browser's device cookie, if any (checked against the user being signed in).
    pub device: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Client {
    /// The address limits' early verdict, counting nothing (cheap: before any database work):
    /// 429 when throttled, 503 when the table is full or the limits cannot be asked.
    async fn admit(&self, state: &AppState) -> Result<(), AppError> {
        match self.addr {
            Some(ip) => state
                .guard
                .admit(ip, state.clock.now(), state.kdf.waiting() > 0)
                .await
                .map_err(unavailable)?
                .map_err(refusal),
            None => Ok(()),
        }
    }

    /// Reserves one failure against the address before a password check (see
    /// [`crate::security::throttle::AddressGuard::reserve`]): the authoritative verdict, atomic with the
    /// count, so a parallel burst cannot slip past `--ip-failures`.
    async fn reserve(&self, state: &AppState) -> Result<Option<Reserved>, AppError> {
        match self.addr {
            Some(ip) => state
                .guard
                .reserve(ip, state.clock.now(), state.kdf.waiting() > 0)
                .await
                .map_err(unavailable)?
                .map(Some)
                .map_err(refusal),
            None => Ok(None),
        }
    }

    /// Spends one Argon2 run from the address's budget.
    async fn spend_kdf(&self, state: &AppState) -> Result<(), AppError> {
        match self.addr {
            Some(ip) => state
                .guard
                .spend_kdf(ip, state.clock.now(), state.kdf.waiting() > 0)
                .await
                .map_err(unavailable)?
                .map_err(refusal),
            None => Ok(()),
        }
    }

    /// An audit event from this client.
    pub fn event(&self, kind: &'static str, outcome: &'static str) -> crate::store::AuditEvent {
        crate::audit::event(kind, outcome).client(self)
    }

    /// Writes an audit event about this client's attempt.
    fn audit(
        &self,
        state: &AppState,
        kind: &'static str,
        outcome: &'static str,
        username: Option<&str>,
        user_id: Option<i64>,
    ) {
        state.audit.record(
            crate::audit::event(kind, outcome)
                .user(username, user_id)
                .client(self),
        );
    }

    /// Audits a refusal by the address limits (429 or 503) as `throttled`.
    fn throttled(&self, state: &AppState, kind: &'static str, username: Option<&str>) {
        self.audit(state, kind, "throttled", username, None);
    }

    /// Counts a failure that ran no KDF (a taken username) against the address.
    async fn failed(&self, state: &AppState) {
        if let Some(ip) = self.addr {
            state.guard.failed(ip, state.clock.now()).await;
        }
    }
}

/// The lock or throttle could not be asked: refuse (fail closed) with 503.
fn unavailable(e: LimitsError) -> AppError {
    tracing::warn!("attempt refused: {e}");
    AppError::Unavailable {
        retry_after: UNAVAILABLE_RETRY,
        message: "Please try again later.",
    }
}

fn refusal(r: Refusal) -> AppError {
    match r {
        Refusal::Throttled(retry_after) => AppError::TooManyRequests {
            retry_after,
            message: format!(
                "Too many attempts from your network. Try again in {} seconds.",
                crate::web::error::retry_after_secs(retry_after)
            ),
        },
        Refusal::Full(retry_after) => AppError::Unavailable {
            retry_after,
            message: "Too many clients are being tracked right now. Please try again later.",
        },
    }
}

/// A new password for sign-up or change: the digest to hash, or field errors. Length and
/// repeat rules apply only where the server sees the plain password.
fn new_password_digest(
    username: &str,
    input: &PasswordInput<'_>,
    field: &'static str,
    repeat_field: &'static str,
    digest_field: &'static str,
    errors: &mut FieldErrors,
) -> Option<PasswordDigest> {
    match input {
        PasswordInput::Digest(d) => match PasswordDigest::from_wire(d) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.add(digest_field, e.to_string());
                None
            }
        },
        PasswordInput::Plain { password, repeat } => match PlainPassword::parse(password) {
            Ok(p) => {
                // A repeat too long to normalise cannot match a valid password.
                if let Some(r) = repeat
                    && !(PlainPassword::fits_before_normalising(r)
                        && crate::domain::canonical_password(r) == p.as_str())
                {
                    errors.add(repeat_field, "The passwords do not match.");
                    return None;
                }
                Some(PasswordDigest::from_plain(username, &p))
            }
            Err(msg) => {
                errors.add(field, msg);
                None
            }
        },
        PasswordInput::Missing => {
            errors.add(field, "Enter a password.");
            None
        }
    }
}

pub enum SignUpError {
    Invalid(FieldErrors),
    Taken {
        field: &'static str,
        message: &'static str,
    },
    App(AppError),
}

impl From<AppError> for SignUpError {
    fn from(e: AppError) -> Self {
        SignUpError::App(e)
    }
}

fn taken(t: Taken) -> SignUpError {
    match t {
        Taken::Username => SignUpError::Taken {
            field: "username",
            message: "This username is taken. Please choose another.",
        },
        Taken::Email => SignUpError::Taken {
            field: "email",
            message: "An account with this email already exists.",
        },
    }
}

pub struct SignUpInput<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub full_name: &'a str,
    pub password: PasswordInput<'a>,
}

/// Creates the user (every field valid, then uniqueness, then the KDF). With `session`, also
/// signs them in, replacing the browser's previous session if any.
pub async fn sign_up(
    state: &AppState,
    input: SignUpInput<'_>,
    client: &Client,
    session: Option<Option<[u8; 32]>>,
) -> Result<(User, Option<SessionId>), SignUpError> {
    client
        .admit(state)
        .await
        .inspect_err(|_| client.throttled(state, "sign_up", None))?;
    let mut errors = FieldErrors::default();
    let username = Username::parse(input.username)
        .map_err(|m| errors.add("username", m))
        .ok();
    let password_field_user = username.as_ref().map_or(input.username, Username::as_str);
    let digest = new_password_digest(
        password_field_user,
        &input.password,
        "password",
        "password_repeat",
        "password_digest",
        &mut errors,
    );
    let email = Email::parse_optional(input.email)
        .map_err(|m| errors.add("email", m))
        .ok();
    let full_name = FullName::parse_optional(input.full_name)
        .map_err(|m| errors.add("full_name", m))
        .ok();
    let (Some(username), Some(digest), Some(email), Some(full_name)) =
        (username, digest, email, full_name)
    else {
        return Err(SignUpError::Invalid(errors));
    };

    if let Some(t) = state
        .store
        .taken(&username, email.as_ref())
        .await
        .map_err(AppError::from)?
    {
        client.failed(state).await;
        client.audit(state, "sign_up", "taken", Some(username.as_str()), None);
        return Err(taken(t));
    }
    client
        .spend_kdf(state)
        .await
        .inspect_err(|_| client.throttled(state, "sign_up", Some(username.as_str())))?;

    let hash = state
        .kdf
        .run(move |kdf| kdf.hash(&digest))
        .await
        .map_err(AppError::from)?
        .map_err(AppError::from)?;
    let now = crate::clock::now_ms();
    let created = state
        .store
        .create_user(&username, email.as_ref(), full_name.as_ref(), &hash, now)
        .await
        .map_err(AppError::from)?;
    let user = match created {
        Ok(user) => user,
        Err(t) => {
            client.failed(state).await;
            client.audit(state, "sign_up", "taken", Some(username.as_str()), None);
            return Err(taken(t));
        }
    };
    tracing::info!(event = "sign_up", username = %user.username, "account created");
    client.audit(state, "sign_up", "ok", Some(&user.username), Some(user.id));
    let Some(replaces) = session else {
        return Ok((user, None));
    };
    let signed_in = sign_in_event(client, &user.username, user.id).detail("at sign-up");
    let id = open_session(state, user.id, user.created_ms, client, replaces, signed_in).await?;
    Ok((user, id))
}

/// The audit event of a successful sign-in.
fn sign_in_event(client: &Client, username: &str, user_id: i64) -> crate::store::AuditEvent {
    crate::audit::event("sign_in", "ok")
        .user(Some(username), Some(user_id))
        .client(client)
}

/// Opens a session if the user's password has not changed since `password_changed_ms` (read
/// with the hash just verified). `None` when it changed or the user was disabled. The sign-in's
/// audit row is written in the same trip to the database, so `/account` shows it at once.
async fn open_session(
    state: &AppState,
    user_id: i64,
    password_changed_ms: i64,
    client: &Client,
    replaces: Option<[u8; 32]>,
    signed_in: crate::store::AuditEvent,
) -> Result<Option<SessionId>, AppError> {
    let id = SessionId::generate();
    let now = crate::clock::now_ms();
    let expires = now + state.sessions.max.as_millis() as i64;
    let session = NewSession {
        token_hash: id.hash(),
        user_id,
        password_changed_ms,
        now_ms: now,
        expires_ms: expires,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
        replaces,
    };
    let created = state.store.open_session(session, signed_in).await?;
    if created.is_some() {
        crate::metrics::event("sign_in", "ok");
    }
    Ok(created.map(|_| id))
}

#[derive(Debug)]
pub enum SignInError {
    /// Locked username: 429 with `Retry-After`.
    Locked(Duration),
    /// The digest field is malformed: 400.
    BadDigest(String),
    /// Wrong password, unknown or disabled user: the generic 401.
    Failed,
    App(AppError),
}

impl From<AppError> for SignInError {
    fn from(e: AppError) -> Self {
        SignInError::App(e)
    }
}

fn lock_refusal(r: Reservation) -> Result<(), SignInError> {
    match r {
        Reservation::Proceed => Ok(()),
        Reservation::Locked { retry_after } => Err(SignInError::Locked(retry_after)),
        Reservation::Full { retry_after } => Err(SignInError::App(AppError::Unavailable {
            retry_after,
            message: "Too many failed sign-ins are being tracked right now. Please try again later.",
        })),
    }
}

/// A successful sign-in: who, the new session, and a fresh device token for the browser.
pub struct SignedIn {
    pub username: String,
    pub session: SessionId,
    pub device_token: String,
}

/// The records a password check counts in. Every check counts against the client's address
/// (`--ip-failures`). Every attempt on a well-formed username counts for that username
/// (docs/behaviour.md §4). A browser holding a valid device token for the user also counts in its device's
/// own record, and only that record can refuse it: the username's lock does not apply to the
/// owner's own browsers. All are reserved before the KDF and kept as failures unless released.
struct Counted {
    user: Option<Username>,
    device: Option<String>,
    address: std::cell::Cell<Option<Reserved>>,
    reserved_user: std::cell::Cell<bool>,
    reserved_device: std::cell::Cell<bool>,
}

impl Counted {
    fn new(user: Option<Username>, device: Option<String>) -> Self {
        Self {
            user,
            device,
            address: None.into(),
            reserved_user: false.into(),
            reserved_device: false.into(),
        }
    }

    fn by_device(&self) -> bool {
        self.device.is_some()
    }

    /// Whether the record that decides for this attempt is locked.
    async fn is_locked(&self, state: &AppState) -> Result<bool, AppError> {
        let now = state.clock.now();
        match (&self.device, &self.user) {
            (Some(d), _) => state.device_lock.is_locked(d, now).await,
            (None, Some(u)) => state.lock.is_locked(u, now).await,
            (None, None) => Ok(false),
        }
        .map_err(unavailable)
    }

    /// Applies an admin's unlock (`gatehouse user unlock`) to both records.
    async fn forgive(&self, state: &AppState, unlocked_ms: i64) {
        if unlocked_ms <= 0 {
            return;
        }
        if let Some(u) = &self.user {
            state.lock.forgive(u, unlocked_ms).await;
        }
        if let Some(d) = &self.device {
            state.device_lock.forgive(d, unlocked_ms).await;
        }
    }

    /// Reserves a failure in each record; the device's verdict wins when there is a device.
    /// The address comes first: a throttled address (`Err`) touches no username's lock.
    async fn reserve(&self, state: &AppState, client: &Client) -> Result<Reservation, AppError> {
        self.address.set(client.reserve(state).await?);
        match self.reserve_locks(state).await {
            Ok(r) => Ok(r),
            Err(e) => {
                // Refused as a whole: give back whatever was reserved before the error.
                self.release(state).await;
                Err(unavailable(e))
            }
        }
    }

    async fn reserve_locks(&self, state: &AppState) -> Result<Reservation, LimitsError> {
        let stored = |r: &Reservation| !matches!(r, Reservation::Full { .. });
        let now = state.clock.now();
        let user = match &self.user {
            Some(u) => Some(state.lock.reserve(u, now).await?),
            None => None,
        };
        self.reserved_user.set(user.as_ref().is_some_and(stored));
        match &self.device {
            Some(d) => {
                let r = state.device_lock.reserve(d, now).await?;
                self.reserved_device.set(stored(&r));
                Ok(r)
            }
            None => Ok(user.unwrap_or(Reservation::Proceed)),
        }
    }

    /// Gives back the reserved failures of an attempt that never checked the password.
    async fn release(&self, state: &AppState) {
        self.release_address(state).await;
        if let (Some(u), true) = (&self.user, self.reserved_user.get()) {
            state.lock.release(u).await;
        }
        if let (Some(d), true) = (&self.device, self.reserved_device.get()) {
            state.device_lock.release(d).await;
        }
    }

    /// `result`, after giving back the reserved failures if it is an error (the password was
    /// never checked).
    async fn release_on_err<T>(
        &self,
        state: &AppState,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        if result.is_err() {
            self.release(state).await;
        }
        result
    }

    async fn release_address(&self, state: &AppState) {
        if let Some(r) = self.address.take() {
            state.guard.release(r).await;
        }
    }

    /// A correct password clears the device's record, and the username's unless it is locked:
    /// the owner signing in through their device must not hand an attacker three fresh guesses.
    /// If the lock cannot say, the username's record is kept (the safe side).
    async fn succeeded(&self, state: &AppState) {
        self.release_address(state).await;
        if let Some(u) = &self.user {
            let keep = self.by_device()
                && state
                    .lock
                    .is_locked(u, state.clock.now())
                    .await
                    .unwrap_or(true);
            if !keep {
                state.lock.succeeded(u).await;
            }
        }
        if let Some(d) = &self.device {
            state.device_lock.succeeded(d).await;
        }
    }
}

/// Checks a sign-in: address limits and the lock first (no KDF when refused), then the
/// password with the same KDF work for every outcome, then opens a session replacing
/// `replaces`.
pub async fn sign_in(
    state: &AppState,
    typed_username: &str,
    password: PasswordInput<'_>,
    client: &Client,
    replaces: Option<[u8; 32]>,
) -> Result<SignedIn, SignInError> {
    let canonical = crate::domain::canonical_username(typed_username);
    let username = Username::parse(typed_username).ok();
    let name = username.as_ref().map(Username::as_str);
    client
        .admit(state)
        .await
        .inspect_err(|_| client.throttled(state, "sign_in", name))?;
    let digest = match &password {
        PasswordInput::Digest(d) => PasswordDigest::from_wire(d).map_err(|e| e.to_string()),
        PasswordInput::Plain { password, .. } => Ok(checked_or_unguessable(
            PasswordDigest::from_typed(typed_username, password),
        )),
        PasswordInput::Missing => Ok(PasswordDigest::compute(typed_username, "")),
    };
    let creds = match &username {
        Some(_) => state
            .store
            .credentials(&canonical)
            .await
            .map_err(AppError::from)?,
        None => None,
    };
    let now = crate::clock::now_ms();
    let device = match (&creds, client.device.as_deref()) {
        (Some(c), Some(token)) => crate::security::device::verify(
            &state.key,
            token,
            c.user_id,
            c.password_changed_ms,
            now,
        ),
        _ => None,
    };
    let counted = Counted::new(username.clone(), device);
    if let Some(c) = &creds {
        counted.forgive(state, c.unlocked_ms).await;
    }
    let user_id = creds.as_ref().map(|c| c.user_id);
    // Lock before field rules (docs/behaviour.md §3's order): a locked name answers 429 even to a bad digest.
    // Malformed input on a free name is not a guess: nothing is counted.
    let locked_now = counted.is_locked(state).await?;
    if digest.is_ok() || locked_now {
        let reserved = counted
            .reserve(state, client)
            .await
            .inspect_err(|_| client.throttled(state, "sign_in", name))?;
        if let Err(e) = lock_refusal(reserved) {
            if !matches!(e, SignInError::Locked(_)) {
                counted.release(state).await;
            } else {
                // The reserved failures stay: an attempt on a locked name counts.
                client.audit(state, "sign_in", "locked", name, user_id);
                let by = if counted.by_device() {
                    "device"
                } else {
                    "username"
                };
                // Debug only: a line per hammered attempt would fill the log; the audit trail
                // keeps one row per episode.
                tracing::debug!(event = "sign_in", username = %canonical, outcome = "locked", by, "sign-in refused: locked");
            }
            return Err(e);
        }
    }
    // From here on a failure is reserved; give it back if the password is never checked.
    let digest = match digest {
        Ok(d) => d,
        Err(msg) => {
            counted.release(state).await;
            return Err(SignInError::BadDigest(msg));
        }
    };
    let spent = client
        .spend_kdf(state)
        .await
        .inspect_err(|_| client.throttled(state, "sign_in", name));
    counted.release_on_err(state, spent).await?;
    // Kept for a re-hash after success, so the password is not normalised twice.
    let rehash_digest = digest.clone();
    let check = creds.clone();
    let verified = state
        .kdf
        .run(move |kdf| match &check {
            Some(c) => kdf.verify(&digest, &c.password_hash).unwrap_or(false) && c.active,
            None => {
                kdf.verify_dummy(&digest);
                false
            }
        })
        .await
        .map_err(AppError::from);
    let verified = counted.release_on_err(state, verified).await?;
    let (Some(u), Some(creds), true) = (&username, creds, verified) else {
        // The reserved failures stay counted.
        client.audit(state, "sign_in", "failed", name, user_id);
        match &username {
            Some(u) => {
                tracing::info!(event = "sign_in", username = %u, outcome = "failed", "sign-in failed")
            }
            None => tracing::info!(
                event = "sign_in",
                outcome = "failed",
                "sign-in failed (malformed username)"
            ),
        }
        return Err(SignInError::Failed);
    };
    counted.succeeded(state).await;
    let Some(id) = open_session(
        state,
        creds.user_id,
        creds.password_changed_ms,
        client,
        replaces,
        sign_in_event(client, u.as_str(), creds.user_id),
    )
    .await?
    else {
        // The password changed or the user was disabled while we were checking.
        client.audit(state, "sign_in", "failed", name, user_id);
        tracing::info!(event = "sign_in", username = %u, outcome = "raced", "sign-in lost a race with a password change");
        return Err(SignInError::Failed);
    };
    tracing::info!(event = "sign_in", username = %u, outcome = "ok", ip = client.ip.as_deref().unwrap_or("-"), "signed in");
    if state.kdf.kdf().needs_rehash(&creds.password_hash) {
        spawn_rehash(state, creds.user_id, creds.password_hash, rehash_digest);
    }
    Ok(SignedIn {
        username: u.as_str().to_owned(),
        session: id,
        device_token: crate::security::device::issue(
            &state.key,
            creds.user_id,
            creds.password_changed_ms,
            now,
        ),
    })
}

/// A typed password's digest, or, for one too long to be any valid password, a digest no
/// password matches: the check then fails with the same KDF work as a wrong password
/// (docs/behaviour.md §2: sign-in applies no format rule), without normalising the long field.
fn checked_or_unguessable(
    digest: Result<PasswordDigest, crate::security::digest::TooLong>,
) -> PasswordDigest {
    digest.unwrap_or_else(|_| PasswordDigest::unguessable())
}

/// Re-hashes with the current parameters in the background; the write is conditional on the
/// old hash still being current.
fn spawn_rehash(state: &AppState, user_id: i64, old_hash: String, digest: PasswordDigest) {
    let (kdf, store) = (state.kdf.clone(), state.store.clone());
    actix_web::rt::spawn(async move {
        let Ok(Ok(new_hash)) = kdf.run(move |k| k.hash(&digest)).await else {
            return;
        };
        let now = crate::clock::now_ms();
        match store.rehash(user_id, old_hash, new_hash, now).await {
            Ok(true) => tracing::info!(user_id, "password hash upgraded to current parameters"),
            Ok(false) => {}
            Err(e) => tracing::warn!("rehash failed: {e}"),
        }
    });
}

#[derive(Debug)]
pub enum ChangeError {
    Locked(Duration),
    Invalid(FieldErrors),
    WrongPassword,
    App(AppError),
}

impl From<AppError> for ChangeError {
    fn from(e: AppError) -> Self {
        ChangeError::App(e)
    }
}

/// Changes the signed-in user's password: lock, field rules, then one KDF job that verifies the
/// current password and hashes the new one; the write ends every session and opens a new one.
pub async fn change_password(
    state: &AppState,
    user: &User,
    current: PasswordInput<'_>,
    new: PasswordInput<'_>,
    client: &Client,
) -> Result<SignedIn, ChangeError> {
    let username = Username::parse(&user.username)
        .map_err(|_| AppError::Internal("stored username invalid".into()))?;
    let name = Some(username.as_str());
    client
        .admit(state)
        .await
        .inspect_err(|_| client.throttled(state, "password_change", name))?;
    let creds = state
        .store
        .credentials_by_id(user.id)
        .await
        .map_err(AppError::from)?;
    let Some(creds) = creds else {
        return Err(AppError::Unauthorized.into());
    };
    // As on sign-in: this browser's valid device token moves the count to its own lock, so a
    // username locked by someone else does not stop its owner from changing the password.
    let device = client.device.as_deref().and_then(|token| {
        crate::security::device::verify(
            &state.key,
            token,
            user.id,
            creds.password_changed_ms,
            crate::clock::now_ms(),
        )
    });
    let counted = Counted::new(Some(username.clone()), device);
    counted.forgive(state, creds.unlocked_ms).await;
    let reserved = counted
        .reserve(state, client)
        .await
        .inspect_err(|_| client.throttled(state, "password_change", name))?;
    match reserved {
        Reservation::Proceed => {}
        Reservation::Locked { retry_after } => {
            client.audit(state, "password_change", "locked", name, Some(user.id));
            tracing::debug!(event = "password_change", username = %username, outcome = "locked", "refused: locked");
            return Err(ChangeError::Locked(retry_after));
        }
        Reservation::Full { retry_after } => {
            counted.release(state).await;
            return Err(AppError::Unavailable {
                retry_after,
                message: "Please try again later.",
            }
            .into());
        }
    }
    let mut errors = FieldErrors::default();
    let current_digest = match current {
        PasswordInput::Digest(d) => PasswordDigest::from_wire(d)
            .map_err(|e| errors.add("current_password_digest", e.to_string()))
            .ok(),
        PasswordInput::Plain { password, .. } => Some(checked_or_unguessable(
            PasswordDigest::from_typed(&user.username, password),
        )),
        PasswordInput::Missing => {
            errors.add("current_password", "Enter your current password.");
            None
        }
    };
    let new_digest = new_password_digest(
        &user.username,
        &new,
        "new_password",
        "new_password_repeat",
        "new_password_digest",
        &mut errors,
    );
    let (Some(current_digest), Some(new_digest)) = (current_digest, new_digest) else {
        counted.release(state).await;
        return Err(ChangeError::Invalid(errors));
    };
    let spent = client
        .spend_kdf(state)
        .await
        .inspect_err(|_| client.throttled(state, "password_change", name));
    counted.release_on_err(state, spent).await?;
    let old_hash = creds.password_hash.clone();
    let outcome = state
        .kdf
        .run(move |kdf| {
            if kdf.verify(&current_digest, &old_hash).unwrap_or(false) {
                kdf.hash(&new_digest).map(Some)
            } else {
                Ok(None)
            }
        })
        .await
        .map_err(AppError::from)
        .and_then(|hashed| hashed.map_err(AppError::from));
    let outcome = counted.release_on_err(state, outcome).await?;
    let Some(new_hash) = outcome else {
        client.audit(state, "password_change", "failed", name, Some(user.id));
        tracing::info!(event = "password_change", username = %username, outcome = "wrong_password", "password change refused");
        return Err(ChangeError::WrongPassword);
    };
    counted.succeeded(state).await;

    let id = SessionId::generate();
    // Strictly later than the old change time, so "changed since" is never ambiguous.
    let now = crate::clock::now_ms().max(creds.password_changed_ms + 1);
    let expires = now + state.sessions.max.as_millis() as i64;
    let session = NewSession {
        token_hash: id.hash(),
        user_id: user.id,
        password_changed_ms: now,
        now_ms: now,
        expires_ms: expires,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
        replaces: None,
    };
    let changed = state
        .store
        .change_password(creds.password_changed_ms, new_hash, session)
        .await
        .map_err(AppError::from)?;
    if changed.is_none() {
        // Changed elsewhere (or the user disabled) between our read and our write.
        return Err(AppError::Conflict(
            "Your password was changed elsewhere just now. Sign in again.",
        )
        .into());
    }
    tracing::info!(event = "password_change", username = %username, outcome = "ok", "password changed; other sessions ended");
    client.audit(state, "password_change", "ok", name, Some(user.id));
    Ok(SignedIn {
        username: username.as_str().to_owned(),
        session: id,
        // Every older device token died with the old password; this browser gets a new one.
        device_token: crate::security::device::issue(&state.key, user.id, now, now),
    })
}
