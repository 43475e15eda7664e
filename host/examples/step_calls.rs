//! One approval-step call through the host against its raw baseline, measured in the same run:
//!
//! - WASM: `WasmStep::evaluate` (fresh store and instance from the cached `InstancePre`, limits,
//!   conversions) against raw wasmtime calling the same component with the same order, fresh
//!   instance from an `InstancePre` on an engine with the same configuration.
//! - Rhai: `RhaiStep::evaluate` (context conversion, call, output conversion) against raw
//!   `call_fn` on the compiled AST with a prepared argument.
//!
//! The raw baselines are `common::raw`'s, shared with the policy-chain benchmark. Needs the
//! plugins built (`cargo xtask plugins`). `cargo xtask bench` runs it.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use greenlight_host::domain::step::{ContextOrder, OrderContext, RequesterProfile};
use greenlight_host::runtime::{RuntimeOptions, Runtimes};
use greenlight_host::store::{Store, StoreOptions, directory, extensions};
use std::path::Path;

fn ctx() -> OrderContext {
    let input = common::five_lines(None, "widget", 12_000);
    OrderContext {
        order: ContextOrder::new("bench-order", "alice", &input),
        subtotal_minor: 180_000,
        requester: RequesterProfile {
            name: "alice".into(),
            roles: vec!["requester".into()],
            spend_limit_minor: Some(50_000),
            budget_minor: Some(200_000),
            budget_period: Some("month".into()),
            budget_used_minor: 100_000,
        },
        cost_center: None,
        customer: None,
        budgets: Vec::new(),
        config: serde_json::json!({"level": 2}),
    }
}

/// (median, p99) in microseconds.
fn measure(iterations: usize, f: impl FnMut()) -> (f64, f64) {
    let samples = common::measure(iterations, f);
    (samples.median_us(), samples.p99_us())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 2_000 } else { 20_000 };
    let plugins = std::env::var_os("GREENLIGHT_PLUGINS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let manifest = plugins.join("spend-limit/manifest.toml");
    assert!(manifest.exists(), "{} is missing: run `cargo xtask plugins`", manifest.display());

    // Through the host.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("b.db"), StoreOptions::default()).unwrap();
    let tenant = store.write_blocking(|c| directory::create_tenant(c, "bench").map(|t| t.id)).unwrap();
    let rt = Runtimes::with_options(RuntimeOptions::default()).unwrap();
    rt.install(&store, &manifest).unwrap();
    let t = tenant.clone();
    store
        .write_blocking(move |c| {
            let u = extensions::ExtensionUpdate { enabled: true, position: Some(10), ..Default::default() };
            extensions::update_setting(c, &t, "spend-limit", &u)
        })
        .unwrap();
    let step = rt.steps_for(&store, &tenant).unwrap().remove(0);
    let mut c = ctx();
    c.config = step.config.clone();
    assert_eq!(step.step.evaluate(&c).unwrap().stages.len(), 1);
    let host_wasm = measure(n, || {
        step.step.evaluate(&c).unwrap();
    });

    // The operator's opt-in: the same step in an idle instance of the same tenant and version.
    let mut options = RuntimeOptions::default();
    options.wasm.reuse_step_instances = true;
    let rt_reuse = Runtimes::with_options(options).unwrap();
    let reusing = rt_reuse.steps_for(&store, &tenant).unwrap().remove(0);
    assert_eq!(reusing.step.evaluate(&c).unwrap(), step.step.evaluate(&c).unwrap());
    let host_reused = measure(n, || {
        reusing.step.evaluate(&c).unwrap();
    });

    // Raw wasmtime: same component, same order, same engine configuration.
    let bytes = std::fs::read(plugins.join("spend-limit/spend_limit.wasm")).unwrap();
    let raw = common::raw::RawWasm::new(&rt, &bytes);
    let wit_ctx = common::raw::wit_context(&c);
    let config = c.config.to_string();
    let raw_wasm = measure(n, || raw.call(&wit_ctx, &config));
    // The floor of a call: one instance called again and again (what a fresh instance adds on top).
    let mut reused: Vec<f64> = raw.reused(&wit_ctx, &config, n).iter().map(|d| d.as_secs_f64() * 1e6).collect();
    reused.sort_by(f64::total_cmp);
    let reused_wasm = (reused[reused.len() / 2], reused[(reused.len() * 99 / 100).min(reused.len() - 1)]);

    // Rhai: host step vs raw call_fn.
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/spend-limit.rhai")).unwrap();
    let script = rt.rhai.step("bench", "spend-limit", &source).unwrap();
    use greenlight_host::engine::Step;
    assert_eq!(script.evaluate(&c).unwrap().stages.len(), 1);
    let host_rhai = measure(n, || {
        script.evaluate(&c).unwrap();
    });
    let raw = common::raw::RawRhai::new(&rt, &source);
    let arg = rhai::serde::to_dynamic(&c).unwrap();
    let raw_rhai = measure(n, || raw.call(&rt, &arg));

    println!("| row | median | p99 | baseline median (same run) | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| WASM step call through the host, fresh instance | {:.1} µs | {:.1} µs | raw wasmtime, fresh instance from InstancePre: {:.1} µs | {:.2}× |",
        host_wasm.0,
        host_wasm.1,
        raw_wasm.0,
        host_wasm.0 / raw_wasm.0
    );
    println!(
        "| WASM step call through the host, fresh instance | {:.1} µs | {:.1} µs | raw wasmtime, one instance reused: {:.1} µs | {:.2}× |",
        host_wasm.0,
        host_wasm.1,
        reused_wasm.0,
        host_wasm.0 / reused_wasm.0
    );
    println!(
        "| WASM step call through the host, instance reused (`--reuse-step-instances`) | {:.1} µs | {:.1} µs | raw wasmtime, one instance reused: {:.1} µs | {:.2}× |",
        host_reused.0,
        host_reused.1,
        reused_wasm.0,
        host_reused.0 / reused_wasm.0
    );
    println!(
        "| Rhai step call through the host | {:.1} µs | {:.1} µs | raw rhai call_fn on the compiled AST: {:.1} µs | {:.2}× |",
        host_rhai.0,
        host_rhai.1,
        raw_rhai.0,
        host_rhai.0 / raw_rhai.0
    );
    println!("({n} calls each, 5-line order, plugin and script: spend-limit)");
    let row = |name: &str, what: &str, host: (f64, f64), raw: (f64, f64), baseline: &str, goal: &str, met: bool| {
        serde_json::json!({
            "row": name, "what": what, "median": (host.0 * 10.0).round() / 10.0, "p99": (host.1 * 10.0).round() / 10.0,
            "figure": (host.0 * 10.0).round() / 10.0, "unit": "µs",
            "baseline": baseline, "baseline_value": (raw.0 * 10.0).round() / 10.0,
            "ratio": (host.0 / raw.0 * 100.0).round() / 100.0, "goal": goal, "met": met,
        })
    };
    let wasm_met = host_wasm.0 / raw_wasm.0 <= 1.2 && host_wasm.0 <= 30.0;
    println!(
        "BENCH {}",
        row(
            "WASM step call",
            "one evaluate through the host, fresh instance",
            host_wasm,
            raw_wasm,
            "raw wasmtime, same component and order, fresh instance from InstancePre",
            "<= 1.2x raw; median <= 30 µs",
            wasm_met
        )
    );
    println!(
        "BENCH {}",
        row(
            "WASM step call vs a reused instance",
            "one evaluate through the host, fresh instance (the sandbox's promise)",
            host_wasm,
            reused_wasm,
            "raw wasmtime, the same component's one instance called again and again: the floor of a call",
            "<= 3x",
            host_wasm.0 / reused_wasm.0 <= 3.0
        )
    );
    println!(
        "BENCH {}",
        row(
            "WASM step call, instance reused (opt-in)",
            "one evaluate through the host with --reuse-step-instances: an idle instance of the same tenant and version",
            host_reused,
            reused_wasm,
            "raw wasmtime, the same component's one instance called again and again",
            "<= 1.5x",
            host_reused.0 / reused_wasm.0 <= 1.5
        )
    );
    println!(
        "BENCH {}",
        row(
            "Rhai step call",
            "one evaluate through the host",
            host_rhai,
            raw_rhai,
            "raw rhai call_fn on the compiled AST",
            "<= 1.2x raw",
            host_rhai.0 / raw_rhai.0 <= 1.2
        )
    );
}
