//! A notifier written in JavaScript (`notify-chat`, QuickJS inside the component) beside one
//! written in Rust (`notify-webhook`), measured in the same run through the same host path:
//!
//! - a call: `Runtimes::deliver` (the tenant's channel settings, a fresh instance, the call, the
//!   host's HTTP client) posting to a loopback sink that answers `200 ok`; and the same call with
//!   the event filtered out by the channel's `events`, so no request is made: what the plugin
//!   itself costs;
//! - a load: compiling the component from its bytes (what `plugin install` does once) and
//!   loading the compiled artifact from the cache (what a host does at a tenant's first use after
//!   a start).
//!
//! The Rust notifier is the baseline of each row. Needs the plugins built (`cargo xtask
//! plugins`). `cargo xtask bench` runs it.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use greenlight_host::domain::delivery::{Attempt, Notification, OrderSummary, Recipient};
use greenlight_host::runtime::manifest::Manifest;
use greenlight_host::runtime::{RuntimeOptions, Runtimes};
use greenlight_host::store::{Store, StoreOptions, directory, extensions, plugins as catalog};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The two channels: (plugin, what it is written in).
const CHANNELS: [(&str, &str); 2] = [("notify-chat", "JavaScript"), ("notify-webhook", "Rust")];

/// A loopback HTTP sink answering every request `200 ok`, one request per connection; its
/// origin and the number of requests it answered.
fn sink() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            // A stalled client must not stop the sink.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 4096];
            // Headers, then as many body bytes as they announce.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            // Counted before the answer, so a request is counted by the time its call returns.
            count.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (origin, answered)
}

fn notification() -> Notification {
    Notification {
        delivery_id: "01a23567-e517-768a-95de-bb3f6536c3ea".into(),
        event: "order_approved".into(),
        order: OrderSummary {
            id: "01a23567-e4fb-7408-adf4-91f5c40f589f".into(),
            requester: "alice".into(),
            status: "approved".into(),
            total_minor: 12_345_015,
            currency: "EUR".into(),
            cost_center: Some("CC-100".into()),
            department: Some("Engineering".into()),
        },
        recipients: vec![Recipient {
            name: Some("alice".into()),
            email: Some("alice@example.com".into()),
            phone: None,
        }],
        stage: None,
        reason: None,
        data: serde_json::json!({"details": {}, "occurred_at": "2026-12-02T06:00:00Z", "attempt": 1, "attempt_at": "2026-12-02T06:00:00Z"}),
    }
}

/// Median and p99 of `n` runs of `f`, in microseconds.
fn measure(n: usize, f: impl FnMut()) -> (f64, f64) {
    let s = common::measure(n, f);
    (s.median_us(), s.p99_us())
}

struct Figures {
    post: (f64, f64),
    filtered: (f64, f64),
    compile_ms: f64,
    load_ms: f64,
    size_kib: f64,
}

fn main() {
    let quick = common::quick();
    let (calls, loads) = if quick { (300, 3) } else { (2_000, 10) };
    let plugins = common::plugins();
    let (origin, answered) = sink();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("b.db"), StoreOptions::default()).unwrap();
    let tenant = store.write_blocking(|c| directory::create_tenant(c, "bench").map(|t| t.id)).unwrap();
    let options = RuntimeOptions { allow_private_network: true, ..RuntimeOptions::default() };
    let rt = Runtimes::with_options(options).unwrap();
    let n = notification();
    let mut figures = Vec::new();
    for (name, _) in CHANNELS {
        let manifest_path = plugins.join(name).join("manifest.toml");
        rt.install(&store, &manifest_path).unwrap();
        let configure = |events: &[&str]| {
            let (t, name) = (tenant.clone(), name.to_string());
            let mut config = serde_json::json!({"url": format!("{origin}/hook"), "events": events});
            if name == "notify-webhook" {
                config["signing_secret"] = "a-signing-secret-for-the-bench".into();
            }
            let grants = extensions::Grants { http: vec![origin.clone()], mail: false };
            store
                .write_blocking(move |c| {
                    let u = extensions::ExtensionUpdate {
                        enabled: true,
                        position: Some(10),
                        config: Some(config),
                        grants: Some(grants),
                        ..Default::default()
                    };
                    extensions::update_setting(c, &t, &name, &u)
                })
                .unwrap();
        };
        configure(&[]);
        assert_eq!(rt.deliver(&store, &tenant, name, &n), Attempt::Delivered, "{name} posting");
        let post = measure(calls, || assert_eq!(rt.deliver(&store, &tenant, name, &n), Attempt::Delivered));
        configure(&["order_rejected"]);
        let before = answered.load(Ordering::SeqCst);
        let filtered = measure(calls, || assert_eq!(rt.deliver(&store, &tenant, name, &n), Attempt::Delivered));
        assert_eq!(answered.load(Ordering::SeqCst), before, "{name} posted an event its `events` filter excludes");

        // Loads: from the component's bytes, and from the artifact the install cached.
        let text = std::fs::read_to_string(&manifest_path).unwrap();
        let manifest = Manifest::parse(&text, &manifest_path.to_string_lossy()).unwrap();
        let component = manifest.component.clone().unwrap();
        let bytes = std::fs::read(plugins.join(name).join(&component)).unwrap();
        let mut compile = Vec::new();
        for _ in 0..loads {
            let t = Instant::now();
            rt.wasm.load_bytes(&bytes, &manifest).unwrap();
            compile.push(t.elapsed());
        }
        let n2 = name.to_string();
        let record = store.read_blocking(move |c| catalog::get(c, &n2)).unwrap().unwrap();
        rt.wasm_plugin(&store, &record).unwrap(); // Makes sure the artifact is cached.
        let (h, e) = (record.code_hash.clone(), rt.wasm.engine_hash().to_string());
        let recorded = store.read_blocking(move |c| catalog::artifact(c, &h, &e)).unwrap();
        let plugin_dir = Runtimes::plugin_dir(&store);
        let mut load = Vec::new();
        for _ in 0..loads * 10 {
            let t = Instant::now();
            rt.wasm.load(&plugin_dir, name, &record.code_hash, &manifest, recorded.as_deref()).unwrap();
            load.push(t.elapsed());
        }
        let ms = |v: Vec<Duration>| common::Samples::new(v).median_ms();
        figures.push(Figures {
            post,
            filtered,
            compile_ms: ms(compile),
            load_ms: ms(load),
            size_kib: bytes.len() as f64 / 1024.0,
        });
    }
    let (js, rust) = (&figures[0], &figures[1]);
    println!("| row | JavaScript (notify-chat) | Rust (notify-webhook, same run) | ratio |");
    println!("|---|---|---|---|");
    let us = |f: (f64, f64)| format!("{:.0} µs (p99 {:.0} µs)", f.0, f.1);
    println!(
        "| notifier call posting to a loopback sink | {} | {} | {:.2}× |",
        us(js.post),
        us(rust.post),
        js.post.0 / rust.post.0
    );
    println!(
        "| notifier call, event filtered out (no request) | {} | {} | {:.2}× |",
        us(js.filtered),
        us(rust.filtered),
        js.filtered.0 / rust.filtered.0
    );
    println!(
        "| compile from the component's bytes (install) | {:.0} ms | {:.0} ms | {:.1}× |",
        js.compile_ms,
        rust.compile_ms,
        js.compile_ms / rust.compile_ms
    );
    println!(
        "| load from the cached artifact (first use after a start) | {:.2} ms | {:.2} ms | {:.1}× |",
        js.load_ms,
        rust.load_ms,
        js.load_ms / rust.load_ms
    );
    println!(
        "| component size | {:.0} KiB | {:.0} KiB | {:.1}× |",
        js.size_kib,
        rust.size_kib,
        js.size_kib / rust.size_kib
    );
    println!("({calls} calls, {loads} compiles and {} loads each)", loads * 10);
    let row = |name: &str, what: &str, figure: f64, unit: &str, base: f64, goal: &str, met: bool| {
        serde_json::json!({
            "row": name, "what": what, "figure": common::round(figure, 1), "unit": unit,
            "baseline": "the Rust notifier notify-webhook, same host path, same run",
            "baseline_value": common::round(base, 1), "ratio": common::round(figure / base, 2), "goal": goal, "met": met,
        })
    };
    // A chat message is sent in the background by the outbox: what matters is that a JavaScript
    // channel stays a small part of a delivery's time and its load a small part of a start.
    let call_met = js.post.0 <= 5_000.0;
    println!(
        "BENCH {}",
        row(
            "JavaScript notifier call",
            "notify-chat posting one event to a loopback sink through Runtimes::deliver",
            js.post.0,
            "µs",
            rust.post.0,
            "median <= 5 ms",
            call_met
        )
    );
    println!(
        "BENCH {}",
        row(
            "JavaScript notifier load",
            "notify-chat's compiled artifact loaded from the cache (first use after a start)",
            js.load_ms,
            "ms",
            rust.load_ms,
            "median <= 50 ms",
            js.load_ms <= 50.0
        )
    );
}
