//! The one HTTP error type. Every failure leaves as
//! `{"error":{"code":"snake_case","message":"what went wrong and what to do"}}` with the right
//! status. Errors stay typed until [`IntoResponse`]; what must not be sent (storage details) rides
//! along in the response's extensions as [`Unsent`], and the API's one logging middleware writes
//! it to the log. Nothing logs on the way.

use crate::approvals::ApprovalError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<serde_json::Map<String, serde_json::Value>>,
    unsent: Option<String>,
}

/// Why a call was refused (401, 403), for the access log.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

/// What an error answer did not say: the cause, for the log only.
#[derive(Debug, Clone)]
pub struct Unsent(pub String);

impl AppError {
    /// Any status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError { status, code, message: message.into(), extra: None, unsent: None }
    }

    /// 400: the body is not JSON.
    pub fn malformed(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 422: a field is missing, unknown or invalid.
    pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
        let mut e = AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message);
        if !field.is_empty() {
            e.extra = Some([("field".to_string(), json!(field))].into_iter().collect());
        }
        e
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: a bug, logged under `error_id` (see [`crate::approvals::report_panic`]).
    pub fn internal(error_id: &str) -> AppError {
        let mut e = AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!(
                "an internal error happened (error id {error_id}); nothing was changed: retry, and report the id to the operator if it happens again"
            ),
        );
        e.extra = Some([("error_id".to_string(), json!(error_id))].into_iter().collect());
        e
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ApprovalError> for AppError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::NotFound(m) => AppError::not_found(m),
            ApprovalError::Forbidden(m) => AppError::new(StatusCode::FORBIDDEN, "forbidden", m),
            e @ ApprovalError::StepUpRequired(_) => {
                AppError::new(StatusCode::FORBIDDEN, "second_factor_required", e.to_string())
            }
            ApprovalError::Invalid { field, message } => {
                let msg = format!("{field}: {message}");
                AppError::invalid(&field, msg)
            }
            ApprovalError::Script(s) => {
                let mut e = AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "script_does_not_compile",
                    format!("the script does not compile: {s}; fix it and upload it again"),
                );
                e.extra = Some(
                    [("line".to_string(), json!(s.line)), ("column".to_string(), json!(s.column))]
                        .into_iter()
                        .collect(),
                );
                e
            }
            ApprovalError::InvalidState(m) => AppError::new(StatusCode::CONFLICT, "invalid_state", m),
            ApprovalError::VersionConflict(m) => AppError::new(StatusCode::CONFLICT, "version_conflict", m),
            ApprovalError::Conflict(m) => AppError::new(StatusCode::CONFLICT, "conflict", m),
            ApprovalError::Extension(m) => AppError::new(StatusCode::BAD_GATEWAY, "extension_failed", m),
            ApprovalError::Internal(id) => AppError::internal(&id),
            e @ ApprovalError::SignInFailed => AppError::unauthorized(e.to_string()),
            e @ ApprovalError::TooManyAttempts(_) => {
                AppError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string())
            }
            ApprovalError::Store(err) => {
                let mut e = AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database could not complete the request, and nothing was changed; retry shortly",
                );
                e.unsent = Some(err.to_string());
                e
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("code".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        if let Some(extra) = self.extra {
            body.extend(extra);
        }
        let refused =
            matches!(self.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN).then(|| self.message.clone());
        let mut response = (self.status, Json(json!({ "error": body }))).into_response();
        if let Some(why) = refused {
            response.extensions_mut().insert(Refused(why));
        }
        if let Some(cause) = self.unsent {
            response.extensions_mut().insert(Unsent(cause));
        }
        response
    }
}
