//! Recovery codes for two-step sign-in (docs/behaviour.md §13.1): ten single-use codes shown
//! once, stored as SHA-256 hashes. Each carries 50 random bits, so a fast hash is enough: no
//! one can guess a code by hashing candidates, and the lock (§4) bounds online guesses.

use sha2::{Digest, Sha256};

/// Codes issued at a time.
pub const COUNT: usize = 10;
/// Crockford's base32 alphabet: no I, L, O or U, which read as 1, 1, 0 and V.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new set of codes, formatted `xxxxx-xxxxx`.
pub fn generate() -> Vec<String> {
    (0..COUNT).map(|_| one()).collect()
}

fn one() -> String {
    let mut bytes = [0u8; 10];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// What a typed code is compared as: without spaces and dashes, in capitals, with Crockford's
/// look-alikes read as the digits they look like (O → 0, I and L → 1). `None` when it cannot
/// be a recovery code.
pub fn normalize(typed: &str) -> Option<String> {
    let kept: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (kept.len() == 10 && kept.bytes().all(|b| ALPHABET.contains(&b))).then_some(kept)
}

/// The stored form of a code: SHA-256 of its normalized text.
pub fn hash(typed: &str) -> Option<[u8; 32]> {
    normalize(typed).map(|n| Sha256::digest(n.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_in_the_shown_format() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(&c[5..6], "-");
            assert!(hash(c).is_some(), "{c}");
        }
    }

    #[test]
    fn typing_variations_hash_alike_and_others_do_not() {
        let code = "10456-789AB";
        let h = hash(code).unwrap();
        assert_eq!(hash("10456789AB"), Some(h));
        assert_eq!(hash(" 10456 789ab "), Some(h));
        assert_eq!(hash("lO456-789AB"), Some(h), "l and O read as 1 and 0");
        assert_ne!(hash("10456-789AC"), Some(h));
        for bad in [
            "",
            "10456-789A",
            "10456-789ABC",
            "10456-789AU",
            "10456-789A!",
            "123456",
        ] {
            assert_eq!(hash(bad), None, "{bad:?}");
        }
        // The hash is SHA-256 of the normalized code, nothing else.
        assert_eq!(h, <[u8; 32]>::from(Sha256::digest(b"10456789AB")));
    }
}
