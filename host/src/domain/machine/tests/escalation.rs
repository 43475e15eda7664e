//! Overdue stages and their escalation targets (R6).

use super::*;

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
