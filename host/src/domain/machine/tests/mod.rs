//! The state machine, transition by transition (the table at the top of `machine.rs`); the
//! property tests over random command sequences are in `properties`.

mod after_approval;
mod drift;
mod escalation;
mod properties;

use super::*;
use crate::domain::order::{OrderInput, Recurrence};
use crate::domain::plan::{Approvers, Quorum, Stage, StageState, Verdict};
use chrono::TimeZone;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().expect("valid time")
}

fn actor(name: &str, roles: &[&str]) -> Actor {
    Actor::new(name, roles.iter().copied())
}

fn alice() -> Actor {
    actor("alice", &["requester", "approver"])
}

fn input(recurring: bool) -> OrderInput {
    OrderInput {
        cost_center: Some("CC-1".into()),
        recurrence: recurring.then(|| Recurrence { interval: "P1M".into() }),
        ..crate::domain::fixtures::input(vec![crate::domain::fixtures::line(2, 500)])
    }
}

fn draft(recurring: bool) -> Order {
    Order::new_draft("o1".into(), "alice".into(), input(recurring), 1000, at())
}

fn stage(key: &str, level: u32, approvers: Approvers, quorum: Quorum) -> Stage {
    Stage {
        key: key.into(),
        title: key.into(),
        level,
        approvers,
        quorum,
        due_in_hours: None,
        escalate_to: None,
        due_at: None,
        reason: "because".into(),
        source: "test".into(),
        state: StageState::Waiting,
        decisions: vec![],
        opened_in: None,
    }
}

fn role(r: &str) -> Approvers {
    Approvers::Role { role: r.parse().expect("role") }
}

fn manager(name: &str) -> Approvers {
    Approvers::CostCenterManager { cost_center: "CC-1".into(), manager: name.into() }
}

/// cost-center (bob) at level 1, then user-approval (role approver) at level 2.
fn r1_plan() -> Vec<Stage> {
    vec![stage("cost-center", 1, manager("bob"), Quorum::Any), stage("user-approval", 2, role("approver"), Quorum::Any)]
}

fn assessment(stages: Vec<Stage>, outcome: Outcome) -> Assessment {
    Assessment { subtotal_minor: 1000, adjustments: vec![], flags: vec![], stages, outcome }
}

fn on() -> Policy {
    Policy { one_stage_per_person: true, ..Policy::default() }
}

fn submit(order: &Order, stages: Vec<Stage>) -> Transition {
    apply(order, Command::Submit { by: alice(), assessment: assessment(stages, Outcome::Proceed), at: at() }, &on())
        .expect("submit")
}

fn decide(
    order: &Order,
    by: Actor,
    key: &str,
    verdict: Verdict,
    comment: Option<&str>,
    policy: &Policy,
) -> Result<Transition, TransitionError> {
    apply(
        order,
        Command::Decide {
            by,
            on_behalf_of: None,
            stage: key.into(),
            verdict,
            comment: comment.map(Into::into),
            via: None,
            at: at(),
        },
        policy,
    )
}

fn approve(order: &Order, by: Actor, key: &str) -> Result<Transition, TransitionError> {
    decide(order, by, key, Verdict::Approve, None, &on())
}

fn actions(t: &Transition) -> Vec<String> {
    t.events.iter().map(|e| e.action().to_string()).collect()
}

fn bob() -> Actor {
    actor("bob", &["cost_center_manager", "approver"])
}

fn carol() -> Actor {
    actor("carol", &["approver"])
}

fn approved_order(recurring: bool) -> Order {
    let t = submit(&draft(recurring), r1_plan());
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    approve(&t.order, carol(), "user-approval").expect("user").order
}

// ---- the transition table -------------------------------------------------------------------

#[test]
fn the_documented_table_is_the_table_apply_consults() {
    let source = include_str!("../mod.rs");
    let documented: String = source
        .lines()
        .skip_while(|l| *l != "//! ```text")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("").trim_end()))
        .collect();
    let rendered: String = table::render().lines().map(|l| format!("{}\n", l.trim_end())).collect();
    assert_eq!(documented, rendered, "paste table::render() into the module documentation:\n{}", table::render());
}

/// An order in `status` set up so that every command the table allows there succeeds: one stage
/// `s` for role approver, open and overdue while pending, approved once the order is.
fn in_status(status: OrderStatus, recurring: bool, subscription_active: bool) -> Order {
    let mut order = draft(recurring);
    order.status = status;
    let mut s = stage("s", 1, role("approver"), Quorum::Any);
    s.due_in_hours = Some(1);
    match status {
        OrderStatus::PendingApproval => {
            s.state = StageState::Open;
            s.due_at = Some(at() - chrono::Duration::hours(1));
        }
        OrderStatus::Approved | OrderStatus::Released => s.state = StageState::Approved,
        _ => {}
    }
    order.plan.stages = vec![s];
    if let Some(sub) = order.subscription.as_mut() {
        sub.state = if subscription_active { SubscriptionState::Active } else { SubscriptionState::Inactive };
    }
    order
}

/// A command of `kind` given by someone allowed to give it.
fn command_of(kind: CommandKind, order: &Order) -> Command {
    let root = actor("root", &["admin", "finance"]);
    match kind {
        CommandKind::Submit => {
            Command::Submit { by: alice(), assessment: assessment(r1_plan(), Outcome::Proceed), at: at() }
        }
        CommandKind::Edit => Command::Edit {
            by: alice(),
            input: order.input.clone(),
            subtotal_minor: order.subtotal_minor,
            assessment: Some(assessment(r1_plan(), Outcome::Proceed)),
            at: at(),
        },
        CommandKind::Decide => Command::Decide {
            by: carol(),
            on_behalf_of: None,
            stage: "s".into(),
            verdict: Verdict::Approve,
            comment: None,
            via: None,
            at: at(),
        },
        CommandKind::Withdraw => Command::Withdraw { by: alice(), at: at() },
        CommandKind::Revoke => Command::Revoke { by: root, reason: "wrong".into(), at: at() },
        CommandKind::Release => Command::Release { by: root, at: at() },
        CommandKind::Exported => Command::Exported { external_ref: "SO-1".into(), connector: "erp".into(), at: at() },
        CommandKind::Deactivate => Command::Deactivate { by: alice(), at: at() },
        CommandKind::Reactivate => Command::Reactivate { by: alice(), at: at() },
        CommandKind::Escalate => Command::Escalate { at: at() },
        CommandKind::MarkDrift => Command::MarkDrift {
            drift: Some(crate::domain::drift::PlanDifference {
                before: OrderStatus::PendingApproval,
                after: OrderStatus::Rejected,
                stages_added: vec![],
                stages_removed: vec![],
                stages_changed: vec![],
                flags_added: vec![],
                flags_removed: vec![],
            }),
            at: at(),
        },
    }
}

#[test]
fn every_status_and_command_does_what_the_table_says() {
    let mut allowed = 0;
    for status in OrderStatus::ALL {
        for recurring in [false, true] {
            for kind in CommandKind::ALL {
                // A subscription is paused before Reactivate, running before anything else.
                let order = in_status(status, recurring, kind != CommandKind::Reactivate);
                let result = apply(&order, command_of(kind, &order), &on());
                let case =
                    format!("{kind:?} on a {} {}", status.as_str(), if recurring { "subscription" } else { "order" });
                match table::rule_for(&order, kind) {
                    None => {
                        assert_eq!(result, Err(TransitionError::InvalidState(table::refusal(&order, kind))), "{case}");
                    }
                    Some(rule) => {
                        allowed += 1;
                        let t = result.unwrap_or_else(|e| panic!("{case}: the table allows it, apply refused: {e}"));
                        assert!(rule.to.contains(&t.order.status), "{case} ended {:?}", t.order.status);
                        assert_eq!(t.order.version, order.version + 1, "{case}");
                    }
                }
            }
        }
    }
    // Every row of the table was exercised: 2 Submit × 2, Edit 1×2 + 2×2 + 1, Decide 2, Withdraw
    // 3×2, Revoke 2, Release 2, Exported 2, Deactivate 2, Reactivate 2, Escalate 2, MarkDrift 2.
    assert_eq!(allowed, 4 + 7 + 2 + 6 + 2 + 2 + 2 + 2 + 2 + 2 + 2);
}

#[test]
fn a_withdrawn_subscription_cannot_be_reactivated() {
    let mut order = in_status(OrderStatus::Withdrawn, true, false);
    order.subscription =
        Some(crate::domain::order::Subscription { state: SubscriptionState::Inactive, approved_once: true });
    let r = apply(&order, Command::Reactivate { by: alice(), at: at() }, &on());
    assert!(matches!(&r, Err(TransitionError::InvalidState(m)) if m.contains("withdrawn")), "{r:?}");
}

// ---- submit ----------------------------------------------------------------------------------

#[test]
fn submit_with_stages_opens_the_first_level_only() {
    let t = submit(&draft(false), r1_plan());
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert_eq!(t.order.plan.stages[0].state, StageState::Open);
    assert_eq!(t.order.plan.stages[1].state, StageState::Waiting);
    assert_eq!(actions(&t), ["order_submitted", "stage_opened"]);
    assert_eq!(t.order.version, 1);
    assert_eq!(t.order.submitted_at, Some(at()));
}

#[test]
fn submit_without_stages_approves_at_once() {
    let t = submit(&draft(false), vec![]);
    assert_eq!(t.order.status, OrderStatus::Approved);
    assert_eq!(t.order.approved_at, Some(at()));
    assert_eq!(actions(&t), ["order_submitted", "order_approved"]);
}

#[test]
fn submit_rejected_by_a_step_records_the_reason() {
    let a = assessment(r1_plan(), Outcome::Reject { by: "step:vendor".into(), reason: "blocked vendor".into() });
    let t = apply(&draft(false), Command::Submit { by: alice(), assessment: a, at: at() }, &on()).expect("submit");
    assert_eq!(t.order.status, OrderStatus::Rejected);
    let r = t.order.rejection.clone().expect("rejection");
    assert_eq!((r.by.as_str(), r.reason.as_str()), ("step:vendor", "blocked vendor"));
    assert_eq!(actions(&t), ["order_submitted", "order_rejected"]);
}

#[test]
fn submit_with_a_failed_step_holds_and_never_approves() {
    let a = assessment(vec![], Outcome::Hold { reason: "step 'x' ran out of fuel".into() });
    let t = apply(&draft(false), Command::Submit { by: alice(), assessment: a, at: at() }, &on()).expect("submit");
    assert_eq!(t.order.status, OrderStatus::OnHold);
    assert_eq!(t.order.hold_reason.as_deref(), Some("step 'x' ran out of fuel"));
    assert_eq!(actions(&t), ["order_submitted", "order_held"]);
}

#[test]
fn an_assessment_out_of_bounds_holds_instead_of_panicking_or_wrapping() {
    let mut far = stage("far", 1, role("approver"), Quorum::Any);
    far.due_in_hours = Some(u32::MAX);
    let t = submit(&draft(false), vec![far]);
    assert_eq!(t.order.status, OrderStatus::OnHold);
    assert!(t.order.hold_reason.as_deref().is_some_and(|r| r.contains("stage 'far'")), "{:?}", t.order.hold_reason);
    assert!(t.order.plan.stages.is_empty());

    let tax = |amount_minor| PriceAdjustment {
        kind: PriceKind::Tax,
        code: "T".into(),
        amount_minor,
        description: None,
        source: "s".into(),
    };
    let mut a = assessment(r1_plan(), Outcome::Proceed);
    a.adjustments = vec![tax(i64::MAX), tax(i64::MAX)];
    let t = apply(&draft(false), Command::Submit { by: alice(), assessment: a, at: at() }, &on()).expect("submit");
    assert_eq!(t.order.status, OrderStatus::OnHold);
    assert!(t.order.adjustments.is_empty());
    assert_eq!((t.order.tax_minor(), t.order.total_minor()), (0, 1000));

    let mut near = stage("near", 1, role("approver"), Quorum::Any);
    near.due_in_hours = Some(MAX_DUE_IN_HOURS);
    let t = submit(&draft(false), vec![near]);
    assert_eq!(t.order.plan.stages[0].due_at, Some(at() + chrono::TimeDelta::hours(i64::from(MAX_DUE_IN_HOURS))));
}

#[test]
fn an_on_hold_order_can_be_resubmitted() {
    let a = assessment(vec![], Outcome::Hold { reason: "x".into() });
    let held =
        apply(&draft(false), Command::Submit { by: alice(), assessment: a, at: at() }, &on()).expect("hold").order;
    let t = submit(&held, r1_plan());
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert_eq!(t.order.hold_reason, None);
}

#[test]
fn only_the_requester_submits_and_only_once() {
    let cmd = Command::Submit { by: bob(), assessment: assessment(vec![], Outcome::Proceed), at: at() };
    assert!(matches!(apply(&draft(false), cmd, &on()), Err(TransitionError::Forbidden(_))));
    let pending = submit(&draft(false), r1_plan()).order;
    let again = Command::Submit { by: alice(), assessment: assessment(vec![], Outcome::Proceed), at: at() };
    assert!(matches!(apply(&pending, again, &on()), Err(TransitionError::InvalidState(_))));
}

// ---- edit ------------------------------------------------------------------------------------

#[test]
fn editing_a_draft_needs_no_evaluation() {
    let mut i = input(false);
    i.department = Some("IT".into());
    let t = apply(
        &draft(false),
        Command::Edit { by: alice(), input: i, subtotal_minor: 1000, assessment: None, at: at() },
        &on(),
    )
    .expect("edit");
    assert_eq!(t.order.status, OrderStatus::Draft);
    assert_eq!(t.order.input.department.as_deref(), Some("IT"));
    assert_eq!(actions(&t), ["order_edited"]);
}

#[test]
fn editing_a_pending_order_resets_decisions_and_re_evaluates() {
    let t = submit(&draft(false), r1_plan());
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    assert_eq!(t.order.plan.stages[0].state, StageState::Approved);
    let edit = Command::Edit {
        by: alice(),
        input: input(false),
        subtotal_minor: 2000,
        assessment: Some(assessment(r1_plan(), Outcome::Proceed)),
        at: at(),
    };
    let t = apply(&t.order, edit, &on()).expect("edit");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert!(t.order.plan.stages.iter().all(|s| s.decisions.is_empty()));
    assert_eq!(t.order.plan.stages[0].state, StageState::Open);
    assert_eq!(actions(&t)[..2], ["order_edited", "approval_reset"]);
}

#[test]
fn editing_past_draft_without_evaluation_is_refused() {
    let pending = submit(&draft(false), r1_plan()).order;
    let edit = Command::Edit { by: alice(), input: input(false), subtotal_minor: 1000, assessment: None, at: at() };
    assert!(matches!(apply(&pending, edit, &on()), Err(TransitionError::Invalid { .. })));
}

#[test]
fn editing_an_approved_subscription_reopens_approval() {
    let approved = approved_order(true);
    assert!(approved.subscription.as_ref().is_some_and(|s| s.approved_once));
    let edit = Command::Edit {
        by: alice(),
        input: input(true),
        subtotal_minor: 5000,
        assessment: Some(assessment(r1_plan(), Outcome::Proceed)),
        at: at(),
    };
    let t = apply(&approved, edit, &on()).expect("edit");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert!(t.order.subscription.as_ref().is_some_and(|s| !s.approved_once));
    assert_eq!(t.order.approved_at, None);
}

#[test]
fn editing_an_approved_one_off_order_is_a_conflict() {
    let edit = Command::Edit { by: alice(), input: input(false), subtotal_minor: 1, assessment: None, at: at() };
    assert!(matches!(apply(&approved_order(false), edit, &on()), Err(TransitionError::InvalidState(_))));
}

#[test]
fn an_order_cannot_turn_into_a_subscription_after_submission() {
    let pending = submit(&draft(false), r1_plan()).order;
    let edit = Command::Edit {
        by: alice(),
        input: input(true),
        subtotal_minor: 1000,
        assessment: Some(assessment(vec![], Outcome::Proceed)),
        at: at(),
    };
    assert!(
        matches!(apply(&pending, edit, &on()), Err(TransitionError::Invalid { field, .. }) if field == "recurrence")
    );
}

// ---- decide ----------------------------------------------------------------------------------

#[test]
fn approving_the_last_stage_of_a_level_opens_the_next() {
    let t = submit(&draft(false), r1_plan());
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert_eq!(t.order.plan.stages[1].state, StageState::Open);
    assert_eq!(actions(&t), ["decision_recorded", "stage_approved", "stage_opened"]);
}

#[test]
fn approving_the_last_level_approves_the_order() {
    let t = submit(&draft(false), r1_plan());
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    let t = approve(&t.order, carol(), "user-approval").expect("user");
    assert_eq!(t.order.status, OrderStatus::Approved);
    assert!(t.order.plan.all_approved());
    assert_eq!(actions(&t), ["decision_recorded", "stage_approved", "order_approved"]);
}

#[test]
fn a_quorum_of_two_needs_two_distinct_people() {
    let t = submit(&draft(false), vec![stage("board", 1, role("approver"), Quorum::AtLeast(2))]);
    let t = approve(&t.order, carol(), "board").expect("first");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert_eq!(t.order.plan.stages[0].state, StageState::Open);
    assert!(matches!(approve(&t.order, carol(), "board"), Err(TransitionError::InvalidState(_))));
    let t = approve(&t.order, bob(), "board").expect("second");
    assert_eq!(t.order.status, OrderStatus::Approved);
}

#[test]
fn quorum_all_needs_every_listed_user() {
    let users = Approvers::Users { users: vec!["bob".into(), "carol".into()] };
    let t = submit(&draft(false), vec![stage("pair", 1, users, Quorum::All)]);
    let t = approve(&t.order, bob(), "pair").expect("bob");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    let t = approve(&t.order, carol(), "pair").expect("carol");
    assert_eq!(t.order.status, OrderStatus::Approved);
    assert!(matches!(
        approve(
            &submit(&draft(false), vec![stage("pair", 1, Approvers::Users { users: vec!["bob".into()] }, Quorum::All)])
                .order,
            carol(),
            "pair"
        ),
        Err(TransitionError::Forbidden(_))
    ));
}

#[test]
fn parallel_stages_of_one_level_all_have_to_approve() {
    let plan = vec![
        stage("compliance", 1, role("compliance"), Quorum::Any),
        stage("finance", 1, role("finance"), Quorum::Any),
        stage("exec", 2, role("executive"), Quorum::Any),
    ];
    let t = submit(&draft(false), plan);
    assert_eq!(t.order.plan.open_stages().count(), 2);
    let t = approve(&t.order, actor("erin", &["finance"]), "finance").expect("finance first");
    assert_eq!(t.order.plan.stage("exec").map(|s| s.state), Some(StageState::Waiting));
    assert!(matches!(approve(&t.order, actor("frank", &["executive"]), "exec"), Err(TransitionError::InvalidState(_))));
    let t = approve(&t.order, actor("dave", &["compliance"]), "compliance").expect("compliance second");
    assert_eq!(t.order.plan.stage("exec").map(|s| s.state), Some(StageState::Open));
}

#[test]
fn a_rejection_needs_a_reason_and_rejects_the_order() {
    let t = submit(&draft(false), r1_plan());
    for empty in [None, Some(""), Some("   ")] {
        let r = decide(&t.order, bob(), "cost-center", Verdict::Reject, empty, &on());
        assert!(matches!(r, Err(TransitionError::Invalid { ref field, .. }) if field == "comment"), "{empty:?}");
    }
    let t = decide(&t.order, bob(), "cost-center", Verdict::Reject, Some("over budget"), &on()).expect("reject");
    assert_eq!(t.order.status, OrderStatus::Rejected);
    assert_eq!(t.order.rejection.as_ref().map(|r| r.reason.as_str()), Some("over budget"));
    assert_eq!(t.order.plan.stages[0].state, StageState::Rejected);
    assert_eq!(actions(&t), ["decision_recorded", "stage_rejected", "order_rejected"]);
}

#[test]
fn nobody_decides_their_own_order_even_holding_the_role() {
    let t = submit(&draft(false), vec![stage("user-approval", 1, role("approver"), Quorum::Any)]);
    assert!(matches!(approve(&t.order, alice(), "user-approval"), Err(TransitionError::Forbidden(_))));
}

#[test]
fn only_the_stage_approvers_decide_it() {
    let t = submit(&draft(false), r1_plan());
    assert!(matches!(approve(&t.order, carol(), "cost-center"), Err(TransitionError::Forbidden(_))));
}

#[test]
fn one_person_cannot_decide_two_stages_unless_the_setting_is_off() {
    let t = submit(&draft(false), r1_plan());
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    assert!(matches!(approve(&t.order, bob(), "user-approval"), Err(TransitionError::Forbidden(_))));
    let off = Policy { one_stage_per_person: false, ..Policy::default() };
    let t = decide(&t.order, bob(), "user-approval", Verdict::Approve, None, &off).expect("allowed when off");
    assert_eq!(t.order.status, OrderStatus::Approved);
}

#[test]
fn a_later_level_cannot_be_decided_before_an_earlier_one() {
    let t = submit(&draft(false), r1_plan());
    assert!(matches!(approve(&t.order, carol(), "user-approval"), Err(TransitionError::InvalidState(_))));
}

#[test]
fn unknown_stage_is_invalid_and_a_decided_order_is_a_conflict() {
    let t = submit(&draft(false), r1_plan());
    assert!(
        matches!(approve(&t.order, bob(), "nope"), Err(TransitionError::Invalid { ref field, .. }) if field == "stage")
    );
    assert!(matches!(approve(&approved_order(false), carol(), "user-approval"), Err(TransitionError::InvalidState(_))));
    assert!(matches!(approve(&draft(false), bob(), "cost-center"), Err(TransitionError::InvalidState(_))));
}

#[test]
fn a_delegate_decides_with_the_delegators_authority() {
    let t = submit(&draft(false), r1_plan());
    let cmd = Command::Decide {
        by: actor("dora", &["requester"]),
        on_behalf_of: Some(bob()),
        stage: "cost-center".into(),
        verdict: Verdict::Approve,
        comment: None,
        via: None,
        at: at(),
    };
    let t = apply(&t.order, cmd, &on()).expect("delegated");
    let d = &t.order.plan.stages[0].decisions[0];
    assert_eq!((d.by.as_str(), d.on_behalf_of.as_deref()), ("dora", Some("bob")));
    // bob's authority is used up for this order: he cannot take the second stage himself.
    assert!(matches!(approve(&t.order, bob(), "user-approval"), Err(TransitionError::Forbidden(_))));
}

#[test]
fn the_erp_taking_an_approved_order_releases_it_with_its_reference() {
    let cmd = |at| Command::Exported { external_ref: "SO-1001".into(), connector: "erp-rest".into(), at };
    let t = apply(&approved_order(false), cmd(at()), &on()).expect("exported");
    assert_eq!((t.order.status, t.order.external_ref.as_deref()), (OrderStatus::Released, Some("SO-1001")));
    assert_eq!(actions(&t), ["order_released"]);
    assert_eq!(Command::Exported { external_ref: "x".into(), connector: "c".into(), at: at() }.actor(), RELEASER);
    // Only an approved order goes to the ERP; a second export finds it released already.
    assert!(matches!(apply(&t.order, cmd(at()), &on()), Err(TransitionError::InvalidState(_))));
    let pending = submit(&draft(false), r1_plan()).order;
    assert!(matches!(apply(&pending, cmd(at()), &on()), Err(TransitionError::InvalidState(_))));
}

// ---- escalate (R6) ----------------------------------------------------------------------------
