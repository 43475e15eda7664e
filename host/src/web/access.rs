//! The access review in the browser (admins and auditors): every user with roles, activity,
//! tokens and delegations, the dormant and disabled marked; the last day's failed, throttled,
//! locked and refused attempts; the review as CSV; and, for admins, changing roles, disabling
//! and enabling.
//! Opening the page is a review and is audited like the API's.

use super::WebState;
use super::error::PageError;
use super::session::Viewer;
use super::view::Nav;
use crate::approvals::ApprovalError;
use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome};
use crate::domain::access_review::AccessReview;
use crate::domain::actor::Role;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    nav: Nav,
    review: AccessReview,
    attempts: Vec<AccessAttempt>,
    done: String,
    error: String,
}

/// A time for people: minutes, UTC.
fn at(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time that may never have happened.
fn when(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(at).unwrap_or_else(|| "never".into())
}

fn outcome(o: &AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::SignedIn => "signed in",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::Throttled => "throttled",
        AttemptOutcome::Locked => "locked the account",
        AttemptOutcome::Unauthorized => "refused: no valid token",
        AttemptOutcome::Forbidden => "refused: role missing",
    }
}

async fn page(s: &WebState, v: &Viewer, done: String, error: String) -> Result<AccessPage, PageError> {
    let review = s.approvals.access_review(&v.principal, "page").await?;
    let now = Utc::now();
    let attempts = s
        .approvals
        .access_attempts(&v.principal, now - TimeDelta::days(1), now, None, 200)
        .await?
        .into_iter()
        .filter(|a| a.outcome != AttemptOutcome::SignedIn)
        .collect();
    Ok(AccessPage { nav: v.nav("access"), review, attempts, done, error })
}

/// `GET /access`.
pub async fn access(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(page(&s, &v, String::new(), String::new()).await?.render()?))
}

/// `GET /access.csv`: the review as a spreadsheet.
pub async fn access_csv(State(s): State<WebState>, v: Viewer) -> Result<Response, PageError> {
    let review = s.approvals.access_review(&v.principal, "csv").await?;
    let headers = [
        (CONTENT_TYPE, "text/csv; charset=utf-8"),
        (CONTENT_DISPOSITION, "attachment; filename=\"greenlight-access-review.csv\""),
    ];
    Ok((headers, review.to_csv()).into_response())
}

/// What an admin does to a user from the page.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Give them exactly the roles of the form.
    Roles,
    /// Disable the user.
    Disable,
    /// Enable them again.
    Enable,
}

/// The form of a change: its token, and the roles for a change of roles.
#[derive(Debug, serde::Deserialize)]
pub struct ChangeForm {
    csrf: String,
    /// Role names separated by commas or spaces.
    #[serde(default)]
    roles: String,
}

/// The roles typed into the form, or which one is not a role name.
fn typed_roles(text: &str) -> Result<Vec<Role>, ApprovalError> {
    text.split([',', ' ', '\n', '\t'])
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<Role>().map_err(|_| ApprovalError::Invalid {
                field: "roles".into(),
                message: format!(
                    "'{r}' is not a role name: lower-case letters, digits, '_' or '-', separated by commas"
                ),
            })
        })
        .collect()
}

/// `POST /access/{name}/roles`, `/disable` and `/enable`: the page again with what happened.
pub async fn change(
    State(s): State<WebState>,
    v: Viewer,
    Path((name, change)): Path<(String, Change)>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let result = match change {
        Change::Roles => match typed_roles(&f.roles) {
            Ok(roles) => s.approvals.change_roles(&v.principal, &name, roles).await.map(|changed| {
                let names: Vec<&str> = changed.roles.iter().map(Role::as_str).collect();
                format!("{name} now holds {}; {} delegation(s) ended", names.join(", "), changed.delegations_ended)
            }),
            Err(e) => Err(e),
        },
        Change::Disable => s.approvals.disable_user(&v.principal, &name).await.map(|d| {
            format!(
                "{name} is disabled: {} token(s) revoked, {} session(s) and {} delegation(s) ended",
                d.tokens_revoked, d.sessions_ended, d.delegations_ended
            )
        }),
        Change::Enable => s
            .approvals
            .enable_user(&v.principal, &name)
            .await
            .map(|()| format!("{name} is enabled; set a password or issue a token to let them in")),
    };
    let (status, done, error) = match result {
        Ok(done) => (StatusCode::OK, done, String::new()),
        Err(ApprovalError::Conflict(m)) => (StatusCode::CONFLICT, String::new(), m),
        Err(ApprovalError::Forbidden(m)) => (StatusCode::FORBIDDEN, String::new(), m),
        Err(ApprovalError::Invalid { message, .. }) => (StatusCode::UNPROCESSABLE_ENTITY, String::new(), message),
        Err(ApprovalError::NotFound(m)) => (StatusCode::NOT_FOUND, String::new(), m),
        Err(e) => return Err(e.into()),
    };
    Ok((status, Html(page(&s, &v, done, error).await?.render()?)).into_response())
}
