//! What a write does to a record, whichever backend stores it: a PATCH's fields, a secret's
//! rotation, what an attempt means for its endpoint. Pure, so both backends apply the same
//! rules inside their own transactions.

use crate::model::{Endpoint, EndpointPatch, SealedSecret};

use super::EndpointEffect;

/// At most this many previous secrets are kept through rapid rotations.
pub const MAX_PREVIOUS_SECRETS: usize = 8;

/// Sets the fields `patch` names, but not `disabled`, which the backend applies with what
/// disabling means for the endpoint's deliveries (see [`set_enabled_again`]).
pub fn apply_fields(e: &mut Endpoint, patch: &EndpointPatch) {
    if let Some(name) = &patch.name {
        e.name.clone_from(name);
    }
    if let Some(url) = &patch.url {
        e.url.clone_from(url);
    }
    if let Some(enabled) = patch.signing_enabled {
        e.signing_enabled = enabled;
    }
    if let Some(f) = &patch.filter_types {
        e.filter_types.clone_from(f);
    }
    if let Some(m) = &patch.label_matchers {
        e.label_matchers.clone_from(m);
    }
    if let Some(h) = &patch.headers {
        e.headers.clone_from(h);
    }
    if let Some(r) = patch.rate_limit {
        e.rate_limit = r;
    }
    if let Some(c) = &patch.client_certificate {
        e.client_certificate.clone_from(c);
    }
    if let Some(f) = &patch.format {
        e.format.clone_from(f);
    }
    if let Some(o) = &patch.format_options {
        e.format_options.clone_from(o);
    }
}

/// An endpoint enabled by a PATCH starts with a clean failure record.
pub fn set_enabled_again(e: &mut Endpoint) {
    e.failing_since_ms = None;
}

/// Makes `secret` current; the old current secret keeps signing until `now_ms + grace_ms`.
/// Expired previous secrets are dropped, and at most [`MAX_PREVIOUS_SECRETS`] kept.
pub fn rotate(e: &mut Endpoint, secret: &SealedSecret, now_ms: i64, grace_ms: i64) {
    let mut old = std::mem::replace(&mut e.secret, secret.clone());
    // Secrets sign in their own algorithm: a rotation to Ed25519 keeps the HMAC signature in
    // the header through the grace period, and the other way around.
    old.expires_at_ms = Some(now_ms.saturating_add(grace_ms));
    e.previous_secrets
        .retain(|s| s.expires_at_ms.is_some_and(|x| x > now_ms));
    if grace_ms > 0 {
        e.previous_secrets.insert(0, old);
    }
    e.previous_secrets.truncate(MAX_PREVIOUS_SECRETS);
    e.updated_at_ms = now_ms.max(e.updated_at_ms);
}

/// What an attempt's `effect` does to its endpoint's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write (the common case: a healthy endpoint stays healthy).
    None,
    /// The record changed (its failure record); write it back.
    Write,
    /// The endpoint is to be disabled now (the backend applies that), and written back.
    Disable,
}

/// Applies `effect` to `e`'s failure record.
pub fn attempt_effect(e: &mut Endpoint, effect: EndpointEffect) -> Change {
    match effect {
        EndpointEffect::Success if e.failing_since_ms.is_none() => Change::None,
        EndpointEffect::Success => {
            e.failing_since_ms = None;
            Change::Write
        }
        EndpointEffect::Failure {
            now_ms,
            disable_after_ms,
        } => {
            let since = *e.failing_since_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= disable_after_ms {
                Change::Disable
            } else {
                Change::Write
            }
        }
        EndpointEffect::Gone => Change::Disable,
        EndpointEffect::None => Change::None,
    }
}
