//! Withdrawing, revoking, releasing, pausing and resuming subscriptions, and the inbox rule.

use super::*;

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
    assert_eq!(
        decidable_stages(&t.order, &bob(), &Policy { one_stage_per_person: false, ..Policy::default() }),
        ["user-approval"]
    );
}

// ---- properties ------------------------------------------------------------------------------
