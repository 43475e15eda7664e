//! Start-up of the release binary with 10 installed plugins, with the component artifact cache
//! warm and cold.
//!
//! Why: an operator restarts the host on every upgrade and a supervisor on every crash; requests
//! wait meanwhile. Plugins are compiled once, at install, to artifacts cached beside the database
//! (`greenlight.db` → `greenlight.plugins/<code hash>.<engine hash>.cwasm`); the host loads them
//! lazily, at a tenant's first evaluation, and recompiles from the stored original when an artifact
//! is missing. So two things are timed from the spawn of `greenlight serve`:
//!
//! - the first answered `GET /healthz` (the row's figure, warm; the goal is about this), and
//! - the first answered submit of an order through a tenant's chain of the six approval-step
//!   plugins among them (5 WASM, 1 native), which loads every one of them.
//!
//! Warm: the artifacts are there (and the OS has the files cached: one unmeasured start first).
//! Cold: every `.cwasm` artifact is deleted before the start, so the first evaluation recompiles
//! the components. Median of several starts each; the host is stopped with SIGTERM in between.
//!
//! `cargo xtask bench` runs it.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use common::{Http, Process};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every shipped plugin: 10, of which 6 approval steps (5 WASM and the native sample).
const PLUGINS: [&str; 10] = [
    "compliance",
    "cost-center",
    "erp-rest",
    "large-order",
    "notify-email",
    "notify-sms",
    "notify-webhook",
    "sample-native-step",
    "spend-limit",
    "subscription",
];

/// The approval steps the tenant enables, with their positions.
const STEPS: [(&str, &str); 6] = [
    ("compliance", "5"),
    ("cost-center", "10"),
    ("subscription", "35"),
    ("spend-limit", "50"),
    ("sample-native-step", "60"),
    ("large-order", "90"),
];

/// Native plugins must be allowed, at install and when serving.
const NATIVE: &str = "--allow-native-plugins";

/// One start: (spawn → first /healthz answered, spawn → first submit answered).
fn start(db: &Path, admin: &str, cold: bool) -> (Duration, Duration) {
    // Where `Runtimes::plugin_dir` keeps plugin code and artifacts.
    let artifacts = db.with_extension("plugins");
    if cold {
        for entry in std::fs::read_dir(&artifacts).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "cwasm") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    let t0 = Instant::now();
    let mut host = Process::serve(db, &[NATIVE]);
    let mut h = Http::connect(&host.addr);
    h.get("/healthz", None).expect(200, "healthz");
    let health = t0.elapsed();
    let order = json!({
        "department": "IT", "vendor_id": "ACME", "currency": "EUR",
        "lines": [{"sku": "LAPTOP-14", "quantity": 1, "unit_price_minor": 120_000, "budget_category": "hardware"}]
    });
    let id = h.post("/v1/orders", admin, &order).expect(201, "create").json()["id"].as_str().unwrap().to_string();
    let submitted = h.request("POST", &format!("/v1/orders/{id}/submit"), Some(admin), None).expect(200, "submit");
    let first = t0.elapsed();
    let status = submitted.json()["status"].as_str().unwrap_or_default().to_string();
    assert_ne!(status, "on_hold", "a step failed: {}", String::from_utf8_lossy(&submitted.body));
    host.stop();
    if cold {
        let rebuilt = std::fs::read_dir(&artifacts)
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cwasm")))
            .count();
        assert!(rebuilt >= 5, "the first evaluation recompiles the five WASM steps ({rebuilt} artifacts)");
    }
    (health, first)
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let quick = common::quick();
    let reps = if quick { 3 } else { 7 };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let plugins = common::plugins();
    let admin = common::cli(&db, &["tenant", "create", "bench"]).trim().to_string();
    for name in PLUGINS {
        let manifest = plugins.join(name).join("manifest.toml");
        common::cli(&db, &[NATIVE, "plugin", "install", &manifest.to_string_lossy()]);
    }
    for (name, position) in STEPS {
        common::cli(
            &db,
            &[NATIVE, "extension", "set", "--tenant", "bench", name, "--enabled", "true", "--position", position],
        );
    }

    start(&db, &admin, false);
    let (mut warm_health, mut warm_first, mut cold_health, mut cold_first) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        let (h, f) = start(&db, &admin, false);
        warm_health.push(h);
        warm_first.push(f);
        let (h, f) = start(&db, &admin, true);
        cold_health.push(h);
        cold_first.push(f);
    }
    let (wh, wf, ch, cf) =
        (median_ms(warm_health), median_ms(warm_first), median_ms(cold_health), median_ms(cold_first));
    println!(
        "start-up with 10 plugins, median of {reps}: first /healthz {wh:.0} ms warm, {ch:.0} ms cold; first evaluated submit {wf:.0} ms warm, {cf:.0} ms cold"
    );
    let rows = [
        json!({
            "row": "Start-up",
            "what": format!("spawn of serve to the first answered GET /healthz, 10 installed plugins (loaded lazily), artifact cache warm, median of {reps}"),
            "figure": wh.round(), "unit": "ms",
            "baseline": "the same, artifact cache emptied (cold)", "baseline_value": ch.round(),
            "ratio": common::round(wh / ch, 2),
            "goal": "warm < 300 ms", "met": wh < 300.0,
        }),
        json!({
            "row": "Start-up to first evaluation",
            "what": format!("spawn of serve to the first answered submit through 6 step plugins (5 WASM, 1 native), artifact cache warm, median of {reps}"),
            "figure": wf.round(), "unit": "ms",
            "baseline": "the same, artifact cache emptied (cold: 5 components recompiled)", "baseline_value": cf.round(),
            "ratio": common::round(wf / cf, 2),
            "goal": "-", "met": null,
        }),
    ];
    for r in rows {
        println!("BENCH {r}");
    }
}
