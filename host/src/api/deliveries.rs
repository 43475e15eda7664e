//! `/v1/admin/deliveries`: notification deliveries, for the admin to watch and re-drive.

use super::AppState;
use super::error::AppError;
use super::extract::{Caller, Params};
use crate::approvals::{Delivery, Listing};
use crate::domain::delivery::DeliveryState;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

/// Which deliveries to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `failed` (retrying), `dead`, `pending` or `delivered`; without it, failed and dead.
    #[param(value_type = Option<String>, pattern = "^(failed|dead|pending|delivered)$")]
    pub state: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Lists the tenant's deliveries (admin).
#[utoipa::path(get, path = "/v1/admin/deliveries", tag = "admin", params(DeliveriesQuery), responses((status = 200, body = DeliveryPage)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, AppError> {
    let which = match q.state.as_deref() {
        None => Listing::Troubled,
        Some("failed") => Listing::Failed,
        Some(other) => Listing::State(DeliveryState::parse(other).ok_or_else(|| {
            AppError::invalid("state", format!("state: '{other}' is not one of failed, dead, pending, delivered"))
        })?),
    };
    let limit = super::extract::page_limit(q.limit)?;
    let deliveries = s.approvals.deliveries(&p, which, limit, q.cursor).await?;
    let next_cursor = (deliveries.len() == limit).then(|| deliveries.last().map(|d| d.id.clone())).flatten();
    Ok(Json(DeliveryPage { deliveries, next_cursor }))
}

/// Re-drives a failed or dead delivery now (admin).
#[utoipa::path(post, path = "/v1/admin/deliveries/{id}/retry", tag = "admin", responses((status = 200, body = Delivery)))]
pub async fn retry(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, AppError> {
    Ok(Json(s.approvals.redrive(&p, &id).await?))
}
