//! What rendering costs per delivery, per format: p50 and p99 of one render of an Alertmanager
//! group of 1 and of 100 alerts (with ~200-character descriptions), and the body's size.
//!
//! `cargo bench --bench formats` (`FORMATS_BENCH_RUNS` renders per case, default 2,000). Pure:
//! no server, no store; what a delivery adds on top of sending.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::time::Instant;

use hookd::format::{render, Event, Options};
use hookd::model::Format;
use serde_json::json;

fn group(n: usize) -> String {
    let alerts: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": "InstanceDown", "instance": format!("node-{i:04}:9100"), "job": "node", "severity": "critical"},
                "annotations": {"summary": format!("Instance node-{i:04} down"), "description": "x".repeat(200)},
                "startsAt": "2026-11-29T10:00:00.000Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up"
            })
        })
        .collect();
    json!({"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"InstanceDown\"}",
           "commonLabels": {"alertname": "InstanceDown", "job": "node", "severity": "critical"},
           "externalURL": "http://alertmanager.example:9093", "alerts": alerts})
    .to_string()
}

fn main() {
    let runs: usize = std::env::var("FORMATS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let options = Options {
        routing_key: Some("R0123456789abcdef0123456789abcdef"),
        severity: None,
    };
    println!("| format | alerts | p50 | p99 | body bytes |");
    println!("|---|---|---|---|---|");
    for n in [1, 100] {
        let data = group(n);
        let event = Event {
            id: "msg_1",
            event_type: "alertmanager.firing",
            created_at_ms: 1_764_410_400_000,
            data: &data,
        };
        for format in Format::ALL {
            let mut times = Vec::with_capacity(runs);
            let mut size = 0;
            for _ in 0..runs {
                let started = Instant::now();
                let out = render(&format, &event, &options).expect("a built-in format");
                times.push(started.elapsed());
                size = out.body.len();
            }
            times.sort_unstable();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "| `{}` | {n} | {:.1} µs | {:.1} µs | {size} |",
                format.as_str(),
                at(0.5).as_secs_f64() * 1e6,
                at(0.99).as_secs_f64() * 1e6
            );
        }
    }
}
