//! Merging step outputs into an assessment, output validation, and failing closed.

use super::*;
use crate::domain::fixtures;
use crate::domain::machine::Outcome;
use crate::domain::money::MAX_AMOUNT_MINOR;
use crate::domain::order::OrderInput;
use crate::domain::plan::MAX_DUE_IN_HOURS;
use crate::domain::step::StepOutput;
use std::collections::HashMap;

struct Fixed {
    name: &'static str,
    out: Result<serde_json::Value, StepError>,
}

impl Step for Fixed {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> StepKind {
        StepKind::Script
    }
    fn code_hash(&self) -> &str {
        "hash"
    }
    fn evaluate(&self, _: &OrderContext) -> Result<StepOutput, StepError> {
        match &self.out {
            Ok(v) => serde_json::from_value(v.clone()).map_err(|e| StepError::BadOutput(e.to_string())),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Cost centers with their managers, and users with their roles.
struct Dir(HashMap<&'static str, &'static str>, HashMap<&'static str, &'static [&'static str]>);

impl Directory for Dir {
    fn cost_center_manager(&self, code: &str) -> Option<String> {
        self.0.get(code).map(|m| m.to_string())
    }
    fn user_exists(&self, name: &str) -> bool {
        self.1.contains_key(name)
    }
    fn role_holders(&self, role: &str, except: &str) -> usize {
        self.1.iter().filter(|(n, roles)| **n != except && roles.contains(&role)).count()
    }
}

fn dir() -> Dir {
    Dir(
        [("CC-1", "bob"), ("CC-2", "alice")].into_iter().collect(),
        [
            ("alice", &["requester", "approver"][..]),
            ("bob", &["cost_center_manager"][..]),
            ("carol", &["approver"][..]),
            ("frank", &["executive"][..]),
            ("root", &["admin"][..]),
        ]
        .into_iter()
        .collect(),
    )
}

fn ctx() -> OrderContext {
    let input = OrderInput { cost_center: Some("CC-1".into()), ..fixtures::input(vec![fixtures::line(1, 10_000)]) };
    fixtures::context(&input)
}

fn run(steps: Vec<(&'static str, Result<serde_json::Value, StepError>)>) -> Evaluation {
    let steps: Vec<ConfiguredStep> = steps
        .into_iter()
        .map(|(name, out)| ConfiguredStep { step: Arc::new(Fixed { name, out }), config: serde_json::json!({}) })
        .collect();
    evaluate(&ctx(), &steps, &dir())
}

fn stage(key: &str, level: u32, approvers: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"key": key, "level": level, "approvers": approvers, "reason": "r"})
}

#[test]
fn no_steps_means_proceed_with_no_stages() {
    let e = run(vec![]);
    assert_eq!(e.assessment.outcome, Outcome::Proceed);
    assert!(e.assessment.stages.is_empty());
}

#[test]
fn stages_of_all_steps_merge_sorted_by_level_and_resolved() {
    let e = run(vec![
        ("late", Ok(serde_json::json!({"stages": [stage("exec", 10, serde_json::json!({"role": "executive"}))]}))),
        (
            "early",
            Ok(serde_json::json!({"stages": [stage("cc", 1, serde_json::json!({"cost_center_manager": "CC-1"}))]})),
        ),
    ]);
    assert_eq!(e.assessment.outcome, Outcome::Proceed);
    let keys: Vec<_> = e.assessment.stages.iter().map(|s| (s.key.as_str(), s.source.as_str())).collect();
    assert_eq!(keys, [("cc", "early"), ("exec", "late")]);
    assert_eq!(
        e.assessment.stages[0].approvers,
        crate::domain::plan::Approvers::CostCenterManager { cost_center: "CC-1".into(), manager: "bob".into() }
    );
    assert_eq!(e.runs.len(), 2);
}

#[test]
fn adjustments_and_flags_carry_their_source() {
    let e = run(vec![(
        "tax",
        Ok(serde_json::json!({
            "adjustments": [{"kind": "tax", "code": "VAT", "amount_minor": 1900}],
            "flags": [{"code": "big", "message": "large order"}]
        })),
    )]);
    assert_eq!(e.assessment.adjustments[0].source, "tax");
    assert_eq!(e.assessment.adjustments[0].amount_minor, 1900);
    assert_eq!(e.assessment.flags[0].source, "tax");
}

#[test]
fn a_reject_wins_over_a_failure_and_the_first_reject_is_kept() {
    let e = run(vec![
        ("broken", Err(StepError::OutOfFuel("limit".into()))),
        ("vendor", Ok(serde_json::json!({"verdict": "reject", "reason": "blocked vendor"}))),
        ("other", Ok(serde_json::json!({"verdict": "reject", "reason": "second"}))),
    ]);
    assert_eq!(e.assessment.outcome, Outcome::Reject { by: "step:vendor".into(), reason: "blocked vendor".into() });
    assert_eq!(e.failures, 1);
}

#[test]
fn every_failure_kind_fails_closed_with_its_own_reason() {
    let kinds = [
        StepError::OutOfFuel("x".into()),
        StepError::Deadline("x".into()),
        StepError::MemoryLimit("x".into()),
        StepError::Failed("x".into()),
        StepError::Panicked("x".into()),
        StepError::BadOutput("x".into()),
        StepError::Oversized("x".into()),
        StepError::Denied("x".into()),
    ];
    let mut reasons = Vec::new();
    for k in kinds {
        let e = run(vec![("s", Err(k))]);
        match e.assessment.outcome {
            Outcome::Hold { reason } => reasons.push(reason),
            other => panic!("expected hold, got {other:?}"),
        }
    }
    let mut distinct = reasons.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), reasons.len(), "{reasons:?}");
}

#[test]
fn malformed_outputs_are_held_not_approved() {
    let bad = [
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}}]}),
        serde_json::json!({"stages": [stage("bad key!", 1, serde_json::json!({"role": "approver"}))]}),
        serde_json::json!({"stages": [stage("x", 0, serde_json::json!({"role": "approver"}))]}),
        serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"cost_center_manager": "NOPE"}))]}),
        serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"users": []}))]}),
        serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"users": ["alice"]}))]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "quorum": "all", "reason": "r"}]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"users": ["bob"]}, "quorum": 2, "reason": "r"}]}),
        serde_json::json!({"adjustments": [{"kind": "tax", "code": "T", "amount_minor": -5}]}),
        serde_json::json!({"adjustments": [{"kind": "discount", "code": "D", "amount_minor": 5}]}),
        serde_json::json!({"adjustments": [{"kind": "discount", "code": "D", "amount_minor": -20000}]}),
        serde_json::json!({"adjustments": [{"kind": "surcharge", "code": "S", "amount_minor": i64::MAX}]}),
        serde_json::json!({"adjustments": [
            {"kind": "tax", "code": "T1", "amount_minor": i64::MAX},
            {"kind": "discount", "code": "D", "amount_minor": -i64::MAX},
            {"kind": "tax", "code": "T2", "amount_minor": i64::MAX}]}),
        serde_json::json!({"adjustments": [{"kind": "shipping", "code": "S", "amount_minor": MAX_AMOUNT_MINOR}]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "due_in_hours": 4294967295u32, "reason": "r"}]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "due_in_hours": MAX_DUE_IN_HOURS + 1, "reason": "r"}]}),
        serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"users": ["nobody"]}))]}),
        serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"role": "it-security"}))]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "executive"}, "quorum": 2, "reason": "r"}]}),
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "escalate_to": {"users": ["ghost"]}, "reason": "r"}]}),
        serde_json::json!({"verdict": "reject"}),
        serde_json::json!({"verdict": "hold", "reason": " "}),
        serde_json::json!({"verdict": "approve"}),
        serde_json::json!({"surprise": true}),
    ];
    for out in bad {
        let e = run(vec![("s", Ok(out.clone()))]);
        assert!(matches!(e.assessment.outcome, Outcome::Hold { .. }), "{out} gave {:?}", e.assessment.outcome);
    }
}

#[test]
fn bounds_that_hold_are_accepted_at_their_edge() {
    let edge = serde_json::json!({
        "stages": [{"key": "x", "approvers": {"users": ["carol"]}, "due_in_hours": MAX_DUE_IN_HOURS, "reason": "r"}],
        "adjustments": [{"kind": "tax", "code": "T", "amount_minor": MAX_AMOUNT_MINOR - 10_000}]
    });
    let e = run(vec![("s", Ok(edge))]);
    assert_eq!(e.assessment.outcome, Outcome::Proceed);
    // A second step whose tax would take the order past the bound is held, naming it.
    let more = serde_json::json!({"adjustments": [{"kind": "tax", "code": "T2", "amount_minor": 1}]});
    let e = run(vec![
        (
            "a",
            Ok(
                serde_json::json!({"adjustments": [{"kind": "tax", "code": "T", "amount_minor": MAX_AMOUNT_MINOR - 10_000}]}),
            ),
        ),
        ("b", Ok(more)),
    ]);
    match e.assessment.outcome {
        Outcome::Hold { reason } => {
            assert!(reason.contains("step 'b'") && reason.contains("largest amount"), "{reason}")
        }
        other => panic!("expected a hold, got {other:?}"),
    }
}

#[test]
fn a_stage_nobody_can_decide_is_held_with_the_reason() {
    let e = run(vec![("s", Ok(serde_json::json!({"stages": [stage("x", 1, serde_json::json!({"users": ["zed"]}))]})))]);
    match e.assessment.outcome {
        Outcome::Hold { reason } => assert!(reason.contains("'zed' is not a user of this tenant"), "{reason}"),
        other => panic!("expected a hold, got {other:?}"),
    }
    // The requester (alice) holding the role does not count.
    let only_requester =
        serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "quorum": 2, "reason": "r"}]});
    assert!(matches!(run(vec![("s", Ok(only_requester))]).assessment.outcome, Outcome::Hold { .. }));
    let fine = serde_json::json!({"stages": [{"key": "x", "approvers": {"role": "approver"}, "reason": "r"}]});
    assert_eq!(run(vec![("s", Ok(fine))]).assessment.outcome, Outcome::Proceed);
    // A role nobody holds is decidable once the stage escalates: to the admins by default, or
    // to the target the step names, if someone holds that.
    let nobody = |extra: serde_json::Value| {
        let mut s = serde_json::json!({"key": "x", "approvers": {"role": "it-security"}, "reason": "r"});
        s.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        run(vec![("s", Ok(serde_json::json!({"stages": [s]})))]).assessment.outcome
    };
    assert!(matches!(nobody(serde_json::json!({})), Outcome::Hold { .. }));
    assert_eq!(nobody(serde_json::json!({"due_in_hours": 48})), Outcome::Proceed);
    assert!(matches!(
        nobody(serde_json::json!({"due_in_hours": 48, "escalate_to": {"role": "auditor"}})),
        Outcome::Hold { .. }
    ));
    // The escalation target must be able to reach the quorum on its own.
    assert!(matches!(
        nobody(serde_json::json!({"due_in_hours": 48, "quorum": 2, "escalate_to": {"users": ["carol"]}})),
        Outcome::Hold { .. }
    ));
    assert_eq!(
        nobody(serde_json::json!({"due_in_hours": 48, "quorum": 2, "escalate_to": {"users": ["carol", "frank"]}})),
        Outcome::Proceed
    );
}

#[test]
fn the_requesters_own_cost_center_needs_an_escalation_target() {
    let own = serde_json::json!({"stages": [stage("cc", 1, serde_json::json!({"cost_center_manager": "CC-2"}))]});
    assert!(matches!(run(vec![("s", Ok(own))]).assessment.outcome, Outcome::Hold { .. }));
    let escalated = serde_json::json!({"stages": [{"key": "cc", "approvers": {"cost_center_manager": "CC-2"}, "escalate_to": {"role": "executive"}, "reason": "r"}]});
    let e = run(vec![("s", Ok(escalated))]);
    assert_eq!(e.assessment.outcome, Outcome::Proceed);
    assert_eq!(
        e.assessment.stages[0].approvers,
        crate::domain::plan::Approvers::Role { role: "executive".parse().expect("role") }
    );
}

#[test]
fn the_same_stage_from_two_steps_is_kept_once_but_a_clash_holds() {
    let cc = stage("cc", 1, serde_json::json!({"cost_center_manager": "CC-1"}));
    let e = run(vec![
        ("a", Ok(serde_json::json!({"stages": [cc.clone()]}))),
        ("b", Ok(serde_json::json!({"stages": [cc]}))),
    ]);
    assert_eq!(e.assessment.stages.len(), 1);
    let clash = stage("cc", 2, serde_json::json!({"role": "approver"}));
    let e = run(vec![
        ("a", Ok(serde_json::json!({"stages": [stage("cc", 1, serde_json::json!({"cost_center_manager": "CC-1"}))]}))),
        ("b", Ok(serde_json::json!({"stages": [clash]}))),
    ]);
    assert!(matches!(e.assessment.outcome, Outcome::Hold { .. }));
}

#[test]
fn each_step_sees_its_own_config() {
    struct Echo;
    impl Step for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn kind(&self) -> StepKind {
            StepKind::Script
        }
        fn code_hash(&self) -> &str {
            "h"
        }
        fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError> {
            let code = ctx.config["flag"].as_str().unwrap_or("none").to_string();
            Ok(StepOutput {
                flags: vec![crate::domain::step::RiskFlag {
                    code,
                    severity: Default::default(),
                    message: "m".into(),
                    source: String::new(),
                }],
                ..Default::default()
            })
        }
    }
    let steps = vec![
        ConfiguredStep { step: Arc::new(Echo), config: serde_json::json!({"flag": "one"}) },
        ConfiguredStep { step: Arc::new(Echo), config: serde_json::json!({"flag": "two"}) },
    ];
    let e = evaluate(&ctx(), &steps, &dir());
    let codes: Vec<_> = e.assessment.flags.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["one", "two"]);
}
