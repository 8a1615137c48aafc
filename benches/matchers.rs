//! The worst a client can make label matchers cost, within the limits hookd accepts (the
//! security review's finding: matchers that stalled the server).
//!
//! 1. Compiling: for families of costly patterns, the largest one accepted and its compile
//!    time; then a whole endpoint (50 matchers) of the costliest.
//! 2. Routing: one endpoint with 50 of the slowest accepted automata, 49 satisfied and the last
//!    not (so every matcher reads its label in every set), against the most label bytes an
//!    alert within `limits.max_body_bytes` can carry.
//! 3. The server under that attack: 10 such endpoints, one client posting the costliest
//!    alerts and one PATCHing the costliest matchers, while `/healthz` and creates are timed
//!    against the same server idle (interleaved rounds).
//!
//! `cargo bench --bench matchers`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

mod common;

use std::time::{Duration, Instant};

use common::{call, connect, ms, pct, post, receiver, Hookd};
use hookd::routing::{Labels, Matchers, MAX_RULES};
use serde_json::json;

/// A family of patterns growing with `n`.
struct Family {
    name: &'static str,
    pattern: fn(usize) -> String,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "(a|b)*a(a|b){n}",
        pattern: |n| format!("(a|b)*a(a|b){{{n}}}"),
    },
    Family {
        name: ".{n}",
        pattern: |n| format!(".{{{n}}}"),
    },
    Family {
        name: r"\p{L}{n}",
        pattern: |n| format!(r"\p{{L}}{{{n}}}"),
    },
    Family {
        name: r"(\p{Greek}|\p{Cyrillic}|x){n}",
        pattern: |n| format!(r"(\p{{Greek}}|\p{{Cyrillic}}|x){{{n}}}"),
    },
    Family {
        name: "(?i)[a-z]{n}x",
        pattern: |n| format!("(?i)[a-z]{{{n}}}x"),
    },
    Family {
        name: "(.*a){n}",
        pattern: |n| format!("(.*a){{{n}}}"),
    },
    Family {
        name: r"(\w+\s*){n}",
        pattern: |n| format!(r"(\w+\s*){{{n}}}"),
    },
];

fn matcher(label: &str, pattern: &str) -> String {
    format!("{label}=~\"{}\"", pattern.replace('\\', "\\\\"))
}

/// 50 distinct matchers on label `v`: 49 of `p` (each with an alternative that never matches,
/// so the API does not fold them into one) and a last one that is not satisfied.
fn fifty(p: &str) -> Vec<String> {
    let mut all: Vec<String> = (0..MAX_RULES - 1)
        .map(|i| matcher("v", &format!("(?:{p})|z{i}")))
        .collect();
    all.push(matcher("v", "nothing"));
    all
}

fn compiles(pattern: &str) -> bool {
    Matchers::compile(&[matcher("x", pattern)]).is_ok()
}

/// The largest `n` whose pattern is accepted (matcher length and automaton size), by bisection.
fn largest(f: &Family) -> Option<usize> {
    let (mut lo, mut hi) = (1usize, 1000usize);
    if !compiles(&(f.pattern)(lo)) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if compiles(&(f.pattern)(mid)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Median of `runs` timings of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

/// Compiling: the costliest accepted pattern of each family; returns the costliest overall.
fn compiling() -> String {
    println!("== compiling (median of 5)");
    println!(
        "{:>32} | {:>5} | {:>10} | {:>9}",
        "family", "n", "compile", "automaton"
    );
    let mut worst = (Duration::ZERO, String::new());
    for f in FAMILIES {
        let Some(n) = largest(f) else {
            println!("{:>32} | refused at any size", f.name);
            continue;
        };
        let pattern = (f.pattern)(n);
        let m = [matcher("x", &pattern)];
        let took = time(5, || {
            Matchers::compile(&m).unwrap();
        });
        let size = Matchers::compile(&m).unwrap().memory();
        println!(
            "{:>32} | {n:>5} | {:>10} | {:>6} KiB",
            f.name,
            ms(took),
            size / 1024
        );
        // A refused one just over the limit costs up to the working-memory bound.
        let over = [matcher("x", &(f.pattern)(n + 1))];
        let refused = time(5, || {
            let _ = Matchers::compile(&over);
        });
        println!("{:>32} | {:>5} | {:>10} | refused", "", n + 1, ms(refused));
        if took.max(refused) > worst.0 {
            worst = (took.max(refused), pattern);
        }
    }
    // A whole endpoint: 50 of the costliest; the shared budget refuses the rest, so a PATCH
    // costs at most what fits plus one refusal.
    let all: Vec<String> = (0..MAX_RULES)
        .map(|i| matcher(&format!("x{i}"), &worst.1))
        .collect();
    let took = time(3, || {
        let _ = Matchers::compile(&all);
    });
    let accepted = (1..=MAX_RULES)
        .take_while(|k| Matchers::compile(&all[..*k]).is_ok())
        .count();
    println!(
        "one endpoint, {MAX_RULES} x the costliest ({}): {} to compile or refuse; {accepted} fit its {} KiB",
        worst.1,
        ms(took),
        hookd::routing::MAX_RULES_BYTES / 1024
    );
    worst.1
}

/// The label sets of an Alertmanager notification as large as the default body limit allows:
/// `sets` alerts whose one label `v` is `value_len` bytes.
fn label_sets(sets: usize, value_len: usize) -> Vec<Labels> {
    (0..sets)
        .map(|i| {
            let mut l = Labels::new();
            let mut v = "ab".repeat(value_len / 2);
            v.replace_range(0..8, &format!("{i:08}"));
            l.insert("v".into(), v);
            l
        })
        .collect()
}

/// Routing: 50 matchers on one label, 49 satisfied, the last not.
fn routing() {
    println!("== routing one alert to one endpoint (median of 9)");
    let candidates = [
        ".*",
        "(a|b|[0-9])*",
        r"[\w]+",
        r".+b",
        "(.*a){3}.*",
        r"\p{L}*.*",
    ];
    // The default body limit is 64 KiB: about 30 label values of 2 KiB (the longest accepted).
    let sets = label_sets(30, hookd::routing::MAX_LABEL_VALUE);
    let bytes: usize = sets.iter().map(|l| l["v"].len()).sum();
    let mut slowest = Duration::ZERO;
    for p in candidates {
        let all = fifty(p);
        let Ok(m) = Matchers::compile(&all) else {
            println!("{p:>14}: 50 do not fit one endpoint");
            continue;
        };
        assert!(!m.take(&sets));
        let took = time(9, || {
            assert!(!m.take(&sets));
        });
        let scanned = bytes * MAX_RULES;
        println!(
            "{p:>14}: {} per endpoint ({} label bytes read, {:.2} ns/byte)",
            ms(took),
            scanned,
            took.as_nanos() as f64 / scanned as f64
        );
        slowest = slowest.max(took);
    }
    println!(
        "worst case: {} per endpoint with matchers of this kind",
        ms(slowest)
    );
}

fn alert_body() -> String {
    // Within 64 KiB: 29 alerts with a 2 KiB label each and the common fields.
    let alerts: Vec<_> = label_sets(29, hookd::routing::MAX_LABEL_VALUE)
        .into_iter()
        .map(|l| json!({"status": "firing", "labels": l}))
        .collect();
    json!({"version": "4", "status": "firing", "receiver": "r", "groupLabels": {},
           "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "alerts": alerts})
    .to_string()
}

/// One timing round: `n` sequential /healthz GETs and `n` creates; (healthz, creates).
async fn probe(addr: std::net::SocketAddr, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut c = connect(addr).await;
    let (mut health, mut creates) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        let (status, _) = call(&mut c, "GET", "/healthz", None).await;
        assert_eq!(status, 200);
        health.push(t.elapsed());
        let t = Instant::now();
        let body = json!({"name": format!("p{i}"), "url": "https://probe.example/", "signingEnabled": true, "signingSecret": ""});
        post(
            &mut c,
            "/api/v1/alerting/webhook-endpoints",
            body.to_string(),
        )
        .await;
        creates.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (health, creates)
}

async fn server(worst: &str) {
    println!("== the server while a client does its worst");
    let dir = tempfile::tempdir().unwrap();
    let (rx, _) = receiver().await;
    let h = Hookd::start(dir.path(), "max_in_flight = 1\nper_endpoint = 1\n").await;
    let mut c = connect(h.addr).await;
    let matchers = fifty(".*");
    let mut victims = Vec::new();
    for i in 0..10 {
        let body = json!({"name": format!("victim{i}"), "url": format!("http://{rx}/v{i}"),
                          "signingEnabled": true, "signingSecret": "", "labelMatchers": matchers});
        let v = post(
            &mut c,
            "/api/v1/alerting/webhook-endpoints",
            body.to_string(),
        )
        .await;
        victims.push(v["endpoint"]["id"].as_str().unwrap().to_owned());
    }
    let alert = alert_body();
    assert!(alert.len() <= 65536, "{}", alert.len());
    let patch: Vec<String> = (0..MAX_RULES)
        .map(|i| matcher(&format!("x{i}"), worst))
        .collect();
    let patch = json!({"labelMatchers": patch}).to_string();

    let rounds = 4;
    let per_round = 100;
    let (mut idle, mut attacked) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    let (mut alerts, mut patches) = (0usize, 0usize);
    for _ in 0..rounds {
        let (hz, cr) = probe(h.addr, per_round).await;
        idle.0.extend(hz);
        idle.1.extend(cr);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut attackers = Vec::new();
        for kind in 0..2 {
            let (stop, addr, alert, patch, victim) = (
                stop.clone(),
                h.addr,
                alert.clone(),
                patch.clone(),
                victims[0].clone(),
            );
            attackers.push(tokio::spawn(async move {
                let mut c = connect(addr).await;
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if kind == 0 {
                        let (status, _) = call(
                            &mut c,
                            "POST",
                            "/api/v1/alerting/alertmanager",
                            Some(alert.clone()),
                        )
                        .await;
                        assert_eq!(status, 202);
                    } else {
                        let path = format!("/api/v1/alerting/webhook-endpoints/{victim}");
                        let (status, _) = call(&mut c, "PATCH", &path, Some(patch.clone())).await;
                        assert!(status == 200 || status == 422, "{status}");
                    }
                    n += 1;
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (hz, cr) = probe(h.addr, per_round).await;
        attacked.0.extend(hz);
        attacked.1.extend(cr);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        alerts += attackers.remove(0).await.unwrap();
        patches += attackers.remove(0).await.unwrap();
    }
    for v in [&mut idle.0, &mut idle.1, &mut attacked.0, &mut attacked.1] {
        v.sort();
    }
    println!("attack: {alerts} worst-case alerts ({} bytes, 10 endpoints of 50 matchers) and {patches} worst-case PATCHes", alert.len());
    println!(
        "{:>9} | {:>10} | {:>10} | {:>10} | {:>10} | p50 ratio",
        "", "idle p50", "idle p99", "attack p50", "attack p99"
    );
    for (name, a, b) in [
        ("/healthz", &idle.0, &attacked.0),
        ("create", &idle.1, &attacked.1),
    ] {
        println!(
            "{name:>9} | {:>10} | {:>10} | {:>10} | {:>10} | {:.2}x",
            ms(pct(a, 50)),
            ms(pct(a, 99)),
            ms(pct(b, 50)),
            ms(pct(b, 99)),
            pct(b, 50).as_secs_f64() / pct(a, 50).as_secs_f64()
        );
    }
    h.stop().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let worst = compiling();
    routing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(server(&worst));
}
