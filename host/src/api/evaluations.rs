//! `/v1/orders/{id}/evaluations`: how an order was evaluated, and the replay of an evaluation
//! with the exact code and configuration that made it (auditor, admin).

use super::AppState;
use super::error::AppError;
use super::extract::Caller;
use crate::approvals::{EvaluationView, ReplayReport};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

/// An order's evaluations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluations {
    /// Oldest first; `n` numbers them from 1.
    pub evaluations: Vec<EvaluationView>,
}

/// The order's evaluations: when, the hash of what the steps saw, each step's kind, code hash,
/// configuration and output or error.
#[utoipa::path(get, path = "/v1/orders/{id}/evaluations", tag = "orders",
    params(("id" = String, Path, description = "order id")), responses((status = 200, body = Evaluations)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<Evaluations>, AppError> {
    Ok(Json(Evaluations { evaluations: s.approvals.evaluations(&p, &id).await? }))
}

/// Runs evaluation `n` again: each step on the stored context with its exact stored version and
/// configuration; `identical` is true when every step returns what it returned then, and each
/// step that differs shows both answers.
#[utoipa::path(post, path = "/v1/orders/{id}/evaluations/{n}/replay", tag = "orders",
    params(("id" = String, Path, description = "order id"), ("n" = usize, Path, description = "evaluation number, from 1")),
    responses((status = 200, body = ReplayReport)))]
pub async fn replay(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, n)): Path<(String, usize)>,
) -> Result<Json<ReplayReport>, AppError> {
    Ok(Json(s.approvals.replay(&p, &id, n).await?))
}
