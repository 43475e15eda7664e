//! What-if (R12): a policy owner tries changes to the tenant's rules — a script's new source,
//! an extension's new configuration, enabling, disabling or moving one, another plugin version —
//! on past orders before enabling them. Each order's stored context is evaluated by the current
//! chain and by the candidate; the report says which plans and verdicts would change, and how.
//! Nothing is written but the audit entry `simulation_run`; no connector is called (the stored
//! contexts hold what the connector said then); the run is bounded in orders and time.

use super::access::require_role;
use super::context::TenantDirectory;
use super::{ApprovalError, Approvals, invalid};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::domain::drift::{PlanDifference, PlanShape};
use crate::domain::extension::World;
use crate::domain::order::OrderStatus;
use crate::domain::step::OrderContext;
use crate::domain::step::StepOutput;
use crate::engine::{self, ConfiguredStep, Step, StepError, StepKind};
use crate::store::audit;
use crate::store::extensions;
use crate::store::orders::{self, OrderFilter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most orders one simulation evaluates.
pub const MAX_SIMULATED_ORDERS: usize = 5_000;

/// How long one simulation may run before it stops and reports what it did.
pub const SIMULATION_BUDGET: Duration = Duration::from_secs(20);

/// Told after each selected order how many are done and how many there are: the command line
/// draws its progress bar from it.
pub type Progress = Box<dyn Fn(usize, usize) + Send>;

/// One change of the candidate policy; the fields left out stay as they are.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateChange {
    /// The extension changed (installed, or a script that is new with `source`).
    pub extension: String,
    /// Enable or disable it.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Move it.
    #[serde(default)]
    pub position: Option<i64>,
    /// Its new configuration.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// A script's new source.
    #[serde(default)]
    pub source: Option<String>,
    /// Another stored version of a plugin, by content hash.
    #[serde(default)]
    pub code_hash: Option<String>,
}

/// Which past orders to try the candidate on: created in a period, in a status, newest first.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderSelection {
    /// Created at or after.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Only this status.
    #[serde(default)]
    pub status: Option<OrderStatus>,
    /// At most this many (default 500, at most 5,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// What would change for one order: its plan under the current policy (`before`) against the
/// candidate's (`after`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderDifference {
    /// The order.
    pub order_id: String,
    /// How the candidate's plan differs.
    #[serde(flatten)]
    pub difference: PlanDifference,
}

/// The report of a what-if simulation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimulationReport {
    /// SHA-256 of the candidate changes, as audited.
    pub candidate_hash: String,
    /// Orders evaluated under both policies.
    pub orders_evaluated: usize,
    /// Orders selected but never evaluated (drafts): nothing to compare.
    pub orders_skipped: usize,
    /// Orders whose plan (stages or flags) would differ.
    pub plans_changed: usize,
    /// Orders whose verdict would differ.
    pub verdicts_changed: usize,
    /// Whether the time budget stopped it before every selected order was evaluated.
    pub truncated: bool,
    /// Per order that would change.
    pub differences: Vec<OrderDifference>,
}

/// One extension of a chain, before its code is loaded.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: StepKind,
    code_hash: String,
    enabled: bool,
    position: i64,
    config: serde_json::Value,
    source: Option<String>,
}

/// A step both chains share (same code, same configuration): run once per order, its answer
/// given to the second chain. Steps are deterministic, so the answer is the one a second run
/// would give; this halves the work of a candidate that changes one step of many.
struct Shared {
    step: Arc<dyn Step>,
    last: Mutex<Option<(String, Result<StepOutput, StepError>)>>,
}

impl Step for Shared {
    fn name(&self) -> &str {
        self.step.name()
    }
    fn kind(&self) -> StepKind {
        self.step.kind()
    }
    fn code_hash(&self) -> &str {
        self.step.code_hash()
    }
    fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError> {
        self.evaluate_in(ctx, &crate::engine::Lowered::default())
    }
    fn evaluate_in(&self, ctx: &OrderContext, lowered: &crate::engine::Lowered) -> Result<StepOutput, StepError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((order, answer)) = last.as_ref()
            && *order == ctx.order.id
        {
            return answer.clone();
        }
        let answer = self.step.evaluate_in(ctx, lowered);
        *last = Some((ctx.order.id.clone(), answer.clone()));
        answer
    }
}

/// The identity of a configured step: the same in both chains means the same answer.
fn identity(e: &Entry) -> (String, String, String, String) {
    (e.name.clone(), e.code_hash.clone(), e.source.clone().unwrap_or_default(), e.config.to_string())
}

/// The orders filter of a selection, one page of it.
fn selected(selection: &OrderSelection, limit: usize, cursor: Option<String>) -> OrderFilter {
    OrderFilter {
        status: selection.status,
        limit,
        cursor,
        created_from: selection.from,
        created_before: selection.to,
        ..OrderFilter::default()
    }
}

impl Approvals {
    /// [`Approvals::simulate`] from the command line, as the operator, for a tenant by name.
    pub async fn simulate_as_operator(
        &self,
        tenant: &str,
        changes: Vec<CandidateChange>,
        selection: OrderSelection,
        progress: Progress,
    ) -> Result<SimulationReport, ApprovalError> {
        let t = self.tenant_named(tenant).await?;
        self.run_simulation(&t.id, "operator", changes, selection, Some(progress)).await
    }

    /// Tries candidate changes on past orders (admin); see the module documentation.
    pub async fn simulate(
        &self,
        p: &Principal,
        changes: Vec<CandidateChange>,
        selection: OrderSelection,
    ) -> Result<SimulationReport, ApprovalError> {
        require_role(p, &[roles::ADMIN], "running simulations")?;
        self.run_simulation(&p.tenant.id, &p.user.name, changes, selection, None).await
    }

    async fn run_simulation(
        &self,
        tenant_id: &str,
        actor: &str,
        changes: Vec<CandidateChange>,
        selection: OrderSelection,
        progress: Option<Progress>,
    ) -> Result<SimulationReport, ApprovalError> {
        if changes.is_empty() || changes.len() > 50 {
            return Err(invalid("changes", "give 1 to 50 changes"));
        }
        let limit = selection.limit.unwrap_or(500);
        if !(1..=MAX_SIMULATED_ORDERS).contains(&limit) {
            return Err(invalid("orders.limit", format!("must be 1 to {MAX_SIMULATED_ORDERS}")));
        }
        for (i, c) in changes.iter().enumerate() {
            if let Some(src) = &c.source {
                self.runtimes.rhai.compile(src).map_err(|e| invalid(&format!("changes[{i}].source"), e.to_string()))?;
            }
            if let Some(cfg) = &c.config
                && !cfg.is_object()
            {
                return Err(invalid(&format!("changes[{i}].config"), "must be a JSON object"));
            }
        }
        let candidate_hash = hex::encode(Sha256::digest(serde_json::to_vec(&changes).unwrap_or_default()));
        let tenant_id = tenant_id.to_string();
        let (store, runtimes, t) = (self.store.clone(), self.runtimes.clone(), tenant_id.clone());
        let report = tokio::task::spawn_blocking(move || -> Result<SimulationReport, ApprovalError> {
            let t2 = t.clone();
            let settings = store.read_blocking(move |c| extensions::settings(c, &t2))?;
            let current: Vec<Entry> = settings
                .iter()
                .filter(|s| s.world == World::ApprovalStep && !s.offered)
                .map(|s| Entry {
                    name: s.name.clone(),
                    kind: s.kind.into(),
                    code_hash: s.code_hash.clone(),
                    enabled: s.enabled,
                    position: s.position,
                    config: s.config.clone(),
                    source: None,
                })
                .collect();
            let mut candidate = current.clone();
            for (i, c) in changes.iter().enumerate() {
                let field = format!("changes[{i}].extension");
                let entry = match candidate.iter_mut().find(|e| e.name == c.extension) {
                    Some(e) => e,
                    None if c.source.is_some() => {
                        candidate.push(Entry {
                            name: c.extension.clone(),
                            kind: StepKind::Script,
                            code_hash: String::new(),
                            enabled: true,
                            position: 100,
                            config: serde_json::json!({}),
                            source: None,
                        });
                        candidate.last_mut().ok_or_else(|| invalid(&field, "no such extension"))?
                    }
                    None => {
                        return Err(invalid(&field, format!("no approval step '{}' is installed here", c.extension)));
                    }
                };
                if let Some(v) = c.enabled {
                    entry.enabled = v;
                }
                if let Some(v) = c.position {
                    entry.position = v;
                }
                if let Some(v) = &c.config {
                    entry.config = v.clone();
                }
                if let Some(src) = &c.source {
                    if entry.kind != StepKind::Script {
                        return Err(invalid(&format!("changes[{i}].source"), "only a script has a source"));
                    }
                    entry.source = Some(src.clone());
                }
                if let Some(h) = &c.code_hash {
                    entry.code_hash = h.clone();
                }
            }
            let in_run_order = |entries: &[Entry]| -> Vec<Entry> {
                let mut on: Vec<Entry> = entries.iter().filter(|e| e.enabled).cloned().collect();
                on.sort_by(|a, b| (a.position, &a.name).cmp(&(b.position, &b.name)));
                on
            };
            let load = |e: &Entry| -> Result<ConfiguredStep, ApprovalError> {
                let v = crate::runtime::StepVersion {
                    name: &e.name,
                    kind: e.kind,
                    code_hash: &e.code_hash,
                    source: e.source.as_deref(),
                    config: &e.config,
                };
                runtimes
                    .configured_version(&store, &t, &v)
                    .map_err(|err| invalid("changes", format!("'{}' cannot be loaded: {err}", e.name)))
            };
            let now_entries = in_run_order(&current);
            let mut now_chain = now_entries.iter().map(load).collect::<Result<Vec<_>, _>>()?;
            // A step the candidate leaves as it is is loaded once and run once per order for
            // both chains; only the candidate's new or changed steps are loaded for it.
            let mut candidate_chain = Vec::new();
            for c in in_run_order(&candidate) {
                match now_entries.iter().position(|e| identity(e) == identity(&c)) {
                    Some(i) => {
                        let shared: Arc<dyn Step> =
                            Arc::new(Shared { step: now_chain[i].step.clone(), last: Mutex::new(None) });
                        now_chain[i].step = shared.clone();
                        candidate_chain.push(ConfiguredStep { step: shared, config: now_chain[i].config.clone() });
                    }
                    None => candidate_chain.push(load(&c)?),
                }
            }
            let started = Instant::now();
            let directory = TenantDirectory::new(&store, &t);
            let mut report = SimulationReport {
                candidate_hash: String::new(),
                orders_evaluated: 0,
                orders_skipped: 0,
                plans_changed: 0,
                verdicts_changed: 0,
                truncated: false,
                differences: Vec::new(),
            };
            let total = match &progress {
                Some(_) => {
                    let (t3, filter) = (t.clone(), selected(&selection, 1, None));
                    let n = store.read_blocking(move |c| orders::count(c, &t3, &filter, limit as u64))?;
                    usize::try_from(n).unwrap_or(limit).min(limit)
                }
                None => limit,
            };
            let mut cursor: Option<String> = None;
            let mut seen = 0;
            'pages: while seen < limit {
                let filter = selected(&selection, (limit - seen).min(200), cursor.clone());
                let t3 = t.clone();
                let (page, next) = store.read_blocking(move |c| orders::list_with_contexts(c, &t3, &filter))?;
                for (order, ctx) in page {
                    seen += 1;
                    if let Some(tell) = &progress {
                        tell(seen, total.max(seen));
                    }
                    if started.elapsed() > SIMULATION_BUDGET {
                        report.truncated = true;
                        break 'pages;
                    }
                    let Some(ctx) = ctx else {
                        report.orders_skipped += 1;
                        continue;
                    };
                    let now = engine::evaluate(&ctx, &now_chain, &directory).assessment;
                    let then = engine::evaluate(&ctx, &candidate_chain, &directory).assessment;
                    report.orders_evaluated += 1;
                    let (before, after) = (PlanShape::of_assessment(&now), PlanShape::of_assessment(&then));
                    if let Some(d) = PlanDifference::between(&before, &after)
                        .map(|difference| OrderDifference { order_id: order.id.clone(), difference })
                    {
                        report.verdicts_changed += usize::from(d.difference.before != d.difference.after);
                        report.plans_changed += 1;
                        if report.differences.len() < 1_000 {
                            report.differences.push(d);
                        }
                    }
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Ok(report)
        })
        .await
        .map_err(|_| ApprovalError::Internal("a simulation panicked".into()))??;
        let report = SimulationReport { candidate_hash: candidate_hash.clone(), ..report };
        let (actor, data) = (
            actor.to_string(),
            serde_json::json!({
                "candidate_hash": candidate_hash,
                "orders_evaluated": report.orders_evaluated,
                "plans_changed": report.plans_changed,
                "verdicts_changed": report.verdicts_changed,
            }),
        );
        self.store
            .write(move |c| audit::append(c, &tenant_id, Utc::now(), &actor, "simulation_run", None, data).map(|_| ()))
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    impl Step for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn kind(&self) -> StepKind {
            StepKind::Script
        }
        fn code_hash(&self) -> &str {
            "h"
        }
        fn evaluate(&self, _: &OrderContext) -> Result<StepOutput, StepError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(StepOutput::default())
        }
    }

    #[test]
    fn a_shared_step_runs_once_per_order_for_both_chains() {
        let inner = Arc::new(Counting(AtomicUsize::new(0)));
        let shared = Shared { step: inner.clone(), last: Mutex::new(None) };
        let input = crate::domain::fixtures::input(vec![crate::domain::fixtures::line(1, 1)]);
        let mut ctx = crate::domain::fixtures::context(&input);
        assert!(shared.evaluate(&ctx).is_ok());
        assert!(shared.evaluate(&ctx).is_ok());
        assert_eq!(inner.0.load(Ordering::Relaxed), 1, "the second chain gets the first answer");
        ctx.order.id = "another".into();
        assert!(shared.evaluate(&ctx).is_ok());
        assert_eq!(inner.0.load(Ordering::Relaxed), 2, "another order runs it again");
    }
}
