//! The master key and everything sealed with it: signing secrets, custom header values and
//! client-certificate keys (AES-256-GCM, each bound to its owner by associated data), the
//! start-up check that the key is the store's, and the keyed hash API tokens are stored under
//! (HMAC-SHA256 with a key derived by HKDF). Nothing else in hookd calls AES-GCM or HKDF, and
//! the associated-data conventions are written here once.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

use crate::model::{ClientCertificate, Endpoint, SealedHeader, SealedSecret, SealedValue};
use crate::secrets::{mask_value, token_digest, SecretError, SigningSecret};

/// The master key with its random source: seals and opens what the store keeps sealed, and
/// hashes API tokens. Built once at start-up.
pub struct Vault {
    key: MasterKey,
    rng: SystemRandom,
    /// The tokens' lookup key a rekeyed store carries (under [`TOKEN_KEY`]), in place of the one
    /// derived from the master key: token hashes cannot be recomputed without the tokens.
    token_key: std::sync::OnceLock<TokenKey>,
}

/// The key of the tokens' lookup hashes, with its bytes (to seal it under a new master key).
struct TokenKey {
    bytes: [u8; 32],
    key: hmac::Key,
}

impl TokenKey {
    fn new(bytes: [u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            bytes,
        }
    }
}

/// The store's `meta` entry that holds the tokens' lookup key, sealed, once the master key has
/// been rotated (`hookd rekey`); absent, the key is derived from the master key.
pub const TOKEN_KEY: &str = "token_hash_key";

/// What the start-up check seals (under [`KEY_CHECK`]).
const KEY_CHECK_PLAINTEXT: &[u8] = b"hookd";
/// The associated data of the start-up check: a value sealed at first start, so a later start
/// with another key fails loudly instead of serving endpoints whose secrets it cannot read.
pub const KEY_CHECK: &str = "master_key_check";

impl Vault {
    pub fn new(key: MasterKey) -> Self {
        Self {
            key,
            rng: SystemRandom::new(),
            token_key: std::sync::OnceLock::new(),
        }
    }

    /// Uses the tokens' lookup key sealed in the store's [`TOKEN_KEY`] entry.
    ///
    /// # Errors
    /// It does not open under this master key.
    pub fn adopt_token_key(&self, sealed: &[u8]) -> Result<(), SecretError> {
        let plain = self.key.open(TOKEN_KEY, sealed)?;
        let bytes: [u8; 32] = plain.try_into().map_err(|_| SecretError::Unseal)?;
        let _ = self.token_key.set(TokenKey::new(bytes));
        Ok(())
    }

    /// The tokens' lookup key in force here, sealed under `to`'s master key (for [`TOKEN_KEY`]).
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn token_key_for(&self, to: &Vault) -> Result<Vec<u8>, SecretError> {
        let bytes = self
            .token_key
            .get()
            .map_or(&self.key.token_key.bytes, |k| &k.bytes);
        to.key.seal(&to.rng, TOKEN_KEY, bytes)
    }

    /// Seals everything of `endpoint` that is sealed under this key again under `to`'s: the
    /// signing secrets, header values, the client certificate's key and the sealed format
    /// options, each with the same associated data. Returns how many values it re-sealed.
    ///
    /// # Errors
    /// A value that does not open under this key (named), or the random source failing.
    pub fn reseal(&self, to: &Vault, endpoint: &mut Endpoint) -> Result<usize, String> {
        let id = endpoint.id.clone();
        let mut values: Vec<(String, &mut Vec<u8>)> = Vec::new();
        values.push((id.clone(), &mut endpoint.secret.sealed));
        for previous in &mut endpoint.previous_secrets {
            values.push((id.clone(), &mut previous.sealed));
        }
        for header in &mut endpoint.headers {
            values.push((header_aad(&id, &header.name), &mut header.sealed));
        }
        if let Some(cert) = &mut endpoint.client_certificate {
            values.push((client_key_aad(&id), &mut cert.sealed_key));
        }
        if let Some(key) = &mut endpoint.format_options.routing_key {
            values.push((option_aad(&id, "routingKey"), &mut key.sealed));
        }
        let count = values.len();
        for (aad, sealed) in values {
            let plain = self
                .key
                .open(&aad, sealed)
                .map_err(|e| format!("endpoint {id}, {aad}: {e}"))?;
            *sealed = to
                .key
                .seal(&to.rng, &aad, &plain)
                .map_err(|e| e.to_string())?;
        }
        Ok(count)
    }

    /// Seals an endpoint's signing secret (bound to the endpoint id).
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal_secret(
        &self,
        endpoint_id: &str,
        secret: &SigningSecret,
    ) -> Result<SealedSecret, SecretError> {
        Ok(SealedSecret {
            sealed: self
                .key
                .seal(&self.rng, endpoint_id, secret.expose().as_bytes())?,
            mask: secret.masked(),
            expires_at_ms: None,
            algorithm: secret.algorithm(),
            public_key: secret.public_key(),
        })
    }

    /// Opens what [`Vault::seal_secret`] sealed for `endpoint_id`.
    ///
    /// # Errors
    /// [`SecretError::Unseal`] for another key, another endpoint, or altered data.
    pub fn open_secret(
        &self,
        endpoint_id: &str,
        sealed: &SealedSecret,
    ) -> Result<SigningSecret, SecretError> {
        let plain = self.key.open(endpoint_id, &sealed.sealed)?;
        SigningSecret::from_stored(plain, sealed.algorithm)
    }

    /// Seals a custom header's value (bound to the endpoint id and the header's name).
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal_header(
        &self,
        endpoint_id: &str,
        name: &str,
        value: &str,
    ) -> Result<SealedHeader, SecretError> {
        Ok(SealedHeader {
            name: name.to_owned(),
            sealed: self
                .key
                .seal(&self.rng, &header_aad(endpoint_id, name), value.as_bytes())?,
            mask: mask_value(value),
        })
    }

    /// A custom header's value, opened.
    ///
    /// # Errors
    /// Names the header: not openable, or not text.
    pub fn open_header(&self, endpoint_id: &str, header: &SealedHeader) -> Result<String, String> {
        let plain = self
            .key
            .open(&header_aad(endpoint_id, &header.name), &header.sealed)
            .map_err(|e| format!("header {}: {e}", header.name))?;
        String::from_utf8(plain).map_err(|_| format!("header {}: not text", header.name))
    }

    /// Seals the private key (PEM) of an endpoint's client certificate.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal_client_key(
        &self,
        endpoint_id: &str,
        key_pem: &str,
    ) -> Result<Vec<u8>, SecretError> {
        self.key
            .seal(&self.rng, &client_key_aad(endpoint_id), key_pem.as_bytes())
    }

    /// The private key (PEM) of an endpoint's client certificate, opened.
    ///
    /// # Errors
    /// Not openable, or not text.
    pub fn open_client_key(
        &self,
        endpoint_id: &str,
        cert: &ClientCertificate,
    ) -> Result<String, String> {
        let key = self
            .key
            .open(&client_key_aad(endpoint_id), &cert.sealed_key)
            .map_err(|e| e.to_string())?;
        String::from_utf8(key).map_err(|_| "the key is not text".to_owned())
    }

    /// Seals a secret option of an endpoint's format (PagerDuty's `routingKey`), bound to the
    /// endpoint id and the option's name.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal_option(
        &self,
        endpoint_id: &str,
        name: &str,
        value: &str,
    ) -> Result<SealedValue, SecretError> {
        Ok(SealedValue {
            sealed: self
                .key
                .seal(&self.rng, &option_aad(endpoint_id, name), value.as_bytes())?,
            mask: mask_value(value),
        })
    }

    /// A secret option of an endpoint's format, opened.
    ///
    /// # Errors
    /// Not openable, or not text.
    pub fn open_option(
        &self,
        endpoint_id: &str,
        name: &str,
        sealed: &SealedValue,
    ) -> Result<String, String> {
        let plain = self
            .key
            .open(&option_aad(endpoint_id, name), &sealed.sealed)
            .map_err(|e| format!("{name}: {e}"))?;
        String::from_utf8(plain).map_err(|_| format!("{name}: not text"))
    }

    /// The value a new store keeps (under [`KEY_CHECK`]) to recognise its key at later starts.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn seal_check(&self) -> Result<Vec<u8>, SecretError> {
        self.key.seal(&self.rng, KEY_CHECK, KEY_CHECK_PLAINTEXT)
    }

    /// Whether `sealed` (a store's [`Vault::seal_check`]) was sealed under this key.
    pub fn opens_check(&self, sealed: &[u8]) -> bool {
        self.key.open(KEY_CHECK, sealed).is_ok()
    }

    /// How an API token is stored and looked up: see [`MasterKey::token_hash`].
    pub fn token_hash(&self, token: &str) -> [u8; 32] {
        self.token_hash_of_digest(&token_digest(token))
    }

    /// [`MasterKey::token_hash_of_digest`].
    pub fn token_hash_of_digest(&self, digest: &[u8]) -> [u8; 32] {
        match self.token_key.get() {
            Some(adopted) => hash_with(&adopted.key, digest),
            None => self.key.token_hash_of_digest(digest),
        }
    }
}

fn hash_with(key: &hmac::Key, digest: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(key, digest);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(***)")
    }
}

/// The associated data a custom header's value is sealed with.
fn header_aad(endpoint_id: &str, name: &str) -> String {
    format!("{endpoint_id}/header/{}", name.to_ascii_lowercase())
}

/// The associated data a format option is sealed with.
fn option_aad(endpoint_id: &str, name: &str) -> String {
    format!("{endpoint_id}/format-option/{name}")
}

/// The associated data a client certificate's key is sealed with.
fn client_key_aad(endpoint_id: &str) -> String {
    format!("{endpoint_id}/client-key")
}

/// The AES-256-GCM key that seals signing secrets at rest, and the key (derived from it) of
/// the API tokens' lookup hashes.
pub struct MasterKey {
    key: LessSafeKey,
    token_key: TokenKey,
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
        let mut token_key = [0u8; 32];
        hkdf::Salt::new(hkdf::HKDF_SHA256, b"hookd")
            .extract(bytes)
            .expand(&[b"api token lookup hash v2"], hmac::HMAC_SHA256)
            .and_then(|okm| okm.fill(&mut token_key))
            .map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            token_key: TokenKey::new(token_key),
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
        hash_with(&self.token_key.key, digest)
    }

    /// Encrypts `plaintext` bound to `aad` (the owning record's id): `nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    fn seal(
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
    fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secrets::{generate_token, TOKEN_PREFIX};

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

    #[test]
    fn each_sealed_kind_is_bound_to_its_owner() {
        let (key, _) = MasterKey::generate(&SystemRandom::new()).unwrap();
        let vault = Vault::new(key);
        let secret = SigningSecret::parse("my-secret-key").unwrap();
        let sealed = vault.seal_secret("wh-1", &secret).unwrap();
        assert_eq!(vault.open_secret("wh-1", &sealed).unwrap(), secret);
        assert!(vault.open_secret("wh-2", &sealed).is_err());

        let h = vault.seal_header("wh-1", "X-Api-Key", "k-123456").unwrap();
        assert_eq!(h.mask, mask_value("k-123456"));
        assert_eq!(vault.open_header("wh-1", &h).unwrap(), "k-123456");
        assert!(vault.open_header("wh-2", &h).is_err());
        let renamed = SealedHeader {
            name: "X-Other".into(),
            ..h
        };
        assert!(
            vault.open_header("wh-1", &renamed).is_err(),
            "bound to the name"
        );

        let sealed_key = vault.seal_client_key("wh-1", "PEM").unwrap();
        let cert = ClientCertificate {
            chain_pem: String::new(),
            sealed_key,
            fingerprint: String::new(),
            not_after_ms: None,
            chain_length: 1,
        };
        assert_eq!(vault.open_client_key("wh-1", &cert).unwrap(), "PEM");
        assert!(vault.open_client_key("wh-2", &cert).is_err());

        let key = vault
            .seal_option("wh-1", "routingKey", "R0123456789")
            .unwrap();
        assert_eq!(
            vault.open_option("wh-1", "routingKey", &key).unwrap(),
            "R0123456789"
        );
        assert!(vault.open_option("wh-1", "severity", &key).is_err());
        assert!(vault.open_option("wh-2", "routingKey", &key).is_err());

        let check = vault.seal_check().unwrap();
        assert!(vault.opens_check(&check));
        let (other, _) = MasterKey::generate(&SystemRandom::new()).unwrap();
        assert!(!Vault::new(other).opens_check(&check));
    }

    /// Stores from before rekeying keep their token hashes: the lookup key is still the one
    /// ring derived into an HMAC key directly (pinned here against that derivation).
    #[test]
    fn the_token_key_is_the_one_derived_before() {
        let bytes = [7u8; 32];
        let key = MasterKey::from_bytes(&bytes).unwrap();
        let before: hmac::Key = hkdf::Salt::new(hkdf::HKDF_SHA256, b"hookd")
            .extract(&bytes)
            .expand(&[b"api token lookup hash v2"], hmac::HMAC_SHA256)
            .unwrap()
            .into();
        let digest = token_digest("hkd_example");
        assert_eq!(
            key.token_hash_of_digest(&digest).as_slice(),
            hmac::sign(&before, &digest).as_ref()
        );
    }

    /// After a rekey the new master key hashes tokens with the old lookup key, sealed for it.
    #[test]
    fn the_token_key_moves_to_a_new_master_key() {
        let rng = SystemRandom::new();
        let old = Vault::new(MasterKey::generate(&rng).unwrap().0);
        let new = Vault::new(MasterKey::generate(&rng).unwrap().0);
        let third = Vault::new(MasterKey::generate(&rng).unwrap().0);
        let token = generate_token(&rng).unwrap();
        assert_ne!(old.token_hash(&token), new.token_hash(&token));
        let sealed = old.token_key_for(&new).unwrap();
        assert!(
            third.adopt_token_key(&sealed).is_err(),
            "sealed for `new` only"
        );
        new.adopt_token_key(&sealed).unwrap();
        assert_eq!(old.token_hash(&token), new.token_hash(&token));
        // And on to the next rotation.
        third
            .adopt_token_key(&new.token_key_for(&third).unwrap())
            .unwrap();
        assert_eq!(old.token_hash(&token), third.token_hash(&token));
    }

    #[test]
    fn reseal_moves_every_value_and_refuses_a_foreign_one() {
        let rng = SystemRandom::new();
        let old = Vault::new(MasterKey::generate(&rng).unwrap().0);
        let new = Vault::new(MasterKey::generate(&rng).unwrap().0);
        let secret = SigningSecret::parse("my-secret-key").unwrap();
        let mut e: Endpoint = serde_json::from_str(
            &serde_json::json!({
                "id": "wh-1", "name": "n", "url": "https://a.example/", "signing_enabled": true,
                "secret": old.seal_secret("wh-1", &secret).unwrap(),
                "created_at_ms": 0, "updated_at_ms": 0,
                "headers": [old.seal_header("wh-1", "X-Key", "v-1").unwrap()],
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(old.reseal(&new, &mut e).unwrap(), 2);
        assert!(old.open_secret("wh-1", &e.secret).is_err());
        assert_eq!(
            new.open_secret("wh-1", &e.secret).unwrap().expose(),
            "my-secret-key"
        );
        assert_eq!(new.open_header("wh-1", &e.headers[0]).unwrap(), "v-1");
        let err = old.reseal(&new, &mut e).unwrap_err();
        assert!(err.contains("endpoint wh-1"), "{err}");
    }
}
