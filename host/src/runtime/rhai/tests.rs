//! The Rhai runtime: compile errors with positions, limits that stop runaway scripts, and the
//! step-output shape round trip.

use super::*;
use crate::domain::fixtures;
use crate::domain::order::OrderInput;
use crate::domain::step::StepVerdict;

fn ctx(config: serde_json::Value) -> OrderContext {
    let input = OrderInput {
        department: Some("IT".into()),
        vendor_id: Some("ACME".into()),
        ..fixtures::input(vec![fixtures::line(3, 700)])
    };
    let mut ctx = fixtures::context(&input);
    ctx.requester.roles = vec![];
    ctx.requester.spend_limit_minor = Some(1000);
    ctx.config = config;
    ctx
}

fn rt() -> RhaiRuntime {
    RhaiRuntime::new(RhaiLimits::default())
}

fn eval(src: &str) -> Result<StepOutput, StepError> {
    rt().step("t", "t", src).expect("compiles").evaluate(&ctx(serde_json::json!({"threshold": 2000})))
}

#[test]
fn a_script_reads_the_context_and_returns_the_output_shape() {
    let out = eval(
        r#"fn evaluate(ctx) {
            if ctx.subtotal_minor >= ctx.config.threshold && ctx.requester.spend_limit_minor != () {
                #{ stages: [#{ key: "exec", level: 3, approvers: #{ role: "executive" }, quorum: 2, reason: `over ${ctx.config.threshold}` }],
                   flags: [#{ code: "big", severity: "high", message: ctx.order.lines[0].sku }] }
            } else { #{} }
        }"#,
    )
    .expect("runs");
    assert_eq!(out.stages[0].key, "exec");
    assert_eq!(out.stages[0].level, 3);
    assert_eq!(out.stages[0].quorum, crate::domain::plan::Quorum::AtLeast(2));
    assert_eq!(out.stages[0].reason, "over 2000");
    assert_eq!(out.flags[0].message, "A");
    assert_eq!(out.verdict, StepVerdict::Proceed);
}

#[test]
fn compile_errors_report_line_and_column() {
    let err = rt().step("t", "t", "fn evaluate(ctx) {\n  let x = ;\n}").err().expect("does not compile");
    assert_eq!(err.line, 2);
    assert!(err.column > 0, "{err:?}");
}

#[test]
fn a_script_without_evaluate_is_refused() {
    assert!(rt().step("t", "t", "fn other(ctx) { #{} }").is_err());
    assert!(rt().step("t", "t", "fn evaluate() { #{} }").is_err());
}

#[test]
fn undefined_variables_are_compile_errors() {
    assert!(rt().step("t", "t", "fn evaluate(ctx) { #{ reason: nope } }").is_err());
}

#[test]
fn eval_and_import_are_disabled() {
    assert!(rt().step("t", "t", r#"fn evaluate(ctx) { eval("1"); #{} }"#).is_err());
    assert!(rt().step("t", "t", r#"import "x" as y; fn evaluate(ctx) { #{} }"#).is_err());
}

#[test]
fn an_endless_loop_runs_out_of_operations() {
    let r = eval("fn evaluate(ctx) { loop { } }");
    assert!(matches!(r, Err(StepError::OutOfFuel(_))), "{r:?}");
}

#[test]
fn deep_recursion_hits_the_call_limit() {
    let r = eval("fn down(n) { down(n + 1) } fn evaluate(ctx) { down(0) }");
    assert!(matches!(r, Err(StepError::MemoryLimit(_))), "{r:?}");
}

#[test]
fn huge_strings_and_arrays_hit_the_size_limits() {
    // A deadline long enough that the size limits, not the clock of a busy test machine (an
    // unoptimized build pushing 10,000 elements), are what stops the scripts.
    let rt = RhaiRuntime::new(RhaiLimits { deadline: Duration::from_secs(30), ..RhaiLimits::default() });
    let eval = |src: &str| rt.step("t", "t", src).expect("compiles").evaluate(&ctx(serde_json::json!({})));
    let r = eval(r#"fn evaluate(ctx) { let s = "x"; while true { s += s; } }"#);
    assert!(matches!(r, Err(StepError::MemoryLimit(_))), "{r:?}");
    let r = eval("fn evaluate(ctx) { let a = []; while true { a.push(1); } }");
    assert!(matches!(r, Err(StepError::MemoryLimit(_)) | Err(StepError::OutOfFuel(_))), "{r:?}");
}

#[test]
fn thrown_errors_and_garbage_are_reported() {
    assert!(
        matches!(eval(r#"fn evaluate(ctx) { throw "no customer" }"#), Err(StepError::Failed(m)) if m.contains("no customer"))
    );
    assert!(matches!(eval("fn evaluate(ctx) { 42 }"), Err(StepError::BadOutput(_))));
    assert!(matches!(eval("fn evaluate(ctx) { #{ stages: 1 } }"), Err(StepError::BadOutput(_))));
    assert!(matches!(eval("fn evaluate(ctx) { #{ approve: true } }"), Err(StepError::BadOutput(_))));
}

#[test]
fn the_same_source_compiles_once() {
    let rt = rt();
    let a = rt.step("t", "a", "fn evaluate(ctx) { #{} }").expect("compiles");
    let b = rt.step("u", "b", "fn evaluate(ctx) { #{} }").expect("compiles");
    assert_eq!(a.hash, b.hash);
    assert!(Arc::ptr_eq(&a.ast, &b.ast));
}

#[test]
fn a_replaced_script_drops_its_old_compilation() {
    let rt = rt();
    let version = |n: usize| format!("fn evaluate(ctx) {{ let v = {n}; #{{}} }}");
    for n in 0..60 {
        rt.step("t", "s", &version(n)).expect("compiles");
    }
    let cache = rt.cache.lock().expect("cache");
    assert_eq!(cache.compiled.len(), 1, "only the current version stays");
    assert_eq!(cache.source_bytes, version(59).len());
    drop(cache);
    // A version another tenant still runs stays until that tenant moves on too.
    rt.step("u", "s", &version(59)).expect("compiles");
    rt.step("t", "s", &version(60)).expect("compiles");
    assert_eq!(rt.cache.lock().expect("cache").compiled.len(), 2);
    rt.step("u", "s", &version(61)).expect("compiles");
    assert_eq!(rt.cache.lock().expect("cache").compiled.len(), 2);
}

#[test]
fn the_cache_keeps_within_its_byte_bound_least_recently_used_first() {
    let source = |n: usize| format!("fn evaluate(ctx) {{ let v = {n}; #{{}} }}");
    let bound = source(0).len() * 3;
    let rt = RhaiRuntime::new(RhaiLimits { max_cached_source_bytes: bound, ..RhaiLimits::default() });
    for n in 0..10 {
        rt.step("t", &format!("s{n}"), &source(n)).expect("compiles");
    }
    let cache = rt.cache.lock().expect("cache");
    assert!(cache.source_bytes <= bound, "{} > {bound}", cache.source_bytes);
    assert!(cache.compiled.contains_key(&source_hash(&source(9))));
    assert!(!cache.compiled.contains_key(&source_hash(&source(0))));
}

#[test]
fn a_slow_script_within_its_operation_budget_meets_the_deadline() {
    // Each iteration copies and sorts 10,000 numbers: few operations, much time.
    let src = "fn evaluate(ctx) { let a = []; for i in 0..10000 { a.push(10000 - i); } loop { let b = a; b.sort(); } }";
    let rt = RhaiRuntime::new(RhaiLimits { max_operations: 0, ..RhaiLimits::default() });
    let started = std::time::Instant::now();
    let r = rt.step("t", "t", src).expect("compiles").evaluate(&ctx(serde_json::json!({})));
    assert!(matches!(r, Err(StepError::Deadline(_))), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn print_output_is_bounded_per_call() {
    let rt = rt();
    let src = r#"fn evaluate(ctx) { let s = "0123456789"; for i in 0..2000 { print(s); debug(s); } #{} }"#;
    let step = rt.step("t", "t", src).expect("compiles");
    step.evaluate(&ctx(serde_json::json!({}))).expect("runs");
    // The budget is per call and gone afterwards; what was cut is counted, not written.
    assert!(CALL.with(|c| c.get()).is_none());
    let mut written = 0;
    CALL.with(|c| c.set(Some(CallBudget { deadline: std::time::Instant::now(), print_left: 25, dropped: 0 })));
    for _ in 0..5 {
        log_bounded("0123456789", |s| written += s.len());
    }
    let budget = CALL.with(|c| c.take()).expect("budget");
    assert_eq!((written, budget.dropped), (20, 30));
    // Empty lines cost a byte each: a loop of them is bounded as well.
    let mut lines = 0;
    CALL.with(|c| c.set(Some(CallBudget { deadline: std::time::Instant::now(), print_left: 3, dropped: 0 })));
    for _ in 0..10 {
        log_bounded("", |_| lines += 1);
    }
    CALL.with(|c| c.take());
    assert_eq!(lines, 3);
}

#[test]
fn top_level_code_does_not_run_per_call() {
    let out = eval("let x = 1; while true {} fn evaluate(ctx) { #{} }").expect("top level skipped");
    assert!(out.stages.is_empty());
}

#[test]
fn a_source_that_does_not_match_its_stored_hash_is_not_run() {
    let rt = rt();
    let src = "fn evaluate(ctx) { #{} }";
    let err = rt.step_hashed("t", "s", &source_hash("fn evaluate(ctx) { 1 }"), src).err().expect("refused");
    assert!(err.message.contains("does not match its hash"), "{err:?}");
    assert!(rt.step_hashed("t", "s", &source_hash(src), src).is_ok());
}

#[test]
fn scripts_of_one_evaluation_share_the_order_but_never_each_others_changes_or_config() {
    use crate::engine::{ConfiguredStep, Lowered};
    let rt = rt();
    // The first script vandalizes its copy of the order; the second must see the original,
    // with its own configuration.
    let vandal = rt
        .step(
            "t",
            "vandal",
            r#"fn evaluate(ctx) { ctx.order.lines = []; ctx.subtotal_minor = 0; ctx.config.mark = "v"; #{} }"#,
        )
        .expect("compiles");
    let reader = rt
        .step(
            "t",
            "reader",
            r#"fn evaluate(ctx) { #{ flags: [#{ code: `lines-${ctx.order.lines.len()}`, message: `${ctx.subtotal_minor} ${ctx.config.mark}` }] } }"#,
        )
        .expect("compiles");
    let c = ctx(serde_json::json!({}));
    let steps = [
        ConfiguredStep { step: std::sync::Arc::new(vandal), config: serde_json::json!({"mark": "first"}) },
        ConfiguredStep { step: std::sync::Arc::new(reader), config: serde_json::json!({"mark": "second"}) },
    ];
    struct Nobody;
    impl crate::engine::Directory for Nobody {
        fn cost_center_manager(&self, _: &str) -> Option<String> {
            None
        }
        fn user_exists(&self, _: &str) -> bool {
            false
        }
        fn role_holders(&self, _: &str, _: &str) -> usize {
            0
        }
    }
    let eval = crate::engine::evaluate(&c, &steps, &Nobody);
    let flag = &eval.assessment.flags[0];
    assert_eq!(flag.code, "lines-1");
    assert_eq!(flag.message, format!("{} second", c.subtotal_minor));
    // And the shared form is made once per evaluation.
    let lowered = Lowered::default();
    let mut made = 0;
    for _ in 0..3 {
        lowered.with(
            || {
                made += 1;
                1u8
            },
            |_| (),
        );
    }
    assert_eq!(made, 1);
}
