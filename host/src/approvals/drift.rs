//! Drift checks (R8: "periodic checks that compare system decisions against policy changes,
//! surfacing any drift or unauthorized overrides"). `serve` re-evaluates each tenant's pending
//! orders under its current rules on a schedule and soon after its rules change; an order whose
//! plan would now differ is flagged `policy_drift` with the difference (audited, announced to the
//! tenant's admins through the outbox), and the flag is cleared when the rules plan it as it is
//! again. Like what-if, a check runs on the stored contexts: no connector is called.
//!
//! The drift report lists, for a period, the drift found and cleared and the decisions taken by
//! override: approvals revoked, orders released by hand, stages decided by escalation targets.

use super::access::require_role;
use super::commit::persist;
use super::context::TenantDirectory;
use super::{ApprovalError, Approvals};
use crate::domain::actor::roles;
use crate::domain::audit::timestamp;
use crate::domain::directory::Principal;
use crate::domain::drift::{DRIFT_CHECKER, PlanDifference, PlanShape};
use crate::domain::extension::World;
use crate::domain::machine::{self, Command};
use crate::domain::order::OrderStatus;
use crate::domain::report::SummaryQuery;
use crate::engine;
use crate::store::orders::{self, OrderFilter};
use crate::store::{StoreError, audit, directory, drift, extensions};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How often the worker looks for rules changed without telling it (by the command line, or by
/// another process), when the schedule is longer.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// Most entries of each list in one drift report.
pub const MAX_DRIFT_REPORT_ROWS: usize = 1_000;

/// Why a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftTrigger {
    /// The tenant was never checked.
    First,
    /// The tenant's rules changed since its last check.
    PolicyChange,
    /// The schedule came round.
    Schedule,
    /// The operator asked for it (`greenlight drift-check`).
    Request,
}

/// What one check of one tenant did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftCheck {
    /// Why it ran.
    pub trigger: DriftTrigger,
    /// SHA-256 of the rules it checked against (each enabled step's name, code and configuration).
    pub policy_hash: String,
    /// Pending orders re-evaluated.
    pub orders_checked: usize,
    /// Pending orders left for the next check: without a stored context, changed while being
    /// checked, or with a step that failed this time (a failure is no verdict on the rules).
    pub orders_skipped: usize,
    /// Orders newly flagged (or flagged with another difference).
    pub flagged: usize,
    /// Orders whose flag was cleared.
    pub cleared: usize,
}

/// An order found drifting.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftFinding {
    /// The order.
    pub order_id: String,
    /// When the check found it.
    pub at: String,
    /// How its plan differs from what the rules of that moment would make.
    pub difference: PlanDifference,
}

/// An order whose drift flag was cleared: the rules plan it as it is again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftCleared {
    /// The order.
    pub order_id: String,
    /// When the check cleared it.
    pub at: String,
}

/// Which override an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// An admin revoked an approval.
    Revoked,
    /// Someone released an order by hand rather than through the ERP.
    ReleasedByHand,
    /// A stage was decided by the target it escalated to, not by its approvers.
    DecidedAsEscalationTarget,
}

/// A decision taken by override.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OverrideFinding {
    /// The order.
    pub order_id: String,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What kind of override.
    pub kind: OverrideKind,
    /// The audit entry's details (the reason of a revocation, the stage and verdict of a decision).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// The drift report of a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftReport {
    /// Start of the period, included.
    pub from: DateTime<Utc>,
    /// End of the period, excluded.
    pub to: DateTime<Utc>,
    /// Orders found drifting, oldest first.
    pub drifted: Vec<DriftFinding>,
    /// Orders whose drift flag was cleared (the rules plan them as they are again).
    pub cleared: Vec<DriftCleared>,
    /// Decisions taken by override, oldest first.
    pub overrides: Vec<OverrideFinding>,
    /// Whether the period held more entries than one report lists ([`MAX_DRIFT_REPORT_ROWS`]):
    /// ask for a shorter one.
    pub truncated: bool,
}

/// The hash of a tenant's rules: each enabled approval step's name, code hash and
/// configuration, in run order. Read from the settings alone (one query), so telling whether
/// the rules changed loads and compiles nothing.
fn policy_hash(conn: &rusqlite::Connection, tenant_id: &str) -> Result<String, StoreError> {
    let mut h = Sha256::new();
    let settings = extensions::settings(conn, tenant_id)?;
    for s in settings.iter().filter(|s| s.enabled && s.world == World::ApprovalStep) {
        for part in [s.name.as_str(), s.code_hash.as_str(), &s.config.to_string()] {
            h.update(part.len().to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    Ok(hex::encode(h.finalize()))
}

impl Approvals {
    /// [`Approvals::check_drift`] from the command line, for a tenant by name.
    pub async fn check_drift_as_operator(&self, tenant: &str) -> Result<DriftCheck, ApprovalError> {
        let t = self.tenant_named(tenant).await?;
        self.check_drift(&t.id, DriftTrigger::Request).await
    }

    /// Tells the drift worker the rules changed, so it checks soon rather than on schedule.
    pub(super) fn policy_changed(&self) {
        self.drift_wake.notify_one();
    }

    /// Re-evaluates one tenant's pending orders under its current rules, flagging or clearing
    /// drift. Runs on a blocking thread; each order's change is its own transaction.
    pub async fn check_drift(&self, tenant_id: &str, trigger: DriftTrigger) -> Result<DriftCheck, ApprovalError> {
        let (store, runtimes, t) = (self.store.clone(), self.runtimes.clone(), tenant_id.to_string());
        tokio::task::spawn_blocking(move || -> Result<DriftCheck, ApprovalError> {
            // Hashed first: a change while the steps load shows as a new hash at the next round.
            let t0 = t.clone();
            let hash = store.read_blocking(move |c| policy_hash(c, &t0))?;
            // Fresh instances: a check must neither see nor leave what a tenant's orders reuse.
            let steps = runtimes.fresh().steps_for(&store, &t)?;
            let mut report =
                DriftCheck { trigger, policy_hash: hash, orders_checked: 0, orders_skipped: 0, flagged: 0, cleared: 0 };
            let directory = TenantDirectory::new(&store, &t);
            let mut cursor = None;
            loop {
                let filter = OrderFilter {
                    status: Some(OrderStatus::PendingApproval),
                    limit: 200,
                    cursor: cursor.clone(),
                    ..OrderFilter::default()
                };
                let t2 = t.clone();
                let (page, next) = store.read_blocking(move |c| orders::list_with_contexts(c, &t2, &filter))?;
                for (order, ctx) in page {
                    let Some(ctx) = ctx else {
                        report.orders_skipped += 1;
                        continue;
                    };
                    let evaluation = engine::evaluate(&ctx, &steps, &directory);
                    if evaluation.failures > 0 {
                        report.orders_skipped += 1;
                        continue;
                    }
                    report.orders_checked += 1;
                    let now = evaluation.assessment;
                    let drift = PlanDifference::between(&PlanShape::of_order(&order), &PlanShape::of_assessment(&now));
                    let flagged = order.flags.iter().find(|f| f.source == DRIFT_CHECKER);
                    let unchanged = match (&drift, flagged) {
                        (Some(d), Some(f)) => d.flag() == *f,
                        (None, None) => true,
                        _ => false,
                    };
                    if unchanged {
                        continue;
                    }
                    let clearing = drift.is_none();
                    let (t4, version, id) = (t.clone(), order.version, order.id.clone());
                    let committed = store.write_blocking(move |c| -> Result<bool, ApprovalError> {
                        let at = Utc::now();
                        // Changed since it was read (decided, edited): the next check sees it anew.
                        let Some(current) = orders::load(c, &t4, &id)?.filter(|o| o.version == version) else {
                            return Ok(false);
                        };
                        let policy = directory::tenant(c, &t4)?.map(|t| t.policy).unwrap_or_default();
                        let tr = machine::apply(&current, Command::MarkDrift { drift, at }, &policy)?;
                        persist(c, &t4, DRIFT_CHECKER, Some(&current), &tr, at, None)?;
                        Ok(true)
                    })?;
                    match (committed, clearing) {
                        (false, _) => report.orders_skipped += 1,
                        (true, true) => report.cleared += 1,
                        (true, false) => report.flagged += 1,
                    }
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let (t5, hash) = (t.clone(), report.policy_hash.clone());
            store.write_blocking(move |c| drift::record_check(c, &t5, &hash, &timestamp(Utc::now())))?;
            Ok(report)
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(payload) => ApprovalError::Internal(crate::store::report_panic("a drift check", payload.as_ref())),
            Err(_) => ApprovalError::Internal("a drift check was cancelled".into()),
        })?
    }

    /// One round of the worker: checks each tenant never checked, whose rules changed since
    /// its last check, or whose schedule came round. A tenant whose check fails (its rules
    /// cannot be loaded, say) is logged and skipped; the others are checked all the same.
    pub async fn drift_round(&self, every: Duration) -> Result<Vec<(String, DriftCheck)>, ApprovalError> {
        let tenants = self.store.read(directory::tenant_ids).await?;
        let mut done = Vec::new();
        for (tenant_id, name) in tenants {
            match self.drift_due(&tenant_id, every).await {
                Ok(Some(check)) => {
                    if check.flagged + check.cleared > 0 {
                        tracing::info!(tenant = %name, trigger = ?check.trigger, flagged = check.flagged, cleared = check.cleared, "policy drift checked");
                    }
                    done.push((name, check));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(tenant = %name, error = %e, "the drift check of a tenant failed; it is retried at the next round")
                }
            }
        }
        Ok(done)
    }

    /// Checks one tenant if it is due.
    async fn drift_due(&self, tenant_id: &str, every: Duration) -> Result<Option<DriftCheck>, ApprovalError> {
        let t = tenant_id.to_string();
        let (hash, last) = self
            .store
            .read(move |c| -> Result<_, StoreError> { Ok((policy_hash(c, &t)?, drift::last_check(c, &t)?)) })
            .await?;
        // A last check "in the future" (the clock was set back) counts as due.
        let due = |at: &str| {
            DateTime::parse_from_rfc3339(at)
                .map_or(true, |at| Utc::now().signed_duration_since(at).to_std().map_or(true, |since| since >= every))
        };
        let trigger = match last {
            None => DriftTrigger::First,
            Some((h, _)) if h != hash => DriftTrigger::PolicyChange,
            Some((_, at)) if due(&at) => DriftTrigger::Schedule,
            Some(_) => return Ok(None),
        };
        self.check_drift(tenant_id, trigger).await.map(Some)
    }

    /// Runs drift checks for as long as the server runs: each tenant every `every`, and soon
    /// after its rules change. A failed round is logged and retried.
    pub async fn run_drift_checks(self, every: Duration) {
        let look = every.min(LOOK_EVERY);
        loop {
            if let Err(e) = self.drift_round(every).await {
                tracing::warn!(error = %e, "a drift check round failed; retrying at the next one");
            }
            tokio::select! {
                _ = self.drift_wake.notified() => {}
                _ = tokio::time::sleep(look) => {}
            }
        }
    }

    /// The drift report of a period (auditor, admin): drift found and cleared, and decisions
    /// taken by override.
    pub async fn drift_report(&self, p: &Principal, period: SummaryQuery) -> Result<DriftReport, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "reading reports")?;
        let (tenant_id, from, to) = (p.tenant.id.clone(), period.from, period.to);
        let entries =
            self.store.read(move |c| audit::overrides(c, &tenant_id, from, to, 3 * MAX_DRIFT_REPORT_ROWS + 1)).await?;
        let truncated = entries.len() > 3 * MAX_DRIFT_REPORT_ROWS;
        let mut report =
            DriftReport { from, to, drifted: Vec::new(), cleared: Vec::new(), overrides: Vec::new(), truncated };
        for e in entries.into_iter().take(3 * MAX_DRIFT_REPORT_ROWS) {
            let order_id = e.order_id.clone().unwrap_or_default();
            let full = |n: usize| n >= MAX_DRIFT_REPORT_ROWS;
            let kind = match e.action.as_str() {
                "policy_drift" => {
                    report.truncated |= full(report.drifted.len());
                    let difference = serde_json::from_value(e.data["difference"].clone());
                    if let (false, Ok(difference)) = (full(report.drifted.len()), difference) {
                        report.drifted.push(DriftFinding { order_id, at: e.at, difference });
                    }
                    continue;
                }
                "policy_drift_cleared" => {
                    report.truncated |= full(report.cleared.len());
                    if !full(report.cleared.len()) {
                        report.cleared.push(DriftCleared { order_id, at: e.at });
                    }
                    continue;
                }
                "approval_revoked" => OverrideKind::Revoked,
                "order_released" => OverrideKind::ReleasedByHand,
                _ => OverrideKind::DecidedAsEscalationTarget,
            };
            report.truncated |= full(report.overrides.len());
            if !full(report.overrides.len()) {
                report.overrides.push(OverrideFinding { order_id, at: e.at, actor: e.actor, kind, details: e.data });
            }
        }
        Ok(report)
    }
}
