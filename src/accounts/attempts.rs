//! The attempt bookkeeping every password check shares: the address limits' verdicts for a
//! [`Client`], and [`Counted`], the failures an attempt reserves in the username's, the
//! device's and the address's records before the KDF runs (docs/behaviour.md §4).

use std::cell::Cell;
use std::time::Duration;

use super::{Accounts, Client};
use crate::domain::Username;
use crate::security::faillock::Reservation;
use crate::security::limits::LimitsError;
use crate::security::throttle::{Refusal, Reserved};

/// An attempt refused by the limits before any password was checked.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many failures from the client's address.
    #[error("throttled for {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The address table is full.
    #[error("address table full")]
    Full { retry_after: Duration },
    /// The lock or throttle could not be asked: refused (fail closed).
    #[error(transparent)]
    Unavailable(#[from] LimitsError),
}

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Throttled(retry_after) => Refused::Throttled { retry_after },
            Refusal::Full(retry_after) => Refused::Full { retry_after },
        }
    }
}

fn unavailable(e: LimitsError) -> Refused {
    tracing::warn!("attempt refused: {e}");
    Refused::Unavailable(e)
}

/// Which address verdict [`Accounts::check_address`] asks for.
enum Check {
    Admit,
    SpendKdf,
}

impl Accounts {
    fn contended(&self) -> bool {
        self.kdf.waiting() > 0
    }

    /// The address limits' early verdict, counting nothing (cheap: before any database work);
    /// a refusal is audited as `kind` (see [`Accounts::throttled`]).
    pub(super) async fn admit(
        &self,
        client: &Client,
        kind: &'static str,
        username: Option<&str>,
    ) -> Result<(), Refused> {
        self.check_address(Check::Admit, client, kind, username)
            .await
    }

    /// Spends one Argon2 run from the address's budget; a refusal is audited as `kind`.
    pub(super) async fn spend_kdf(
        &self,
        client: &Client,
        kind: &'static str,
        username: Option<&str>,
    ) -> Result<(), Refused> {
        self.check_address(Check::SpendKdf, client, kind, username)
            .await
    }

    async fn check_address(
        &self,
        check: Check,
        client: &Client,
        kind: &'static str,
        username: Option<&str>,
    ) -> Result<(), Refused> {
        let (Some(limits), Some(ip)) = (&self.limits, client.addr) else {
            return Ok(());
        };
        let (now, contended) = (self.now(), self.contended());
        let verdict = match check {
            Check::Admit => limits.admit(ip, now, contended).await,
            Check::SpendKdf => limits.spend_kdf(ip, now, contended).await,
        };
        let verdict = verdict.map_err(unavailable).and_then(|v| Ok(v?));
        verdict.inspect_err(|_| self.throttled(client, kind, username))
    }

    /// Reserves one failure against the address before a password check (see
    /// [`crate::security::throttle::AddressGuard::reserve`]): the authoritative verdict,
    /// atomic with the count, so a parallel burst cannot slip past `--ip-failures`.
    pub(super) async fn reserve_address(
        &self,
        client: &Client,
    ) -> Result<Option<Reserved>, Refused> {
        match (&self.limits, client.addr) {
            (Some(limits), Some(ip)) => Ok(Some(
                limits
                    .reserve(ip, self.now(), self.contended())
                    .await
                    .map_err(unavailable)??,
            )),
            _ => Ok(None),
        }
    }

    /// Counts a failure that ran no KDF (a taken username) against the address.
    pub(super) async fn failed(&self, client: &Client) {
        if let (Some(limits), Some(ip)) = (&self.limits, client.addr) {
            limits.failed(ip, self.now()).await;
        }
    }

    /// Audits a refusal by the address limits as `throttled`.
    pub(super) fn throttled(&self, client: &Client, kind: &'static str, username: Option<&str>) {
        self.audit(client, kind, "throttled", username, None);
    }
}

/// The records a password check counts in. Every check counts against the client's address
/// (`--ip-failures`). Every attempt on a well-formed username counts for that username
/// (docs/behaviour.md §4). A browser holding a valid device token for the user also counts in
/// its device's own record, and only that record can refuse it: the username's lock does not
/// apply to the owner's own browsers. All are reserved before the KDF and kept as failures
/// unless released.
pub(super) struct Counted<'a> {
    accounts: &'a Accounts,
    user: Option<Username>,
    device: Option<String>,
    address: Cell<Option<Reserved>>,
    reserved_user: Cell<bool>,
    reserved_device: Cell<bool>,
}

impl<'a> Counted<'a> {
    pub(super) fn new(
        accounts: &'a Accounts,
        user: Option<Username>,
        device: Option<String>,
    ) -> Self {
        Self {
            accounts,
            user,
            device,
            address: None.into(),
            reserved_user: false.into(),
            reserved_device: false.into(),
        }
    }

    pub(super) fn by_device(&self) -> bool {
        self.device.is_some()
    }

    /// Whether the record that decides for this attempt is locked.
    pub(super) async fn is_locked(&self) -> Result<bool, Refused> {
        let a = self.accounts;
        let now = a.now();
        match (&self.device, &self.user) {
            (Some(d), _) => a.device_lock.is_locked(d, now).await,
            (None, Some(u)) => a.lock.is_locked(u, now).await,
            (None, None) => Ok(false),
        }
        .map_err(unavailable)
    }

    /// Applies an admin's unlock (`gatehouse user unlock`) to both records.
    pub(super) async fn forgive(&self, unlocked_ms: i64) {
        if unlocked_ms <= 0 {
            return;
        }
        if let Some(u) = &self.user {
            self.accounts.lock.forgive(u, unlocked_ms).await;
        }
        if let Some(d) = &self.device {
            self.accounts.device_lock.forgive(d, unlocked_ms).await;
        }
    }

    /// Reserves a failure in each record; the device's verdict wins when there is a device.
    /// The address comes first: a throttled address (`Err`, audited as `kind`) touches no
    /// username's lock.
    pub(super) async fn reserve(
        &self,
        client: &Client,
        kind: &'static str,
        username: Option<&str>,
    ) -> Result<Reservation, Refused> {
        self.reserve_all(client)
            .await
            .inspect_err(|_| self.accounts.throttled(client, kind, username))
    }

    async fn reserve_all(&self, client: &Client) -> Result<Reservation, Refused> {
        self.address
            .set(self.accounts.reserve_address(client).await?);
        match self.reserve_locks().await {
            Ok(r) => Ok(r),
            Err(e) => {
                // Refused as a whole: give back whatever was reserved before the error.
                self.release().await;
                Err(unavailable(e))
            }
        }
    }

    async fn reserve_locks(&self) -> Result<Reservation, LimitsError> {
        let a = self.accounts;
        let stored = |r: &Reservation| !matches!(r, Reservation::Full { .. });
        let now = a.now();
        let user = match &self.user {
            Some(u) => Some(a.lock.reserve(u, now).await?),
            None => None,
        };
        self.reserved_user.set(user.as_ref().is_some_and(stored));
        match &self.device {
            Some(d) => {
                let r = a.device_lock.reserve(d, now).await?;
                self.reserved_device.set(stored(&r));
                Ok(r)
            }
            None => Ok(user.unwrap_or(Reservation::Proceed)),
        }
    }

    /// Gives back the reserved failures of an attempt that never checked the password.
    pub(super) async fn release(&self) {
        self.release_address().await;
        if let (Some(u), true) = (&self.user, self.reserved_user.get()) {
            self.accounts.lock.release(u).await;
        }
        if let (Some(d), true) = (&self.device, self.reserved_device.get()) {
            self.accounts.device_lock.release(d).await;
        }
    }

    /// `result`, after giving back the reserved failures if it is an error (the password was
    /// never checked).
    pub(super) async fn release_on_err<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.release().await;
        }
        result
    }

    async fn release_address(&self) {
        if let (Some(r), Some(limits)) = (self.address.take(), &self.accounts.limits) {
            limits.release(r).await;
        }
    }

    /// A correct password clears the device's record, and the username's unless it is locked:
    /// the owner signing in through their device must not hand an attacker three fresh guesses.
    /// If the lock cannot say, the username's record is kept (the safe side).
    pub(super) async fn succeeded(&self) {
        let a = self.accounts;
        self.release_address().await;
        if let Some(u) = &self.user {
            let keep = self.by_device() && a.lock.is_locked(u, a.now()).await.unwrap_or(true);
            if !keep {
                a.lock.succeeded(u).await;
            } else if self.reserved_user.get() {
                // Kept, but a right password is no failure: only this attempt's own
                // reservation goes back, so the owner's sign-in cannot complete a lock either.
                a.lock.release(u).await;
            }
        }
        if let Some(d) = &self.device {
            a.device_lock.succeeded(d).await;
        }
    }
}
