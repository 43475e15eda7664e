//! The demo tenant's whole policy chain, evaluated once, against the sum of its raw step calls —
//! measured in the same run, on one thread.
//!
//! Why: a submit runs every enabled step of the tenant in order and merges their outputs; the
//! per-step benchmark (`step_calls`) cannot show what the chain costs as a whole (per-step context
//! and config hand-over, output checks, approver resolution against the directory, merging).
//!
//! - Set-up: the real `greenlight demo --no-serve` (release binary) on a fresh database, so the
//!   chain is exactly what the demo enables: the shipped plugins, the shipped scripts where no
//!   plugin of the same name exists, and their configuration and positions.
//! - Figure: `engine::evaluate` over `Runtimes::steps_for` of that tenant with the context
//!   `approvals::build_context` builds (and connector enrichment, as the submit path does) for a
//!   five-line IT hardware order of alice on CC-100 that opens several stages. Evaluations per
//!   second from the median, single thread. Also reported: the same with the per-submit lookups
//!   (context from SQLite, enabled steps, enrichment), as `Approvals::submit` runs them.
//! - Baseline: for each step of the chain, the raw call measured as `step_calls` does (raw
//!   wasmtime, fresh instance from an `InstancePre`; raw Rhai `call_fn`); the medians summed.
//!
//! Needs the plugins (`cargo xtask plugins`) and the release binary; `cargo xtask bench` runs it.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use chrono::Utc;
use greenlight_host::approvals::{TenantDirectory, build_context};
use greenlight_host::domain::order::Order;
use greenlight_host::domain::step::OrderContext;
use greenlight_host::engine::{self, StepKind};
use greenlight_host::runtime::{RuntimeOptions, Runtimes};
use greenlight_host::store::extensions::{self, Code};
use greenlight_host::store::{Store, StoreOptions, directory};

fn order() -> Order {
    let input = common::five_lines(Some("CC-100"), "laptop", 17_000);
    let subtotal = input.validate().unwrap();
    Order::new_draft(uuid::Uuid::now_v7().to_string(), "alice".into(), input, subtotal, Utc::now())
}

fn main() {
    let quick = common::quick();
    let n = if quick { 2_000 } else { 20_000 };
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (db, _) = common::demo(dir.path());
    eprintln!("greenlight demo --no-serve: {:.1} s", started.elapsed().as_secs_f64());

    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let rt = Runtimes::new().unwrap();
    let tenant = store.read_blocking(|c| directory::tenant_by_name(c, "demo")).unwrap().expect("the demo tenant").id;
    let steps = rt.steps_for(&store, &tenant).unwrap();
    let t = tenant.clone();
    let enabled = store.read_blocking(move |c| extensions::enabled(c, &t)).unwrap();
    let order = order();
    let (t, o) = (tenant.clone(), order.clone());
    let mut ctx: OrderContext = store.read_blocking(move |c| build_context(c, &t, &o, Utc::now())).unwrap();
    rt.enrich(&store, &tenant, &mut ctx).unwrap();
    // The directory the submit path uses.
    // As on submit, a directory per evaluation: what it looks up is cached for that evaluation only.
    let dir_lookup = || TenantDirectory::new(&store, &tenant).knowing(&ctx);

    let eval = engine::evaluate(&ctx, &steps, &dir_lookup());
    assert_eq!(
        eval.failures,
        0,
        "a step failed: {:?}",
        eval.runs.iter().filter_map(|r| r.error.as_ref()).collect::<Vec<_>>()
    );
    let chain: Vec<String> = eval.runs.iter().map(|r| format!("{} ({:?})", r.name, r.kind).to_lowercase()).collect();
    eprintln!("chain: {}; {} stages", chain.join(", "), eval.assessment.stages.len());

    // The chain, as the engine runs it.
    let whole = common::measure(n, || {
        std::hint::black_box(engine::evaluate(&ctx, &steps, &dir_lookup()));
    });
    // The operator's opt-in: step instances reused within the tenant.
    let mut options = RuntimeOptions::default();
    options.wasm.reuse_step_instances = true;
    let rt_reuse = Runtimes::with_options(options).unwrap();
    let steps_reused = rt_reuse.steps_for(&store, &tenant).unwrap();
    let again = engine::evaluate(&ctx, &steps_reused, &dir_lookup());
    assert_eq!(again.assessment, eval.assessment, "reused instances decide as fresh ones do");
    let reused = common::measure(n, || {
        std::hint::black_box(engine::evaluate(&ctx, &steps_reused, &dir_lookup()));
    });
    // The same with what `Approvals::submit` looks up per evaluation.
    let with_lookups = common::measure(n / 4, || {
        let (t, o) = (tenant.clone(), order.clone());
        let mut c = store.read_blocking(move |c| build_context(c, &t, &o, Utc::now())).unwrap();
        rt.enrich(&store, &tenant, &mut c).unwrap();
        let steps = rt.steps_for(&store, &tenant).unwrap();
        let directory = TenantDirectory::new(&store, &tenant).knowing(&c);
        std::hint::black_box(engine::evaluate(&c, &steps, &directory));
    });

    // Raw calls of the same steps, with the same context and configuration.
    let plugin_dir = Runtimes::plugin_dir(&store);
    let mut raw_sum_us = 0.0;
    // The same with each WASM step's one instance called again and again (Rhai as above).
    let mut raw_reused_sum_us = 0.0;
    let mut raw_parts = Vec::new();
    for step in &steps {
        let mut c = ctx.clone();
        c.config = step.config.clone();
        let name = step.step.name().to_string();
        let samples = match step.step.kind() {
            StepKind::Wasm => {
                let bytes =
                    std::fs::read(greenlight_host::runtime::wasm::original_path(&plugin_dir, step.step.code_hash()))
                        .unwrap();
                let raw = common::raw::RawWasm::new(&rt, &bytes);
                let wit_ctx = common::raw::wit_context(&c);
                let config = serde_json::to_string(&c.config).unwrap();
                let mut once: Vec<std::time::Duration> = raw.reused(&wit_ctx, &config, n);
                once.sort_unstable();
                raw_reused_sum_us += once[once.len() / 2].as_secs_f64() * 1e6;
                common::measure(n, || raw.call(&wit_ctx, &config))
            }
            StepKind::Script => {
                let source = enabled
                    .iter()
                    .find_map(|e| match &e.code {
                        Code::Script(s) if s.name == name => Some(s.source.clone()),
                        _ => None,
                    })
                    .expect("the script's source");
                let raw = common::raw::RawRhai::new(&rt, &source);
                let arg = rhai::serde::to_dynamic(&c).unwrap();
                let samples = common::measure(n, || raw.call(&rt, &arg));
                raw_reused_sum_us += samples.median_us();
                samples
            }
            StepKind::Native | StepKind::Connector => {
                panic!("the demo enables no native step, and a connector is no step")
            }
        };
        raw_sum_us += samples.median_us();
        raw_parts.push(format!("{name} {:.1} µs", samples.median_us()));
    }

    let rate = 1e6 / whole.median_us();
    let raw_rate = 1e6 / raw_sum_us;
    let lookup_rate = 1e6 / with_lookups.median_us();
    println!(
        "policy chain ({} steps): {:.1} µs median, {:.1} µs p99 = {rate:.0} evaluations/s; with the per-submit lookups {:.1} µs = {lookup_rate:.0}/s; raw step calls summed: {raw_sum_us:.1} µs = {raw_rate:.0}/s ({})",
        steps.len(),
        whole.median_us(),
        whole.p99_us(),
        with_lookups.median_us(),
        raw_parts.join(", ")
    );
    let row = serde_json::json!({
        "row": "Policy chain",
        "what": format!(
            "evaluations/s (1/median), one thread: the demo tenant's {} steps ({}) on a 5-line order opening {} stages",
            steps.len(), chain.join(", "), eval.assessment.stages.len()
        ),
        "figure": rate.round(), "unit": "evaluations/s",
        "median_us": common::round(whole.median_us(), 1), "p99_us": common::round(whole.p99_us(), 1),
        "with_lookups_per_s": lookup_rate.round(),
        "with_lookups_median_us": common::round(with_lookups.median_us(), 1),
        "raw_steps_us": raw_parts,
        "baseline": "sum of the same steps' raw calls (raw wasmtime fresh instance, raw rhai call_fn), medians",
        "baseline_value": raw_rate.round(),
        "ratio": common::round(rate / raw_rate, 2),
        "goal": ">= 10,000 evaluations/s on one core", "met": rate >= 10_000.0,
    });
    println!("BENCH {row}");
    let reused_rate = 1e6 / reused.median_us();
    let raw_reused_rate = 1e6 / raw_reused_sum_us;
    println!(
        "policy chain, instances reused (--reuse-step-instances): {:.1} µs median, {:.1} µs p99 = {reused_rate:.0} evaluations/s; raw calls of reused instances summed: {raw_reused_sum_us:.1} µs = {raw_reused_rate:.0}/s",
        reused.median_us(),
        reused.p99_us(),
    );
    let row = serde_json::json!({
        "row": "Policy chain, instances reused (opt-in)",
        "what": "the same chain with --reuse-step-instances: each WASM step in an idle instance of the tenant",
        "figure": reused_rate.round(), "unit": "evaluations/s",
        "median_us": common::round(reused.median_us(), 1), "p99_us": common::round(reused.p99_us(), 1),
        "baseline": "sum of the same steps' raw calls, each WASM step's one instance called again and again",
        "baseline_value": raw_reused_rate.round(),
        "ratio": common::round(reused_rate / raw_reused_rate, 2),
        "goal": ">= 1.0x and >= 10,000 evaluations/s on one core",
        "met": reused_rate >= raw_reused_rate && reused_rate >= 10_000.0,
    });
    println!("BENCH {row}");
}
