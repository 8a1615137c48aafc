//! Pure delivery rules: what a response means, when to try again, and the Standard Webhooks
//! signature header (the body is the endpoint's format's, [`crate::format`]).

use crate::secrets::SigningSecret;

/// What an HTTP answer means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Success,
    /// 410 Gone: the receiver asks never to be called again; the endpoint is disabled.
    Gone,
    /// Anything else (3xx, which is not followed, 4xx, 5xx): try again on the schedule.
    Retry,
    /// The target refused the message itself (an answer its format says is final, such as
    /// Slack's `400 no_text`): the delivery gives up at once; the answer is in the attempt log.
    Refused,
}

pub fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        410 => Verdict::Gone,
        _ => Verdict::Retry,
    }
}

/// A `Retry-After` value as seconds to wait from `now_ms`: delta-seconds, or an HTTP-date
/// (compared with hookd's clock; a date in the past means no wait).
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return (v.len() <= 10).then(|| v.parse().ok()).flatten();
    }
    let at_ms = crate::time::parse_http_date(v)?.saturating_mul(1000);
    let wait_ms = at_ms.saturating_sub(now_ms).max(0);
    u64::try_from(wait_ms).ok().map(|ms| ms.div_ceil(1000))
}

/// Milliseconds to wait after the `attempts_made`-th failed attempt, or `None` when the schedule
/// is exhausted. The scheduled wait is spread by ±`jitter_percent` using `random`; a longer
/// `Retry-After` (capped at `max_retry_after_secs`) wins.
pub fn next_delay_ms(
    attempts_made: u32,
    schedule_secs: &[u64],
    jitter_percent: u32,
    retry_after_secs: Option<u64>,
    max_retry_after_secs: u64,
    random: u32,
) -> Option<u64> {
    let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
    let base = schedule_secs.get(index)?.saturating_mul(1000);
    let spread = base.saturating_mul(u64::from(jitter_percent.min(100))) / 100;
    // random in [0, 2*spread] shifted to [-spread, +spread]
    let offset = if spread == 0 {
        0
    } else {
        u64::from(random) % (2 * spread + 1)
    };
    let jittered = base.saturating_sub(spread).saturating_add(offset);
    let asked = retry_after_secs
        .map(|s| s.min(max_retry_after_secs).saturating_mul(1000))
        .unwrap_or(0);
    Some(jittered.max(asked))
}

/// The `webhook-signature` value: one signature per live secret (`v1,` HMAC, `v1a,` Ed25519),
/// space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

    #[test]
    fn schedule_with_jitter_and_retry_after() {
        assert_eq!(next_delay_ms(1, &SCHEDULE, 0, None, 86400, 7), Some(5_000));
        assert_eq!(
            next_delay_ms(2, &SCHEDULE, 0, None, 86400, 7),
            Some(300_000)
        );
        assert_eq!(
            next_delay_ms(7, &SCHEDULE, 0, None, 86400, 7),
            Some(36_000_000)
        );
        assert_eq!(next_delay_ms(8, &SCHEDULE, 0, None, 86400, 7), None);
        assert_eq!(next_delay_ms(0, &SCHEDULE, 0, None, 86400, 7), None);
        for r in [0, 1, 999, u32::MAX] {
            let d = next_delay_ms(1, &SCHEDULE, 20, None, 86400, r).unwrap();
            assert!((4_000..=6_000).contains(&d), "{d}");
        }
        assert_eq!(
            next_delay_ms(1, &SCHEDULE, 0, Some(60), 86400, 0),
            Some(60_000)
        );
        assert_eq!(
            next_delay_ms(2, &SCHEDULE, 0, Some(60), 86400, 0),
            Some(300_000)
        );
        assert_eq!(
            next_delay_ms(1, &SCHEDULE, 0, Some(999_999), 100, 0),
            Some(100_000)
        );
    }

    #[test]
    fn verdicts_and_retry_after() {
        assert_eq!(classify(200), Verdict::Success);
        assert_eq!(classify(204), Verdict::Success);
        assert_eq!(classify(410), Verdict::Gone);
        for s in [301, 400, 404, 429, 500, 503] {
            assert_eq!(classify(s), Verdict::Retry);
        }
        let now = 1_768_464_000_000; // Thu, 15 Jan 2026 08:00:00 GMT
        assert_eq!(parse_retry_after(" 120 ", now), Some(120));
        assert_eq!(
            parse_retry_after("Thu, 15 Jan 2026 08:02:00 GMT", now),
            Some(120)
        );
        assert_eq!(
            parse_retry_after("Thu, 15 Jan 2026 08:00:00 GMT", now + 1),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Thursday, 15-Jan-26 08:00:30 GMT", now),
            Some(30)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("12345678901", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn body_and_signatures() {
        let body = crate::format::standard::body(&crate::format::Event {
            id: "msg_1",
            event_type: "alert.firing",
            created_at_ms: 1_768_464_000_000,
            data: r#"{"x":1}"#,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "alert.firing");
        assert_eq!(v["timestamp"], "2026-01-15T08:00:00Z");
        assert_eq!(v["data"]["x"], 1);
        let rng = ring::rand::SystemRandom::new();
        let secrets = [
            SigningSecret::parse("first-secret-key").unwrap(),
            SigningSecret::parse("second-secret-key").unwrap(),
            SigningSecret::generate(&rng, crate::model::SigningAlgorithm::Ed25519).unwrap(),
        ];
        let h = signature_header(&secrets, "msg_1", 1, &body);
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[..2].iter().all(|p| p.starts_with("v1,")));
        assert!(parts[2].starts_with("v1a,"));
        assert_ne!(parts[0], parts[1]);
    }
}
