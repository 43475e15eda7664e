//! The approval plan: stages grouped by level; levels run in sequence, stages of one level in
//! parallel. Each stage names who may decide it, how many must agree, and why it exists.

use super::actor::{Actor, Role};

/// The most approvals a quorum may ask for.
pub const MAX_QUORUM: u32 = 100;

/// Longest time a stage may stay open before it escalates: a year. Steps that ask for more are
/// refused (the order goes on hold), so every due time is a real date.
pub const MAX_DUE_IN_HOURS: u32 = 24 * 365;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who may decide a stage, resolved by the host when the plan is built (a cost center's manager
/// is looked up then, so later directory changes do not silently re-route a running approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approvers {
    /// Anyone holding the role.
    Role {
        /// The role.
        role: Role,
    },
    /// Exactly these users.
    Users {
        /// User names.
        users: Vec<String>,
    },
    /// The manager of a cost center.
    CostCenterManager {
        /// Cost center code.
        cost_center: String,
        /// Its manager when the plan was built.
        manager: String,
    },
}

impl Approvers {
    /// Whether the actor is one of the approvers (before segregation-of-duties checks).
    pub fn admits(&self, actor: &Actor) -> bool {
        match self {
            Approvers::Role { role } => actor.roles.contains(role),
            Approvers::Users { users } => users.contains(&actor.name),
            Approvers::CostCenterManager { manager, .. } => *manager == actor.name,
        }
    }
}

/// How many distinct approvals satisfy a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// One approval.
    Any,
    /// Every listed user (only meaningful for a user set).
    All,
    /// At least N distinct approvers.
    AtLeast(u32),
}

impl Serialize for Quorum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Quorum::Any => s.serialize_str("any"),
            Quorum::All => s.serialize_str("all"),
            Quorum::AtLeast(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Word(String),
            Count(i64),
        }
        match Repr::deserialize(d)? {
            Repr::Word(w) if w == "any" => Ok(Quorum::Any),
            Repr::Word(w) if w == "all" => Ok(Quorum::All),
            Repr::Count(n) if (1..=i64::from(MAX_QUORUM)).contains(&n) => Ok(Quorum::AtLeast(n as u32)),
            _ => Err(serde::de::Error::custom("quorum must be \"any\", \"all\" or a number from 1 to 100")),
        }
    }
}

impl utoipa::PartialSchema for Quorum {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let words = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["any", "all"]));
        let count = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(100));
        OneOfBuilder::new()
            .item(words)
            .item(count)
            .description(Some("\"any\", \"all\" or a number (1 to 100) of distinct approvers"))
            .into()
    }
}
impl utoipa::ToSchema for Quorum {}

/// Where a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Its level has not been reached.
    Waiting,
    /// Decidable now.
    Open,
    /// Quorum reached.
    Approved,
    /// An approver rejected it.
    Rejected,
    /// Overdue and handed to its escalation target; still decidable, by its approvers and by
    /// the target.
    Escalated,
}

impl StageState {
    /// Whether a decision can be taken now: open, or escalated (R6: escalation widens who may
    /// decide, it never takes the stage away from its approvers).
    pub fn is_decidable(self) -> bool {
        matches!(self, StageState::Open | StageState::Escalated)
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Counts towards the quorum.
    Approve,
    /// Rejects the stage and the order; needs a reason.
    Reject,
}

/// How a decision reached the host when not through a signed-in request: recorded on the
/// decision and in its audit entry, so an auditor can tell a link in a mailbox from a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A signed, single-use link from the notification e-mail.
    EmailLink,
}

/// One person's decision on a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// Who decided.
    pub by: String,
    /// Approve or reject.
    pub decision: Verdict,
    /// Comment; always present on a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When, in UTC.
    pub at: DateTime<Utc>,
    /// The absent approver this decision was made for, under a delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// How the decision came in, when not through a signed-in request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// One approval stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stage {
    /// Unique within the order; the `stage` field of a decision.
    pub key: String,
    /// Shown to approvers.
    pub title: String,
    /// Levels run in ascending order; stages of one level in parallel.
    pub level: u32,
    /// Who may decide.
    pub approvers: Approvers,
    /// How many must approve.
    pub quorum: Quorum,
    /// Hours after opening before the stage is overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_hours: Option<u32>,
    /// Who takes over when overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<Approvers>,
    /// When the stage, once opened, becomes overdue (opening time + `due_in_hours`), in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Why the stage exists, from the step that added it.
    pub reason: String,
    /// The step that added it.
    pub source: String,
    /// Where it is.
    pub state: StageState,
    /// Decisions so far, oldest first.
    pub decisions: Vec<Decision>,
    /// The order's version in which this round of the stage opened (a revocation, an edit or a
    /// resubmission opens a new round): decision links bind to it, so they survive other
    /// stages' decisions and the stage's escalation, but not a new round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_in: Option<u64>,
}

impl Stage {
    /// Distinct approvals needed.
    pub fn needed(&self) -> usize {
        match (self.quorum, &self.approvers) {
            (Quorum::Any, _) => 1,
            (Quorum::AtLeast(n), _) => n as usize,
            (Quorum::All, Approvers::Users { users }) => users.len().max(1),
            (Quorum::All, _) => 1,
        }
    }

    /// Approvals so far.
    pub fn approvals(&self) -> usize {
        self.decisions.iter().filter(|d| d.decision == Verdict::Approve).count()
    }

    /// Whether the quorum is reached.
    pub fn satisfied(&self) -> bool {
        self.approvals() >= self.needed()
    }

    /// Who an overdue stage is handed to: its `escalate_to`, or the tenant's admins when the step
    /// named nobody, so that no request stalls (R6).
    pub fn escalation_target(&self) -> Approvers {
        self.escalate_to.clone().unwrap_or_else(|| Approvers::Role { role: Role::admin() })
    }

    /// Whether the actor may decide this stage (before segregation-of-duties checks): one of its
    /// approvers, or, once escalated, its escalation target.
    pub fn admits(&self, actor: &Actor) -> bool {
        self.approvers.admits(actor) || (self.state == StageState::Escalated && self.escalation_target().admits(actor))
    }

    /// When the stage, opened at `at`, becomes overdue. `None` without a due time, and for a
    /// time no calendar holds (never reached: due times are bounded by [`MAX_DUE_IN_HOURS`]).
    pub fn due_from(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let hours = chrono::TimeDelta::try_hours(i64::from(self.due_in_hours?))?;
        at.checked_add_signed(hours)
    }

    /// Whether the stage is open, has a due time, and that time has come.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == StageState::Open && self.due_at.is_some_and(|due| due <= now)
    }

    /// Whether this user already decided the stage, directly or on someone's behalf.
    pub fn decided_by(&self, name: &str) -> bool {
        self.decisions.iter().any(|d| d.by == name || d.on_behalf_of.as_deref() == Some(name))
    }
}

/// The stages of an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    /// Sorted by level, then in the order the steps added them.
    pub stages: Vec<Stage>,
}

impl Plan {
    /// The lowest level that still has a stage not approved, if any.
    pub fn current_level(&self) -> Option<u32> {
        self.stages.iter().filter(|s| s.state != StageState::Approved).map(|s| s.level).min()
    }

    /// Looks a stage up by key.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// Whether every stage reached its quorum.
    pub fn all_approved(&self) -> bool {
        self.stages.iter().all(|s| s.state == StageState::Approved && s.satisfied())
    }

    /// Stages decidable now (open or escalated).
    pub fn open_stages(&self) -> impl Iterator<Item = &Stage> {
        self.stages.iter().filter(|s| s.state.is_decidable())
    }
}
