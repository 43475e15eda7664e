//! The approval state machine: `apply(order, command, policy) -> (order', events)`.
//! Pure: no clock (commands carry their time), no I/O. Everything the host persists about an
//! order's life comes out of this function as events, which become audit entries and outbox rows.
//!
//! The transition table ([`TABLE`], rendered here by [`table::render`]; a test keeps them equal):
//!
//! ```text
//! from                              command     scope          to
//! draft, on_hold                    Submit      any            pending_approval, approved, rejected, on_hold
//!                                   evaluated: order_submitted, then stage_opened* | order_approved | order_rejected | order_held
//! draft                             Edit        any            draft
//!                                   order_edited
//! pending_approval, on_hold         Edit        any            pending_approval, approved, rejected, on_hold
//!                                   re-evaluated: order_edited, approval_reset, then as Submit
//! approved                          Edit        subscriptions  pending_approval, approved, rejected, on_hold
//!                                   a new commitment, re-evaluated: order_edited, approval_reset, then as Submit
//! pending_approval                  Decide      any            pending_approval, approved, rejected
//!                                   decision_recorded, then stage_approved (stage_opened* | order_approved) | stage_rejected, order_rejected
//! draft, pending_approval, on_hold  Withdraw    any            withdrawn
//!                                   order_withdrawn
//! approved                          Revoke      any            pending_approval, on_hold
//!                                   approval_revoked, then stage_opened* | order_held (no stage to reopen)
//! approved                          Release     any            released
//!                                   order_released
//! approved                          Exported    any            released
//!                                   order_released with the ERP's reference
//! approved, released                Deactivate  subscriptions  approved, released
//!                                   status unchanged, inactive: subscription_deactivated
//! approved, released                Reactivate  subscriptions  approved, released
//!                                   status unchanged, active, never re-approved (R3): subscription_reactivated
//! pending_approval                  Escalate    any            pending_approval
//!                                   each overdue open stage: stage_escalated (R6)
//! pending_approval                  MarkDrift   any            pending_approval
//!                                   status unchanged, the policy_drift flag set: policy_drift | cleared: policy_drift_cleared (R8)
//! ```
//! A stage with `due_in_hours` gets a `due_at` when it opens. Once that time has passed, the
//! host's escalator sends `Escalate`: each overdue open stage becomes `escalated` and is then
//! decidable by its approvers *and* its escalation target (the tenant's admins if the step named
//! none), so no request stalls. A delegate decides with the delegator's authority
//! (`on_behalf_of`); the requester may not decide under any authority.
//! Anything else is refused: 409 for a command that does not fit the status or stage state,
//! 403 for a person who may not do it, 422 for a malformed command.
//!
//! Deciding enforces, in this order: a reason on every reject; the requester never decides their
//! own order; only the stage's approvers decide it; with `one_stage_per_person`, nobody decides two
//! stages of one order (R7); only open stages (levels in sequence) are decidable; each person
//! counts once towards a quorum.

use crate::domain::actor::{Actor, Policy, roles};
use crate::domain::adjustment::{PriceAdjustment, PriceKind};
use crate::domain::drift::DRIFT_CHECKER;
use crate::domain::flag::RiskFlag;
use crate::domain::money::{MAX_AMOUNT_MINOR, Minor, checked_sum, within_bounds};
use crate::domain::order::{Order, OrderStatus, Rejection, SubscriptionState};
use crate::domain::plan::{Decision, MAX_DUE_IN_HOURS, Stage, StageState, Verdict, Via};
use chrono::{DateTime, Utc};

mod command;
mod event;
pub mod table;

pub use command::{Command, CommandKind, ESCALATOR, RELEASER};
pub use event::Event;
pub use table::{Rule, TABLE};

/// What the engine concluded from running a tenant's steps on an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Sum of the lines.
    pub subtotal_minor: Minor,
    /// Tax and other adjustments.
    pub adjustments: Vec<PriceAdjustment>,
    /// Risk flags.
    pub flags: Vec<RiskFlag>,
    /// The plan's stages, all `Waiting`, sorted by level.
    pub stages: Vec<Stage>,
    /// The merged verdict.
    pub outcome: Outcome,
}

/// The merged verdict of all steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Approve through the stages (or at once, if there are none).
    Proceed,
    /// A step rejected the order.
    Reject {
        /// `step:<name>`.
        by: String,
        /// The step's reason.
        reason: String,
    },
    /// A step failed or asked for a hold; the order must not proceed (fail closed).
    Hold {
        /// What failed and what to do.
        reason: String,
    },
}

impl Outcome {
    /// `proceed`, `reject` or `hold`, as evaluation records name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Proceed => "proceed",
            Outcome::Reject { .. } => "reject",
            Outcome::Hold { .. } => "hold",
        }
    }
}

/// The result of a successful command.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The order afterwards; its version is one higher.
    pub order: Order,
    /// What happened.
    pub events: Vec<Event>,
}

/// Why a command was refused. Each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The command is malformed (422).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// This person may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The order, or the stage, is not in a state that allows it (409).
    #[error("{0}")]
    InvalidState(String),
}

/// Whether an edit of this order must carry a fresh assessment (it is past draft).
pub fn edit_needs_assessment(order: &Order) -> bool {
    order.status != OrderStatus::Draft
}

/// Whether this person may submit the order now. `apply` enforces it; the service asks first so
/// it does not run the extensions for a submission that would be refused.
pub fn check_submit(order: &Order, by: &Actor) -> Result<(), TransitionError> {
    require_requester(order, by, "submit")?;
    permitted(order, CommandKind::Submit).map(|_| ())
}

/// Whether this person may edit the order now (as [`check_submit`], for edits).
pub fn check_edit(order: &Order, by: &Actor) -> Result<(), TransitionError> {
    require_requester(order, by, "edit")?;
    permitted(order, CommandKind::Edit).map(|_| ())
}

/// The rule of the transition table that lets this kind of command apply to the order.
fn permitted(order: &Order, kind: CommandKind) -> Result<&'static Rule, TransitionError> {
    table::rule_for(order, kind).ok_or_else(|| TransitionError::InvalidState(table::refusal(order, kind)))
}

/// Who may give a command, before anything about the order's state: the requester for their
/// own order's life, an admin to revoke, admin or finance to release, the requester or an admin
/// for a subscription's state. Deciders are checked per stage in [`decide`]; `Exported` and
/// `Escalate` come from the host.
fn authorize(order: &Order, command: &Command) -> Result<(), TransitionError> {
    match command {
        Command::Submit { by, .. } => require_requester(order, by, "submit"),
        Command::Edit { by, .. } => require_requester(order, by, "edit"),
        Command::Withdraw { by, .. } => require_requester(order, by, "withdraw"),
        Command::Revoke { by, .. } if !by.has_role(roles::ADMIN) => {
            Err(TransitionError::Forbidden("only an admin may revoke an approval".into()))
        }
        Command::Release { by, .. } if !(by.has_role(roles::ADMIN) || by.has_role(roles::FINANCE)) => {
            Err(TransitionError::Forbidden("only admin or finance may release an order".into()))
        }
        Command::Deactivate { by, .. } | Command::Reactivate { by, .. } => require_owner_or_admin(order, by),
        Command::Revoke { .. }
        | Command::Release { .. }
        | Command::Decide { .. }
        | Command::Exported { .. }
        | Command::Escalate { .. }
        | Command::MarkDrift { .. } => Ok(()),
    }
}

/// Applies a command: who may give it, then the transition table ([`TABLE`]), then its effect.
/// The input order is untouched; on success the new order has `version + 1` and
/// `updated_at = at`, and its status is one the table's rule allows.
pub fn apply(order: &Order, command: Command, policy: &Policy) -> Result<Transition, TransitionError> {
    authorize(order, &command)?;
    let rule = permitted(order, command.kind())?;
    let at = command.at();
    let mut next = order.clone();
    let mut events = Vec::new();
    match command {
        Command::Submit { assessment, at, .. } => {
            next.submitted_at = Some(at);
            settle(&mut next, assessment, at, &mut events);
        }
        Command::Edit { input, subtotal_minor, assessment, at, .. } => {
            if input.recurrence.is_some() != order.input.recurrence.is_some() && order.status != OrderStatus::Draft {
                return Err(TransitionError::Invalid {
                    field: "recurrence".into(),
                    message: "an order cannot become or stop being a subscription after submission: withdraw it and create a new one".into(),
                });
            }
            next.subscription = match (&input.recurrence, &order.subscription) {
                (Some(_), Some(s)) => Some(s.clone()),
                (Some(_), None) => {
                    Some(crate::domain::order::Subscription { state: SubscriptionState::Active, approved_once: false })
                }
                (None, _) => None,
            };
            next.input = input;
            next.subtotal_minor = subtotal_minor;
            events.push(Event::OrderEdited { subtotal_minor });
            if edit_needs_assessment(order) {
                let Some(assessment) = assessment else {
                    return Err(TransitionError::Invalid {
                        field: "assessment".into(),
                        message: "an order past draft must be re-evaluated when edited".into(),
                    });
                };
                events.push(Event::ApprovalReset { reason: "the order was edited".into() });
                // The re-evaluation replaces the flags: a drift flag goes, on the record.
                if next.flags.iter().any(|f| f.source == DRIFT_CHECKER) {
                    events.push(Event::PolicyDriftCleared);
                }
                if let Some(s) = next.subscription.as_mut() {
                    s.approved_once = false;
                }
                next.approved_at = None;
                next.submitted_at = Some(at);
                settle(&mut next, assessment, at, &mut events);
            } else {
                next.adjustments.clear();
                next.flags.clear();
            }
        }
        Command::Decide { by, on_behalf_of, stage, verdict, comment, via, at } => {
            decide(&mut next, &by, on_behalf_of.as_ref(), &stage, verdict, comment, via, at, policy, &mut events)?;
        }
        Command::Withdraw { .. } => {
            for s in next.plan.stages.iter_mut().filter(|s| s.state.is_decidable()) {
                s.state = StageState::Waiting;
            }
            next.status = OrderStatus::Withdrawn;
            events.push(Event::OrderWithdrawn);
        }
        Command::Revoke { reason, .. } => {
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                return Err(TransitionError::Invalid {
                    field: "reason".into(),
                    message: "a revocation needs a reason".into(),
                });
            }
            next.approved_at = None;
            if let Some(s) = next.subscription.as_mut() {
                s.approved_once = false;
            }
            events.push(Event::ApprovalRevoked { reason: reason.clone() });
            if next.plan.stages.is_empty() {
                next.status = OrderStatus::OnHold;
                let why =
                    format!("approval revoked ({reason}); no stage applies, so edit and resubmit it or withdraw it");
                next.hold_reason = Some(why.clone());
                events.push(Event::OrderHeld { reason: why });
            } else {
                for s in next.plan.stages.iter_mut() {
                    s.state = StageState::Waiting;
                    s.due_at = None;
                    s.decisions.clear();
                }
                next.status = OrderStatus::PendingApproval;
                open_next_level(&mut next, at, &mut events);
            }
        }
        Command::Release { .. } => {
            next.status = OrderStatus::Released;
            events.push(Event::OrderReleased { external_ref: None, connector: None });
        }
        Command::Deactivate { .. } => {
            let sub = subscription_of(&mut next)?;
            if sub.state == SubscriptionState::Inactive {
                return Err(TransitionError::InvalidState("the subscription is already inactive".into()));
            }
            sub.state = SubscriptionState::Inactive;
            events.push(Event::SubscriptionDeactivated);
        }
        Command::Reactivate { .. } => {
            let sub = subscription_of(&mut next)?;
            if sub.state == SubscriptionState::Active {
                return Err(TransitionError::InvalidState("the subscription is already active".into()));
            }
            // R3: approval is once per subscription; reactivation never reopens it.
            sub.state = SubscriptionState::Active;
            events.push(Event::SubscriptionReactivated);
        }
        Command::Exported { external_ref, connector, .. } => {
            next.status = OrderStatus::Released;
            next.external_ref = Some(external_ref.clone());
            events.push(Event::OrderReleased { external_ref: Some(external_ref), connector: Some(connector) });
        }
        Command::Escalate { at } => {
            for s in next.plan.stages.iter_mut().filter(|s| s.overdue(at)) {
                s.state = StageState::Escalated;
                let due_at = s.due_at.unwrap_or(at);
                events.push(Event::StageEscalated {
                    stage: s.key.clone(),
                    due_at,
                    escalated_to: s.escalation_target(),
                });
            }
            if events.is_empty() {
                return Err(TransitionError::InvalidState("no open stage of this order is overdue".into()));
            }
        }
        Command::MarkDrift { drift, .. } => {
            let flagged = next.flags.iter().position(|f| f.source == DRIFT_CHECKER);
            if let Some(i) = flagged {
                next.flags.remove(i);
            }
            match (drift, flagged) {
                (Some(d), _) => {
                    let flag = d.flag();
                    if flagged.is_some_and(|i| order.flags[i] == flag) {
                        return Err(TransitionError::InvalidState(
                            "the order is already flagged with this drift".into(),
                        ));
                    }
                    next.flags.push(flag);
                    events.push(Event::PolicyDrift { difference: d });
                }
                (None, Some(_)) => events.push(Event::PolicyDriftCleared),
                (None, None) => {
                    return Err(TransitionError::InvalidState("the order carries no drift flag to clear".into()));
                }
            }
        }
    }
    debug_assert!(
        rule.to.contains(&next.status),
        "{:?} took an order from {:?} to {:?}, which its rule does not allow",
        rule.command,
        order.status,
        next.status
    );
    next.version = order.version + 1;
    next.updated_at = at;
    Ok(Transition { order: next, events })
}

/// The keys of the stages this person may decide right now (the inbox, R2): open, they are an
/// approver, it is not their order, they have not decided it, and segregation of duties allows.
pub fn decidable_stages<'a>(order: &'a Order, actor: &Actor, policy: &Policy) -> Vec<&'a str> {
    decidable_on_behalf(order, actor, actor, policy)
}

/// As [`decidable_stages`], for `by` deciding with `authority`'s authority under a delegation:
/// the same checks `Decide` makes, applied to both people.
pub fn decidable_on_behalf<'a>(order: &'a Order, by: &Actor, authority: &Actor, policy: &Policy) -> Vec<&'a str> {
    let names = [by.name.as_str(), authority.name.as_str()];
    if order.status != OrderStatus::PendingApproval || names.contains(&order.requester.as_str()) {
        return Vec::new();
    }
    let decided = |s: &Stage| names.iter().any(|n| s.decided_by(n));
    let decided_other = |key: &str| order.plan.stages.iter().any(|s| s.key != key && decided(s));
    order
        .plan
        .open_stages()
        .filter(|s| s.admits(authority) && !decided(s))
        .filter(|s| !(policy.one_stage_per_person && decided_other(&s.key)))
        .map(|s| s.key.as_str())
        .collect()
}

fn subscription_of(order: &mut Order) -> Result<&mut crate::domain::order::Subscription, TransitionError> {
    // The table admits these commands for subscriptions only; this names the case all the same.
    order.subscription.as_mut().ok_or_else(|| {
        TransitionError::InvalidState(
            "only a subscription (an order with a recurrence) can be deactivated or reactivated".into(),
        )
    })
}

fn require_requester(order: &Order, by: &Actor, what: &str) -> Result<(), TransitionError> {
    if by.name == order.requester {
        Ok(())
    } else {
        Err(TransitionError::Forbidden(format!("only the requester ({}) may {what} this order", order.requester)))
    }
}

fn require_owner_or_admin(order: &Order, by: &Actor) -> Result<(), TransitionError> {
    if by.name == order.requester || by.has_role(roles::ADMIN) {
        Ok(())
    } else {
        Err(TransitionError::Forbidden("only the requester or an admin may change a subscription's state".into()))
    }
}

impl Assessment {
    /// Why this assessment cannot be applied as it is, if it breaks a bound the order relies on:
    /// an amount or a sum beyond [`MAX_AMOUNT_MINOR`], or a due time beyond [`MAX_DUE_IN_HOURS`].
    /// The engine refuses such step outputs first; this keeps the state machine safe on its own.
    pub fn out_of_bounds(&self) -> Option<String> {
        let amounts = || self.adjustments.iter().map(|a| a.amount_minor);
        let taxes = self.adjustments.iter().filter(|a| a.kind == PriceKind::Tax).map(|a| a.amount_minor);
        let sums_fit = within_bounds(self.subtotal_minor)
            && amounts().all(within_bounds)
            && checked_sum(std::iter::once(self.subtotal_minor).chain(amounts())).is_some()
            && checked_sum(taxes).is_some();
        if !sums_fit {
            return Some(format!(
                "the order's amounts would go beyond the largest amount, {MAX_AMOUNT_MINOR} minor units; fix the step that adjusts the price"
            ));
        }
        self.stages.iter().find(|s| s.due_in_hours.is_some_and(|h| h > MAX_DUE_IN_HOURS)).map(|s| {
            format!("stage '{}' is due in more than {MAX_DUE_IN_HOURS} hours; fix the step that adds it", s.key)
        })
    }
}

/// Applies an assessment: sets prices, flags and plan, then the status it implies. An
/// assessment out of bounds puts the order on hold with the reason, without its prices or plan.
fn settle(order: &mut Order, mut a: Assessment, at: DateTime<Utc>, events: &mut Vec<Event>) {
    if let Some(reason) = a.out_of_bounds() {
        a.adjustments.clear();
        a.stages.clear();
        a.outcome = Outcome::Hold { reason };
    }
    order.subtotal_minor = a.subtotal_minor;
    order.adjustments = a.adjustments;
    order.flags = a.flags;
    order.plan.stages = a.stages;
    order.hold_reason = None;
    order.rejection = None;
    events.push(Event::OrderSubmitted {
        total_minor: order.total_minor(),
        stages: order.plan.stages.iter().map(|s| s.key.clone()).collect(),
        flags: order.flags.iter().map(|f| f.code.clone()).collect(),
    });
    match a.outcome {
        Outcome::Reject { by, reason } => {
            order.status = OrderStatus::Rejected;
            order.rejection = Some(Rejection { by: by.clone(), reason: reason.clone(), stage: None });
            events.push(Event::OrderRejected { by, reason });
        }
        Outcome::Hold { reason } => {
            order.status = OrderStatus::OnHold;
            order.hold_reason = Some(reason.clone());
            events.push(Event::OrderHeld { reason });
        }
        Outcome::Proceed => {
            order.status = OrderStatus::PendingApproval;
            open_next_level(order, at, events);
        }
    }
}

/// Opens every stage of the lowest unfinished level, or approves the order when none is left.
fn open_next_level(order: &mut Order, at: DateTime<Utc>, events: &mut Vec<Event>) {
    match order.plan.current_level() {
        Some(level) => {
            for s in order.plan.stages.iter_mut().filter(|s| s.level == level && s.state == StageState::Waiting) {
                s.state = StageState::Open;
                s.due_at = s.due_from(at);
                // `order` is the next version being built: it gets this number when it is done.
                s.opened_in = Some(order.version + 1);
                events.push(Event::StageOpened {
                    stage: s.key.clone(),
                    approvers: s.approvers.clone(),
                    due_at: s.due_at,
                });
            }
        }
        None => {
            order.status = OrderStatus::Approved;
            order.approved_at = Some(at);
            if let Some(s) = order.subscription.as_mut() {
                s.approved_once = true;
            }
            events.push(Event::OrderApproved { total_minor: order.total_minor() });
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    order: &mut Order,
    by: &Actor,
    on_behalf_of: Option<&Actor>,
    key: &str,
    verdict: Verdict,
    comment: Option<String>,
    via: Option<Via>,
    at: DateTime<Utc>,
    policy: &Policy,
    events: &mut Vec<Event>,
) -> Result<(), TransitionError> {
    let comment = comment.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    if verdict == Verdict::Reject && comment.is_none() {
        return Err(TransitionError::Invalid {
            field: "comment".into(),
            message: "a rejection needs a reason: say why in `comment`".into(),
        });
    }
    let Some(idx) = order.plan.stages.iter().position(|s| s.key == key) else {
        let keys: Vec<&str> = order.plan.stages.iter().map(|s| s.key.as_str()).collect();
        return Err(TransitionError::Invalid {
            field: "stage".into(),
            message: format!("this order has no stage '{key}'; its stages are: {}", keys.join(", ")),
        });
    };
    let authority = on_behalf_of.unwrap_or(by);
    if by.name == order.requester || authority.name == order.requester {
        return Err(TransitionError::Forbidden("nobody may decide their own order (segregation of duties)".into()));
    }
    let stage = &order.plan.stages[idx];
    if !stage.admits(authority) {
        return Err(TransitionError::Forbidden(format!("you are not an approver of stage '{key}'")));
    }
    if policy.one_stage_per_person {
        let names = [by.name.as_str(), authority.name.as_str()];
        if let Some(other) = order.plan.stages.iter().find(|s| s.key != key && names.iter().any(|n| s.decided_by(n))) {
            return Err(TransitionError::Forbidden(format!(
                "you already decided stage '{}' of this order, and one person may decide only one stage (tenant setting one_stage_per_person)",
                other.key
            )));
        }
    }
    if !stage.state.is_decidable() {
        let why = match stage.state {
            StageState::Waiting => "it opens when the earlier levels are approved",
            StageState::Approved => "it is already approved",
            StageState::Rejected => "it is already rejected",
            StageState::Open | StageState::Escalated => "",
        };
        return Err(TransitionError::InvalidState(format!("stage '{key}' is not open: {why}")));
    }
    if stage.decided_by(&by.name) || stage.decided_by(&authority.name) {
        return Err(TransitionError::InvalidState(format!("you already decided stage '{key}'")));
    }
    let on_behalf = on_behalf_of.map(|a| a.name.clone());
    // Admitted, but not as one of the stage's approvers: as the target it escalated to.
    let escalation_target = !stage.approvers.admits(authority);
    let stage = &mut order.plan.stages[idx];
    stage.decisions.push(Decision {
        by: by.name.clone(),
        decision: verdict,
        comment: comment.clone(),
        at,
        on_behalf_of: on_behalf.clone(),
        via,
    });
    events.push(Event::DecisionRecorded {
        stage: key.to_string(),
        decision: verdict,
        comment: comment.clone(),
        on_behalf_of: on_behalf,
        via,
        escalation_target,
    });
    match verdict {
        Verdict::Reject => {
            let reason = comment.unwrap_or_default();
            stage.state = StageState::Rejected;
            for s in order.plan.stages.iter_mut().filter(|s| s.state.is_decidable()) {
                s.state = StageState::Waiting;
            }
            order.status = OrderStatus::Rejected;
            order.rejection =
                Some(Rejection { by: by.name.clone(), reason: reason.clone(), stage: Some(key.to_string()) });
            events.push(Event::StageRejected { stage: key.to_string(), reason: reason.clone() });
            events.push(Event::OrderRejected { by: by.name.clone(), reason });
        }
        Verdict::Approve => {
            if stage.satisfied() {
                stage.state = StageState::Approved;
                let level = stage.level;
                events.push(Event::StageApproved { stage: key.to_string() });
                let level_done =
                    order.plan.stages.iter().filter(|s| s.level == level).all(|s| s.state == StageState::Approved);
                if level_done {
                    open_next_level(order, at, events);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
