//! Commands: what a person, or the host on their behalf, asks of an order.

use super::Assessment;
use crate::domain::actor::Actor;
use crate::domain::drift::{DRIFT_CHECKER, PlanDifference};
use crate::domain::money::Minor;
use crate::domain::order::OrderInput;
use crate::domain::plan::{Verdict, Via};
use chrono::{DateTime, Utc};

/// Something a person (or the host on their behalf) asks of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Submit (or resubmit an on-hold order) with a fresh assessment.
    Submit {
        /// Who submits.
        by: Actor,
        /// The engine's result.
        assessment: Assessment,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// Replace the requester's input. Outside draft, a fresh assessment is required.
    Edit {
        /// Who edits.
        by: Actor,
        /// The new, validated input.
        input: OrderInput,
        /// Its subtotal.
        subtotal_minor: Minor,
        /// Required unless the order is a draft (see [`edit_needs_assessment`]).
        assessment: Option<Assessment>,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// Approve or reject one stage.
    Decide {
        /// Who decides.
        by: Actor,
        /// When deciding under a delegation, the delegator; their authority is used.
        on_behalf_of: Option<Actor>,
        /// Stage key.
        stage: String,
        /// Approve or reject.
        verdict: Verdict,
        /// Required for a rejection.
        comment: Option<String>,
        /// How it came in, when not through a signed-in request.
        via: Option<Via>,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// The requester takes the order back.
    Withdraw {
        /// Who withdraws.
        by: Actor,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// An admin revokes an erroneous approval (R8).
    Revoke {
        /// Who revokes.
        by: Actor,
        /// Why; required.
        reason: String,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// Hand an approved order over for fulfilment.
    Release {
        /// Who releases.
        by: Actor,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// Pause a subscription.
    Deactivate {
        /// Who pauses it.
        by: Actor,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// Resume a subscription; never needs approval again once approved (R3).
    Reactivate {
        /// Who resumes it.
        by: Actor,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// The ERP accepted the approved order (the host's release through a connector).
    Exported {
        /// The ERP's reference for the order.
        external_ref: String,
        /// The connector that exported it.
        connector: String,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
    /// The host hands every overdue open stage to its escalation target (R6).
    Escalate {
        /// Now, in UTC; stages due at or before it escalate.
        at: DateTime<Utc>,
    },
    /// The drift check found that the current rules would plan the order differently
    /// (`Some`, flagged with the difference), or no longer do (`None`, the flag cleared) (R8).
    MarkDrift {
        /// The difference, if any.
        drift: Option<PlanDifference>,
        /// Now, in UTC.
        at: DateTime<Utc>,
    },
}

/// The name the audit trail shows for what the host's escalator does. Not a valid user name, so
/// no person can be mistaken for it.
pub const ESCALATOR: &str = "greenlight:escalator";

/// The name the audit trail shows for a release through the ERP connector.
pub const RELEASER: &str = "greenlight:release";

impl Command {
    /// The acting person's name, for the audit trail.
    pub fn actor(&self) -> &str {
        match self {
            Command::Submit { by, .. }
            | Command::Edit { by, .. }
            | Command::Decide { by, .. }
            | Command::Withdraw { by, .. }
            | Command::Revoke { by, .. }
            | Command::Release { by, .. }
            | Command::Deactivate { by, .. }
            | Command::Reactivate { by, .. } => &by.name,
            Command::Escalate { .. } => ESCALATOR,
            Command::Exported { .. } => RELEASER,
            Command::MarkDrift { .. } => DRIFT_CHECKER,
        }
    }
}

/// A command without its data: a column of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// [`Command::Submit`].
    Submit,
    /// [`Command::Edit`].
    Edit,
    /// [`Command::Decide`].
    Decide,
    /// [`Command::Withdraw`].
    Withdraw,
    /// [`Command::Revoke`].
    Revoke,
    /// [`Command::Release`].
    Release,
    /// [`Command::Exported`].
    Exported,
    /// [`Command::Deactivate`].
    Deactivate,
    /// [`Command::Reactivate`].
    Reactivate,
    /// [`Command::Escalate`].
    Escalate,
    /// [`Command::MarkDrift`].
    MarkDrift,
}

impl CommandKind {
    /// Every kind, for tests that walk the whole table.
    pub const ALL: [CommandKind; 11] = [
        CommandKind::Submit,
        CommandKind::Edit,
        CommandKind::Decide,
        CommandKind::Withdraw,
        CommandKind::Revoke,
        CommandKind::Release,
        CommandKind::Exported,
        CommandKind::Deactivate,
        CommandKind::Reactivate,
        CommandKind::Escalate,
        CommandKind::MarkDrift,
    ];

    /// The name in the transition table.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Submit => "Submit",
            CommandKind::Edit => "Edit",
            CommandKind::Decide => "Decide",
            CommandKind::Withdraw => "Withdraw",
            CommandKind::Revoke => "Revoke",
            CommandKind::Release => "Release",
            CommandKind::Exported => "Exported",
            CommandKind::Deactivate => "Deactivate",
            CommandKind::Reactivate => "Reactivate",
            CommandKind::Escalate => "Escalate",
            CommandKind::MarkDrift => "MarkDrift",
        }
    }

    /// What doing it is called in a sentence ("cannot … this order").
    pub fn verb(self) -> &'static str {
        match self {
            CommandKind::Submit => "submit",
            CommandKind::Edit => "edit",
            CommandKind::Decide => "decide",
            CommandKind::Withdraw => "withdraw",
            CommandKind::Revoke => "revoke the approval of",
            CommandKind::Release => "release",
            CommandKind::Exported => "release to the ERP",
            CommandKind::Deactivate => "deactivate",
            CommandKind::Reactivate => "reactivate",
            CommandKind::Escalate => "escalate",
            CommandKind::MarkDrift => "mark the policy drift of",
        }
    }
}

impl Command {
    /// Its column in the transition table.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Submit { .. } => CommandKind::Submit,
            Command::Edit { .. } => CommandKind::Edit,
            Command::Decide { .. } => CommandKind::Decide,
            Command::Withdraw { .. } => CommandKind::Withdraw,
            Command::Revoke { .. } => CommandKind::Revoke,
            Command::Release { .. } => CommandKind::Release,
            Command::Exported { .. } => CommandKind::Exported,
            Command::Deactivate { .. } => CommandKind::Deactivate,
            Command::Reactivate { .. } => CommandKind::Reactivate,
            Command::Escalate { .. } => CommandKind::Escalate,
            Command::MarkDrift { .. } => CommandKind::MarkDrift,
        }
    }

    /// When it happens (commands carry their time: the machine has no clock).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Command::Submit { at, .. }
            | Command::Edit { at, .. }
            | Command::Decide { at, .. }
            | Command::Withdraw { at, .. }
            | Command::Revoke { at, .. }
            | Command::Release { at, .. }
            | Command::Deactivate { at, .. }
            | Command::Reactivate { at, .. }
            | Command::Escalate { at }
            | Command::MarkDrift { at, .. }
            | Command::Exported { at, .. } => *at,
        }
    }
}
