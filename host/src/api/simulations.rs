//! `/v1/admin/simulations`: what-if — candidate rule changes tried on past orders (admin).

use super::AppState;
use super::error::AppError;
use super::extract::{Body, Caller};
use crate::approvals::{CandidateChange, OrderSelection, SimulationReport};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

/// The body of `POST /v1/admin/simulations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Simulation)]
pub struct SimulationBody {
    /// The candidate: 1 to 50 changes of the tenant's rules, applied in order.
    #[schema(min_items = 1, max_items = 50)]
    pub changes: Vec<CandidateChange>,
    /// Which past orders to try it on (default: the 500 newest).
    #[serde(default)]
    pub orders: OrderSelection,
}

/// Evaluates past orders' stored contexts under the current rules and under the candidate, and
/// reports which plans and verdicts would change. Writes nothing but the audit entry
/// `simulation_run`; calls no connector; at most 5,000 orders and 20 seconds.
#[utoipa::path(post, path = "/v1/admin/simulations", tag = "admin", request_body = SimulationBody,
    responses((status = 200, body = SimulationReport)))]
pub async fn run(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<SimulationBody>,
) -> Result<Json<SimulationReport>, AppError> {
    Ok(Json(s.approvals.simulate(&p, b.changes, b.orders).await?))
}
