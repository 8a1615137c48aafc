//! A whole Alertmanager group of 1,000 alerts with long annotations, end to end: accepted in one
//! request, stored once however many endpoints take it, and delivered to an endpoint of every
//! format (a transformer's too) as one request each, within each target's limits.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::common::plugins::{transformer_toml, write_transformer};
use crate::common::receiver::Receiver;
use crate::common::{alertmanager_group, TestServer, ENDPOINTS};

#[tokio::test]
async fn a_thousand_alert_group_reaches_every_format_once_within_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let echo = write_transformer(dir.path(), "echo-large");
    let rx = Receiver::start().await;
    let s = TestServer::start_with(&format!(
        "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\npoll_interval_ms = 50\n{}",
        transformer_toml("echo", &echo, "")
    ))
    .await;
    let mut formats: Vec<String> = hookd::model::Format::ALL
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    formats.push("plugin:echo".into());
    for format in &formats {
        let mut body = json!({"name": format, "url": rx.url(&format!("/{format}")), "signingEnabled": true, "signingSecret": "", "format": format});
        if format == "pagerduty" {
            body["formatOptions"] = json!({"routingKey": "R0123456789abcdef0123456789abcdef"});
        }
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{format}: {}", r.text());
    }
    let before = s.app.store.stats().await.unwrap();

    rx.slow(1000);
    let group = alertmanager_group("firing", 1000, 600);
    let text = group.to_string();
    assert!(text.len() > 900_000, "{} bytes", text.len());
    let started = Instant::now();
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .body_str(&text)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["deliveries"], formats.len());
    // Stored once: the messages grew by one copy; each delivery (still pending: the receiver
    // is slow to answer) refers to it.
    let after = s.app.store.stats().await.unwrap();
    let (messages, deliveries) = (
        after.message_bytes - before.message_bytes,
        after.delivery_bytes - before.delivery_bytes,
    );
    eprintln!("stored: messages +{messages} bytes, deliveries +{deliveries} bytes");
    assert!(
        messages < text.len() as u64 * 11 / 10,
        "{messages} bytes for one {}-byte group",
        text.len()
    );
    // PostgreSQL counts its tables' size, which grows by whole 8 KiB pages (the table and its
    // four indexes).
    let pages = if crate::common::postgres::server().is_some() {
        5 * 8192
    } else {
        0
    };
    assert!(
        deliveries < 2_000 * formats.len() as u64 + pages,
        "{deliveries}"
    );

    let got = rx.wait_for(formats.len(), 30).await;
    let took = started.elapsed();
    for format in &formats {
        let one: Vec<_> = got
            .iter()
            .filter(|g| g.path == format!("/{format}"))
            .collect();
        assert_eq!(one.len(), 1, "{format}: {} requests", one.len());
        let f = hookd::model::Format::parse(format).unwrap();
        if let Err(why) = hookd::format::within_limits(&f, &one[0].body) {
            panic!("{format}: {why}");
        }
        let body: Value = one[0].json();
        match format.as_str() {
            // The envelope and the transformer carry the group byte for byte.
            "standard-webhooks" => assert_eq!(body["data"], group),
            "plugin:echo" => assert_eq!(body, group),
            // The others name how many there are.
            _ => assert!(
                one[0].body.windows(4).any(|w| w == b"1000"),
                "{format}: {}",
                String::from_utf8_lossy(&one[0].body)
            ),
        }
    }
    eprintln!(
        "1,000 alerts ({} bytes) to {} formats in {took:?}",
        text.len(),
        formats.len()
    );
    assert!(took < Duration::from_secs(30));

    s.stop().await;
}
