//! The use cases: each reads what it needs, lets the engine and the state machine decide, and
//! commits the change, its audit entries and its outbox rows in one store transaction. The HTTP
//! API and the CLI both call these; role checks live here so both enforce the same rules.
//!
//! Evaluation (running extensions) happens outside the writer: the order is read, evaluated on a
//! blocking thread, and the result is committed only if the order's version did not move in the
//! meantime (otherwise 409), so slow steps never hold up other tenants' writes.
//!
//! The use cases, one file per job:
//!
//! - `access_log`: sign-ins and refused API calls on record, counted for `/metrics`.
//! - `access`: who may see and do what (overseeing roles, the people a plan names, delegations).
//! - `context`: what the steps of an order see (budgets used, cost center, the directory).
//! - `commit`: writing a transition with its audit entries, outbox rows and evaluation record.
//! - `orders`: an order's life, the request view and the inbox.
//! - `admin`: tenants, users, cost centers, settings, scripts, extensions.
//! - `catalog`: the shipped extensions installed from a folder at start, upgrades on offer.
//! - `audit`: authorization certificates, audit trails, export and verification.
//! - `attachments`: documents attached to orders (R9).
//! - `deliveries`: the admin's view of deliveries (list, re-drive).
//! - `replay`: an order's evaluations and their replay with the exact recorded code (R8, R12).
//! - `reports`: the summary of a period (R10, R4).
//! - `simulation`: what-if: candidate rule changes tried on past orders' stored contexts (R12).
//! - `principals`: bearer tokens resolved, remembered for two seconds.
//! - `second_factor`: TOTP enrollment, step-up for critical actions, resets by an admin.
//! - [`session`]: signing in to the dashboard: passwords, sessions, slowed-down failures.
//! - [`delegation`]: lending an approver's authority for a time window (R6).
//! - `drift`: drift checks of pending orders against the current rules, the drift report (R8).
//! - `decision_links`: approve and reject links in stage e-mails, confirmed on a page.
//! - [`operator`]: what the operator does from the command line (audit of every tenant, the
//!   plugin catalog, a tenant's extensions without signing in as one of its users).
//! - [`workers`]: the background workers: the outbox dispatcher and the escalation sweep.
//! - `users`: the access review, disabling and enabling users, issuing tokens.

mod access;
mod access_log;
mod admin;
mod attachments;
mod audit;
mod catalog;
mod commit;
mod context;
mod decision_links;
pub mod delegation;
mod deliveries;
mod drift;
pub mod operator;
mod orders;
mod principals;
mod replay;
mod reports;
pub mod second_factor;
pub mod session;
mod simulation;
mod users;
pub mod workers;

pub use crate::store::attachments::BlobCheck;
/// What the use cases answer with, as the store keeps it, and the panic report the API's
/// catch-all shares with the store's writer.
pub use crate::store::deliveries::{Delivery, Listing};
pub use crate::store::extensions::{ExtensionSetting, Grants};
pub use crate::store::orders::OrderFilter;
pub use crate::store::report_panic;
pub use access_log::{AccessLog, MAX_LISTED as MAX_ACCESS_ATTEMPTS_LISTED};
pub use admin::{ExtensionUpdate, NewCostCenter, NewUser, ScriptInstalled, SettingsUpdate};
pub use attachments::DEFAULT_ATTACHMENT_LIMIT;
pub use catalog::CatalogReport;
pub use context::{ContextError, TenantDirectory, build_context, period_start};
pub use decision_links::{DEFAULT_LINK_HOURS, LinkRefusal, LinkSettings, LinkedDecision};
pub use drift::{DriftCheck, DriftCleared, DriftFinding, DriftReport, DriftTrigger, OverrideFinding, OverrideKind};
pub use replay::{EvaluationView, ReplayReport, StepReplay};
pub use simulation::{CandidateChange, OrderDifference, OrderSelection, Progress, SimulationReport};

use crate::domain::directory::Principal;
use crate::domain::machine::TransitionError;
use crate::domain::order::InvalidField;
use crate::runtime::{RuntimeError, Runtimes};
use crate::store::directory;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Why a use case did not happen. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// Unknown object, or one of another tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The input breaks a rule (422).
    #[error("{field}: {message}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A script that does not compile (422), with where.
    #[error("the script does not compile: {0}")]
    Script(#[from] crate::runtime::rhai::ScriptError),
    /// The order's (or the stage's, the subscription's, the delivery's) state does not allow
    /// it (409 `invalid_state`).
    #[error("{0}")]
    InvalidState(String),
    /// Someone else changed the order between this request's read and its write (409
    /// `version_conflict`): reload and retry.
    #[error("{0}")]
    VersionConflict(String),
    /// The name is taken (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// An extension could not be loaded or its stored record is unusable (502
    /// `extension_failed`); an extension failing during an evaluation holds the order instead.
    #[error("{0}")]
    Extension(String),
    /// A bug was caught (500): the change was rolled back; the id is in the log beside it.
    #[error("an internal error happened (error id {0}); nothing was changed: report the id to the operator")]
    Internal(String),
    /// The tenant, the user name or the password is wrong (401); which one is not said.
    #[error("the tenant, name or password is wrong")]
    SignInFailed,
    /// Too many failed sign-ins in a row for this user or from this address (429); the number
    /// is the seconds to wait.
    #[error("too many failed sign-ins: wait {0} seconds and try again")]
    TooManyAttempts(i64),
    /// A critical action with a credential not marked for it (403).
    #[error(
        "{0} is a critical action and needs a fresh second factor: in the dashboard, confirm it is you under Two-step verification (valid five minutes); over the API, use a token an admin marked for critical actions"
    )]
    StepUpRequired(String),
    /// Storage failed (503).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ApprovalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Internal(id) => ApprovalError::Internal(id),
            other => ApprovalError::Store(other),
        }
    }
}

impl From<RuntimeError> for ApprovalError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Store(s) => ApprovalError::from(s),
            other => ApprovalError::Extension(other.to_string()),
        }
    }
}

impl From<TransitionError> for ApprovalError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Invalid { field, message } => ApprovalError::Invalid { field, message },
            TransitionError::Forbidden(m) => ApprovalError::Forbidden(m),
            TransitionError::InvalidState(m) => ApprovalError::InvalidState(m),
        }
    }
}

impl From<InvalidField> for ApprovalError {
    fn from(e: InvalidField) -> Self {
        ApprovalError::Invalid { field: e.field, message: e.message }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApprovalError {
    ApprovalError::Invalid { field: field.into(), message: message.into() }
}

fn not_found_order(id: &str) -> ApprovalError {
    ApprovalError::NotFound(format!("no order '{id}' here; check the id"))
}
/// Counters the metrics endpoint exports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Step calls that failed (trap, limit, bad output).
    pub step_failures: AtomicU64,
    /// Evaluations run.
    pub evaluations: AtomicU64,
}

/// The approval service. Cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    store: Store,
    runtimes: Runtimes,
    counters: Arc<Counters>,
    attachment_limit: usize,
    sign_ins: Arc<session::Throttle>,
    links: Option<Arc<LinkSettings>>,
    drift_wake: Arc<tokio::sync::Notify>,
    principals: Arc<principals::Principals>,
    access_log: Arc<access_log::AccessLog>,
}

impl Approvals {
    /// A service over a store and the extension runtimes.
    pub fn new(store: Store, runtimes: Runtimes) -> Approvals {
        Approvals {
            store,
            runtimes,
            counters: Arc::new(Counters::default()),
            attachment_limit: DEFAULT_ATTACHMENT_LIMIT,
            sign_ins: Arc::default(),
            links: None,
            drift_wake: Arc::default(),
            principals: Arc::default(),
            access_log: Arc::default(),
        }
    }

    /// The same service, accepting documents of at most `bytes`.
    pub fn with_attachment_limit(mut self, bytes: usize) -> Approvals {
        self.attachment_limit = bytes;
        self
    }

    /// The store (for metrics and health checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runtimes (for `step test`).
    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    /// Counters for `/metrics`.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the store answers (the health check).
    pub async fn health(&self) -> Result<(), ApprovalError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.ping())
            .await
            .map_err(|_| ApprovalError::Store(StoreError::Unavailable))?
            .map_err(ApprovalError::from)
    }

    /// Resolves a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, ApprovalError> {
        let hash = directory::token_hash(token);
        if let Some(p) = self.principals.get(&hash) {
            return Ok(Some(p));
        }
        let (h, seen) = (hash.clone(), self.principals.generation());
        let found = self.store.read(move |c| directory::principal_by_hash(c, &h)).await?;
        if let Some(p) = &found {
            self.principals.put(hash, p.clone(), seen);
        }
        Ok(found)
    }
}
