//! `/v1/admin/*`: users, cost centers, extensions, scripts, settings.

use super::AppState;
use super::contract::{Created, segment};
use super::error::AppError;
use super::extract::{Body, Caller};
use crate::approvals::ExtensionSetting;
use crate::approvals::{ExtensionUpdate, Grants, NewCostCenter, NewUser, ScriptInstalled, SettingsUpdate};
use crate::domain::actor::Policy;
use crate::domain::directory::BudgetPeriod;
use crate::domain::directory::{CostCenter, User};
use crate::domain::money::Minor;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/admin/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
pub struct NewUserBody {
    /// 1-64 letters, digits, `.`, `_`, `-` or `@`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]*[A-Za-z0-9_@-][A-Za-z0-9._@-]*$")]
    pub name: String,
    /// Roles held; at least one.
    #[schema(min_items = 1)]
    pub roles: Vec<crate::domain::actor::Role>,
    /// E-mail for notifications: a plain address (no display name), as RFC 5321 allows it, its
    /// part before the `@` at most 64 characters.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    )]
    pub email: Option<String>,
    /// Phone (E.164) for SMS.
    #[serde(default)]
    #[schema(pattern = "^\\+[1-9][0-9]{6,14}$")]
    pub phone: Option<String>,
    /// Orders above this need user-specific approval.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub spend_limit_minor: Option<Minor>,
    /// Budget per period.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub budget_minor: Option<Minor>,
    /// `month` (default when a budget is given), `quarter` or `year`.
    #[serde(default)]
    pub budget_period: Option<BudgetPeriod>,
}

impl From<NewUserBody> for NewUser {
    fn from(b: NewUserBody) -> Self {
        let NewUserBody { name, roles, email, phone, spend_limit_minor, budget_minor, budget_period } = b;
        NewUser { name, roles, email, phone, spend_limit_minor, budget_minor, budget_period }
    }
}

/// The body of `POST /v1/admin/cost-centers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewCostCenter)]
pub struct NewCostCenterBody {
    /// Code, unique within the tenant.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$")]
    pub code: String,
    /// Manager's user name; the user must exist.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]*[A-Za-z0-9_@-][A-Za-z0-9._@-]*$")]
    pub manager: String,
    /// Yearly budget.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub budget_minor: Option<Minor>,
}

/// The body of `PUT /v1/admin/extensions/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExtensionUpdate)]
pub struct ExtensionUpdateBody {
    /// Whether it runs for this tenant.
    pub enabled: bool,
    /// Run order (ascending).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub position: Option<i64>,
    /// Configuration object, replaces the previous one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Capabilities granted to a plugin (each must also be declared in its manifest).
    #[serde(default)]
    pub grants: Option<Grants>,
    /// Whether reports count its rejections as compliance rejections; unchanged when left out.
    #[serde(default)]
    pub compliance: Option<bool>,
    /// For a script adopted from the host's catalog: take up the catalog's newer version
    /// (`upgrade` in the listing).
    #[serde(default)]
    pub upgrade: bool,
}

/// The body of `PUT /v1/admin/settings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SettingsUpdate)]
pub struct SettingsUpdateBody {
    /// One person decides at most one stage of an order (R7).
    #[serde(default)]
    pub one_stage_per_person: Option<bool>,
    /// Days without activity after which the access review flags a user dormant.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub dormant_after_days: Option<u32>,
    /// Roles whose holders must set up a second factor before they use the dashboard.
    #[serde(default)]
    pub second_factor_roles: Option<Vec<crate::domain::actor::Role>>,
    /// Approving an order whose total is above this (minor units) needs a fresh second factor;
    /// `null` turns it off.
    #[serde(default, deserialize_with = "some_even_if_null")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub step_up_above_minor: Option<Option<crate::domain::money::Minor>>,
}

/// A field given as `null` is `Some(None)` (turn off), a missing one `None` (leave as is).
fn some_even_if_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A new user and its token (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    /// The user.
    pub user: User,
    /// Bearer token; only its hash is stored.
    pub token: String,
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", request_body = NewUserBody, responses((status = 201, body = UserCreated)))]
pub async fn create_user(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewUserBody>,
) -> Result<Created<UserCreated>, AppError> {
    let (user, token) = s.approvals.create_user(&p, b.into()).await?;
    Ok(Created(format!("/v1/admin/users/{}", segment(&user.name)), UserCreated { user, token }))
}

/// The body of `PUT /v1/admin/users/{name}/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordUpdate)]
pub struct PasswordBody {
    /// The new password for the dashboard: at least 10 characters.
    #[schema(min_length = 10, max_length = 256, pattern = "^\\S[\\s\\S]*\\S$")]
    pub password: String,
}

/// Sets a user's dashboard password (admin: an initial password or a reset); every session of
/// the user ends. API tokens are not affected.
#[utoipa::path(put, path = "/v1/admin/users/{name}/password", tag = "admin", request_body = PasswordBody,
    params(("name" = String, Path, description = "user name")), responses((status = 204, description = "set")))]
pub async fn set_password(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Body(b): Body<PasswordBody>,
) -> Result<StatusCode, AppError> {
    s.approvals.set_password(&p, &name, &b.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a cost center.
#[utoipa::path(post, path = "/v1/admin/cost-centers", tag = "admin", request_body = NewCostCenterBody, responses((status = 201, body = CostCenter)))]
pub async fn create_cost_center(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<NewCostCenterBody>,
) -> Result<Created<CostCenter>, AppError> {
    let b = NewCostCenter { code: b.code, manager: b.manager, budget_minor: b.budget_minor };
    let cc = s.approvals.create_cost_center(&p, b).await?;
    Ok(Created(format!("/v1/admin/cost-centers/{}", segment(&cc.code)), cc))
}

/// One cost center (admin).
#[utoipa::path(get, path = "/v1/admin/cost-centers/{code}", tag = "admin",
    params(("code" = String, Path, description = "Cost center code")), responses((status = 200, body = CostCenter)))]
pub async fn cost_center(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(code): Path<String>,
) -> Result<Json<CostCenter>, AppError> {
    Ok(Json(s.approvals.cost_center(&p, &code).await?))
}

/// One installed extension with this tenant's setting (admin).
#[utoipa::path(get, path = "/v1/admin/extensions/{name}", tag = "admin",
    params(("name" = String, Path, description = "Extension name")), responses((status = 200, body = ExtensionSetting)))]
pub async fn extension(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Json<ExtensionSetting>, AppError> {
    Ok(Json(s.approvals.extension(&p, &name).await?))
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
#[utoipa::path(put, path = "/v1/admin/extensions/{name}", tag = "admin", request_body = ExtensionUpdateBody, responses((status = 200, body = ExtensionSetting)))]
pub async fn update_extension(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Body(b): Body<ExtensionUpdateBody>,
) -> Result<Json<ExtensionSetting>, AppError> {
    let b = ExtensionUpdate {
        enabled: b.enabled,
        position: b.position,
        config: b.config,
        grants: b.grants,
        compliance: b.compliance,
        upgrade: b.upgrade,
    };
    Ok(Json(s.approvals.update_extension(&p, &name, b).await?))
}

/// The body of `POST /v1/admin/scripts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    /// Extension name.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    /// Rhai source defining `fn evaluate(ctx)`.
    #[schema(min_length = 1)]
    pub source: String,
}

/// Installs or replaces a script.
#[utoipa::path(post, path = "/v1/admin/scripts", tag = "admin", request_body = ScriptBody,
    responses((status = 201, body = ScriptInstalled), (status = 422, description = "does not compile; the error has line and column")))]
pub async fn add_script(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<ScriptBody>,
) -> Result<Created<ScriptInstalled>, AppError> {
    let installed = s.approvals.add_script(&p, &b.name, &b.source).await?;
    Ok(Created(format!("/v1/admin/extensions/{}", segment(&b.name)), installed))
}

/// Changes tenant settings.
#[utoipa::path(put, path = "/v1/admin/settings", tag = "admin", request_body = SettingsUpdateBody, responses((status = 200, body = Policy)))]
pub async fn settings(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(b): Body<SettingsUpdateBody>,
) -> Result<Json<Policy>, AppError> {
    let b = SettingsUpdate {
        one_stage_per_person: b.one_stage_per_person,
        dormant_after_days: b.dormant_after_days,
        second_factor_roles: b.second_factor_roles,
        step_up_above_minor: b.step_up_above_minor,
    };
    Ok(Json(s.approvals.update_settings(&p, b).await?))
}
