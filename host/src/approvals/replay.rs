//! Explaining decisions (R8, R12): an order's evaluations as stored — when, what the steps saw
//! (by hash), each step's exact code and output — and their replay: each step run again on the
//! stored context, with the exact stored version and configuration, compared with what it
//! returned then. Steps are deterministic (no clock, network or randomness), so a difference
//! means the record or the code changed.

use super::access::require_role;
use super::{ApprovalError, Approvals};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::engine::{StepKind, StepRun};
use crate::store::orders::{self, StoredEvaluation};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One evaluation of an order, as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvaluationView {
    /// Its number among the order's evaluations, from 1, oldest first.
    pub n: usize,
    /// When it ran, UTC.
    pub at: String,
    /// SHA-256 of the stored context (what the steps saw).
    pub context_hash: String,
    /// The outcome it led to.
    pub outcome: String,
    /// What each step did, in run order.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<StepRun>,
}

/// What replaying one step found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepReplay {
    /// Extension name.
    pub name: String,
    /// Script, WASM or native.
    pub kind: StepKind,
    /// The exact code that ran then and again now.
    pub code_hash: String,
    /// Whether it returned the same as then.
    pub identical: bool,
    /// What it returned then (output or error), when different.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub recorded: Option<serde_json::Value>,
    /// What it returns now, when different.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub replayed: Option<serde_json::Value>,
}

/// What replaying an evaluation found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The evaluation replayed.
    pub evaluation: usize,
    /// Whether every step returned exactly what it returned then.
    pub identical: bool,
    /// Per step.
    pub steps: Vec<StepReplay>,
}

fn view(e: StoredEvaluation) -> EvaluationView {
    EvaluationView {
        n: e.n,
        at: e.at,
        context_hash: hex::encode(Sha256::digest(e.context_json.as_bytes())),
        outcome: e.outcome,
        steps: e.runs,
    }
}

/// A step's answer as one JSON value, so two can be compared and shown: its output, or its error.
fn answer(output: Option<&crate::domain::step::StepOutput>, error: Option<&str>) -> serde_json::Value {
    match (output, error) {
        (Some(o), _) => serde_json::json!({"output": o}),
        (None, Some(e)) => serde_json::json!({"error": e}),
        (None, None) => serde_json::Value::Null,
    }
}

impl Approvals {
    /// An order's evaluations, oldest first (auditor or admin).
    pub async fn evaluations(&self, p: &Principal, order_id: &str) -> Result<Vec<EvaluationView>, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "reading evaluations")?;
        let order = self.load_visible(p, order_id).await?;
        let tenant_id = p.tenant.id.clone();
        let stored = self.store.read(move |c| orders::evaluations(c, &tenant_id, &order.id)).await?;
        Ok(stored.into_iter().map(view).collect())
    }

    /// Replays evaluation `n` of an order (auditor or admin).
    pub async fn replay(&self, p: &Principal, order_id: &str, n: usize) -> Result<ReplayReport, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "replaying evaluations")?;
        let order = self.load_visible(p, order_id).await?;
        self.replay_in(&p.tenant.id, &order.id, Some(n)).await
    }

    /// [`Approvals::replay`] for the operator, who names the order alone.
    pub async fn replay_as_operator(&self, order_id: &str, n: Option<usize>) -> Result<ReplayReport, ApprovalError> {
        let id = order_id.to_string();
        let tenant_id = self
            .store
            .read(move |c| crate::store::directory::tenant_of_order(c, &id))
            .await?
            .ok_or_else(|| super::not_found_order(order_id))?;
        self.replay_in(&tenant_id, order_id, n).await
    }

    /// Replays evaluation `n` of an order, the latest when `n` is `None`.
    async fn replay_in(
        &self,
        tenant_id: &str,
        order_id: &str,
        n: Option<usize>,
    ) -> Result<ReplayReport, ApprovalError> {
        let (t, o) = (tenant_id.to_string(), order_id.to_string());
        let stored = self.store.read(move |c| orders::evaluations(c, &t, &o)).await?;
        let count = stored.len();
        let n = n.unwrap_or(count);
        let e = stored.into_iter().find(|e| e.n == n).ok_or_else(|| {
            ApprovalError::NotFound(format!("order {order_id} has {count} evaluations; there is no evaluation {n}"))
        })?;
        let Some(context) = e.context else {
            return Err(ApprovalError::InvalidState(format!(
                "evaluation {n} stopped before the steps ran (the connector failed): there is nothing to replay"
            )));
        };
        let (runtimes, store, tenant) = (self.runtimes.clone(), self.store.clone(), tenant_id.to_string());
        let runs = e.runs;
        let steps = tokio::task::spawn_blocking(move || -> Vec<StepReplay> {
            runs.into_iter()
                .filter(|r| r.kind != StepKind::Connector)
                .map(|r| {
                    let recorded = answer(r.output.as_ref(), r.error.as_deref());
                    let replayed = match runtimes.step_version(&store, &tenant, &r.name, r.kind, &r.code_hash) {
                        Ok(step) => {
                            let mut ctx = context.clone();
                            ctx.config = r.config.clone();
                            match step.evaluate(&ctx) {
                                Ok(out) => serde_json::json!({"output": out}),
                                Err(err) => serde_json::json!({"error": err.to_string()}),
                            }
                        }
                        Err(err) => {
                            serde_json::json!({"error": format!("the recorded version cannot be loaded: {err}")})
                        }
                    };
                    // A step the host refused after it returned is compared on what it returned.
                    let same = match (&r.output, replayed.get("output")) {
                        (Some(_), Some(now)) => recorded.get("output") == Some(now),
                        _ => recorded == replayed,
                    };
                    StepReplay {
                        name: r.name,
                        kind: r.kind,
                        code_hash: r.code_hash,
                        identical: same,
                        recorded: (!same).then_some(recorded),
                        replayed: (!same).then_some(replayed),
                    }
                })
                .collect()
        })
        .await
        .map_err(|_| ApprovalError::Internal("a replay panicked".into()))?;
        Ok(ReplayReport { evaluation: n, identical: steps.iter().all(|s| s.identical), steps })
    }
}
