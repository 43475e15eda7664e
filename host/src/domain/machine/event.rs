//! Events: what happened to an order, in order. Each becomes one audit entry.

use crate::domain::money::Minor;
use crate::domain::plan::{Approvers, Verdict};
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
}

impl Event {
    /// The snake_case action name, as stored in the audit log.
    pub fn action(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}
