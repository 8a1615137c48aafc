//! Secret material, all through ring: signing secrets (generate, accept, mask), API tokens
//! (generate, hash), sealing at rest with AES-256-GCM, and Standard Webhooks v1 signatures.
//!
//! Every type here that holds a secret has a redacting `Debug`, so a stray `{:?}` in a log line
//! cannot leak one.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::SecureRandom;
use ring::{digest, hkdf, hmac};

/// Prefix of Standard Webhooks secrets.
pub const WHSEC_PREFIX: &str = "whsec_";
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

/// A webhook signing secret in the form the user sees: `whsec_<base64>` or a raw string.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// A fresh `whsec_` secret of 32 random bytes.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| SecretError::Random)?;
        Ok(Self(format!("{WHSEC_PREFIX}{}", STANDARD.encode(key))))
    }

    /// Accepts a client-supplied secret: `whsec_` + base64 of 24-64 bytes, or any other printable
    /// ASCII string of 12-256 characters used as raw key bytes.
    ///
    /// # Errors
    /// Says which rule the secret breaks, without echoing it.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        if let Some(b64) = s.strip_prefix(WHSEC_PREFIX) {
            let key = STANDARD.decode(b64).map_err(|_| SecretError::BadWhsec)?;
            if !(WHSEC_KEY_LEN.0..=WHSEC_KEY_LEN.1).contains(&key.len()) {
                return Err(SecretError::BadWhsec);
            }
        } else {
            if !(RAW_SECRET_LEN.0..=RAW_SECRET_LEN.1).contains(&s.len()) {
                return Err(SecretError::BadLength);
            }
            if !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(SecretError::BadCharacters);
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// Rebuilds a secret from its decrypted stored form.
    ///
    /// # Errors
    /// If the bytes are not UTF-8 or no longer pass [`SigningSecret::parse`].
    pub fn from_stored(bytes: Vec<u8>) -> Result<Self, SecretError> {
        let s = String::from_utf8(bytes).map_err(|_| SecretError::Unseal)?;
        Self::parse(&s)
    }

    /// The HMAC key: the decoded bytes of a `whsec_` secret, the raw bytes of any other.
    pub fn key_bytes(&self) -> Vec<u8> {
        match self.0.strip_prefix(WHSEC_PREFIX) {
            Some(b64) => STANDARD.decode(b64).unwrap_or_default(),
            None => self.0.as_bytes().to_vec(),
        }
    }

    /// `****` followed by the last four characters: all any read shows after creation.
    pub fn masked(&self) -> String {
        let tail: String = {
            let chars: Vec<char> = self.0.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        format!("****{tail}")
    }

    /// The plaintext, for the one response that may show it and for sealing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({})", self.masked())
    }
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
/// [`MasterKey::token_hash`].
pub fn token_digest(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The AES-256-GCM key that seals signing secrets at rest, and the key (derived from it) of
/// the API tokens' lookup hashes.
pub struct MasterKey {
    key: LessSafeKey,
    token_key: hmac::Key,
}

impl MasterKey {
    /// Parses a key given as base64 (standard or URL-safe) of 32 bytes, or as 64 hex digits.
    ///
    /// # Errors
    /// [`SecretError::BadMasterKey`] for anything else.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SecretError::BadMasterKey)?
        } else {
            STANDARD
                .decode(s)
                .or_else(|_| URL_SAFE.decode(s))
                .or_else(|_| URL_SAFE_NO_PAD.decode(s))
                .map_err(|_| SecretError::BadMasterKey)?
        };
        Self::from_bytes(&bytes)
    }

    /// A fresh random key, returned with its base64 text form for the key file.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn generate(rng: &dyn SecureRandom) -> Result<(Self, String), SecretError> {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok((Self::from_bytes(&bytes)?, STANDARD.encode(bytes)))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::BadMasterKey)?;
        let token_key = hkdf::Salt::new(hkdf::HKDF_SHA256, b"hookd")
            .extract(bytes)
            .expand(&[b"api token lookup hash v2"], hmac::HMAC_SHA256)
            .map_err(|_| SecretError::BadMasterKey)?
            .into();
        Ok(Self {
            key: LessSafeKey::new(unbound),
            token_key,
        })
    }

    /// How an API token is stored and looked up: HMAC-SHA256 of its SHA-256 under a key
    /// derived from the master key. Lookups stay one hash away, and a copy of the store (a
    /// backup, a stolen disk image) without the master key gives nothing to test guesses at a
    /// weak token against.
    pub fn token_hash(&self, token: &str) -> [u8; 32] {
        self.token_hash_of_digest(&token_digest(token))
    }

    /// [`MasterKey::token_hash`] from a token's SHA-256: what the migration of an older store,
    /// which kept only that digest, needs.
    pub fn token_hash_of_digest(&self, digest: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.token_key, digest);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Encrypts `plaintext` bound to `aad` (the owning record's id): `nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal(
        &self,
        rng: &dyn SecureRandom,
        aad: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| SecretError::Random)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `aad`.
    ///
    /// # Errors
    /// [`SecretError::Unseal`] if the data is short, altered, or sealed under another key or id.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let Some((nonce, body)) = sealed.split_at_checked(NONCE_LEN) else {
            return Err(SecretError::Unseal);
        };
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unseal)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Unseal)?;
        Ok(plain.to_vec())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

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
        let s = SigningSecret::generate(&rng).unwrap();
        assert!(s.expose().starts_with(WHSEC_PREFIX));
        assert_eq!(s.key_bytes().len(), 32);
        assert_eq!(SigningSecret::parse(s.expose()).unwrap(), s);
        assert_eq!(s.masked().len(), 8);
    }

    #[test]
    fn seal_round_trip_binds_the_id() {
        let rng = SystemRandom::new();
        let (key, text) = MasterKey::generate(&rng).unwrap();
        let sealed = key.seal(&rng, "wh-1", b"my-secret-key").unwrap();
        assert!(!sealed.windows(13).any(|w| w == b"my-secret-key"));
        assert_eq!(key.open("wh-1", &sealed).unwrap(), b"my-secret-key");
        assert_eq!(key.open("wh-2", &sealed), Err(SecretError::Unseal));
        assert_eq!(key.open("wh-1", &sealed[..5]), Err(SecretError::Unseal));
        let again = MasterKey::parse(&text).unwrap();
        assert_eq!(again.open("wh-1", &sealed).unwrap(), b"my-secret-key");
        let hex = "00".repeat(32);
        assert!(MasterKey::parse(&hex).is_ok());
        assert!(MasterKey::parse("too-short").is_err());
    }

    #[test]
    fn tokens_hash_stably_under_the_master_key_only() {
        let rng = SystemRandom::new();
        let t = generate_token(&rng).unwrap();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == 4 + 43);
        let (key, text) = MasterKey::generate(&rng).unwrap();
        let (other, _) = MasterKey::generate(&rng).unwrap();
        assert_eq!(
            key.token_hash(&t),
            MasterKey::parse(&text).unwrap().token_hash(&t)
        );
        assert_ne!(key.token_hash(&t), key.token_hash("hkd_other"));
        assert_ne!(key.token_hash(&t), other.token_hash(&t));
        assert_ne!(key.token_hash(&t), token_digest(&t), "not the bare SHA-256");
        assert_eq!(
            key.token_hash_of_digest(&token_digest(&t)),
            key.token_hash(&t)
        );
    }
}
