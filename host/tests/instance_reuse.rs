//! Reusing approval-step instances, the operator's opt-in (`--reuse-step-instances`): state stays
//! within one tenant, extension, step version and configuration, an instance whose call failed is
//! never reused, the sandbox's limits hold in a reused instance, a replay and a drift check run in
//! fresh ones, and the shipped steps answer exactly the same reused as fresh.

mod common;

use common::{Fixture, ctx, enable, fixture, manifest, run_one, runtimes};
use greenlight_host::domain::order::{Line, OrderInput, Recurrence};
use greenlight_host::domain::step::{ContextOrder, CostCenterProfile, OrderContext, RequesterProfile};
use greenlight_host::engine::{StepError, StepKind};
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::directory;

fn reusing() -> Runtimes {
    runtimes(|o| o.wasm.reuse_step_instances = true)
}

/// The flag tp-counter raised: `calls-N`, N its count of calls in this instance.
fn count(out: Result<greenlight_host::domain::step::StepOutput, StepError>) -> String {
    out.expect("runs").flags[0].code.clone()
}

#[test]
fn a_reused_instance_keeps_state_within_one_tenant_and_version_only() {
    let fx = fixture();
    let rt = reusing();
    let installed = rt.install(&fx.store, &manifest("tp-counter")).expect("install");
    enable(&fx, "tp-counter", serde_json::json!({}), None);
    // The same tenant's calls share an instance: the count goes on.
    let counts: Vec<String> = (0..3).map(|_| count(run_one(&rt, &fx))).collect();
    assert_eq!(counts, ["calls-1", "calls-2", "calls-3"], "reuse is on, so the instance was reused");
    // Another tenant of the same host starts from a fresh instance.
    let tenant = fx.store.write_blocking(|c| directory::create_tenant(c, "globex").map(|t| t.id)).expect("tenant");
    let other = Fixture { _dir: tempfile::tempdir().expect("tmp"), store: fx.store.clone(), tenant };
    enable(&other, "tp-counter", serde_json::json!({}), None);
    assert_eq!(count(run_one(&rt, &other)), "calls-1", "an instance never crosses tenants");
    assert_eq!(count(run_one(&rt, &fx)), "calls-4");
    // A replay runs the recorded version in a fresh instance, whatever the operator chose.
    let step = rt.step_version(&fx.store, &fx.tenant, "tp-counter", StepKind::Wasm, &installed.code_hash).expect("v");
    let mut c = ctx();
    c.config = serde_json::json!({"label": "v1", "panic_on_call": 0});
    assert_eq!(count(step.evaluate(&c)), "calls-1");
    // Without the opt-in, every call is fresh.
    let fresh = runtimes(|_| {});
    assert_eq!(count(run_one(&fresh, &fx)), "calls-1");
    assert_eq!(count(run_one(&fresh, &fx)), "calls-1");
}

#[test]
fn a_new_configuration_or_another_extension_of_the_same_code_gets_its_own_instances() {
    let fx = fixture();
    let rt = reusing();
    rt.install(&fx.store, &manifest("tp-counter")).expect("install");
    enable(&fx, "tp-counter", serde_json::json!({"label": "a"}), None);
    assert_eq!(count(run_one(&rt, &fx)), "calls-1");
    assert_eq!(count(run_one(&rt, &fx)), "calls-2");
    // A step may have kept what it parsed of its configuration: a new one starts afresh.
    enable(&fx, "tp-counter", serde_json::json!({"label": "b"}), None);
    assert_eq!(count(run_one(&rt, &fx)), "calls-1");
    // The same bytes installed under a second name are another extension, with its own instances.
    let dir = tempfile::tempdir().expect("tmp");
    let built = manifest("tp-counter");
    let folder = built.parent().expect("folder");
    std::fs::copy(folder.join("tp_counter.wasm"), dir.path().join("tp_counter.wasm")).expect("copy");
    let text =
        std::fs::read_to_string(&built).expect("manifest").replace("name = \"tp-counter\"", "name = \"tp-twin\"");
    std::fs::write(dir.path().join("manifest.toml"), text).expect("write");
    rt.install(&fx.store, &dir.path().join("manifest.toml")).expect("install the twin");
    enable(&fx, "tp-twin", serde_json::json!({"label": "b"}), None);
    let chain = rt.steps_for(&fx.store, &fx.tenant).expect("steps");
    assert_eq!(chain.len(), 2);
    let counts: Vec<String> = chain
        .iter()
        .map(|s| {
            let mut c = ctx();
            c.config = s.config.clone();
            count(s.step.evaluate(&c))
        })
        .collect();
    assert_eq!(counts, ["calls-2", "calls-1"], "tp-counter goes on, its twin starts at 1");
    // A check of recorded evaluations (drift) runs fresh and leaves the instances alone.
    let fresh = rt.fresh().steps_for(&fx.store, &fx.tenant).expect("steps");
    let mut c = ctx();
    c.config = fresh[0].config.clone();
    assert_eq!(count(fresh[0].step.evaluate(&c)), "calls-1");
    let mut c = ctx();
    c.config = chain[0].config.clone();
    assert_eq!(count(chain[0].step.evaluate(&c)), "calls-3");
}

#[test]
fn an_instance_whose_call_failed_is_not_reused() {
    let fx = fixture();
    let rt = reusing();
    rt.install(&fx.store, &manifest("tp-counter")).expect("install");
    enable(&fx, "tp-counter", serde_json::json!({"panic_on_call": 2}), None);
    assert_eq!(count(run_one(&rt, &fx)), "calls-1");
    match run_one(&rt, &fx) {
        Err(StepError::Panicked(m)) => assert!(m.contains("told to panic on call 2"), "{m}"),
        other => panic!("call 2 must panic: {other:?}"),
    }
    // The panicked instance was dropped: the next call starts from a fresh one, which is then
    // reused (so its second call panics in turn).
    assert_eq!(count(run_one(&rt, &fx)), "calls-1");
    assert!(matches!(run_one(&rt, &fx), Err(StepError::Panicked(_))));
}

#[test]
fn the_sandbox_limits_hold_in_reused_instances() {
    for (plugin, want) in [("tp-hog", "memory"), ("tp-panic", "panicked"), ("tp-garbage", "invalid result")] {
        let fx = fixture();
        // A generous deadline, so a busy machine does not stop the hog before its memory does.
        let rt = runtimes(|o| {
            o.wasm.reuse_step_instances = true;
            o.wasm.memory_bytes = 16 << 20;
            o.wasm.deadline = std::time::Duration::from_secs(5);
        });
        rt.install(&fx.store, &manifest(plugin)).expect("install");
        enable(&fx, plugin, serde_json::json!({}), None);
        for call in 1..=2 {
            let e = run_one(&rt, &fx).expect_err("must fail");
            assert!(e.to_string().contains(want), "{plugin}, call {call}: {e}");
        }
    }
}

/// The shipped approval steps with the tenant configuration the demo gives them.
const SHIPPED: [(&str, &str); 6] = [
    ("compliance", r#"{"blocked_vendors": ["SHADY-CORP"], "approved_vendors": ["ACME", "GLOBEX"]}"#),
    ("cost-center", "{}"),
    ("subscription", "{}"),
    ("spend-limit", "{}"),
    ("large-order", r#"{"threshold_minor": 5000000, "level": 20, "role": "finance"}"#),
    ("customer-credit", "{}"),
];

/// Order contexts that take the shipped steps through their branches: small and large
/// subtotals, limits and budgets reached or not, with and without a cost center (budget
/// overrun or not, the requester its manager or not), recurring, and vendors blocked,
/// approved or unknown.
fn contexts() -> Vec<OrderContext> {
    let vendors = [None, Some("ACME"), Some("SHADY-CORP"), Some("UNKNOWN-LTD")];
    (0..48u32)
        .map(|i| {
            let price = [900, 45_000, 260_000, 2_100_000][i as usize % 4];
            let quantity = 1 + i64::from(i % 5);
            let input = OrderInput {
                cost_center: (i % 3 != 0).then(|| "CC-100".to_string()),
                department: Some(["R&D", "IT", "Sales"][i as usize % 3].into()),
                customer_id: None,
                vendor_id: vendors[i as usize % 4].map(String::from),
                currency: "EUR".parse().expect("EUR"),
                lines: vec![Line {
                    sku: format!("SKU-{i}"),
                    description: Some("widget".into()),
                    quantity,
                    unit_price_minor: price,
                    tax_category: None,
                    budget_category: Some("hardware".into()),
                }],
                recurrence: (i % 7 == 0).then(|| Recurrence { interval: "P1M".into() }),
                attributes: Default::default(),
            };
            let requester = if i % 11 == 0 { "carol" } else { "alice" };
            OrderContext {
                order: ContextOrder::new(&format!("o-{i}"), requester, &input),
                subtotal_minor: price * quantity,
                requester: RequesterProfile {
                    name: requester.into(),
                    roles: vec!["requester".into()],
                    spend_limit_minor: (i % 2 == 0).then_some(100_000),
                    budget_minor: (i % 4 == 1).then_some(1_000_000),
                    budget_period: Some("month".into()),
                    budget_used_minor: i64::from(i) * 40_000,
                },
                cost_center: input.cost_center.as_ref().map(|code| CostCenterProfile {
                    code: code.clone(),
                    manager: "carol".into(),
                    budget_minor: (i % 2 == 1).then_some(5_000_000),
                    budget_used_minor: i64::from(i) * 150_000,
                }),
                customer: None,
                budgets: Vec::new(),
                config: serde_json::json!({}),
            }
        })
        .collect()
}

#[test]
fn the_shipped_steps_answer_the_same_reused_as_fresh() {
    let fx = fixture();
    let (fresh, reused) = (runtimes(|_| {}), reusing());
    for (name, config) in SHIPPED {
        fresh.install(&fx.store, &manifest(name)).expect("install");
        enable(&fx, name, serde_json::from_str(config).expect("config"), None);
    }
    let fresh_steps = fresh.steps_for(&fx.store, &fx.tenant).expect("steps");
    let reused_steps = reused.steps_for(&fx.store, &fx.tenant).expect("steps");
    assert_eq!(fresh_steps.len(), SHIPPED.len());
    let mut stages = 0;
    // Twice over the same orders, so the second round runs in instances the first one used.
    for round in 0..2 {
        for c in contexts() {
            for (f, r) in fresh_steps.iter().zip(&reused_steps) {
                let mut c = c.clone();
                c.config = f.config.clone();
                let (want, got) = (f.step.evaluate(&c), r.step.evaluate(&c));
                assert_eq!(
                    format!("{want:?}"),
                    format!("{got:?}"),
                    "{} on {} (round {round}): fresh and reused differ",
                    f.step.name(),
                    c.order.id
                );
                stages += want.map(|o| o.stages.len()).unwrap_or(0);
            }
        }
    }
    assert!(stages > 100, "the orders reach the steps' stages: {stages}");
    assert!(reused.wasm.idle_instances() >= SHIPPED.len(), "every shipped step was reused");
}
