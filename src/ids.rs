//! Resource ids: a prefix (`wh-`, `tok-`) and 26 characters of lowercase Crockford base32 holding
//! 48 bits of Unix milliseconds then 80 random bits, so ids sort by creation time (a stable list
//! order and cursor) and are URL-safe.

use ring::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// Prefix of webhook endpoint ids.
pub const ENDPOINT_PREFIX: &str = "wh-";
/// Prefix of API token ids.
pub const TOKEN_PREFIX: &str = "tok-";
/// Prefix of message ids (sent as `webhook-id`).
pub const MESSAGE_PREFIX: &str = "msg_";
/// Prefix of delivery attempt ids.
pub const ATTEMPT_PREFIX: &str = "att-";

/// A new time-ordered id with the given prefix.
pub fn new_id(prefix: &str, unix_ms: i64, rng: &SystemRandom) -> String {
    let mut random = [0u8; 10];
    // SystemRandom only fails when the OS has no entropy source at all; fall back to the clock's
    // low bits rather than refuse to create, uniqueness is still guarded by the store's insert.
    if rng.fill(&mut random).is_err() {
        random[..8].copy_from_slice(&unix_ms.to_le_bytes());
    }
    let ms = u128::from(u64::try_from(unix_ms).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
    let mut value = ms << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + BODY_LEN);
    out.push_str(prefix);
    for i in (0..BODY_LEN).rev() {
        let idx = usize::try_from((value >> (5 * i)) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[idx]));
    }
    out
}

/// The creation time (Unix ms) an id with this prefix carries.
pub fn timestamp_ms(prefix: &str, id: &str) -> Option<i64> {
    let body = id.strip_prefix(prefix)?;
    if body.len() != BODY_LEN {
        return None;
    }
    // 128 bits in 26 five-bit digits: the top 48 (of 130) are the milliseconds.
    let mut value: u128 = 0;
    for b in body.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == b)?;
        value = (value << 5) | u128::try_from(digit).ok()?;
    }
    i64::try_from(value >> 80).ok()
}

/// Whether `s` has the shape of an id with this prefix. Used to reject malformed cursors early;
/// lookups of well-formed but unknown ids are the store's business (404).
pub fn is_well_formed(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_unique_and_time_ordered() {
        let rng = SystemRandom::new();
        let a = new_id(ENDPOINT_PREFIX, 1_768_464_000_000, &rng);
        let b = new_id(ENDPOINT_PREFIX, 1_768_464_000_001, &rng);
        let c = new_id(ENDPOINT_PREFIX, 1_768_464_000_001, &rng);
        assert!(is_well_formed(ENDPOINT_PREFIX, &a), "{a}");
        assert_eq!(a.len(), 3 + BODY_LEN);
        assert!(a < b && a < c, "{a} {b} {c}");
        assert_ne!(b, c);
        assert!(!is_well_formed(TOKEN_PREFIX, &a));
        assert!(!is_well_formed(ENDPOINT_PREFIX, "wh-001"));
        assert!(!is_well_formed(ENDPOINT_PREFIX, &a.to_uppercase()));
        assert_eq!(timestamp_ms(ENDPOINT_PREFIX, &a), Some(1_768_464_000_000));
        assert_eq!(timestamp_ms(ENDPOINT_PREFIX, &c), Some(1_768_464_000_001));
        assert_eq!(timestamp_ms(TOKEN_PREFIX, &a), None);
        assert_eq!(timestamp_ms(ENDPOINT_PREFIX, "wh-zz"), None);
    }
}
