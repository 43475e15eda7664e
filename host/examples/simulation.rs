//! What-if simulation at speed: orders simulated per second on the demo tenant's whole chain,
//! one core, against the least a simulation must do — measured in the same run.
//!
//! - Set-up: the real `greenlight demo --no-serve` on a fresh database (the demo's plugins and
//!   scripts, positions and configuration), then orders of alice submitted through the use case,
//!   so each has its stored evaluation context.
//! - Figure: `Approvals::simulate` with one candidate change (the executive threshold lowered)
//!   over those orders: orders per second (each is read with its stored context and evaluated by
//!   the current and the candidate chain, the differences compared).
//! - Baseline: the same two `engine::evaluate` calls per order on contexts already in memory,
//!   with chains already loaded: what remains when reading and comparing cost nothing.
//!
//! Needs the plugins (`cargo xtask plugins`) and the release binary; `cargo xtask bench` runs it.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use greenlight_host::approvals::{Approvals, CandidateChange, OrderSelection, TenantDirectory};
use greenlight_host::domain::step::OrderContext;
use greenlight_host::engine;
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::{Store, StoreOptions, directory, orders};
use std::time::Instant;

fn main() {
    let quick = common::quick();
    let n = if quick { 300 } else { 2_000 };
    let dir = tempfile::tempdir().unwrap();
    let (db, tokens) = common::demo(dir.path());
    let env = std::fs::read_to_string(&tokens).unwrap();
    let token = |var: &str| env.lines().find_map(|l| l.strip_prefix(&format!("export {var}="))).unwrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = Store::open(&db, StoreOptions::default()).unwrap();
    let approvals = Approvals::new(store.clone(), Runtimes::new().unwrap());
    let (admin, alice) = rt.block_on(async {
        (
            approvals.authenticate(&token("ADMIN")).await.unwrap().unwrap(),
            approvals.authenticate(&token("ALICE")).await.unwrap().unwrap(),
        )
    });
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            // Amounts from 30.00 to 3,000.00 a line: some under every threshold, some over.
            let input = common::five_lines(Some("CC-100"), "laptop", 3_000 + (i as i64 % 100) * 3_000);
            let order = approvals.create_order(&alice, input).await.unwrap();
            approvals.submit(&alice, &order.id).await.unwrap();
        }
    });
    eprintln!("{n} orders submitted in {:.1} s", started.elapsed().as_secs_f64());

    let change = CandidateChange {
        extension: "executive-threshold".into(),
        enabled: None,
        position: None,
        config: Some(serde_json::json!({"threshold_minor": 100_000, "level": 10})),
        source: None,
        code_hash: None,
    };
    let selection = OrderSelection { limit: Some(n), ..OrderSelection::default() };
    // One run to warm the compiled plugins, then the measured ones.
    let runs = if quick { 2 } else { 3 };
    let mut best = f64::MAX;
    let mut report = None;
    for _ in 0..=runs {
        let t = Instant::now();
        let r = rt.block_on(approvals.simulate(&admin, vec![change.clone()], selection.clone())).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        report = Some(r);
    }
    let report = report.unwrap();
    assert_eq!(report.orders_evaluated, n, "every order has a stored context");
    assert!(report.plans_changed > 0, "the lower threshold changes some plans");
    let per_second = n as f64 / best;

    // Baseline: the two evaluations alone, on contexts and chains already in memory.
    let tenant = store.read_blocking(|c| directory::tenant_by_name(c, "demo")).unwrap().unwrap().id;
    let steps = approvals.runtimes().steps_for(&store, &tenant).unwrap();
    let t = tenant.clone();
    let ids: Vec<String> = store
        .read_blocking(move |c| {
            let f = orders::OrderFilter { limit: 200, ..Default::default() };
            orders::list(c, &t, &f).map(|(page, _)| page.into_iter().map(|o| o.id).collect())
        })
        .unwrap();
    let contexts: Vec<OrderContext> = ids
        .iter()
        .map(|id| {
            let (t, id) = (tenant.clone(), id.clone());
            let v = store.read_blocking(move |c| orders::latest_context(c, &t, &id)).unwrap().unwrap();
            serde_json::from_value(v).unwrap()
        })
        .collect();
    let directory = TenantDirectory::new(&store, &tenant);
    let mut i = 0;
    let baseline = common::measure(if quick { 200 } else { 1_000 }, || {
        let ctx = &contexts[i % contexts.len()];
        i += 1;
        std::hint::black_box(engine::evaluate(ctx, &steps, &directory));
        std::hint::black_box(engine::evaluate(ctx, &steps, &directory));
    });
    let baseline_per_second = 1_000.0 / baseline.median_ms();
    println!(
        "what-if simulation: {per_second:.0} orders/s over {n} orders ({} plans would change); two evaluations alone: {baseline_per_second:.0} orders/s",
        report.plans_changed
    );
    let row = serde_json::json!({
        "row": "What-if simulation",
        "what": format!("Approvals::simulate of one change (executive threshold lowered) over {n} orders of the demo tenant, one core: read the stored context, evaluate under the current and the candidate chain, compare"),
        "figure": common::round(per_second, 0), "unit": "orders/s",
        "baseline": "the same two engine::evaluate calls per order, contexts and chains in memory",
        "baseline_value": common::round(baseline_per_second, 0),
        "ratio": common::round(per_second / baseline_per_second, 2),
        "goal": ">= 2,000 orders/s", "met": per_second >= 2_000.0,
    });
    println!("BENCH {row}");
    store.close();
}
