//! The plugin runtimes with real components built by `cargo xtask plugins` (approval steps
//! without WASI, connectors, notifiers and the fixtures standing for older plugins with it) and
//! real native libraries: sandbox limits, failure kinds, import checks, the artifact cache,
//! version swaps, capabilities against a real local HTTP server, and the native ABI.

use greenlight_host::engine::{self, ConfiguredStep, StepError};
use greenlight_host::runtime::wasm::WasmLimits;
use greenlight_host::runtime::{RuntimeError, Runtimes};
use greenlight_host::store::extensions::Grants;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

mod common;

use common::{Fixture, ctx, enable, fixture, manifest, plugins, run_one, runtimes};

fn failure_of(plugin: &str, limits: impl FnOnce(&mut WasmLimits)) -> StepError {
    let fx = fixture();
    let rt = runtimes(|o| limits(&mut o.wasm));
    rt.install(&fx.store, &manifest(plugin)).expect("install");
    enable(&fx, plugin, serde_json::json!({}), None);
    run_one(&rt, &fx).expect_err("must fail")
}

#[test]
fn a_good_step_runs_with_its_manifest_defaults_and_tenant_config() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    let installed = rt.install(&fx.store, &manifest("large-order")).expect("install");
    assert_eq!(installed.code_hash.len(), 64);
    enable(&fx, "large-order", serde_json::json!({"level": 7}), None);
    let out = run_one(&rt, &fx).expect("runs");
    assert_eq!(out.stages[0].key, "large-order");
    assert_eq!(out.stages[0].level, 7, "tenant config overrides the default");
    // Through the engine, the evaluation records the exact code hash.
    let steps = rt.steps_for(&fx.store, &fx.tenant).expect("steps");
    let eval = engine::evaluate(&ctx(), &steps, &NoDirectory);
    assert_eq!(eval.runs[0].code_hash, installed.code_hash);
}

struct NoDirectory;
impl engine::Directory for NoDirectory {
    fn cost_center_manager(&self, _: &str) -> Option<String> {
        None
    }
    fn user_exists(&self, _: &str) -> bool {
        true
    }
    fn role_holders(&self, _: &str, _: &str) -> usize {
        usize::MAX
    }
}

#[test]
fn every_call_gets_a_fresh_instance() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("tp-counter")).expect("install");
    enable(&fx, "tp-counter", serde_json::json!({}), None);
    for _ in 0..3 {
        let out = run_one(&rt, &fx).expect("runs");
        assert_eq!(out.flags[0].code, "calls-1", "state leaked between calls");
    }
}

/// The interfaces a built component imports.
fn imports_of(name: &str) -> Vec<String> {
    let engine = wasmtime::Engine::new(wasmtime::Config::new().wasm_component_model(true)).expect("engine");
    let dir = plugins().join(name);
    let file = std::fs::read_dir(&dir)
        .expect("plugin folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "wasm"))
        .expect("a component");
    let component = wasmtime::component::Component::from_file(&engine, &file).expect("compiles");
    component.component_type().imports(&engine).map(|(n, _)| n.to_string()).collect()
}

#[test]
fn approval_steps_import_only_the_plugin_api_and_those_built_with_wasi_keep_running() {
    for step in ["large-order", "cost-center", "compliance", "spend-limit", "subscription", "customer-credit"] {
        let imports = imports_of(step);
        assert!(
            !imports.is_empty() && imports.iter().all(|i| i.starts_with("greenlight:plugin/")),
            "{step}: {imports:?}"
        );
    }
    // A step built for wasm32-wasip2, as plugins out there are, imports WASI and still runs:
    // here until its deadline (the two tests below), and `tp-v1-step` (API 1.0) to the end.
    let old = imports_of("tp-spin");
    assert!(old.iter().any(|i| i.starts_with("wasi:cli/")), "{old:?}");
    assert!(imports_of("tp-v1-step").iter().any(|i| i.starts_with("wasi:")));
}

#[test]
fn a_runaway_plugin_is_stopped_by_the_deadline() {
    let err = failure_of("tp-spin", |l| {
        l.fuel = u64::MAX / 4;
        l.deadline = Duration::from_millis(50);
    });
    assert!(matches!(err, StepError::Deadline(_)), "{err:?}");
}

#[test]
fn a_runaway_plugin_is_stopped_by_fuel() {
    let err = failure_of("tp-spin", |l| l.fuel = 1_000_000);
    assert!(matches!(err, StepError::OutOfFuel(_)), "{err:?}");
}

#[test]
fn a_memory_hog_hits_the_memory_limit() {
    let err = failure_of("tp-hog", |l| l.memory_bytes = 16 << 20);
    assert!(matches!(&err, StepError::MemoryLimit(m) if m.contains("16777216")), "{err:?}");
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let err = failure_of("tp-panic", |_| {});
    assert!(matches!(&err, StepError::Panicked(m) if m.contains("customer record missing")), "{err:?}");
}

#[test]
fn garbage_output_is_refused() {
    let err = failure_of("tp-garbage", |_| {});
    assert!(matches!(err, StepError::BadOutput(_)), "{err:?}");
}

#[test]
fn imports_the_host_does_not_provide_are_refused_by_name() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    let err = rt.install(&fx.store, &manifest("tp-future")).expect_err("newer API");
    assert!(err.to_string().contains("greenlight:plugin/host@1.2.0"), "{err}");
    // A connector component posing as an approval step: it imports http, which steps may not.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(plugins().join("tp-fetch/tp_fetch.wasm"), dir.path().join("tp_fetch.wasm")).expect("copy");
    std::fs::write(
        dir.path().join("manifest.toml"),
        "name = \"posing\"\nversion = \"1.0.0\"\nworld = \"approval-step\"\napi = \"1.1.0\"\ncomponent = \"tp_fetch.wasm\"\n",
    )
    .expect("manifest");
    let err = rt.install(&fx.store, &dir.path().join("manifest.toml")).expect_err("http in a step");
    assert!(err.to_string().contains("greenlight:plugin/http@1.1.0"), "{err}");
}

#[test]
fn the_host_never_loads_an_artifact_it_did_not_produce() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    let installed = rt.install(&fx.store, &manifest("large-order")).expect("install");
    let dir = Runtimes::plugin_dir(&fx.store);
    let artifact = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("an artifact was written at install");
    // Replace the artifact with other bytes: a fresh host must recompile, not deserialize them.
    std::fs::write(&artifact, b"not what the host wrote").expect("tamper");
    enable(&fx, "large-order", serde_json::json!({}), None);
    let fresh = runtimes(|_| {});
    let out = run_one(&fresh, &fx).expect("recompiled from the original");
    assert_eq!(out.stages.len(), 1);
    let rewritten = std::fs::read(&artifact).expect("artifact");
    assert_ne!(rewritten, b"not what the host wrote");
    assert_eq!(installed.code_hash.len(), 64);
}

#[test]
fn a_new_version_swaps_in_while_calls_in_flight_keep_the_old_one() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("tp-counter")).expect("v1");
    enable(&fx, "tp-counter", serde_json::json!({}), None);
    let old = rt.steps_for(&fx.store, &fx.tenant).expect("steps").remove(0);
    // Version 2: other code under the same name.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(plugins().join("large-order/large_order.wasm"), dir.path().join("v2.wasm")).expect("copy");
    std::fs::write(
        dir.path().join("manifest.toml"),
        "name = \"tp-counter\"\nversion = \"2.0.0\"\nworld = \"approval-step\"\napi = \"1.1.0\"\ncomponent = \"v2.wasm\"\n",
    )
    .expect("manifest");
    let v2 = rt.install(&fx.store, &dir.path().join("manifest.toml")).expect("v2");
    assert!(v2.replaced.is_some());
    let new = rt.steps_for(&fx.store, &fx.tenant).expect("steps").remove(0);
    assert_eq!(new.step.code_hash(), v2.code_hash);
    assert_ne!(old.step.code_hash(), new.step.code_hash());
    // The old step (a call in flight) still works on its own code.
    let mut c = ctx();
    c.config = old.config.clone();
    assert_eq!(old.step.evaluate(&c).expect("old runs").flags[0].code, "calls-1");
}

/// A tiny HTTP server on loopback: answers `GET /customers/{id}` with the customer's name when
/// the request carries the operator's secret header.
fn customer_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head.clone());
            let authorised = head.to_ascii_lowercase().contains("authorization: bearer s3cret");
            let (status, body) = if authorised { ("200 OK", "ACME Corp") } else { ("401 Unauthorized", "no") };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

fn fetch_plugin(fx: &Fixture, rt: &Runtimes, port: u16) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(plugins().join("tp-fetch/tp_fetch.wasm"), dir.path().join("tp_fetch.wasm")).expect("copy");
    let text = std::fs::read_to_string(manifest("tp-fetch"))
        .expect("manifest")
        .replace("127.0.0.1:9", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.path().join("manifest.toml"), text).expect("write");
    rt.install(&fx.store, &dir.path().join("manifest.toml")).expect("install");
}

fn customer(rt: &Runtimes, fx: &Fixture) -> Result<String, StepError> {
    let (plugin, call) = rt.call_context(&fx.store, &fx.tenant, "tp-fetch").expect("context").expect("enabled");
    let (result, _) = rt.wasm.customer_profile(&plugin, call, "c-42");
    match result? {
        Ok(customer) => Ok(customer.name),
        Err(e) => Err(StepError::Failed(format!("{e:?}"))),
    }
}

#[test]
fn http_needs_the_manifest_the_tenant_grant_and_the_operator() {
    let (port, seen) = customer_server();
    let origin = format!("http://127.0.0.1:{port}");
    let secrets = vec![(origin.clone(), vec![("Authorization".to_string(), "Bearer s3cret".to_string())])];
    let fx = fixture();
    let open = runtimes(|o| {
        o.allow_private_network = true;
        o.http_secrets = secrets.clone();
    });
    fetch_plugin(&fx, &open, port);
    // Declared in the manifest but not granted by the tenant: denied.
    enable(&fx, "tp-fetch", serde_json::json!({"base_url": origin}), None);
    assert!(matches!(customer(&open, &fx), Err(StepError::Denied(_))));
    // Granted, but the operator does not allow private addresses: denied.
    enable(
        &fx,
        "tp-fetch",
        serde_json::json!({"base_url": origin}),
        Some(Grants { http: vec![origin.clone()], mail: false }),
    );
    let closed = runtimes(|o| o.http_secrets = secrets.clone());
    assert!(matches!(customer(&closed, &fx), Err(StepError::Denied(m)) if m.contains("private")));
    // Granted and allowed: the host adds the secret; the plugin never saw it.
    assert_eq!(customer(&open, &fx).expect("allowed"), "ACME Corp");
    let head = seen.recv_timeout(Duration::from_secs(5)).expect("the server saw the request");
    assert!(head.starts_with("GET /customers/c-42 "), "{head}");
    // A URL outside the granted origin is denied even with the grant.
    enable(
        &fx,
        "tp-fetch",
        serde_json::json!({"base_url": "http://127.0.0.1:1"}),
        Some(Grants { http: vec![origin], mail: false }),
    );
    assert!(matches!(customer(&open, &fx), Err(StepError::Denied(m)) if m.contains("not an allowed origin")));
}

#[test]
fn native_plugins_are_off_by_default_and_checked_for_their_abi() {
    let fx = fixture();
    let off = runtimes(|_| {});
    assert!(matches!(off.install(&fx.store, &manifest("sample-native-step")), Err(RuntimeError::Native(_))));
    let on = runtimes(|o| o.allow_native = true);
    let err = on.install(&fx.store, &manifest("wrong-abi")).expect_err("wrong ABI");
    assert!(err.to_string().contains("ABI 2") && err.to_string().contains("speaks ABI 1"), "{err}");
    on.install(&fx.store, &manifest("sample-native-step")).expect("install");
    enable(&fx, "sample-native-step", serde_json::json!({}), None);
    let out = run_one(&on, &fx).expect("runs");
    assert_eq!(out.stages[0].key, "compliance-watch");
    // A host that does not allow native code refuses to run it: the order would go on hold.
    assert!(matches!(run_one(&off, &fx), Err(StepError::Failed(m)) if m.contains("disabled")));
    let steps: Vec<ConfiguredStep> = on.steps_for(&fx.store, &fx.tenant).expect("steps");
    assert_eq!(steps[0].step.kind(), engine::StepKind::Native);
}

/// The same rule, R1's user-specific approval, written once as a Rhai script
/// (`scripts/spend-limit.rhai`) and once as a WASM plugin (`plugins/spend-limit`), gives the same
/// plan on the same orders.
#[test]
fn the_spend_limit_rule_as_script_and_as_plugin_gives_the_same_plan() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("spend-limit")).expect("install");
    enable(&fx, "spend-limit", serde_json::json!({}), None);
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/spend-limit.rhai"))
        .expect("script");

    struct Case {
        limit: Option<i64>,
        budget: Option<i64>,
        used: i64,
        subtotal: i64,
        config: serde_json::Value,
    }
    let case = |limit, budget, used, subtotal, config| Case { limit, budget, used, subtotal, config };
    let table = [
        case(None, None, 0, 1_000, serde_json::json!({})),
        case(Some(50_000), None, 0, 40_000, serde_json::json!({})),
        case(Some(50_000), None, 0, 60_000, serde_json::json!({})),
        case(None, Some(200_000), 180_000, 30_000, serde_json::json!({})),
        case(None, Some(200_000), 100_000, 30_000, serde_json::json!({})),
        case(Some(10_000), Some(20_000), 15_000, 12_000, serde_json::json!({"level": 4})),
        case(Some(0), None, 0, 1, serde_json::json!({"level": 1})),
    ];
    for t in table {
        let mut c = ctx();
        c.subtotal_minor = t.subtotal;
        c.requester.spend_limit_minor = t.limit;
        c.requester.budget_minor = t.budget;
        c.requester.budget_period = t.budget.map(|_| "month".to_string());
        c.requester.budget_used_minor = t.used;
        let script = ConfiguredStep {
            step: std::sync::Arc::new(rt.rhai.step("t", "spend-limit", &source).expect("step")),
            config: t.config.clone(),
        };
        let plugin = wasm_step(&rt, &fx, &t.config);
        let as_script = engine::evaluate(&c, &[script], &NoDirectory);
        let as_plugin = engine::evaluate(&c, &[plugin], &NoDirectory);
        assert_eq!(as_script.failures + as_plugin.failures, 0, "{:?} {:?}", as_script.runs, as_plugin.runs);
        assert_eq!(
            as_script.assessment, as_plugin.assessment,
            "limit {:?} budget {:?} used {} subtotal {}",
            t.limit, t.budget, t.used, t.subtotal
        );
    }
}

/// The plugin as the host runs it for a tenant config (manifest defaults filled in).
fn wasm_step(rt: &Runtimes, fx: &Fixture, config: &serde_json::Value) -> ConfiguredStep {
    enable(fx, "spend-limit", config.clone(), None);
    rt.steps_for(&fx.store, &fx.tenant).expect("steps").remove(0)
}

#[test]
fn an_oversized_result_is_refused_with_its_own_reason() {
    let err = failure_of("tp-flood", |_| {});
    assert!(matches!(&err, StepError::Oversized(m) if m.contains("5000 stages")), "{err:?}");
}

#[test]
fn a_step_built_for_api_1_0_runs_on_this_1_1_host() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("tp-v1-step")).expect("a 1.0.0 component installs");
    enable(&fx, "tp-v1-step", serde_json::json!({"role": "compliance"}), None);
    let (loaded, _) = rt.call_context(&fx.store, &fx.tenant, "tp-v1-step").expect("context").expect("enabled");
    assert_eq!(loaded.api, "1.0.0");
    let out = run_one(&rt, &fx).expect("the 1.0 step runs");
    assert_eq!(out.stages.len(), 1);
    assert_eq!(out.stages[0].key, "v1-review");
    assert!(out.stages[0].reason.contains("o-1"), "{}", out.stages[0].reason);
    assert_eq!(out.flags[0].code, "built-for-api-1-0");
    // Its manifest must say what it is built for: a 1.0 component claiming 1.1 is refused.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(plugins().join("tp-v1-step/tp_v1_step.wasm"), dir.path().join("c.wasm")).expect("copy");
    std::fs::write(
        dir.path().join("manifest.toml"),
        "name = \"claims-more\"\nversion = \"1.0.0\"\nworld = \"approval-step\"\napi = \"1.1.0\"\ncomponent = \"c.wasm\"\n",
    )
    .expect("manifest");
    let err = rt.install(&fx.store, &dir.path().join("manifest.toml")).expect_err("api mismatch");
    assert!(err.to_string().contains("set api = \"1.0.0\""), "{err}");
}

#[test]
fn a_connector_built_for_api_1_0_answers_but_cannot_update_credit() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("tp-v1-connector")).expect("install");
    enable(&fx, "tp-v1-connector", serde_json::json!({}), None);
    let (plugin, call) = rt.call_context(&fx.store, &fx.tenant, "tp-v1-connector").expect("context").expect("enabled");
    assert_eq!(plugin.api, "1.0.0");
    let mut c = ctx();
    c.order.customer_id = Some("C-1".into());
    let (result, _) = rt.wasm.records(&plugin, call, &c);
    let customer = result.expect("runs").customer.expect("asked").expect("known");
    assert_eq!(customer.name, "Acme (API 1.0)");
    // Enrichment works through it as through a 1.1 connector.
    assert_eq!(rt.enrich(&fx.store, &fx.tenant, &mut c).expect("enriched").as_deref(), Some("tp-v1-connector"));
    assert_eq!(c.customer.as_ref().map(|c| c.credit_limit_minor), Some(Some(100_000)));
    let exported = rt.export(&fx.store, &fx.tenant, "tp-v1-connector", &c).expect("exported");
    assert_eq!(exported, "V1-o-1");
    // 1.0 has no credit update: permanent, and the message says how to get one.
    let update = greenlight_host::domain::credit::CreditUpdate {
        customer_id: "C-1".into(),
        order_id: "o-1".into(),
        amount_minor: 1_500_000,
        currency: "EUR".into(),
        idempotency_key: "k-1".into(),
    };
    match rt.update_credit(&fx.store, &fx.tenant, "tp-v1-connector", &update) {
        Err(greenlight_host::domain::delivery::Attempt::Permanent(m)) => {
            assert!(m.contains("plugin API 1.0.0") && m.contains("rebuild it against greenlight-plugin-api 1.1"), "{m}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[test]
fn a_1_1_step_reads_the_connectors_records_of_the_order() {
    let fx = fixture();
    let rt = runtimes(|_| {});
    rt.install(&fx.store, &manifest("customer-credit")).expect("install");
    enable(&fx, "customer-credit", serde_json::json!({}), None);
    let steps = rt.steps_for(&fx.store, &fx.tenant).expect("steps");
    let mut c = ctx();
    c.config = steps[0].config.clone();
    c.order.customer_id = Some("C-1".into());
    // Without records (no connector), nothing to check.
    assert!(steps[0].step.evaluate(&c).expect("runs").stages.is_empty());
    c.customer = Some(greenlight_host::domain::step::Customer {
        id: "C-1".into(),
        name: "Acme".into(),
        email: None,
        phone: None,
        credit_limit_minor: Some(2_000_000),
        currency: Some("EUR".into()),
        account_manager: None,
        open_invoices: vec![greenlight_host::domain::step::Invoice {
            id: "INV-1".into(),
            amount_minor: 600_000,
            currency: "EUR".into(),
            due_date: "2026-12-01".into(),
        }],
    });
    // 2,000,000 limit - 600,000 unpaid = 1,400,000 available < 1,500,000 ordered.
    let out = steps[0].step.evaluate(&c).expect("runs");
    assert_eq!(out.stages.len(), 1, "{out:?}");
    assert!(out.stages[0].reason.contains("available credit of 1400000"), "{}", out.stages[0].reason);
    c.customer.as_mut().expect("customer").open_invoices.clear();
    assert!(steps[0].step.evaluate(&c).expect("runs").stages.is_empty());
}
