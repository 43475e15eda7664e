//! `/v1/admin/*`: users, cost centers, extensions, scripts, settings.

use super::AppState;
use super::error::AppError;
use super::extract::{Body, Caller};
use crate::approvals::ExtensionSetting;
use crate::approvals::{ExtensionUpdate, NewCostCenter, NewUser, ScriptInstalled, SettingsUpdate};
use crate::domain::actor::Policy;
use crate::domain::directory::{CostCenter, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A new user and its token (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    /// The user.
    pub user: User,
    /// Bearer token; only its hash is stored.
    pub token: String,
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", request_body = NewUser, responses((status = 201, body = UserCreated)))]
pub async fn create_user(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewUser>,
) -> Result<(StatusCode, Json<UserCreated>), AppError> {
    let (user, token) = s.approvals.create_user(&p, b).await?;
    Ok((StatusCode::CREATED, Json(UserCreated { user, token })))
}

/// Creates a cost center.
#[utoipa::path(post, path = "/v1/admin/cost-centers", tag = "admin", request_body = NewCostCenter, responses((status = 201, body = CostCenter)))]
pub async fn create_cost_center(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewCostCenter>,
) -> Result<(StatusCode, Json<CostCenter>), AppError> {
    Ok((StatusCode::CREATED, Json(s.approvals.create_cost_center(&p, b).await?)))
}

/// The installed extensions with this tenant's settings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Extensions {
    /// In run order.
    pub extensions: Vec<ExtensionSetting>,
}

/// Lists extensions.
#[utoipa::path(get, path = "/v1/admin/extensions", tag = "admin", responses((status = 200, body = Extensions)))]
pub async fn extensions(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Extensions>, AppError> {
    Ok(Json(Extensions { extensions: s.approvals.extensions(&p).await? }))
}

/// Enables, orders or configures an extension.
#[utoipa::path(put, path = "/v1/admin/extensions/{name}", tag = "admin", request_body = ExtensionUpdate, responses((status = 200, body = ExtensionSetting)))]
pub async fn update_extension(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Body(b): Body<ExtensionUpdate>,
) -> Result<Json<ExtensionSetting>, AppError> {
    Ok(Json(s.approvals.update_extension(&p, &name, b).await?))
}

/// The body of `POST /v1/admin/scripts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    /// Extension name.
    pub name: String,
    /// Rhai source defining `fn evaluate(ctx)`.
    pub source: String,
}

/// Installs or replaces a script.
#[utoipa::path(post, path = "/v1/admin/scripts", tag = "admin", request_body = ScriptBody,
    responses((status = 201, body = ScriptInstalled), (status = 422, description = "does not compile; the error has line and column")))]
pub async fn add_script(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<ScriptBody>,
) -> Result<(StatusCode, Json<ScriptInstalled>), AppError> {
    Ok((StatusCode::CREATED, Json(s.approvals.add_script(&p, &b.name, &b.source).await?)))
}

/// Changes tenant settings.
#[utoipa::path(put, path = "/v1/admin/settings", tag = "admin", request_body = SettingsUpdate, responses((status = 200, body = Policy)))]
pub async fn settings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<SettingsUpdate>,
) -> Result<Json<Policy>, AppError> {
    Ok(Json(s.approvals.update_settings(&p, b).await?))
}
