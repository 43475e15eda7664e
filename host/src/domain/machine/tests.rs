//! The state machine, transition by transition (the table at the top of `machine.rs`), then
//! property tests over random command sequences.

use super::*;
use crate::domain::audit::{AuditEntry, verify};
use crate::domain::order::{OrderInput, Recurrence};
use crate::domain::plan::{Approvers, Quorum, Stage, StageState, Verdict};
use chrono::TimeZone;
use proptest::prelude::*;

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
    Policy { one_stage_per_person: true }
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
    let source = include_str!("mod.rs");
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
    let off = Policy { one_stage_per_person: false };
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

/// r1_plan whose cost-center stage is due 4 hours after opening, escalating to `dave`.
fn due_plan(escalate_to: Option<Approvers>) -> Vec<Stage> {
    let mut plan = r1_plan();
    plan[0].due_in_hours = Some(4);
    plan[0].escalate_to = escalate_to;
    plan
}

fn escalate(order: &Order, hours_later: i64) -> Result<Transition, TransitionError> {
    apply(order, Command::Escalate { at: at() + chrono::Duration::hours(hours_later) }, &on())
}

#[test]
fn opening_a_stage_with_a_due_time_sets_when_it_is_overdue() {
    let t = submit(&draft(false), due_plan(None));
    assert_eq!(t.order.plan.stages[0].due_at, Some(at() + chrono::Duration::hours(4)));
    assert_eq!(t.order.plan.stages[1].due_at, None, "a waiting stage has no due time yet");
    assert!(matches!(&t.events[1], Event::StageOpened { due_at: Some(_), .. }));
}

#[test]
fn escalate_before_the_due_time_is_refused() {
    let t = submit(&draft(false), due_plan(Some(actor_users(&["dave"]))));
    assert!(matches!(escalate(&t.order, 3), Err(TransitionError::InvalidState(_))));
}

fn actor_users(names: &[&str]) -> Approvers {
    Approvers::Users { users: names.iter().map(|n| n.to_string()).collect() }
}

#[test]
fn an_overdue_stage_escalates_and_its_target_may_decide_it() {
    let dave = actor("dave", &["requester"]);
    let t = submit(&draft(false), due_plan(Some(actor_users(&["dave"]))));
    assert!(matches!(approve(&t.order, dave.clone(), "cost-center"), Err(TransitionError::Forbidden(_))));
    let t = escalate(&t.order, 4).expect("due exactly now");
    assert_eq!(actions(&t), ["stage_escalated"]);
    assert_eq!(t.order.plan.stages[0].state, StageState::Escalated);
    assert_eq!(decidable_stages(&t.order, &dave, &on()), ["cost-center"]);
    // The original approver keeps the stage too; escalation widens, it does not take away.
    assert_eq!(decidable_stages(&t.order, &bob(), &on()), ["cost-center"]);
    // Escalating twice finds nothing new.
    assert!(matches!(escalate(&t.order, 10), Err(TransitionError::InvalidState(_))));
    let by_bob = approve(&t.order, bob(), "cost-center").expect("the approver decides");
    assert!(matches!(by_bob.events[0], Event::DecisionRecorded { escalation_target: false, .. }));
    let t = approve(&t.order, dave, "cost-center").expect("the target decides");
    assert!(
        matches!(t.events[0], Event::DecisionRecorded { escalation_target: true, .. }),
        "a decision by the escalation target is marked as one (the drift report lists it)"
    );
    assert_eq!(t.order.plan.stages[0].state, StageState::Approved);
    assert_eq!(t.order.plan.stages[1].state, StageState::Open);
}

#[test]
fn without_a_named_target_an_overdue_stage_goes_to_the_tenants_admins() {
    let t = escalate(&submit(&draft(false), due_plan(None)).order, 5).expect("escalated");
    let Event::StageEscalated { escalated_to, .. } = &t.events[0] else { panic!("{:?}", t.events) };
    assert_eq!(*escalated_to, role("admin"));
    assert_eq!(decidable_stages(&t.order, &actor("ada", &["admin"]), &on()), ["cost-center"]);
}

#[test]
fn escalation_still_keeps_the_requester_and_segregation_rules() {
    // The requester holds the target role: still never decides their own order.
    let t = escalate(&submit(&draft(false), due_plan(Some(role("requester")))).order, 4).expect("escalated");
    assert!(matches!(approve(&t.order, alice(), "cost-center"), Err(TransitionError::Forbidden(_))));
    assert!(decidable_stages(&t.order, &alice(), &on()).is_empty());
}

#[test]
fn escalate_only_applies_to_pending_orders() {
    assert!(matches!(escalate(&approved_order(false), 100), Err(TransitionError::InvalidState(_))));
    assert!(matches!(escalate(&draft(false), 100), Err(TransitionError::InvalidState(_))));
}

#[test]
fn a_revoked_approval_reopens_with_a_fresh_due_time() {
    let t = submit(&draft(false), due_plan(None));
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    let t = approve(&t.order, carol(), "user-approval").expect("user");
    let later = at() + chrono::Duration::hours(24);
    let cmd = Command::Revoke { by: actor("ada", &["admin"]), reason: "wrong budget".into(), at: later };
    let t = apply(&t.order, cmd, &on()).expect("revoked");
    assert_eq!(t.order.plan.stages[0].due_at, Some(later + chrono::Duration::hours(4)));
}

// ---- withdraw, revoke, release ---------------------------------------------------------------

#[test]
fn the_requester_withdraws_an_open_order() {
    let pending = submit(&draft(false), r1_plan()).order;
    assert!(matches!(
        apply(&pending, Command::Withdraw { by: bob(), at: at() }, &on()),
        Err(TransitionError::Forbidden(_))
    ));
    let t = apply(&pending, Command::Withdraw { by: alice(), at: at() }, &on()).expect("withdraw");
    assert_eq!(t.order.status, OrderStatus::Withdrawn);
    assert_eq!(t.order.plan.open_stages().count(), 0);
    assert!(matches!(
        apply(&approved_order(false), Command::Withdraw { by: alice(), at: at() }, &on()),
        Err(TransitionError::InvalidState(_))
    ));
}

#[test]
fn an_admin_revokes_an_approval_back_to_pending() {
    let admin = actor("root", &["admin"]);
    let approved = approved_order(false);
    assert!(matches!(
        apply(&approved, Command::Revoke { by: bob(), reason: "x".into(), at: at() }, &on()),
        Err(TransitionError::Forbidden(_))
    ));
    assert!(matches!(
        apply(&approved, Command::Revoke { by: admin.clone(), reason: " ".into(), at: at() }, &on()),
        Err(TransitionError::Invalid { .. })
    ));
    let t = apply(&approved, Command::Revoke { by: admin, reason: "wrong supplier".into(), at: at() }, &on())
        .expect("revoke");
    assert_eq!(t.order.status, OrderStatus::PendingApproval);
    assert!(t.order.plan.stages.iter().all(|s| s.decisions.is_empty()));
    assert_eq!(t.order.plan.stages[0].state, StageState::Open);
    assert_eq!(actions(&t), ["approval_revoked", "stage_opened"]);
}

#[test]
fn revoking_an_order_that_needed_no_stage_holds_it() {
    let approved = submit(&draft(false), vec![]).order;
    let t =
        apply(&approved, Command::Revoke { by: actor("root", &["admin"]), reason: "mistake".into(), at: at() }, &on())
            .expect("revoke");
    assert_eq!(t.order.status, OrderStatus::OnHold);
}

#[test]
fn release_needs_admin_or_finance_and_an_approved_order() {
    let approved = approved_order(false);
    assert!(matches!(
        apply(&approved, Command::Release { by: carol(), at: at() }, &on()),
        Err(TransitionError::Forbidden(_))
    ));
    let t = apply(&approved, Command::Release { by: actor("erin", &["finance"]), at: at() }, &on()).expect("release");
    assert_eq!(t.order.status, OrderStatus::Released);
    let revoke = Command::Revoke { by: actor("root", &["admin"]), reason: "x".into(), at: at() };
    assert!(matches!(apply(&t.order, revoke, &on()), Err(TransitionError::InvalidState(_))));
}

// ---- subscriptions ---------------------------------------------------------------------------

#[test]
fn a_reactivated_subscription_stays_approved_without_new_stages() {
    let approved = approved_order(true);
    let t = apply(&approved, Command::Deactivate { by: alice(), at: at() }, &on()).expect("deactivate");
    assert_eq!(t.order.status, OrderStatus::Approved);
    assert_eq!(t.order.subscription.as_ref().map(|s| s.state), Some(SubscriptionState::Inactive));
    let t = apply(&t.order, Command::Reactivate { by: alice(), at: at() }, &on()).expect("reactivate");
    assert_eq!(t.order.status, OrderStatus::Approved);
    assert_eq!(t.order.subscription.as_ref().map(|s| s.state), Some(SubscriptionState::Active));
    assert_eq!(t.order.plan, approved.plan, "no new stages, no reset decisions");
    assert_eq!(actions(&t), ["subscription_reactivated"]);
}

#[test]
fn subscription_state_changes_need_a_subscription_in_the_right_state() {
    assert!(matches!(
        apply(&approved_order(false), Command::Deactivate { by: alice(), at: at() }, &on()),
        Err(TransitionError::InvalidState(_))
    ));
    let pending = submit(&draft(true), r1_plan()).order;
    assert!(matches!(
        apply(&pending, Command::Deactivate { by: alice(), at: at() }, &on()),
        Err(TransitionError::InvalidState(_))
    ));
    assert!(matches!(
        apply(&approved_order(true), Command::Reactivate { by: alice(), at: at() }, &on()),
        Err(TransitionError::InvalidState(_))
    ));
    assert!(matches!(
        apply(&approved_order(true), Command::Deactivate { by: carol(), at: at() }, &on()),
        Err(TransitionError::Forbidden(_))
    ));
}

#[test]
fn decidable_stages_is_the_inbox_rule() {
    let t = submit(&draft(false), r1_plan());
    assert_eq!(decidable_stages(&t.order, &bob(), &on()), ["cost-center"]);
    assert!(decidable_stages(&t.order, &carol(), &on()).is_empty(), "level 2 not open yet");
    assert!(decidable_stages(&t.order, &alice(), &on()).is_empty(), "own order");
    let t = approve(&t.order, bob(), "cost-center").expect("cc");
    assert_eq!(decidable_stages(&t.order, &carol(), &on()), ["user-approval"]);
    assert!(decidable_stages(&t.order, &bob(), &on()).is_empty(), "already took a stage");
    assert_eq!(decidable_stages(&t.order, &bob(), &Policy { one_stage_per_person: false }), ["user-approval"]);
}

// ---- properties ------------------------------------------------------------------------------

const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

fn person(i: usize, roles_mask: u8) -> Actor {
    let all = ["approver", "compliance", "admin", "finance"];
    let roles: Vec<&str> =
        all.iter().enumerate().filter(|(b, _)| roles_mask & (1 << b) != 0).map(|(_, r)| *r).collect();
    actor(PEOPLE[i % PEOPLE.len()], &roles)
}

fn arb_stage(i: usize) -> impl Strategy<Value = Stage> {
    (1u32..=3, 0usize..4, 0u32..3, 0u32..4).prop_map(move |(level, who, q, due)| {
        let approvers = match who {
            0 => role("approver"),
            1 => role("compliance"),
            2 => Approvers::Users { users: vec!["bob".into(), "carol".into(), "dave".into()] },
            _ => manager("bob"),
        };
        let quorum = match (q, &approvers) {
            (1, Approvers::Users { .. }) => Quorum::All,
            (2, Approvers::Role { .. }) => Quorum::AtLeast(2),
            _ => Quorum::Any,
        };
        let mut s = stage(&format!("s{i}"), level, approvers, quorum);
        // Some stages fall due (0 or 2 hours after opening) and escalate to the executives or,
        // naming nobody, to the admins.
        s.due_in_hours = [None, Some(0), Some(2), Some(2)][due as usize];
        s.escalate_to = (due == 3).then(|| role("executive"));
        s
    })
}

fn arb_plan() -> impl Strategy<Value = Vec<Stage>> {
    (0usize..4).prop_flat_map(|n| (0..n).map(arb_stage).collect::<Vec<_>>()).prop_map(|mut v| {
        v.sort_by_key(|s| s.level);
        v
    })
}

#[derive(Debug, Clone)]
enum Op {
    Submit(Vec<Stage>, u8),
    /// New stages; whether the edit turns the order into a subscription or out of one.
    Edit(Vec<Stage>, bool),
    Decide(usize, u8, usize, bool, bool),
    Withdraw(usize),
    Revoke(usize, u8),
    Release(usize, u8),
    Deactivate,
    Reactivate,
    Escalate(u8),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (arb_plan(), 0u8..10).prop_map(|(p, o)| Op::Submit(p, o)),
        (arb_plan(), any::<bool>()).prop_map(|(p, toggle)| Op::Edit(p, toggle)),
        (0usize..5, 0u8..16, 0usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5, 0u8..16, 0usize..4, Just(true), Just(false)).prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5, 0u8..16, 0usize..4, Just(true), Just(false)).prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5).prop_map(Op::Withdraw),
        (0usize..5, 0u8..16).prop_map(|(p, r)| Op::Revoke(p, r)),
        (0usize..5, 0u8..16).prop_map(|(p, r)| Op::Release(p, r)),
        Just(Op::Deactivate),
        Just(Op::Reactivate),
        (0u8..4).prop_map(Op::Escalate),
    ]
}

fn command(op: Op, order: &Order) -> Command {
    let requester = actor("alice", &["approver"]);
    match op {
        Op::Submit(stages, o) => {
            let outcome = match o {
                0 => Outcome::Hold { reason: "step failed".into() },
                1 => Outcome::Reject { by: "step:x".into(), reason: "no".into() },
                _ => Outcome::Proceed,
            };
            Command::Submit { by: requester, assessment: assessment(stages, outcome), at: at() }
        }
        Op::Edit(stages, toggle) => Command::Edit {
            by: requester,
            input: {
                let mut input = order.input.clone();
                if toggle {
                    input.recurrence = match input.recurrence {
                        Some(_) => None,
                        None => Some(Recurrence { interval: "P1M".into() }),
                    };
                }
                input
            },
            subtotal_minor: order.subtotal_minor,
            assessment: Some(assessment(stages, Outcome::Proceed)),
            at: at(),
        },
        Op::Decide(p, r, s, approve, comment) => Command::Decide {
            by: person(p, r),
            on_behalf_of: None,
            stage: format!("s{s}"),
            verdict: if approve { Verdict::Approve } else { Verdict::Reject },
            comment: comment.then(|| "reason".to_string()),
            via: None,
            at: at(),
        },
        Op::Withdraw(p) => Command::Withdraw { by: person(p, 0), at: at() },
        Op::Revoke(p, r) => Command::Revoke { by: person(p, r), reason: "wrong".into(), at: at() },
        Op::Release(p, r) => Command::Release { by: person(p, r), at: at() },
        Op::Deactivate => Command::Deactivate { by: requester, at: at() },
        Op::Reactivate => Command::Reactivate { by: requester, at: at() },
        Op::Escalate(h) => Command::Escalate { at: at() + chrono::Duration::hours(i64::from(h)) },
    }
}

/// JSON the way the audit chain's documentation defines it, written out here instead of taken
/// from the host: compact, object keys sorted by their bytes, strings with JSON's escapes.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                canonical_json(&o[k], out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The next entry of a chain, hashed as the README documents it: SHA-256 over `prev_hash`, a
/// newline, and `{"seq","at","actor","action","order_id","data"}` in that order, canonical JSON.
/// The host's own [`AuditEntry::next`] must agree.
fn independent_entry(
    prev: Option<&AuditEntry>,
    actor: &str,
    action: &str,
    order_id: &str,
    data: serde_json::Value,
) -> AuditEntry {
    use sha2::{Digest, Sha256};
    let (seq, prev_hash) =
        prev.map(|p| (p.seq + 1, p.hash.clone())).unwrap_or((1, crate::domain::audit::GENESIS.into()));
    let at_text = crate::domain::audit::timestamp(at());
    let mut text = format!("{prev_hash}\n{{\"seq\":{seq},\"at\":");
    json_string(&at_text, &mut text);
    text.push_str(",\"actor\":");
    json_string(actor, &mut text);
    text.push_str(",\"action\":");
    json_string(action, &mut text);
    text.push_str(",\"order_id\":");
    json_string(order_id, &mut text);
    text.push_str(",\"data\":");
    canonical_json(&data, &mut text);
    text.push('}');
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let host =
        AuditEntry::next(prev.map(|p| (p.seq, p.hash.as_str())), at(), actor, action, Some(order_id), data.clone());
    assert_eq!(host.hash, hash, "the host hashes {action} differently from the documented form: {text}");
    AuditEntry {
        seq,
        at: at_text,
        actor: actor.into(),
        action: action.into(),
        order_id: Some(order_id.into()),
        data,
        prev_hash,
        hash,
    }
}

fn check_invariants(order: &Order, policy: &Policy) -> Result<(), TestCaseError> {
    if matches!(order.status, OrderStatus::Approved | OrderStatus::Released) {
        for s in &order.plan.stages {
            prop_assert!(
                s.state == StageState::Approved && s.satisfied(),
                "approved order with unsatisfied stage {}",
                s.key
            );
        }
    }
    for s in &order.plan.stages {
        prop_assert!(!s.decided_by(&order.requester), "the requester decided stage {}", s.key);
        let mut seen: Vec<&str> = s.decisions.iter().map(|d| d.by.as_str()).collect();
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), n, "someone counted twice on stage {}", &s.key);
        if s.state == StageState::Approved {
            prop_assert!(s.satisfied());
        }
        if s.state == StageState::Escalated {
            prop_assert!(s.due_at.is_some(), "stage {} escalated without a due time", &s.key);
        }
    }
    if policy.one_stage_per_person {
        for p in PEOPLE {
            let stages = order.plan.stages.iter().filter(|s| s.decided_by(p)).count();
            prop_assert!(stages <= 1, "{} decided {} stages", p, stages);
        }
    }
    if order.status == OrderStatus::PendingApproval {
        prop_assert!(order.plan.open_stages().count() > 0, "pending order with no open stage");
        let level = order.plan.current_level();
        prop_assert!(
            order.plan.open_stages().all(|s| Some(s.level) == level),
            "a stage is open beyond the current level"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(
        recurring in any::<bool>(),
        sod in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 1..40),
    ) {
        let policy = Policy { one_stage_per_person: sod };
        let mut order = draft(recurring);
        let mut chain: Vec<AuditEntry> = Vec::new();
        for op in ops {
            let cmd = command(op, &order);
            let (kind, actor_name) = (cmd.kind(), cmd.actor().to_string());
            match apply(&order, cmd, &policy) {
                Ok(t) => {
                    prop_assert_eq!(t.order.version, order.version + 1);
                    prop_assert!(!t.events.is_empty());
                    let rule = table::rule_for(&order, kind);
                    prop_assert!(rule.is_some_and(|r| r.to.contains(&t.order.status)), "{:?} took {:?} to {:?}", kind, order.status, t.order.status);
                    let subscription_event = t.events.iter().any(|e| matches!(e, Event::SubscriptionDeactivated | Event::SubscriptionReactivated));
                    if subscription_event {
                        prop_assert!(order.is_subscription(), "a subscription event on an order that is not one");
                        prop_assert!(
                            matches!(order.status, OrderStatus::Approved | OrderStatus::Released)
                                && order.status == t.order.status,
                            "a subscription event on a {:?} order", order.status
                        );
                    }
                    prop_assert_eq!(t.order.is_subscription(), t.order.input.recurrence.is_some());
                    for e in &t.events {
                        let data = serde_json::to_value(e).unwrap_or_default();
                        let entry = independent_entry(chain.last(), &actor_name, e.action(), &order.id, data);
                        chain.push(entry);
                    }
                    order = t.order;
                    check_invariants(&order, &policy)?;
                }
                Err(e) => {
                    // A refused command changes nothing (the order value is untouched by design);
                    // the refusal must be one the rules explain.
                    let rule = table::rule_for(&order, kind);
                    match (&e, rule) {
                        (TransitionError::Forbidden(_), _) => {}
                        (TransitionError::InvalidState(m), None) => prop_assert_eq!(m, &table::refusal(&order, kind)),
                        (TransitionError::InvalidState(m), Some(_)) => prop_assert!(
                            matches!(kind, CommandKind::Decide | CommandKind::Deactivate | CommandKind::Reactivate | CommandKind::Escalate),
                            "{:?} refused by its own state check although the table allows it: {}", kind, m
                        ),
                        (TransitionError::Invalid { field, .. }, Some(_)) => prop_assert!(
                            matches!((kind, field.as_str()), (CommandKind::Decide, "comment" | "stage") | (CommandKind::Revoke, "reason") | (CommandKind::Edit, "recurrence")),
                            "{:?} refused as invalid {}: {}", kind, field, e
                        ),
                        (TransitionError::Invalid { .. }, None) => prop_assert!(false, "{:?} in {:?} refused as invalid before the table: {}", kind, order.status, e),
                    }
                }
            }
        }
        let report = verify(&chain);
        prop_assert!(report.ok, "the domain's verifier refuses a chain hashed by the documented form: {:?}", report);
        if let Some(last) = chain.last() {
            prop_assert_eq!(&report.head_hash, &last.hash);
        }
    }

    #[test]
    fn approval_of_every_stage_in_level_order_always_approves(plan in arb_plan()) {
        let policy = Policy { one_stage_per_person: false };
        let mut order = submit(&draft(false), plan).order;
        let deciders = [actor("bob", &["approver", "compliance"]), actor("carol", &["approver", "compliance"]), actor("dave", &["approver", "compliance"])];
        let mut guard = 0;
        while order.status == OrderStatus::PendingApproval && guard < 100 {
            guard += 1;
            let key = order.plan.open_stages().next().map(|s| s.key.clone());
            let Some(key) = key else { break };
            for d in &deciders {
                if let Ok(t) = decide(&order, d.clone(), &key, Verdict::Approve, None, &policy) {
                    order = t.order;
                    break;
                }
            }
        }
        prop_assert_eq!(order.status, OrderStatus::Approved);
        prop_assert!(order.plan.all_approved());
    }
}

#[test]
fn the_drift_check_flags_a_pending_order_replaces_and_clears_the_flag_and_nothing_else() {
    use crate::domain::drift::{DRIFT_CHECKER, DRIFT_FLAG, PlanDifference};
    let difference = |added: &str| PlanDifference {
        before: OrderStatus::PendingApproval,
        after: OrderStatus::PendingApproval,
        stages_added: vec![added.to_string()],
        stages_removed: vec![],
        stages_changed: vec![],
        flags_added: vec![],
        flags_removed: vec![],
    };
    let mark =
        |order: &Order, drift: Option<PlanDifference>| apply(order, Command::MarkDrift { drift, at: at() }, &on());
    let order = in_status(OrderStatus::PendingApproval, false, true);
    let flagged = mark(&order, Some(difference("executive"))).expect("flags");
    let drift_flags = |o: &Order| o.flags.iter().filter(|f| f.code == DRIFT_FLAG && f.source == DRIFT_CHECKER).count();
    assert_eq!(drift_flags(&flagged.order), 1);
    assert!(matches!(&flagged.events[..], [Event::PolicyDrift { .. }]));
    assert_eq!((flagged.order.status, &flagged.order.plan), (order.status, &order.plan), "only the flag changes");
    assert!(flagged.order.flags[0].message.contains("stages added: executive"));
    // The same drift again is no change; another one replaces it.
    assert!(matches!(mark(&flagged.order, Some(difference("executive"))), Err(TransitionError::InvalidState(_))));
    let other = mark(&flagged.order, Some(difference("legal"))).expect("replaces");
    assert_eq!(drift_flags(&other.order), 1);
    assert!(other.order.flags[0].message.contains("legal"));
    // Cleared once the rules plan the order as it is again; nothing to clear is refused.
    let cleared = mark(&other.order, None).expect("clears");
    assert_eq!(drift_flags(&cleared.order), 0);
    assert_eq!(cleared.events, vec![Event::PolicyDriftCleared]);
    assert!(matches!(mark(&cleared.order, None), Err(TransitionError::InvalidState(_))));
    // An edit re-evaluates the order: the flag goes with the old plan, on the record.
    let edit = Command::Edit {
        by: alice(),
        input: other.order.input.clone(),
        subtotal_minor: other.order.subtotal_minor,
        assessment: Some(assessment(r1_plan(), Outcome::Proceed)),
        at: at(),
    };
    let edited = apply(&other.order, edit, &on()).expect("edits");
    assert_eq!(drift_flags(&edited.order), 0);
    assert!(edited.events.contains(&Event::PolicyDriftCleared), "{:?}", edited.events);
    // Only pending orders drift.
    let approved = in_status(OrderStatus::Approved, false, true);
    assert!(matches!(mark(&approved, Some(difference("x"))), Err(TransitionError::InvalidState(_))));
}
