//! `/v1/admin/access-review`, `/v1/admin/access-attempts` and the user lifecycle: change roles,
//! disable, enable, issue a token.

use super::AppState;
use super::contract::{Created, segment};
use super::error::AppError;
use super::extract::{Body, Caller, Params};
use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome};
use crate::domain::access_review::{AccessReview, ReviewedUser};
use crate::domain::actor::Role;
use crate::domain::report::parse_bound;
use crate::store::directory::{Disabled, RolesChanged};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Access review parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReviewParams {
    /// `csv` for CSV whatever the Accept header says (for download links), or `json`.
    #[param(value_type = Option<String>, pattern = "^(csv|json)$")]
    pub format: Option<String>,
}

/// Every user of the tenant with their roles, tokens, last sign-in, last decision, last activity,
/// the delegations they gave and received, and whether they are dormant (admin, auditor).
/// `Accept: text/csv` (or `format=csv`) answers CSV. Each review is recorded in the audit chain
/// (`access_reviewed`).
#[utoipa::path(get, path = "/v1/admin/access-review", tag = "admin", params(ReviewParams),
    responses((status = 200, description = "the review, as JSON or (`Accept: text/csv`, `format=csv`) CSV",
        content((AccessReview = "application/json"), (String = "text/csv")))))]
pub async fn review(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<ReviewParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let csv = super::extract::wants_csv(q.format.as_deref(), &headers)?;
    let review = s.approvals.access_review(&p, if csv { "csv" } else { "json" }).await?;
    if csv {
        let headers = [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"greenlight-access-review.csv\""),
        ];
        return Ok((headers, review.to_csv()).into_response());
    }
    Ok(Json(review).into_response())
}

/// One user as the access review shows them (admin, auditor): roles, tokens, activity,
/// delegations. Not audited, unlike a review of the whole tenant.
#[utoipa::path(get, path = "/v1/admin/users/{name}", tag = "admin",
    params(("name" = String, Path, description = "User name")), responses((status = 200, body = ReviewedUser)))]
pub async fn user(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Json<ReviewedUser>, AppError> {
    Ok(Json(s.approvals.reviewed_user(&p, &name).await?))
}

/// A user's new roles.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoles {
    /// Exactly the roles the user holds from now on; at least one, at most 32.
    #[schema(min_items = 1, max_items = 32)]
    pub roles: Vec<Role>,
}

/// Replaces a user's roles (admin, a critical action): for people who move to another job.
/// Roles taken away stop counting at the user's next request, and the delegations the user gave
/// end. 409 when the tenant would be left without an admin, when the user is disabled, or when
/// they would lose `cost_center_manager` while still managing cost centers. Audited as
/// `roles_changed`.
#[utoipa::path(put, path = "/v1/admin/users/{name}/roles", tag = "admin", request_body = NewRoles,
    params(("name" = String, Path, description = "User name")), responses((status = 200, body = RolesChanged)))]
pub async fn change_roles(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Body(b): Body<NewRoles>,
) -> Result<Json<RolesChanged>, AppError> {
    Ok(Json(s.approvals.change_roles(&p, &name, b.roles).await?))
}

/// Disables a user at once (admin): tokens and sessions stop working, delegations end, roles no
/// longer count. Not oneself, so an enabled admin always remains.
#[utoipa::path(post, path = "/v1/admin/users/{name}/disable", tag = "admin",
    params(("name" = String, Path, description = "User name")), responses((status = 200, body = Disabled)))]
pub async fn disable(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Json<Disabled>, AppError> {
    Ok(Json(s.approvals.disable_user(&p, &name).await?))
}

/// Enables a disabled user with their roles on record (admin); they need a new token or
/// password.
#[utoipa::path(post, path = "/v1/admin/users/{name}/enable", tag = "admin",
    params(("name" = String, Path, description = "User name")), responses((status = 204)))]
pub async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    s.approvals.enable_user(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenIssued {
    /// The bearer token; only its hash is kept.
    pub token: String,
}

/// What kind of token to issue.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Marked for critical actions (revoking approvals, changing rules, settings or people);
    /// only a caller who may do them marks one.
    #[serde(default)]
    pub critical: bool,
}

/// Issues a new bearer token to a user (admin, a critical action); the body may ask for one
/// marked for critical actions.
#[utoipa::path(post, path = "/v1/admin/users/{name}/tokens", tag = "admin", request_body(content = Option<NewToken>, description = "optional"),
    params(("name" = String, Path, description = "User name")), responses((status = 201, body = TokenIssued)))]
pub async fn issue_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Created<TokenIssued>, AppError> {
    let none = body.trim_ascii().is_empty() || body.trim_ascii() == b"null";
    let kind: NewToken = if none { NewToken::default() } else { super::extract::parse_json(&body)? };
    let token = s.approvals.issue_token(&p, &name, kind.critical).await?;
    // A token is never read back: the place to see it is its user's (token count and age).
    Ok(Created(format!("/v1/admin/users/{}", segment(&name)), TokenIssued { token }))
}

/// Access attempt parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptParams {
    /// Start of the period, included: RFC 3339, or a date meaning its midnight UTC. Default: a
    /// day before `to`.
    #[param(schema_with = super::contract::date_or_time)]
    pub from: Option<String>,
    /// End of the period, excluded; same forms. Default: now.
    #[param(schema_with = super::contract::date_or_time)]
    pub to: Option<String>,
    /// Only this outcome: `signed_in`, `failed`, `throttled`, `locked`, `unauthorized`, `forbidden`.
    #[param(value_type = Option<String>, pattern = "^(signed_in|failed|throttled|locked|unauthorized|forbidden)$")]
    pub outcome: Option<String>,
    /// At most this many, newest first (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The tenant's access attempts in a period, newest first (admin, auditor): sign-ins that
/// worked, failed, were throttled or locked the account, and API calls refused with 403. Calls
/// with an unknown token cannot be told to belong to a tenant; they are counted in `/metrics`.
#[utoipa::path(get, path = "/v1/admin/access-attempts", tag = "admin", params(AttemptParams),
    responses((status = 200, body = Vec<AccessAttempt>)))]
pub async fn attempts(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<AttemptParams>,
) -> Result<Json<Vec<AccessAttempt>>, AppError> {
    let time = |field: &str, v: Option<&str>| {
        v.map(|v| {
            parse_bound(v).ok_or_else(|| {
                AppError::invalid(field, format!("{field}: '{v}' is neither an RFC 3339 time nor a date YYYY-MM-DD"))
            })
        })
        .transpose()
    };
    let to = time("to", q.to.as_deref())?.unwrap_or_else(chrono::Utc::now);
    let from = time("from", q.from.as_deref())?.unwrap_or(to - chrono::TimeDelta::days(1));
    if from >= to {
        return Err(AppError::invalid("from", "from must be before to"));
    }
    let outcome = q
        .outcome
        .as_deref()
        .map(|o| {
            AttemptOutcome::parse(o).ok_or_else(|| {
                AppError::invalid(
                    "outcome",
                    format!("outcome: '{o}' is none of signed_in, failed, throttled, locked, unauthorized, forbidden"),
                )
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=crate::approvals::MAX_ACCESS_ATTEMPTS_LISTED).contains(&limit) {
        return Err(AppError::invalid("limit", "limit must be 1 to 1000"));
    }
    Ok(Json(s.approvals.access_attempts(&p, from, to, outcome, limit).await?))
}

/// Removes a user's second factor (admin), e.g. after a lost phone; they set up a new one.
#[utoipa::path(post, path = "/v1/admin/users/{name}/second-factor/reset", tag = "admin",
    params(("name" = String, Path, description = "User name")), responses((status = 204)))]
pub async fn reset_second_factor(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    s.approvals.reset_second_factor(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
