//! The drift check's flag on pending orders (R8).

use super::*;

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
