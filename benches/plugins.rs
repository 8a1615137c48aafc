//! Plugin cost: one check (fresh instance + call), a check of both shipped plugins (the set of the
//! load benchmark), and plugin load (compile, and from the cache).
//!
//! `cargo bench --bench plugins`. Uses the real `plugins/host_allowlist.wasm` when it has been
//! built (`bash plugins/build.sh`), else the allow fixture from the tests. After criterion's
//! figures it prints p50/p99 of 20,000 single checks, then of 5,000 transformer calls on a
//! one-alert Alertmanager group: the tests' echo fixture (the host's share of a call: store,
//! instance, copying the event in and the request out) and the shipped ntfy transformer.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../tests/it/common/plugins.rs"]
mod fixtures;

use std::path::PathBuf;
use std::time::Instant;

use common::GROUP;
use criterion::{criterion_group, criterion_main, Criterion};
use hookd::config::{Config, PluginConfig, TransformerConfig};
use hookd::format::TransformInput;
use hookd::plugins::transform::TransformerHost;
use hookd::plugins::PluginHost;

fn plugin(dir: &std::path::Path) -> (PathBuf, &'static str) {
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/host_allowlist.wasm");
    if real.exists() {
        (real, "host_allowlist.wasm")
    } else {
        (fixtures::write_fixture(dir, "allow"), "allow fixture")
    }
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (path, label) = plugin(dir.path());
    let real_plugins = label == "host_allowlist.wasm";
    let limits = Config::from_toml_str("").unwrap().plugin_limits;
    let spec = vec![PluginConfig {
        name: "bench".into(),
        path: path.clone(),
        settings: "hooks.slack.com, .pagerduty.com".into(),
        on_error: hookd::config::OnError::Deny,
    }];
    let cache = dir.path().join("cache");
    let host = PluginHost::new(&limits, Some(&cache), &spec).unwrap();
    let set = host.current();
    let url = "https://hooks.slack.com/services/T00/B00/xxx";
    set.check(url, "Slack Webhook", "create").unwrap();

    c.bench_function(&format!("plugin check ({label})"), |b| {
        b.iter(|| set.check(url, "Slack Webhook", "create").unwrap());
    });
    // The set of the load benchmark: both shipped plugins, in one check.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let https = root.join("https_only.wasm");
    if real_plugins && https.exists() {
        let mut both = spec.clone();
        both.push(PluginConfig {
            name: "https".into(),
            path: https,
            settings: String::new(),
            on_error: hookd::config::OnError::Deny,
        });
        let host = PluginHost::new(&limits, Some(&cache), &both).unwrap();
        let set = host.current();
        c.bench_function("plugin check, both shipped plugins", |b| {
            b.iter(|| set.check(url, "Slack Webhook", "create").unwrap());
        });
    }
    c.bench_function(&format!("plugin load, cached ({label})"), |b| {
        b.iter(|| PluginHost::new(&limits, Some(&cache), &spec).unwrap());
    });
    let mut n = 0;
    c.bench_function(&format!("plugin load, compiling ({label})"), |b| {
        b.iter(|| {
            n += 1;
            PluginHost::new(&limits, Some(&dir.path().join(format!("cold{n}"))), &spec).unwrap()
        });
    });

    let mut samples: Vec<u128> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            set.check(url, "Slack Webhook", "create").unwrap();
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let pct = |p: usize| samples[samples.len() * p / 100] as f64 / 1000.0;
    println!(
        "plugin check ({label}), 20000 calls: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pct(50),
        pct(99),
        *samples.last().unwrap() as f64 / 1000.0
    );
}

/// p50/p99 of transformer calls: the echo fixture, and ntfy when it is built.
fn transformers() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = vec![TransformerConfig {
        name: "echo".into(),
        path: fixtures::write_transformer(dir.path(), "echo"),
        settings: String::new(),
    }];
    let ntfy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/ntfy.wasm");
    if ntfy.exists() {
        configs.push(TransformerConfig {
            name: "ntfy".into(),
            path: ntfy,
            settings: "topic=alerts".into(),
        });
    }
    let config = Config::from_toml_str("").unwrap();
    let heavy = std::sync::Arc::new(hookd::heavy::Heavy::start(1));
    let host = TransformerHost::new(
        &config.transformer_plugin_limits(),
        Some(&dir.path().join("cache")),
        &configs,
        heavy,
    )
    .unwrap();
    let set = host.current();
    for t in &configs {
        let input = || TransformInput {
            id: "msg_1".into(),
            event_type: "alertmanager.firing".into(),
            created_at_ms: 1_764_410_400_000,
            data: GROUP.into(),
            endpoint_name: "r1".into(),
        };
        let mut fuel = 0;
        let mut samples: Vec<u128> = (0..5_000)
            .map(|_| {
                let input = input();
                let t0 = Instant::now();
                let (out, used) = set.transform_blocking(&t.name, input);
                let took = t0.elapsed().as_nanos();
                out.unwrap();
                fuel = used;
                took
            })
            .collect();
        samples.sort_unstable();
        let pct = |p: usize| samples[samples.len() * p / 100] as f64 / 1000.0;
        println!(
            "transformer call ({}), 5000 calls: p50 {:.1} µs, p99 {:.1} µs, {fuel} fuel",
            t.name,
            pct(50),
            pct(99)
        );
    }
}

fn all(c: &mut Criterion) {
    benches(c);
    transformers();
}

criterion_group! {
    name = plugin_benches;
    config = Criterion::default().sample_size(30);
    targets = all
}
criterion_main!(plugin_benches);
