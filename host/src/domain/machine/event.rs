//! Events: what happened to an order, in order. Each becomes one audit entry.

use crate::domain::drift::PlanDifference;
use crate::domain::money::Minor;
use crate::domain::plan::{Approvers, Verdict, Via};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened, in order. Each becomes one audit entry (its `action` is the snake_case tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Event {
    /// A draft was created.
    OrderCreated {
        /// Subtotal at creation.
        subtotal_minor: Minor,
    },
    /// The requester changed the input.
    OrderEdited {
        /// Subtotal after the edit.
        subtotal_minor: Minor,
    },
    /// Decisions were discarded because the order changed or was re-evaluated.
    ApprovalReset {
        /// Why.
        reason: String,
    },
    /// The order was evaluated on submission.
    OrderSubmitted {
        /// Total including adjustments.
        total_minor: Minor,
        /// Stage keys of the plan.
        stages: Vec<String>,
        /// Risk flag codes.
        flags: Vec<String>,
    },
    /// A stage became decidable.
    StageOpened {
        /// Stage key.
        stage: String,
        /// Who may decide it.
        approvers: Approvers,
        /// When it becomes overdue and escalates, if the step set a due time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<DateTime<Utc>>,
    },
    /// An open stage passed its due time and was handed to its escalation target (R6).
    StageEscalated {
        /// Stage key.
        stage: String,
        /// When it was due.
        due_at: DateTime<Utc>,
        /// Who may now decide it besides its approvers.
        escalated_to: Approvers,
    },
    /// Someone decided a stage.
    DecisionRecorded {
        /// Stage key.
        stage: String,
        /// Approve or reject.
        decision: Verdict,
        /// Comment.
        comment: Option<String>,
        /// The delegator, under a delegation.
        on_behalf_of: Option<String>,
        /// How it came in, when not through a signed-in request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<Via>,
        /// Whether the decider holds the stage only as its escalation target (an override the
        /// drift report lists).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        escalation_target: bool,
    },
    /// A stage reached its quorum.
    StageApproved {
        /// Stage key.
        stage: String,
    },
    /// A stage was rejected.
    StageRejected {
        /// Stage key.
        stage: String,
        /// The reason.
        reason: String,
    },
    /// Every stage approved, or none needed.
    OrderApproved {
        /// Total approved.
        total_minor: Minor,
    },
    /// The order was rejected.
    OrderRejected {
        /// Who rejected it.
        by: String,
        /// Why.
        reason: String,
    },
    /// The order was put on hold.
    OrderHeld {
        /// Why.
        reason: String,
    },
    /// The requester withdrew the order.
    OrderWithdrawn,
    /// An admin revoked the approval.
    ApprovalRevoked {
        /// Why.
        reason: String,
    },
    /// The order was released for fulfilment.
    OrderReleased {
        /// The ERP's reference, when released through a connector.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_ref: Option<String>,
        /// The connector, when released through one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connector: Option<String>,
    },
    /// A subscription was paused.
    SubscriptionDeactivated,
    /// A subscription was resumed without new approval.
    SubscriptionReactivated,
    /// The current rules would plan this pending order differently (R8).
    PolicyDrift {
        /// How.
        difference: PlanDifference,
    },
    /// The current rules plan it as it is again: the drift flag is gone.
    PolicyDriftCleared,
}

impl Event {
    /// The snake_case action name, as stored in the audit log: the `action` tag serde writes
    /// (a test keeps the two equal), without serializing the event to find it.
    pub fn action(&self) -> &'static str {
        match self {
            Event::OrderCreated { .. } => "order_created",
            Event::OrderEdited { .. } => "order_edited",
            Event::ApprovalReset { .. } => "approval_reset",
            Event::OrderSubmitted { .. } => "order_submitted",
            Event::StageOpened { .. } => "stage_opened",
            Event::StageEscalated { .. } => "stage_escalated",
            Event::DecisionRecorded { .. } => "decision_recorded",
            Event::StageApproved { .. } => "stage_approved",
            Event::StageRejected { .. } => "stage_rejected",
            Event::OrderApproved { .. } => "order_approved",
            Event::OrderRejected { .. } => "order_rejected",
            Event::OrderHeld { .. } => "order_held",
            Event::OrderWithdrawn => "order_withdrawn",
            Event::ApprovalRevoked { .. } => "approval_revoked",
            Event::OrderReleased { .. } => "order_released",
            Event::SubscriptionDeactivated => "subscription_deactivated",
            Event::SubscriptionReactivated => "subscription_reactivated",
            Event::PolicyDrift { .. } => "policy_drift",
            Event::PolicyDriftCleared => "policy_drift_cleared",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_name_is_the_tag_serde_writes() {
        let at = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let who = Approvers::Users { users: vec!["carol".into()] };
        let text = String::from;
        let events = [
            Event::OrderCreated { subtotal_minor: 1 },
            Event::OrderEdited { subtotal_minor: 1 },
            Event::ApprovalReset { reason: text("r") },
            Event::OrderSubmitted { total_minor: 1, stages: vec![], flags: vec![] },
            Event::StageOpened { stage: text("s"), approvers: who.clone(), due_at: None },
            Event::StageEscalated { stage: text("s"), due_at: at, escalated_to: who },
            Event::DecisionRecorded {
                stage: text("s"),
                decision: Verdict::Approve,
                comment: None,
                on_behalf_of: None,
                via: None,
                escalation_target: false,
            },
            Event::StageApproved { stage: text("s") },
            Event::StageRejected { stage: text("s"), reason: text("r") },
            Event::OrderApproved { total_minor: 1 },
            Event::OrderRejected { by: text("b"), reason: text("r") },
            Event::OrderHeld { reason: text("r") },
            Event::OrderWithdrawn,
            Event::ApprovalRevoked { reason: text("r") },
            Event::OrderReleased { external_ref: None, connector: None },
            Event::SubscriptionDeactivated,
            Event::SubscriptionReactivated,
            Event::PolicyDrift {
                difference: PlanDifference {
                    before: crate::domain::order::OrderStatus::PendingApproval,
                    after: crate::domain::order::OrderStatus::Rejected,
                    stages_added: vec![],
                    stages_removed: vec![],
                    stages_changed: vec![],
                    flags_added: vec![],
                    flags_removed: vec![],
                },
            },
            Event::PolicyDriftCleared,
        ];
        for e in events {
            let tag = serde_json::to_value(&e).expect("serializes")["action"].as_str().map(str::to_string);
            assert_eq!(tag.as_deref(), Some(e.action()), "{e:?}");
        }
    }
}
