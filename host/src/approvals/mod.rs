//! The use cases: each reads what it needs, lets the engine and the state machine decide, and
//! commits the change, its audit entries and its outbox rows in one store transaction. The HTTP
//! API and the CLI both call these; role checks live here so both enforce the same rules.
//!
//! Evaluation (running extensions) happens outside the writer: the order is read, evaluated on a
//! blocking thread, and the result is committed only if the order's version did not move in the
//! meantime (otherwise 409), so slow steps never hold up other tenants' writes.
//!
//! - [`delegation`]: lending an approver's authority for a time window (R6).
//! - [`escalation`]: the sweep that escalates overdue stages (R6).
//! - [`operator`]: what the operator does from the command line (audit of every tenant, the
//!   plugin catalog, a tenant's extensions without signing in as one of its users).
//! - [`delivery`]: the outbox dispatcher (fan-out to channels, retries, dead letters) and the
//!   admin's view of deliveries.

pub mod delegation;
pub mod delivery;
pub mod escalation;
pub mod operator;

use crate::domain::actor::{Actor, Policy, roles};
use crate::domain::audit::{AuditEntry, VerifyReport, timestamp};
use crate::domain::authorization::Authorization;
use crate::domain::contact;
use crate::domain::delivery::OutboxEvent;
use crate::domain::machine::{self, Command, Event, Outcome, Transition, TransitionError};
use crate::domain::money::{MAX_AMOUNT_MINOR, Minor};
use crate::domain::order::{InvalidField, Order, OrderInput, OrderPatch, check_json_depth, has_float};
use crate::domain::plan::Verdict;
use crate::domain::step::{ContextOrder, CostCenterProfile, OrderContext, RequesterProfile};
use crate::engine::{self, Directory};
use crate::runtime::{RuntimeError, Runtimes};
use crate::store::directory::{self, BudgetPeriod, CostCenter, Principal, Tenant, User};
use crate::store::extensions::{self, ExtensionSetting};
use crate::store::orders::{self, OrderFilter};
use crate::store::{Store, StoreError, audit, authorizations, delegations, outbox};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Storage failed (503), or a bug was caught (500, [`StoreError::Internal`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RuntimeError> for ApprovalError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Store(s) => ApprovalError::Store(s),
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

fn require_role(p: &Principal, allowed: &[&str], what: &str) -> Result<(), ApprovalError> {
    if allowed.iter().any(|r| p.user.roles.iter().any(|h| h.as_str() == *r)) {
        Ok(())
    } else {
        Err(ApprovalError::Forbidden(format!("{what} needs one of the roles: {}", allowed.join(", "))))
    }
}

/// Roles that may see every order of the tenant (the request view, R10).
const OVERSEERS: [&str; 7] = [
    roles::ADMIN,
    roles::AUDITOR,
    roles::APPROVER,
    roles::COST_CENTER_MANAGER,
    roles::COMPLIANCE,
    roles::FINANCE,
    roles::EXECUTIVE,
];

fn sees_all(p: &Principal) -> bool {
    p.user.roles.iter().any(|r| OVERSEERS.contains(&r.as_str()))
}

/// Whether the caller may see this order: its requester, an overseeing role, or anyone the plan
/// names as an approver of one of its stages (a tenant role such as `it-security`, a listed user,
/// a cost center's manager, an escalation target) or who decided one — in their own right or
/// for someone whose authority they hold under a delegation in force (`acting_for`).
fn may_see(p: &Principal, order: &Order, acting_for: &[Actor]) -> bool {
    if order.requester == p.user.name || sees_all(p) {
        return true;
    }
    let named =
        |actor: &Actor| {
            actor.roles.iter().any(|r| OVERSEERS.contains(&r.as_str()))
                || order.plan.stages.iter().any(|s| {
                    s.approvers.admits(actor) || s.escalation_target().admits(actor) || s.decided_by(&actor.name)
                })
        };
    named(&p.user.actor()) || acting_for.iter().any(named)
}

/// The people whose authority the caller holds now, under delegations in force (R6).
fn acting_for(conn: &Connection, p: &Principal, at: DateTime<Utc>) -> Result<Vec<Actor>, ApprovalError> {
    let mut actors = Vec::new();
    for d in delegations::active_for(conn, &p.tenant.id, &p.user.name, at)? {
        if let Some(u) = directory::user(conn, &p.tenant.id, &d.delegator)? {
            actors.push(u.actor());
        }
    }
    Ok(actors)
}

/// Counters the metrics endpoint exports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Step calls that failed (trap, limit, bad output).
    pub step_failures: AtomicU64,
    /// Evaluations run.
    pub evaluations: AtomicU64,
}

/// The body of `POST /v1/admin/users`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1-64 letters, digits, `.`, `_`, `-` or `@`.
    pub name: String,
    /// Roles held; at least one.
    pub roles: Vec<crate::domain::actor::Role>,
    /// E-mail for notifications.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone (E.164) for SMS.
    #[serde(default)]
    pub phone: Option<String>,
    /// Orders above this need user-specific approval.
    #[serde(default)]
    pub spend_limit_minor: Option<Minor>,
    /// Budget per period.
    #[serde(default)]
    pub budget_minor: Option<Minor>,
    /// `month` (default when a budget is given), `quarter` or `year`.
    #[serde(default)]
    pub budget_period: Option<BudgetPeriod>,
}

/// The body of `POST /v1/admin/cost-centers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCostCenter {
    /// Code, unique within the tenant.
    pub code: String,
    /// Manager's user name; the user must exist.
    pub manager: String,
    /// Yearly budget.
    #[serde(default)]
    pub budget_minor: Option<Minor>,
}

/// The body of `PUT /v1/admin/extensions/{name}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionUpdate {
    /// Whether it runs for this tenant.
    pub enabled: bool,
    /// Run order (ascending).
    #[serde(default)]
    pub position: Option<i64>,
    /// Configuration object, replaces the previous one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Capabilities granted to a plugin (each must also be declared in its manifest).
    #[serde(default)]
    pub grants: Option<extensions::Grants>,
}

/// The body of `PUT /v1/admin/settings`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// One person decides at most one stage of an order (R7).
    #[serde(default)]
    pub one_stage_per_person: Option<bool>,
}

/// Result of installing a script.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScriptInstalled {
    /// Extension name.
    pub name: String,
    /// SHA-256 of the source.
    pub code_hash: String,
    /// Whether an earlier version was replaced.
    pub replaced: bool,
}

fn check_name(field: &str, s: &str, extra: &[char]) -> Result<(), ApprovalError> {
    let ok = (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    if ok { Ok(()) } else { Err(invalid(field, format!("'{s}' must be 1-64 letters, digits or any of {extra:?}"))) }
}

fn check_amount(field: &str, v: Option<Minor>) -> Result<(), ApprovalError> {
    match v {
        Some(n) if !(0..=MAX_AMOUNT_MINOR).contains(&n) => {
            Err(invalid(field, format!("must be 0 to {MAX_AMOUNT_MINOR} (minor units), got {n}")))
        }
        _ => Ok(()),
    }
}

fn check_attributes(input: &OrderInput) -> Result<(), ApprovalError> {
    if input.attributes.values().any(has_float) {
        return Err(invalid("attributes", "numbers must be integers: express amounts in minor units"));
    }
    Ok(())
}

/// Start of the budget period containing `now`, as an audit-format timestamp.
pub fn period_start(period: BudgetPeriod, now: DateTime<Utc>) -> String {
    let month = match period {
        BudgetPeriod::Month => now.month(),
        BudgetPeriod::Quarter => (now.month() - 1) / 3 * 3 + 1,
        BudgetPeriod::Year => 1,
    };
    let start = Utc.with_ymd_and_hms(now.year(), month, 1, 0, 0, 0).single().unwrap_or(now);
    timestamp(start)
}

/// Why the context of an order could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A budget's used amount is beyond the largest amount; no step can judge it (fail closed).
    #[error(
        "the approved orders on {0} add up to more than the largest amount, {MAX_AMOUNT_MINOR} minor units; an admin must review them before this order can be evaluated"
    )]
    BudgetBeyondBounds(String),
}

/// Builds what the steps see. Reads only this tenant's data.
pub fn build_context(
    conn: &Connection,
    tenant_id: &str,
    order: &Order,
    now: DateTime<Utc>,
) -> Result<OrderContext, ContextError> {
    let user = directory::user(conn, tenant_id, &order.requester)?;
    let requester = match user {
        Some(u) => {
            let period = u.budget_period.unwrap_or(BudgetPeriod::Month);
            let used = orders::spent_by_requester(conn, tenant_id, &u.name, &period_start(period, now), &order.id)?
                .ok_or_else(|| ContextError::BudgetBeyondBounds(format!("the budget of {}", u.name)))?;
            RequesterProfile {
                name: u.name.clone(),
                roles: u.roles.iter().map(|r| r.to_string()).collect(),
                spend_limit_minor: u.spend_limit_minor,
                budget_minor: u.budget_minor,
                budget_period: u.budget_minor.map(|_| period.as_str().to_string()),
                budget_used_minor: used,
            }
        }
        None => RequesterProfile {
            name: order.requester.clone(),
            roles: Vec::new(),
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
            budget_used_minor: 0,
        },
    };
    let cost_center = match &order.input.cost_center {
        Some(code) => directory::cost_center(conn, tenant_id, code)?
            .map(|cc| -> Result<CostCenterProfile, ContextError> {
                let used = orders::spent_on_cost_center(
                    conn,
                    tenant_id,
                    code,
                    &period_start(BudgetPeriod::Year, now),
                    &order.id,
                )?
                .ok_or_else(|| ContextError::BudgetBeyondBounds(format!("cost center {code}")))?;
                Ok(CostCenterProfile {
                    code: cc.code,
                    manager: cc.manager,
                    budget_minor: cc.budget_minor,
                    budget_used_minor: used,
                })
            })
            .transpose()?,
        None => None,
    };
    Ok(OrderContext {
        order: ContextOrder::new(&order.id, &order.requester, &order.input),
        subtotal_minor: order.subtotal_minor,
        requester,
        cost_center,
        customer: None,
        budgets: Vec::new(),
        config: serde_json::Value::Null,
    })
}

struct StoreDirectory<'a> {
    store: &'a Store,
    tenant_id: String,
}

impl Directory for StoreDirectory<'_> {
    fn cost_center_manager(&self, code: &str) -> Option<String> {
        let tenant = self.tenant_id.clone();
        let code = code.to_string();
        self.store.read_blocking(move |c| directory::cost_center(c, &tenant, &code)).ok().flatten().map(|cc| cc.manager)
    }

    fn user_exists(&self, name: &str) -> bool {
        let (tenant, name) = (self.tenant_id.clone(), name.to_string());
        // A failed read counts as absent: the stage is refused and the order held (fail closed).
        self.store.read_blocking(move |c| directory::user(c, &tenant, &name)).ok().flatten().is_some()
    }

    fn role_holders(&self, role: &str, except: &str) -> usize {
        let (tenant, role, except) = (self.tenant_id.clone(), role.to_string(), except.to_string());
        self.store.read_blocking(move |c| directory::role_holders(c, &tenant, &role, &except)).unwrap_or(0)
    }
}

/// An evaluation ready to be committed with the transition it feeds.
struct Evaluated {
    /// What the steps saw; none when the evaluation stopped before the context was built.
    context: Option<OrderContext>,
    runs: Vec<engine::StepRun>,
    assessment: machine::Assessment,
}

impl Evaluated {
    /// An evaluation that stopped before the steps ran: the order goes on hold with the reason.
    fn held(
        context: Option<OrderContext>,
        runs: Vec<engine::StepRun>,
        subtotal_minor: Minor,
        reason: String,
    ) -> Evaluated {
        Evaluated {
            context,
            runs,
            assessment: machine::Assessment {
                subtotal_minor,
                adjustments: Vec::new(),
                flags: Vec::new(),
                stages: Vec::new(),
                outcome: Outcome::Hold { reason },
            },
        }
    }
}

/// One extension of an evaluation as the audit trail records it: the exact code behind the
/// decision.
#[derive(Serialize)]
struct EvaluatedExtension<'a> {
    name: &'a str,
    kind: engine::StepKind,
    code_hash: Option<&'a str>,
    error: Option<&'a str>,
}

/// Writes a transition: the order, its audit entries, its outbox rows and (if any) the
/// evaluation record. Runs inside one store transaction.
fn persist(
    conn: &Connection,
    tenant_id: &str,
    actor: &str,
    before_version: Option<u64>,
    t: &Transition,
    at: DateTime<Utc>,
    evaluation: Option<&Evaluated>,
) -> Result<(), ApprovalError> {
    match before_version {
        Some(v) => {
            if !orders::update(conn, tenant_id, &t.order, v)? {
                return Err(ApprovalError::VersionConflict(
                    "the order was changed by someone else at the same time; reload it and retry".into(),
                ));
            }
        }
        None => orders::insert(conn, tenant_id, &t.order)?,
    }
    if let Some(e) = evaluation {
        let outcome = e.assessment.outcome.as_str();
        orders::record_evaluation(conn, tenant_id, &t.order.id, &timestamp(at), e.context.as_ref(), &e.runs, outcome)?;
        // The exact code behind the decision goes into the tamper-evident trail.
        let extensions: Vec<EvaluatedExtension<'_>> = e
            .runs
            .iter()
            .map(|r| EvaluatedExtension {
                name: &r.name,
                kind: r.kind,
                code_hash: Some(r.code_hash.as_str()).filter(|h| !h.is_empty()),
                error: r.error.as_deref(),
            })
            .collect();
        let data = serde_json::json!({"outcome": outcome, "extensions": extensions});
        audit::append(conn, tenant_id, at, actor, "order_evaluated", Some(&t.order.id), data)?;
    }
    let ts = timestamp(at);
    for event in &t.events {
        let data = serde_json::to_value(event).unwrap_or_default();
        let action = data["action"].as_str().unwrap_or_default().to_string();
        let mut details = data.clone();
        if let Some(o) = details.as_object_mut() {
            o.remove("action");
        }
        audit::append(conn, tenant_id, at, actor, &action, Some(&t.order.id), details)?;
        if OutboxEvent::is_announced(event) {
            outbox::enqueue(conn, tenant_id, &OutboxEvent::new(&t.order, actor, event.clone()), &ts)?;
        }
        if matches!(event, Event::OrderApproved { .. }) {
            issue_authorization(conn, tenant_id, actor, &t.order, at)?;
        }
    }
    Ok(())
}

/// R4: the approval of a customer order issues its authorization certificate, in the approval's
/// transaction, with the certificate's hash in the audit chain.
fn issue_authorization(
    conn: &Connection,
    tenant_id: &str,
    actor: &str,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    if order.input.customer_id.is_none() {
        return Ok(());
    }
    let ctx = orders::latest_context(conn, tenant_id, &order.id)?;
    let name = ctx.as_ref().and_then(|c| c["customer"]["name"].as_str()).map(str::to_string);
    let Some(a) = Authorization::issue(uuid::Uuid::now_v7().to_string(), order, name, at) else { return Ok(()) };
    authorizations::insert(conn, tenant_id, &a)?;
    let data = serde_json::json!({"authorization": a.id, "customer_id": a.customer_id, "total_minor": a.total_minor, "sha256": a.sha256});
    audit::append(conn, tenant_id, at, actor, "authorization_issued", Some(&order.id), data)?;
    Ok(())
}

/// The approval service. Cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    store: Store,
    runtimes: Runtimes,
    counters: Arc<Counters>,
}

impl Approvals {
    /// A service over a store and the extension runtimes.
    pub fn new(store: Store, runtimes: Runtimes) -> Approvals {
        Approvals { store, runtimes, counters: Arc::new(Counters::default()) }
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
        let token = token.to_string();
        Ok(self.store.read(move |c| directory::principal(c, &token)).await?)
    }

    // ---- directory -------------------------------------------------------------------------

    /// Creates a tenant with its first user `admin` and returns the admin's token.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, String), ApprovalError> {
        check_name("name", name, &['-', '_', '.'])?;
        let token = directory::new_token()?;
        let name = name.to_string();
        let t2 = token.clone();
        let tenant = self
            .store
            .write(move |c| -> Result<Tenant, ApprovalError> {
                if directory::tenant_by_name(c, &name)?.is_some() {
                    return Err(ApprovalError::Conflict(format!(
                        "a tenant named '{name}' already exists; pick another name"
                    )));
                }
                let tenant = directory::create_tenant(c, &name)?;
                let admin = User {
                    name: "admin".into(),
                    roles: vec![roles::ADMIN.parse().map_err(|_| invalid("roles", "bad role"))?],
                    email: None,
                    phone: None,
                    spend_limit_minor: None,
                    budget_minor: None,
                    budget_period: None,
                };
                directory::insert_user(c, &tenant.id, &admin)?;
                directory::insert_token(c, &tenant.id, "admin", &t2)?;
                audit::append(
                    c,
                    &tenant.id,
                    Utc::now(),
                    "system",
                    "tenant_created",
                    None,
                    serde_json::json!({"name": name}),
                )?;
                audit::append(
                    c,
                    &tenant.id,
                    Utc::now(),
                    "system",
                    "user_created",
                    None,
                    serde_json::json!({"name": "admin", "roles": ["admin"]}),
                )?;
                Ok(tenant)
            })
            .await?;
        Ok((tenant, token))
    }

    /// Creates a user and returns it with its bearer token (shown once; only its hash is kept).
    pub async fn create_user(&self, p: &Principal, body: NewUser) -> Result<(User, String), ApprovalError> {
        require_role(p, &[roles::ADMIN], "creating users")?;
        check_name("name", &body.name, &['-', '_', '.', '@'])?;
        if body.roles.is_empty() {
            return Err(invalid("roles", "give the user at least one role, e.g. [\"requester\"]"));
        }
        check_amount("spend_limit_minor", body.spend_limit_minor)?;
        check_amount("budget_minor", body.budget_minor)?;
        if let Some(e) = &body.email {
            contact::check_email(e).map_err(|e| invalid("email", e.to_string()))?;
        }
        if let Some(ph) = &body.phone {
            contact::check_phone(ph).map_err(|e| invalid("phone", e.to_string()))?;
        }
        let mut roles = body.roles.clone();
        roles.sort();
        roles.dedup();
        let user = User {
            name: body.name.clone(),
            roles,
            email: body.email,
            phone: body.phone,
            spend_limit_minor: body.spend_limit_minor,
            budget_minor: body.budget_minor,
            budget_period: body.budget_minor.map(|_| body.budget_period.unwrap_or(BudgetPeriod::Month)),
        };
        let token = directory::new_token()?;
        let (tenant_id, actor, u, t) = (p.tenant.id.clone(), p.user.name.clone(), user.clone(), token.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if directory::user(c, &tenant_id, &u.name)?.is_some() {
                    return Err(ApprovalError::Conflict(format!(
                        "a user named '{}' already exists in this tenant",
                        u.name
                    )));
                }
                directory::insert_user(c, &tenant_id, &u)?;
                directory::insert_token(c, &tenant_id, &u.name, &t)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "user_created",
                    None,
                    serde_json::to_value(&u).unwrap_or_default(),
                )?;
                Ok(())
            })
            .await?;
        Ok((user, token))
    }

    /// Creates a cost center; its manager must be a user of the tenant.
    pub async fn create_cost_center(&self, p: &Principal, body: NewCostCenter) -> Result<CostCenter, ApprovalError> {
        require_role(p, &[roles::ADMIN], "creating cost centers")?;
        check_name("code", &body.code, &['-', '_', '.'])?;
        check_amount("budget_minor", body.budget_minor)?;
        let cc = CostCenter { code: body.code, manager: body.manager, budget_minor: body.budget_minor };
        let (tenant_id, actor, c2) = (p.tenant.id.clone(), p.user.name.clone(), cc.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if directory::user(c, &tenant_id, &c2.manager)?.is_none() {
                    return Err(invalid(
                        "manager",
                        format!("no user '{}' in this tenant; create the user first", c2.manager),
                    ));
                }
                if directory::cost_center(c, &tenant_id, &c2.code)?.is_some() {
                    return Err(ApprovalError::Conflict(format!("cost center '{}' already exists", c2.code)));
                }
                directory::insert_cost_center(c, &tenant_id, &c2)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "cost_center_created",
                    None,
                    serde_json::to_value(&c2).unwrap_or_default(),
                )?;
                Ok(())
            })
            .await?;
        Ok(cc)
    }

    /// Changes tenant settings.
    pub async fn update_settings(&self, p: &Principal, body: SettingsUpdate) -> Result<Policy, ApprovalError> {
        require_role(p, &[roles::ADMIN], "changing settings")?;
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store
            .write(move |c| -> Result<Policy, ApprovalError> {
                let tenant = directory::tenant(c, &tenant_id)?
                    .ok_or_else(|| ApprovalError::NotFound("tenant not found".into()))?;
                let mut policy = tenant.policy;
                if let Some(v) = body.one_stage_per_person {
                    policy.one_stage_per_person = v;
                }
                directory::save_policy(c, &tenant_id, &policy)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "settings_changed",
                    None,
                    serde_json::to_value(policy).unwrap_or_default(),
                )?;
                Ok(policy)
            })
            .await
    }

    /// Installs or replaces a tenant script after checking it compiles.
    pub async fn add_script(&self, p: &Principal, name: &str, source: &str) -> Result<ScriptInstalled, ApprovalError> {
        require_role(p, &[roles::ADMIN], "installing scripts")?;
        check_name("name", name, &['-', '_'])?;
        let n = name.to_string();
        if self.store.read(move |c| crate::store::plugins::get(c, &n)).await?.is_some() {
            return Err(ApprovalError::Conflict(format!(
                "a plugin named '{name}' is installed on this host; give the script another name"
            )));
        }
        let (hash, _) = self.runtimes.rhai.compile(source)?;
        let (tenant_id, actor, name, source, h) =
            (p.tenant.id.clone(), p.user.name.clone(), name.to_string(), source.to_string(), hash.clone());
        let n2 = name.clone();
        let replaced = self
            .store
            .write(move |c| -> Result<bool, ApprovalError> {
                let now = Utc::now();
                let replaced = extensions::upsert_script(c, &tenant_id, &n2, &source, &h, &timestamp(now))?;
                audit::append(
                    c,
                    &tenant_id,
                    now,
                    &actor,
                    "script_installed",
                    None,
                    serde_json::json!({"name": n2, "code_hash": h, "replaced": replaced}),
                )?;
                Ok(replaced)
            })
            .await?;
        Ok(ScriptInstalled { name, code_hash: hash, replaced })
    }

    /// The tenant's extensions with their settings.
    pub async fn extensions(&self, p: &Principal) -> Result<Vec<ExtensionSetting>, ApprovalError> {
        require_role(p, &[roles::ADMIN], "listing extensions")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| extensions::settings(c, &tenant_id)).await?)
    }

    /// Enables, disables, moves or configures an extension for the tenant.
    pub async fn update_extension(
        &self,
        p: &Principal,
        name: &str,
        body: ExtensionUpdate,
    ) -> Result<ExtensionSetting, ApprovalError> {
        require_role(p, &[roles::ADMIN], "configuring extensions")?;
        self.configure_extension(&p.tenant.id, &p.user.name, name, body).await
    }

    /// Enables, disables, moves or configures an extension for a tenant, on behalf of `actor`
    /// (an admin, or the operator), whose name the audit entry carries.
    async fn configure_extension(
        &self,
        tenant_id: &str,
        actor: &str,
        name: &str,
        body: ExtensionUpdate,
    ) -> Result<ExtensionSetting, ApprovalError> {
        if let Some(cfg) = &body.config {
            if !cfg.is_object() {
                return Err(invalid("config", "must be a JSON object"));
            }
            if has_float(cfg) {
                return Err(invalid(
                    "config",
                    "numbers must be integers: express amounts in minor units and rates in basis points",
                ));
            }
            if serde_json::to_vec(cfg).map(|v| v.len()).unwrap_or(usize::MAX) > 64 * 1024 {
                return Err(invalid("config", "must be at most 64 KiB"));
            }
            check_json_depth("config", cfg.as_object().into_iter().flat_map(|o| o.values()))?;
        }
        if let Some(pos) = body.position
            && !(0..=1_000_000).contains(&pos)
        {
            return Err(invalid("position", "must be between 0 and 1000000"));
        }
        // A plugin's configuration and grants are checked against its manifest.
        let n = name.to_string();
        let plugin = self.store.read(move |c| crate::store::plugins::get(c, &n)).await?;
        if let Some(record) = &plugin {
            let manifest: crate::runtime::manifest::Manifest = serde_json::from_value(record.manifest.clone())
                .map_err(|e| {
                    ApprovalError::Extension(format!(
                        "the stored manifest of '{name}' is unreadable ({e}); reinstall the plugin"
                    ))
                })?;
            if let Some(cfg) = &body.config {
                manifest.effective_config(cfg).map_err(|e| invalid("config", e.to_string()))?;
            }
            if let Some(g) = &body.grants {
                if let Some(o) = g.http.iter().find(|o| !manifest.capabilities.declares_origin(o)) {
                    return Err(invalid(
                        "grants.http",
                        format!(
                            "'{o}' is not among the origins the plugin's manifest declares: {:?}",
                            manifest.capabilities.http
                        ),
                    ));
                }
                if g.mail && !manifest.capabilities.mail {
                    return Err(invalid("grants.mail", "the plugin's manifest does not ask for mail"));
                }
            }
            if manifest.kind == crate::runtime::manifest::Kind::Native
                && body.enabled
                && !self.runtimes.options().allow_native
            {
                return Err(ApprovalError::Forbidden(
                    "native plugins are disabled on this host; the operator must allow them".into(),
                ));
            }
        } else if body.grants.as_ref().is_some_and(|g| !g.http.is_empty() || g.mail) {
            return Err(invalid("grants", "scripts get no capabilities: they are pure approval steps"));
        }
        let (tenant_id, actor, name) = (tenant_id.to_string(), actor.to_string(), name.to_string());
        let is_plugin = plugin.is_some();
        self.store
            .write(move |c| -> Result<ExtensionSetting, ApprovalError> {
                if !is_plugin && !extensions::script_exists(c, &tenant_id, &name)? {
                    return Err(ApprovalError::NotFound(format!(
                        "no extension '{name}' is installed; see GET /v1/admin/extensions"
                    )));
                }
                extensions::update_setting(
                    c,
                    &tenant_id,
                    &name,
                    body.enabled,
                    body.position,
                    body.config.as_ref(),
                    body.grants.as_ref(),
                )?;
                let setting = extensions::settings(c, &tenant_id)?
                    .into_iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| ApprovalError::NotFound(format!("no extension '{name}'")))?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "extension_configured",
                    None,
                    serde_json::to_value(&setting).unwrap_or_default(),
                )?;
                Ok(setting)
            })
            .await
    }

    // ---- orders ----------------------------------------------------------------------------

    async fn check_cost_center(&self, tenant_id: &str, input: &OrderInput) -> Result<(), ApprovalError> {
        if let Some(code) = input.cost_center.clone() {
            let t = tenant_id.to_string();
            let c2 = code.clone();
            if self.store.read(move |c| directory::cost_center(c, &t, &c2)).await?.is_none() {
                return Err(invalid(
                    "cost_center",
                    format!("no cost center '{code}' in this tenant; ask an admin to create it"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a draft order.
    pub async fn create_order(&self, p: &Principal, input: OrderInput) -> Result<Order, ApprovalError> {
        require_role(p, &[roles::REQUESTER, roles::ADMIN], "creating orders")?;
        let subtotal = input.validate()?;
        check_attributes(&input)?;
        self.check_cost_center(&p.tenant.id, &input).await?;
        let now = Utc::now();
        let order = Order::new_draft(uuid::Uuid::now_v7().to_string(), p.user.name.clone(), input, subtotal, now);
        let t = Transition { order: order.clone(), events: vec![Event::OrderCreated { subtotal_minor: subtotal }] };
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store.write(move |c| persist(c, &tenant_id, &actor, None, &t, now, None)).await?;
        Ok(order)
    }

    async fn load_visible(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        let (caller, id2) = (p.clone(), id.to_string());
        self.store
            .read(move |c| -> Result<Option<Order>, ApprovalError> {
                let Some(order) = orders::load(c, &caller.tenant.id, &id2)? else { return Ok(None) };
                let visible =
                    may_see(&caller, &order, &[]) || may_see(&caller, &order, &acting_for(c, &caller, Utc::now())?);
                Ok(visible.then_some(order))
            })
            .await?
            .ok_or_else(|| not_found_order(id))
    }

    /// One order, if the caller may see it (requester, approvers, admin, auditor).
    pub async fn order(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.load_visible(p, id).await
    }

    /// Runs the tenant's steps on an order (on a blocking thread).
    async fn evaluate(&self, tenant_id: &str, order: &Order) -> Result<Evaluated, ApprovalError> {
        let (store, runtimes, tenant_id, order) =
            (self.store.clone(), self.runtimes.clone(), tenant_id.to_string(), order.clone());
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || -> Result<Evaluated, ApprovalError> {
            let (t2, o2) = (tenant_id.clone(), order.clone());
            let mut ctx = match store.read_blocking(move |c| build_context(c, &t2, &o2, Utc::now())) {
                Ok(ctx) => ctx,
                Err(ContextError::Store(e)) => return Err(e.into()),
                Err(e @ ContextError::BudgetBeyondBounds(_)) => {
                    let reason = e.to_string();
                    tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
                    return Ok(Evaluated::held(None, Vec::new(), order.subtotal_minor, reason));
                }
            };
            // Connector data first (customer, invoices, budgets); without it, fail closed.
            if let Err(reason) = runtimes.enrich(&store, &tenant_id, &mut ctx) {
                counters.step_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
                let run = engine::StepRun {
                    name: "connector".into(),
                    kind: engine::StepKind::Connector,
                    code_hash: String::new(),
                    output: None,
                    error: Some(reason.clone()),
                };
                let subtotal = ctx.subtotal_minor;
                return Ok(Evaluated::held(Some(ctx), vec![run], subtotal, reason));
            }
            let steps = runtimes.steps_for(&store, &tenant_id)?;
            let dir = StoreDirectory { store: &store, tenant_id: tenant_id.clone() };
            let eval = engine::evaluate(&ctx, &steps, &dir);
            counters.evaluations.fetch_add(1, Ordering::Relaxed);
            counters.step_failures.fetch_add(eval.failures as u64, Ordering::Relaxed);
            if let Outcome::Hold { reason } = &eval.assessment.outcome {
                tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
            }
            Ok(Evaluated { context: Some(ctx), runs: eval.runs, assessment: eval.assessment })
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(payload) => ApprovalError::Store(StoreError::Internal(crate::store::report_panic(
                "an evaluation",
                payload.as_ref(),
            ))),
            Err(_) => ApprovalError::Store(StoreError::Unavailable),
        })?
    }

    /// Commits a command computed from a previously read order, if it did not change meanwhile.
    async fn commit(
        &self,
        p: &Principal,
        order: Order,
        make: impl FnOnce(&Order, &Policy) -> Result<Transition, TransitionError> + Send + 'static,
        evaluation: Option<Evaluated>,
        at: DateTime<Utc>,
    ) -> Result<Order, ApprovalError> {
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store
            .write(move |c| -> Result<Order, ApprovalError> {
                let current = orders::load(c, &tenant_id, &order.id)?.ok_or_else(|| not_found_order(&order.id))?;
                if current.version != order.version {
                    return Err(ApprovalError::VersionConflict(
                        "the order changed while it was being evaluated; reload it and retry".into(),
                    ));
                }
                let policy = directory::tenant(c, &tenant_id)?.map(|t| t.policy).unwrap_or_default();
                let t = make(&current, &policy)?;
                persist(c, &tenant_id, &actor, Some(current.version), &t, at, evaluation.as_ref())?;
                Ok(t.order)
            })
            .await
    }

    /// Submits (or resubmits an on-hold) order: evaluates it and applies the result.
    pub async fn submit(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        machine::check_submit(&order, &p.user.actor())?;
        let evaluated = self.evaluate(&p.tenant.id, &order).await?;
        let by = p.user.actor();
        let at = Utc::now();
        let assessment = evaluated.assessment.clone();
        self.commit(
            p,
            order,
            move |o, pol| machine::apply(o, Command::Submit { by, assessment, at }, pol),
            Some(evaluated),
            at,
        )
        .await
    }

    /// Edits an order; past draft it is re-evaluated and its decisions reset.
    pub async fn edit(&self, p: &Principal, id: &str, patch: OrderPatch) -> Result<Order, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        machine::check_edit(&order, &p.user.actor())?;
        let input = patch.apply_to(order.input.clone());
        let subtotal = input.validate()?;
        check_attributes(&input)?;
        self.check_cost_center(&p.tenant.id, &input).await?;
        let (evaluated, assessment) = if machine::edit_needs_assessment(&order) {
            let mut preview = order.clone();
            preview.input = input.clone();
            preview.subtotal_minor = subtotal;
            let e = self.evaluate(&p.tenant.id, &preview).await?;
            let a = e.assessment.clone();
            (Some(e), Some(a))
        } else {
            (None, None)
        };
        let by = p.user.actor();
        let at = Utc::now();
        self.commit(
            p,
            order,
            move |o, pol| machine::apply(o, Command::Edit { by, input, subtotal_minor: subtotal, assessment, at }, pol),
            evaluated,
            at,
        )
        .await
    }

    /// Approves or rejects a stage. A caller who is not an approver of the stage but holds a
    /// delegation from one decides in that person's name (`on_behalf_of`, R6); their own
    /// authority always comes first.
    pub async fn decide(
        &self,
        p: &Principal,
        id: &str,
        stage: String,
        verdict: Verdict,
        comment: Option<String>,
    ) -> Result<Order, ApprovalError> {
        self.change(p, id, move |order, by, acting_for, at| {
            let on_behalf_of = order
                .plan
                .stage(&stage)
                .filter(|s| !s.admits(&by))
                .and_then(|s| acting_for.iter().find(|d| s.admits(d)))
                .cloned();
            Command::Decide { by, on_behalf_of, stage, verdict, comment, at }
        })
        .await
    }

    /// [`Approvals::change`] for commands that need only the caller and the time.
    async fn simple(
        &self,
        p: &Principal,
        id: &str,
        make: impl FnOnce(Actor, DateTime<Utc>) -> Command + Send + 'static,
    ) -> Result<Order, ApprovalError> {
        self.change(p, id, move |_, by, _, at| make(by, at)).await
    }

    /// Applies one command to an order in a single writer change: load, check the caller may see
    /// it (another tenant's or an unrelated order is a 404), apply, persist. Reading and deciding
    /// in one change is what makes concurrent decisions resolve to exactly one winner. `make`
    /// gets the order, the caller and whose authority the caller holds under delegations.
    async fn change(
        &self,
        p: &Principal,
        id: &str,
        make: impl FnOnce(&Order, Actor, &[Actor], DateTime<Utc>) -> Command + Send + 'static,
    ) -> Result<Order, ApprovalError> {
        let by = p.user.actor();
        let at = Utc::now();
        let caller = p.clone();
        let id = id.to_string();
        self.store
            .write(move |c| -> Result<Order, ApprovalError> {
                let tenant_id = &caller.tenant.id;
                let acting_for = acting_for(c, &caller, at)?;
                let order = orders::load(c, tenant_id, &id)?
                    .filter(|o| may_see(&caller, o, &acting_for))
                    .ok_or_else(|| not_found_order(&id))?;
                let policy = directory::tenant(c, tenant_id)?.map(|t| t.policy).unwrap_or_default();
                let command = make(&order, by, &acting_for, at);
                let t = machine::apply(&order, command, &policy)?;
                persist(c, tenant_id, &caller.user.name, Some(order.version), &t, at, None)?;
                Ok(t.order)
            })
            .await
    }

    /// The requester withdraws the order.
    pub async fn withdraw(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Withdraw { by, at }).await
    }

    /// An admin revokes an approval (R8); the order goes back to pending.
    pub async fn revoke(&self, p: &Principal, id: &str, reason: String) -> Result<Order, ApprovalError> {
        self.simple(p, id, move |by, at| Command::Revoke { by, reason, at }).await
    }

    /// Admin or finance releases an approved order.
    pub async fn release(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Release { by, at }).await
    }

    /// Pauses a subscription.
    pub async fn deactivate(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Deactivate { by, at }).await
    }

    /// Resumes a subscription, without new approval (R3).
    pub async fn reactivate(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Reactivate { by, at }).await
    }

    /// The request view (R10). Users without an overseeing role see only their own orders.
    pub async fn list(
        &self,
        p: &Principal,
        mut filter: OrderFilter,
    ) -> Result<(Vec<Order>, Option<String>), ApprovalError> {
        if !sees_all(p) {
            match &filter.requester {
                Some(r) if *r != p.user.name => return Ok((Vec::new(), None)),
                _ => filter.requester = Some(p.user.name.clone()),
            }
        }
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| orders::list(c, &tenant_id, &filter)).await?)
    }

    /// Orders with a stage the caller may decide now — in their own right or under a delegation
    /// in force (R6); never the caller's own (R2, R7). Oldest first, `limit` per page after the
    /// order id `cursor`; the second value is the cursor of the next page.
    pub async fn inbox(
        &self,
        p: &Principal,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<Order>, Option<String>), ApprovalError> {
        let caller = p.clone();
        let policy = p.tenant.policy;
        self.store
            .read(move |c| -> Result<(Vec<Order>, Option<String>), ApprovalError> {
                let me = caller.user.actor();
                let mut authorities = vec![me.clone()];
                authorities.extend(acting_for(c, &caller, Utc::now())?);
                // Each authority's first `limit + 1` decidable orders after the cursor; the
                // first `limit + 1` of their union are then the page and whether more follow.
                let mut found: std::collections::BTreeMap<String, Order> = Default::default();
                for who in &authorities {
                    let roles: Vec<String> = who.roles.iter().map(|r| r.to_string()).collect();
                    let (mut after, mut kept) = (cursor.clone(), 0);
                    'scan: loop {
                        let batch = orders::open_for(c, &caller.tenant.id, &who.name, &roles, after.as_deref(), 200)?;
                        let full = batch.len() == 200;
                        for o in batch {
                            after = Some(o.id.clone());
                            if !machine::decidable_on_behalf(&o, &me, who, &policy).is_empty() {
                                found.entry(o.id.clone()).or_insert(o);
                                kept += 1;
                                if kept > limit {
                                    break 'scan;
                                }
                            }
                        }
                        if !full {
                            break;
                        }
                    }
                }
                let mut page: Vec<Order> = found.into_values().take(limit + 1).collect();
                let next = if page.len() > limit {
                    page.truncate(limit);
                    page.last().map(|o| o.id.clone())
                } else {
                    None
                };
                Ok((page, next))
            })
            .await
    }

    /// Customer authorization certificates (R4), newest first; for the roles that oversee orders.
    pub async fn authorizations(
        &self,
        p: &Principal,
        customer_id: Option<String>,
        order_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Authorization>, ApprovalError> {
        if !sees_all(p) {
            return Err(ApprovalError::Forbidden(format!(
                "reading authorization certificates needs one of the roles: {}",
                OVERSEERS.join(", ")
            )));
        }
        let tenant_id = p.tenant.id.clone();
        Ok(self
            .store
            .read(move |c| authorizations::list(c, &tenant_id, customer_id.as_deref(), order_id.as_deref(), limit))
            .await?)
    }

    /// An order's audit trail, oldest first.
    pub async fn order_audit(&self, p: &Principal, id: &str) -> Result<Vec<AuditEntry>, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::for_order(c, &tenant_id, &order.id)).await?)
    }

    /// A page of the tenant's audit log (auditor or admin).
    pub async fn audit_page(
        &self,
        p: &Principal,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "reading the audit log")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::page(c, &tenant_id, after_seq, limit)).await?)
    }

    /// Verifies the tenant's audit chain (auditor or admin).
    pub async fn audit_verify(&self, p: &Principal) -> Result<VerifyReport, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "verifying the audit log")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::verify(c, &tenant_id)).await?)
    }
}
