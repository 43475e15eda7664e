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
    params(("id" = String, Path, description = "order id"),
        ("n" = u64, Path, minimum = 1, description = "evaluation number, from 1")),
    responses((status = 200, body = ReplayReport)))]
pub async fn replay(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, n)): Path<(String, String)>,
) -> Result<Json<ReplayReport>, AppError> {
    // Parsed here, so that a number that is not one is a 422 in the error format like any
    // other bad input, not the router's plain-text 400.
    let n: usize = n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        AppError::invalid(
            "n",
            format!("n: '{n}' is not an evaluation number (1, 2, ...); GET /v1/orders/{id}/evaluations lists them"),
        )
    })?;
    Ok(Json(s.approvals.replay(&p, &id, n).await?))
}
