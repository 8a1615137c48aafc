//! Secret material, all through ring: signing secrets (generate, accept, mask), API tokens
//! (generate, digest), and Standard Webhooks v1 signatures: symmetric (`v1,` HMAC-SHA256) and
//! asymmetric (`v1a,` Ed25519). Sealing at rest and the tokens' keyed hash are
//! [`crate::vault`]'s.
//!
//! Every type here that holds a secret has a redacting `Debug`, so a stray `{:?}` in a log line
//! cannot leak one.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use ring::{digest, hmac};

use crate::model::SigningAlgorithm;

/// Prefix of Standard Webhooks secrets.
pub const WHSEC_PREFIX: &str = "whsec_";
/// Prefix of Standard Webhooks Ed25519 secret keys.
pub const WHSK_PREFIX: &str = "whsk_";
/// Prefix of Standard Webhooks Ed25519 public keys.
pub const WHPK_PREFIX: &str = "whpk_";
/// Prefix of hookd API tokens.
pub const TOKEN_PREFIX: &str = "hkd_";
/// Shortest and longest supplied raw secret, in bytes. The mask shows the last 4, so at least
/// 8 always stay hidden.
pub const RAW_SECRET_LEN: (usize, usize) = (12, 256);
/// Decoded length bounds of a supplied `whsec_` secret, in bytes.
pub const WHSEC_KEY_LEN: (usize, usize) = (24, 64);

/// Why a supplied secret or key was refused. The message is safe to show a client: it never
/// contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("must be 'whsec_' followed by base64, {}-{} bytes once decoded", WHSEC_KEY_LEN.0, WHSEC_KEY_LEN.1)]
    BadWhsec,
    #[error("must be 'whsk_' followed by base64 of a 32-byte Ed25519 seed, or of 64 bytes (the seed, then its public key)")]
    BadWhsk,
    #[error("is an Ed25519 secret key (whsk_), but signingAlgorithm is hmac-sha256")]
    WhskForHmac,
    #[error("must be empty (hookd generates a key) or an Ed25519 secret key, 'whsk_' + base64, when signingAlgorithm is ed25519")]
    HmacForEd25519,
    #[error("must be {}-{} characters", RAW_SECRET_LEN.0, RAW_SECRET_LEN.1)]
    BadLength,
    #[error("must be printable ASCII without spaces")]
    BadCharacters,
    #[error("must be 32 bytes as base64 or 64 hex digits")]
    BadMasterKey,
    #[error("the operating system's random source failed")]
    Random,
    #[error("sealed secret failed to decrypt (wrong master key or corrupted data)")]
    Unseal,
}

/// A webhook signing secret in the form the user sees: `whsec_<base64>` or a raw string (HMAC),
/// or `whsk_<base64>` (an Ed25519 secret key). Its algorithm follows from its form.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: String,
    algorithm: SigningAlgorithm,
}

impl SigningSecret {
    /// A fresh secret: `whsec_` + 32 random bytes, or for Ed25519 `whsk_` + a random 32-byte
    /// seed followed by its public key.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn generate(
        rng: &dyn SecureRandom,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| SecretError::Random)?;
        match algorithm {
            SigningAlgorithm::HmacSha256 => Ok(Self {
                text: format!("{WHSEC_PREFIX}{}", STANDARD.encode(key)),
                algorithm,
            }),
            SigningAlgorithm::Ed25519 => {
                let pair =
                    Ed25519KeyPair::from_seed_unchecked(&key).map_err(|_| SecretError::Random)?;
                let mut both = key.to_vec();
                both.extend_from_slice(pair.public_key().as_ref());
                Ok(Self {
                    text: format!("{WHSK_PREFIX}{}", STANDARD.encode(both)),
                    algorithm,
                })
            }
        }
    }

    /// Accepts a client-supplied secret: `whsec_` + base64 of 24-64 bytes, `whsk_` + base64 of
    /// an Ed25519 seed (32 bytes, or 64: the seed then its public key, which must match), or any
    /// other printable ASCII string of 12-256 characters used as raw HMAC key bytes.
    ///
    /// # Errors
    /// Says which rule the secret breaks, without echoing it.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let mut algorithm = SigningAlgorithm::HmacSha256;
        if let Some(b64) = s.strip_prefix(WHSEC_PREFIX) {
            let key = STANDARD.decode(b64).map_err(|_| SecretError::BadWhsec)?;
            if !(WHSEC_KEY_LEN.0..=WHSEC_KEY_LEN.1).contains(&key.len()) {
                return Err(SecretError::BadWhsec);
            }
        } else if let Some(b64) = s.strip_prefix(WHSK_PREFIX) {
            let key = STANDARD.decode(b64).map_err(|_| SecretError::BadWhsk)?;
            let ok = match key.len() {
                32 => Ed25519KeyPair::from_seed_unchecked(&key).is_ok(),
                64 => Ed25519KeyPair::from_seed_and_public_key(&key[..32], &key[32..]).is_ok(),
                _ => false,
            };
            if !ok {
                return Err(SecretError::BadWhsk);
            }
            algorithm = SigningAlgorithm::Ed25519;
        } else {
            check_raw(s)?;
        }
        Ok(Self {
            text: s.to_owned(),
            algorithm,
        })
    }

    /// [`SigningSecret::parse`], for an endpoint signing with `algorithm`.
    ///
    /// # Errors
    /// As `parse`, and a secret of the other algorithm.
    pub fn parse_for(s: &str, algorithm: SigningAlgorithm) -> Result<Self, SecretError> {
        let secret = Self::parse(s)?;
        match (algorithm, secret.algorithm()) {
            (SigningAlgorithm::HmacSha256, SigningAlgorithm::Ed25519) => {
                Err(SecretError::WhskForHmac)
            }
            (SigningAlgorithm::Ed25519, SigningAlgorithm::HmacSha256) => {
                Err(SecretError::HmacForEd25519)
            }
            _ => Ok(secret),
        }
    }

    /// Rebuilds a secret from its decrypted stored form and the algorithm stored with it. (An
    /// HMAC secret accepted as raw text before `whsk_` meant Ed25519 stays a raw HMAC secret.)
    ///
    /// # Errors
    /// If the bytes are not UTF-8 or no longer pass [`SigningSecret::parse`].
    pub fn from_stored(bytes: Vec<u8>, algorithm: SigningAlgorithm) -> Result<Self, SecretError> {
        let s = String::from_utf8(bytes).map_err(|_| SecretError::Unseal)?;
        match Self::parse(&s) {
            Ok(secret) if secret.algorithm == algorithm => Ok(secret),
            _ if algorithm == SigningAlgorithm::HmacSha256 && check_raw(&s).is_ok() => {
                Ok(Self { text: s, algorithm })
            }
            _ => Err(SecretError::Unseal),
        }
    }

    /// What this secret signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The key: for HMAC the decoded bytes of a `whsec_` secret or the raw bytes of any other;
    /// for Ed25519 the 32-byte seed.
    pub fn key_bytes(&self) -> Vec<u8> {
        let decoded = |b64: &str| STANDARD.decode(b64).unwrap_or_default();
        match (self.algorithm, self.text.split_at_checked(5)) {
            (SigningAlgorithm::Ed25519, Some((_, b64))) => {
                let mut key = decoded(b64);
                key.truncate(32);
                key
            }
            (SigningAlgorithm::HmacSha256, _) => match self.text.strip_prefix(WHSEC_PREFIX) {
                Some(b64) => decoded(b64),
                None => self.text.as_bytes().to_vec(),
            },
            (SigningAlgorithm::Ed25519, None) => Vec::new(),
        }
    }

    /// For an Ed25519 secret, its public key as receivers take it: `whpk_` + base64.
    pub fn public_key(&self) -> Option<String> {
        if self.algorithm() != SigningAlgorithm::Ed25519 {
            return None;
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&self.key_bytes()).ok()?;
        Some(format!(
            "{WHPK_PREFIX}{}",
            STANDARD.encode(pair.public_key().as_ref())
        ))
    }

    /// The Standard Webhooks signature of `id.timestamp.body` with this secret: `v1,` + HMAC or
    /// `v1a,` + Ed25519.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self.algorithm() {
            SigningAlgorithm::HmacSha256 => sign(&self.key_bytes(), msg_id, timestamp, body),
            SigningAlgorithm::Ed25519 => sign_ed25519(&self.key_bytes(), msg_id, timestamp, body),
        }
    }

    /// `****` followed by the last four characters: all any read shows after creation.
    pub fn masked(&self) -> String {
        let tail: String = {
            let chars: Vec<char> = self.text.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        format!("****{tail}")
    }

    /// The plaintext, for the one response that may show it and for sealing.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({})", self.masked())
    }
}

/// A raw HMAC secret: 12-256 printable ASCII characters.
fn check_raw(s: &str) -> Result<(), SecretError> {
    if !(RAW_SECRET_LEN.0..=RAW_SECRET_LEN.1).contains(&s.len()) {
        return Err(SecretError::BadLength);
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SecretError::BadCharacters);
    }
    Ok(())
}

/// A new API token: `hkd_` + 32 random bytes as unpadded base64url.
///
/// # Errors
/// Only if the OS random source fails.
pub fn generate_token(rng: &dyn SecureRandom) -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// SHA-256 of a token. Stores before token-hash scheme 2 kept this; now it is the input of
/// [`crate::vault::MasterKey::token_hash`].
pub fn token_digest(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// One Standard Webhooks v1 signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// One Standard Webhooks asymmetric signature: `v1a,` + base64 Ed25519 signature of
/// `id.timestamp.body` under the key with this 32-byte `seed` (empty if the seed is not 32 bytes,
/// which [`SigningSecret::parse`] rules out).
pub fn sign_ed25519(seed: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(pair) = Ed25519KeyPair::from_seed_unchecked(seed) else {
        return String::new();
    };
    let mut signed = Vec::with_capacity(msg_id.len() + body.len() + 24);
    signed.extend_from_slice(msg_id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!("v1a,{}", STANDARD.encode(pair.sign(&signed).as_ref()))
}

/// A mask for a value that may be short (a custom header's): `****` and its last four
/// characters when it has at least 12, else only `****`, so a short key is not half shown.
pub fn mask_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "****".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn ed25519_secrets_sign_verifiably() {
        let rng = SystemRandom::new();
        let s = SigningSecret::generate(&rng, SigningAlgorithm::Ed25519).unwrap();
        assert!(s.expose().starts_with(WHSK_PREFIX));
        assert_eq!(s.algorithm(), SigningAlgorithm::Ed25519);
        assert_eq!(SigningSecret::parse(s.expose()).unwrap(), s);
        let public = s.public_key().unwrap();
        let public = STANDARD
            .decode(public.strip_prefix(WHPK_PREFIX).unwrap())
            .unwrap();
        let sig = s.sign("msg_1", 1_700_000_000, b"{}");
        let raw = STANDARD.decode(sig.strip_prefix("v1a,").unwrap()).unwrap();
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
        assert!(key.verify(b"msg_1.1700000000.{}", &raw).is_ok());
        assert!(key.verify(b"msg_1.1700000001.{}", &raw).is_err());
        // The 32-byte seed alone is accepted too, and signs the same.
        let seed = STANDARD.encode(s.key_bytes());
        let short = SigningSecret::parse(&format!("{WHSK_PREFIX}{seed}")).unwrap();
        assert_eq!(short.sign("msg_1", 1_700_000_000, b"{}"), sig);
        // A 64-byte key whose public half does not match, and wrong lengths, are refused.
        let mut wrong = s.key_bytes();
        wrong.extend_from_slice(&[7u8; 32]);
        for bad in [
            STANDARD.encode(&wrong),
            STANDARD.encode([1u8; 31]),
            "!!".into(),
        ] {
            assert_eq!(
                SigningSecret::parse(&format!("{WHSK_PREFIX}{bad}")),
                Err(SecretError::BadWhsk)
            );
        }
        assert_eq!(
            SigningSecret::parse_for(s.expose(), SigningAlgorithm::HmacSha256),
            Err(SecretError::WhskForHmac)
        );
        assert_eq!(
            SigningSecret::parse_for("my-secret-key", SigningAlgorithm::Ed25519),
            Err(SecretError::HmacForEd25519)
        );
        assert!(SigningSecret::parse("my-secret-key")
            .unwrap()
            .public_key()
            .is_none());
        // A raw HMAC secret stored before `whsk_` meant Ed25519 still reads as one.
        let old =
            SigningSecret::from_stored(b"whsk_not-a-key".to_vec(), SigningAlgorithm::HmacSha256)
                .unwrap();
        assert_eq!(old.key_bytes(), b"whsk_not-a-key");
        assert_eq!(old.sign("m", 1, b""), sign(b"whsk_not-a-key", "m", 1, b""));
    }

    #[test]
    fn short_values_are_masked_whole() {
        assert_eq!(mask_value("abc"), "****");
        assert_eq!(mask_value("Bearer abcdefgh"), "****efgh");
    }

    #[test]
    fn standard_webhooks_test_vector() {
        let secret = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let sig = sign(
            &secret.key_bytes(),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn supplied_secrets() {
        let raw = SigningSecret::parse("my-secret-key").unwrap();
        assert_eq!(raw.key_bytes(), b"my-secret-key");
        assert_eq!(raw.masked(), "****-key");
        assert_eq!(SigningSecret::parse("short"), Err(SecretError::BadLength));
        assert_eq!(
            SigningSecret::parse("elevenchars"),
            Err(SecretError::BadLength)
        );
        assert!(SigningSecret::parse("twelve-chars").is_ok());
        assert_eq!(
            SigningSecret::parse("has a space in it"),
            Err(SecretError::BadCharacters)
        );
        assert_eq!(
            SigningSecret::parse("whsec_dG9vc2hvcnQ="),
            Err(SecretError::BadWhsec)
        );
        assert_eq!(
            SigningSecret::parse("whsec_!!notbase64!!"),
            Err(SecretError::BadWhsec)
        );
        assert!(!format!("{raw:?}").contains("my-secret"));
    }

    #[test]
    fn generated_secret_is_whsec_of_32_bytes() {
        let rng = SystemRandom::new();
        let s = SigningSecret::generate(&rng, SigningAlgorithm::HmacSha256).unwrap();
        assert!(s.expose().starts_with(WHSEC_PREFIX));
        assert_eq!(s.key_bytes().len(), 32);
        assert_eq!(SigningSecret::parse(s.expose()).unwrap(), s);
        assert_eq!(s.masked().len(), 8);
    }
}
