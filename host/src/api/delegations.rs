//! `/v1/delegations`: an approver lends their authority while away (R6).

use super::AppState;
use super::contract::{Created, segment};
use super::error::AppError;
use super::extract::{Body, Caller};
use crate::approvals::delegation::NewDelegation;
use crate::domain::delegation::Delegation;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

/// Grants a delegation: the caller's stages become decidable by `delegate` until `until`.
#[utoipa::path(post, path = "/v1/delegations", tag = "delegations", request_body = NewDelegation, responses((status = 201, body = Delegation)))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewDelegation>,
) -> Result<Created<Delegation>, AppError> {
    let d = s.approvals.delegate(&p, b).await?;
    Ok(Created(format!("/v1/delegations/{}", segment(&d.id)), d))
}

/// One of the caller's delegations, given or received, that has not ended.
#[utoipa::path(get, path = "/v1/delegations/{id}", tag = "delegations",
    params(("id" = String, Path, description = "Delegation id")), responses((status = 200, body = Delegation)))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<Delegation>, AppError> {
    Ok(Json(s.approvals.delegation(&p, &id).await?))
}

/// The caller's delegations, given and received, that have not ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delegations {
    /// Oldest first.
    pub delegations: Vec<Delegation>,
}

/// Lists the caller's current delegations.
#[utoipa::path(get, path = "/v1/delegations", tag = "delegations", responses((status = 200, body = Delegations)))]
pub async fn list(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Delegations>, AppError> {
    Ok(Json(Delegations { delegations: s.approvals.delegations(&p).await? }))
}

/// Ends one of the caller's delegations now.
#[utoipa::path(delete, path = "/v1/delegations/{id}", tag = "delegations",
    params(("id" = String, Path, description = "Delegation id")), responses((status = 204)))]
pub async fn end(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    s.approvals.end_delegation(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
