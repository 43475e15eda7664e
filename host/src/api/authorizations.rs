//! `/v1/authorizations`: customer authorization certificates (R4).

use super::AppState;
use super::error::AppError;
use super::extract::{Caller, Params};
use crate::domain::authorization::Authorization;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Which certificates to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationsQuery {
    /// Only this customer's.
    pub customer_id: Option<String>,
    /// Only this order's.
    pub order_id: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// Certificates, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Authorizations {
    /// Newest first.
    pub authorizations: Vec<Authorization>,
}

/// Lists customer authorization certificates (roles that oversee orders).
#[utoipa::path(get, path = "/v1/authorizations", tag = "orders", params(AuthorizationsQuery), responses((status = 200, body = Authorizations)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<AuthorizationsQuery>,
) -> Result<Json<Authorizations>, AppError> {
    let limit = super::extract::page_limit(q.limit)?;
    let authorizations = s.approvals.authorizations(&p, q.customer_id, q.order_id, limit).await?;
    Ok(Json(Authorizations { authorizations }))
}
