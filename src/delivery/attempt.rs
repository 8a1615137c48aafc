//! One delivery attempt: the body signed with every live secret, the custom headers and
//! client key opened, the request through the egress client, and the answer classified.

use std::time::Instant;

use ring::rand::SecureRandom as _;

use super::client::{self, Outgoing};
use super::render::{Keys, RenderFailure};
use super::schedule::{classify, parse_retry_after, signature_header, Verdict};
use super::Delivery;
use crate::format;
use crate::ids::new_id;
use crate::model::{Attempt, AttemptOutcome, Endpoint, Message};
use crate::secrets::SigningSecret;
use crate::time::now_ms;

/// The `Retry-After` a failed attempt carried, stashed in its error field by [`attempt`].
pub(super) fn attempt_retry_after(a: &Attempt) -> Option<u64> {
    a.error
        .as_deref()
        .and_then(|e| e.strip_prefix("retry_after="))
        .and_then(|v| parse_retry_after(v, a.at_ms))
}

pub(super) fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Delivery {
    pub(super) fn random_u32(&self) -> u32 {
        let mut b = [0u8; 4];
        let _ = self.rng.fill(&mut b);
        u32::from_le_bytes(b)
    }

    /// The secrets that sign for `endpoint` now: the current secret, then previous ones still in
    /// their grace period.
    fn signing_keys(&self, endpoint: &Endpoint) -> Result<Vec<SigningSecret>, String> {
        let now = now_ms();
        std::iter::once(&endpoint.secret)
            .chain(
                endpoint
                    .previous_secrets
                    .iter()
                    .filter(|s| s.expires_at_ms.is_some_and(|x| x > now)),
            )
            .map(|sealed| {
                self.deps
                    .vault
                    .open_secret(&endpoint.id, sealed)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// The endpoint's custom headers, unsealed.
    fn custom_headers(&self, endpoint: &Endpoint) -> Result<Vec<(String, String)>, String> {
        endpoint
            .headers
            .iter()
            .map(|h| {
                Ok((
                    h.name.clone(),
                    self.deps.vault.open_header(&endpoint.id, h)?,
                ))
            })
            .collect()
    }

    /// The client presenting the endpoint's certificate, if it has one.
    fn mtls_client(
        &self,
        egress: &client::Egress,
        endpoint: &Endpoint,
    ) -> Result<Option<client::HttpClient>, client::ErrorKind> {
        let Some(cert) = &endpoint.client_certificate else {
            return Ok(None);
        };
        egress
            .mtls_client(&endpoint.id, &cert.fingerprint, || {
                let key = self.deps.vault.open_client_key(&endpoint.id, cert)?;
                Ok((cert.chain_pem.clone(), key))
            })
            .map(Some)
    }

    /// Makes one attempt of `message` to `endpoint`; returns the attempt (outcome still to be
    /// decided by the caller for failures) and the verdict on the answer, `None` for no answer.
    pub(super) async fn attempt(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        attempt_no: u32,
    ) -> (Attempt, Option<Verdict>) {
        let at_ms = now_ms();
        let started = Instant::now();
        let ids = (endpoint.id.as_str(), message.id.as_str());
        let rendered = match self.render(endpoint, message, Keys::Open).await {
            Ok(r) => r,
            Err(RenderFailure::Unsealed(e)) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal the format's routing key");
                let failed = self.failed_attempt(ids, attempt_no, at_ms, "secret_unavailable");
                return (failed, None);
            }
            Err(RenderFailure::Missing(name)) => {
                tracing::warn!(endpoint = %endpoint.id, transformer = %name, "the endpoint's transformer is not configured; its deliveries wait for it");
                let failed = self.failed_attempt(ids, attempt_no, at_ms, "transformer_missing");
                return (failed, None);
            }
            Err(RenderFailure::Failed(reason)) => {
                let mut failed = self.failed_attempt(ids, attempt_no, at_ms, "transform_failed");
                failed.response_body = reason;
                return (failed, Some(Verdict::Refused));
            }
        };
        let body = rendered.body;
        let content_type = rendered.content_type;
        let timestamp = at_ms / 1000;
        let signature = if endpoint.signing_enabled {
            match self.signing_keys(endpoint) {
                Ok(keys) => Some(signature_header(&keys, &message.id, timestamp, &body)),
                Err(e) => {
                    tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal the signing secret");
                    let ids = (endpoint.id.as_str(), message.id.as_str());
                    let failed = self.failed_attempt(ids, attempt_no, at_ms, "secret_unavailable");
                    return (failed, None);
                }
            }
        } else {
            None
        };
        let headers = match self.custom_headers(endpoint) {
            Ok(mut h) => {
                h.extend(rendered.headers);
                h
            }
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal a custom header");
                return (
                    self.failed_attempt(ids, attempt_no, at_ms, "secret_unavailable"),
                    None,
                );
            }
        };
        let egress = self.egress();
        let client = match self.mtls_client(&egress, endpoint) {
            Ok(c) => c,
            Err(kind) => return (self.failed_attempt(ids, attempt_no, at_ms, kind), None),
        };
        let result = egress
            .send(Outgoing {
                url: &endpoint.url,
                body,
                content_type: &content_type,
                msg_id: &message.id,
                timestamp,
                signature,
                headers,
                client,
            })
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut a = self.failed_attempt((&endpoint.id, &message.id), attempt_no, at_ms, "");
        a.duration_ms = duration_ms;
        match result {
            Ok(resp) => {
                let verdict = match classify(resp.status) {
                    Verdict::Retry if format::refuses(&endpoint.format, resp.status) => {
                        Verdict::Refused
                    }
                    v => v,
                };
                a.status_code = Some(resp.status);
                a.error = match verdict {
                    Verdict::Success => {
                        a.outcome = AttemptOutcome::Succeeded;
                        None
                    }
                    Verdict::Gone => Some("gone".into()),
                    Verdict::Refused => Some("refused".into()),
                    Verdict::Retry if (300..400).contains(&resp.status) => Some("redirect".into()),
                    // Stored as the seconds it asked for (a number), never as the receiver's text.
                    Verdict::Retry => resp
                        .retry_after
                        .and_then(|r| parse_retry_after(&r, at_ms))
                        .or_else(|| {
                            (resp.status == 429)
                                .then(|| format::retry_after_in_body(&endpoint.format, &resp.body))
                                .flatten()
                        })
                        .map(|secs| format!("retry_after={secs}")),
                };
                a.response_body = resp.body;
                (a, Some(verdict))
            }
            Err(kind) => {
                a.error = Some(kind.into());
                (a, None)
            }
        }
    }

    /// An attempt that failed with `error` ("" for none yet), for `(endpoint_id, message_id)`.
    pub(super) fn failed_attempt(
        &self,
        (endpoint_id, message_id): (&str, &str),
        attempt_no: u32,
        at_ms: i64,
        error: &str,
    ) -> Attempt {
        Attempt {
            id: new_id(crate::ids::ATTEMPT_PREFIX, at_ms, &self.rng),
            endpoint_id: endpoint_id.to_owned(),
            message_id: message_id.to_owned(),
            attempt: attempt_no,
            at_ms,
            duration_ms: 0,
            status_code: None,
            error: (!error.is_empty()).then(|| error.to_owned()),
            response_body: String::new(),
            outcome: AttemptOutcome::Failed,
            next_attempt_ms: None,
        }
    }
}
