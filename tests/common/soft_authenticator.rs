//! A software WebAuthn authenticator for tests (no browser): ES256 (P-256, via ring), "none"
//! attestation, resident credentials with user verification. It answers the `publicKey`
//! options Gatehouse sends with the JSON a browser would post back, and can be told to lie
//! about the origin, the RP ID or its signature counter. Shared by the crate's unit tests
//! (`#[path]`) and the HTTP suites (`tests/common`).
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One credential held by the authenticator.
pub struct SoftKey {
    pair: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    /// The next signature counter (`None`: an authenticator that never counts, always 0).
    pub counter: Option<u32>,
}

/// What to claim instead of the truth (wrong origin, wrong RP ID).
#[derive(Clone, Debug, Default)]
pub struct Lies {
    pub origin: Option<String>,
    pub rp_id: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("a base64url string"))
        .expect("base64url")
}

/// Minimal CBOR (RFC 8949): what attestation objects and COSE keys need.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64)
    } else {
        head(out, 1, (-1 - i) as u64)
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend(b);
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend(s.as_bytes());
}

fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
    json!({
        "type": kind,
        "challenge": options["challenge"],
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

/// Flags: user present, user verified (and, at registration, attested credential data).
const UP_UV: u8 = 0x01 | 0x04;
const AT: u8 = 0x40;

impl SoftKey {
    /// Answers registration options (`publicKey` of `navigator.credentials.create`).
    pub fn register(options: &Value, origin: &str, lies: &Lies) -> (SoftKey, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut credential_id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut credential_id).unwrap();
        let rp_id = options["rp"]["id"].as_str().expect("rp.id").to_owned();
        let key = SoftKey {
            pair,
            credential_id,
            user_handle: unb64(&options["user"]["id"]),
            rp_id: rp_id.clone(),
            counter: Some(0),
        };
        let claimed_rp = lies.rp_id.as_deref().unwrap_or(&rp_id);
        let client = client_data(
            "webauthn.create",
            options,
            lies.origin.as_deref().unwrap_or(origin),
        );
        let mut auth = Sha256::digest(claimed_rp.as_bytes()).to_vec();
        auth.push(UP_UV | AT);
        auth.extend(0u32.to_be_bytes());
        auth.extend([0u8; 16]); // AAGUID
        auth.extend((key.credential_id.len() as u16).to_be_bytes());
        auth.extend(&key.credential_id);
        let point = key.pair.public_key().as_ref(); // 0x04 ‖ x ‖ y
        let mut cose = Vec::new();
        head(&mut cose, 5, 5);
        int(&mut cose, 1);
        int(&mut cose, 2); // kty: EC2
        int(&mut cose, 3);
        int(&mut cose, -7); // alg: ES256
        int(&mut cose, -1);
        int(&mut cose, 1); // crv: P-256
        int(&mut cose, -2);
        bytes(&mut cose, &point[1..33]);
        int(&mut cose, -3);
        bytes(&mut cose, &point[33..65]);
        auth.extend(cose);
        let mut att = Vec::new();
        head(&mut att, 5, 3);
        text(&mut att, "fmt");
        text(&mut att, "none");
        text(&mut att, "attStmt");
        head(&mut att, 5, 0);
        text(&mut att, "authData");
        bytes(&mut att, &auth);
        let id = b64(&key.credential_id);
        let answer = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": b64(&att),
                "clientDataJSON": b64(&client),
            },
            "extensions": {},
        });
        (key, answer)
    }

    /// Answers sign-in options (`publicKey` of `navigator.credentials.get`), counting up.
    pub fn sign(&mut self, options: &Value, origin: &str, lies: &Lies) -> Value {
        let counter = match &mut self.counter {
            Some(c) => {
                *c += 1;
                *c
            }
            None => 0,
        };
        self.sign_with_counter(options, origin, lies, counter)
    }

    /// [`SoftKey::sign`] with a chosen counter value (a cloned key, a counter gone back).
    pub fn sign_with_counter(
        &self,
        options: &Value,
        origin: &str,
        lies: &Lies,
        counter: u32,
    ) -> Value {
        let claimed_rp = lies.rp_id.as_deref().unwrap_or(&self.rp_id);
        let client = client_data(
            "webauthn.get",
            options,
            lies.origin.as_deref().unwrap_or(origin),
        );
        let mut auth = Sha256::digest(claimed_rp.as_bytes()).to_vec();
        auth.push(UP_UV);
        auth.extend(counter.to_be_bytes());
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&client));
        let rng = SystemRandom::new();
        let signature = self.pair.sign(&rng, &signed).unwrap();
        let id = b64(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth),
                "clientDataJSON": b64(&client),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
    }
}
