//! WebAuthn ceremonies over webauthn-rs (docs/behaviour.md §13.2): the relying party (RP ID
//! and origin), the random ceremony id the browser holds, and the checks of a registration
//! and of a discoverable sign-in. No storage here: the flows in `accounts::passkeys` keep the
//! states this module returns (as JSON) and the credentials it accepts.
//!
//! Registration asks for a resident (discoverable) credential with user verification: the
//! options webauthn-rs's passkey registration builds say `residentKey: "discouraged"`, so
//! their authenticator selection is replaced before they leave (what the state checks —
//! challenge, origin, RP ID, user verification, algorithms — is unchanged).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};

/// The site as WebAuthn names it: the RP ID (a host name) and the one origin accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    id: String,
    origin: Url,
}

impl RelyingParty {
    /// From `--public-url`: its host is the RP ID, its origin the only one accepted. `None`
    /// when the URL has no domain host (an IP address cannot be an RP ID).
    pub fn from_url(url: &str) -> Option<Self> {
        let parsed = Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return None;
        }
        let id = parsed.domain()?.to_ascii_lowercase();
        let origin = Url::parse(&parsed.origin().ascii_serialization()).ok()?;
        let rp = Self { id, origin };
        rp.webauthn().map(|_| rp)
    }

    /// The site's relying party: `--public-url`'s when set; without it, only a site reached
    /// as `localhost` (any port; a secure context on plain HTTP) has one, taken from the
    /// request's own origin. Elsewhere, passkeys are off.
    pub fn for_site(public_url: Option<&str>, request_origin: &str) -> Option<Self> {
        match public_url {
            Some(url) => Self::from_url(url),
            None => Self::from_url(request_origin).filter(|rp| rp.id == "localhost"),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn origin(&self) -> &Url {
        &self.origin
    }

    fn webauthn(&self) -> Option<Webauthn> {
        WebauthnBuilder::new(&self.id, &self.origin)
            .ok()?
            .rp_name("Gatehouse")
            .build()
            .ok()
    }
}

/// The random id of a ceremony in progress: 32 bytes, base64url (no padding) on the wire,
/// only its SHA-256 stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CeremonyId([u8; 32]);

impl CeremonyId {
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        Self(b)
    }

    /// A wire id; `None` for anything that is not 32 bytes of base64url.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 43 {
            return None;
        }
        URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok().map(Self)
    }

    pub fn to_wire(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

impl std::fmt::Debug for CeremonyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CeremonyId(…)")
    }
}

/// Why a ceremony was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The browser's answer is not a credential of the expected shape.
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// Signature, challenge, origin, RP ID, user verification or counter: webauthn-rs's reason.
    #[error("refused: {0}")]
    Refused(String),
    /// A stored state or credential could not be read back (or the RP could not be built).
    #[error("internal: {0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> CheckError {
    CheckError::Internal(e.to_string())
}

fn refused(e: impl std::fmt::Display) -> CheckError {
    CheckError::Refused(e.to_string())
}

/// Options for the browser (`publicKey` of `navigator.credentials.*`) and the state to keep.
#[derive(Debug)]
pub struct Started {
    pub public_key: serde_json::Value,
    pub state: String,
}

/// A credential that passed registration.
#[derive(Debug)]
pub struct Registered {
    pub credential_id: Vec<u8>,
    /// webauthn-rs's `Passkey`, as JSON.
    pub passkey: String,
}

/// A sign-in's answer, parsed, with who it claims to be.
#[derive(Debug)]
pub struct Assertion {
    credential: PublicKeyCredential,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
}

/// A signature that verified: the credential's new state and counter.
#[derive(Debug)]
pub struct Verified {
    pub passkey: String,
    pub counter: u32,
}

/// Starts a registration for a user whose WebAuthn id is `user_handle` (16 bytes), excluding
/// the credentials they already hold.
pub fn start_registration(
    rp: &RelyingParty,
    user_handle: &[u8],
    username: &str,
    display_name: &str,
    exclude: Vec<Vec<u8>>,
) -> Result<Started, CheckError> {
    let wa = rp.webauthn().ok_or_else(|| internal("relying party"))?;
    let handle = Uuid::from_slice(user_handle).map_err(internal)?;
    let exclude = (!exclude.is_empty()).then_some(exclude);
    let (ccr, state) = wa
        .start_passkey_registration(handle, username, display_name, exclude)
        .map_err(internal)?;
    let mut public_key = serde_json::to_value(&ccr.public_key).map_err(internal)?;
    public_key["authenticatorSelection"] = serde_json::json!({
        "residentKey": "required",
        "requireResidentKey": true,
        "userVerification": "required",
    });
    Ok(Started {
        public_key,
        state: serde_json::to_string(&state).map_err(internal)?,
    })
}

/// Checks a registration's answer against its state.
pub fn finish_registration(
    rp: &RelyingParty,
    state: &str,
    credential: serde_json::Value,
) -> Result<Registered, CheckError> {
    let wa = rp.webauthn().ok_or_else(|| internal("relying party"))?;
    let state: PasskeyRegistration = serde_json::from_str(state).map_err(internal)?;
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(credential).map_err(|e| CheckError::Malformed(e.to_string()))?;
    let key = wa
        .finish_passkey_registration(&reg, &state)
        .map_err(refused)?;
    Ok(Registered {
        credential_id: key.cred_id().to_vec(),
        passkey: serde_json::to_string(&key).map_err(internal)?,
    })
}

/// Starts a sign-in with whatever discoverable passkey the user picks (no username), as a
/// modal request: webauthn-rs marks these for conditional (autofill) mediation, which a
/// button does not use.
pub fn start_sign_in(rp: &RelyingParty) -> Result<Started, CheckError> {
    let wa = rp.webauthn().ok_or_else(|| internal("relying party"))?;
    let (mut rcr, state) = wa.start_discoverable_authentication().map_err(internal)?;
    rcr.mediation = None;
    Ok(Started {
        public_key: serde_json::to_value(&rcr.public_key).map_err(internal)?,
        state: serde_json::to_string(&state).map_err(internal)?,
    })
}

/// Parses a sign-in's answer and reads which credential and user it names.
pub fn identify(credential: serde_json::Value) -> Result<Assertion, CheckError> {
    let credential: PublicKeyCredential =
        serde_json::from_value(credential).map_err(|e| CheckError::Malformed(e.to_string()))?;
    let user_handle = credential
        .get_user_unique_id()
        .ok_or_else(|| CheckError::Malformed("no user handle (not a discoverable passkey)".into()))?
        .to_vec();
    Ok(Assertion {
        credential_id: credential.get_credential_id().to_vec(),
        credential,
        user_handle,
    })
}

/// Checks a sign-in's signature, challenge, origin, RP ID, user verification and counter
/// against the stored credential (`passkey`, JSON) and the ceremony's state.
pub fn finish_sign_in(
    rp: &RelyingParty,
    state: &str,
    assertion: &Assertion,
    passkey: &str,
) -> Result<Verified, CheckError> {
    let wa = rp.webauthn().ok_or_else(|| internal("relying party"))?;
    let state: DiscoverableAuthentication = serde_json::from_str(state).map_err(internal)?;
    let mut key: Passkey = serde_json::from_str(passkey).map_err(internal)?;
    let result = wa
        .finish_discoverable_authentication_v2(&assertion.credential, state, &key)
        .map_err(refused)?;
    key.update_credential(&result);
    Ok(Verified {
        passkey: serde_json::to_string(&key).map_err(internal)?,
        counter: result.counter(),
    })
}

#[cfg(test)]
#[path = "passkey_tests.rs"]
pub(crate) mod tests;
