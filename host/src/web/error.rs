//! The one error type of the dashboard's handlers: a use-case error becomes a page with its
//! status and message (another tenant's order is a 404 page like any unknown one); a request
//! without a live session goes to the sign-in page; internals never reach the page.

use super::view::Nav;
use crate::approvals::ApprovalError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No live session: sign in first.
    #[error("sign in first")]
    SignIn,
    /// The user's role requires a second factor and they have none yet.
    #[error("your role requires two-step verification: set it up first")]
    MustEnroll,
    /// A form without the session's form token (or from another origin).
    #[error("this form is stale or did not come from this site: reload the page and try again")]
    Csrf,
    /// Something the request asked for is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// What the use case refused.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// A template failed to render (a bug).
    #[error("the page could not be rendered")]
    Render(#[from] askama::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav,
    status: u16,
    title: &'a str,
    message: String,
    /// The action needs a fresh second factor: the page links to where to give it.
    step_up: bool,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::SignIn => StatusCode::UNAUTHORIZED,
            PageError::MustEnroll => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::Approval(e) => match e {
                ApprovalError::NotFound(_) => StatusCode::NOT_FOUND,
                ApprovalError::Forbidden(_) | ApprovalError::StepUpRequired(_) => StatusCode::FORBIDDEN,
                ApprovalError::Invalid { .. } | ApprovalError::Script(_) => StatusCode::UNPROCESSABLE_ENTITY,
                ApprovalError::InvalidState(_) | ApprovalError::VersionConflict(_) | ApprovalError::Conflict(_) => {
                    StatusCode::CONFLICT
                }
                ApprovalError::Extension(_) => StatusCode::BAD_GATEWAY,
                ApprovalError::SignInFailed => StatusCode::UNAUTHORIZED,
                ApprovalError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
                ApprovalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ApprovalError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            PageError::Approval(ApprovalError::Store(_)) => {
                "the database is not available right now; try again in a moment".into()
            }
            PageError::Approval(ApprovalError::Internal(id)) => {
                format!("something went wrong on our side (error id {id}); nothing was changed")
            }
            PageError::Render(e) => {
                let id = uuid::Uuid::now_v7().simple().to_string();
                tracing::error!(error_id = %id, error = %e, "a page could not be rendered");
                format!("something went wrong on our side (error id {id}); nothing was changed")
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self, PageError::SignIn) {
            return Redirect::to("/sign-in").into_response();
        }
        if matches!(self, PageError::MustEnroll) {
            return Redirect::to("/security?required=1").into_response();
        }
        let status = self.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Not possible now",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_server_error() => "Something went wrong",
            _ => "Please check your input",
        };
        let step_up = matches!(self, PageError::Approval(ApprovalError::StepUpRequired(_)));
        let title = if step_up { "Confirm it is you first" } else { title };
        let page =
            ErrorPage { nav: Nav::anonymous(), status: status.as_u16(), title, message: self.message(), step_up };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.message()).into_response(),
        }
    }
}
