//! `/v1/orders/{id}/attachments`: documents kept with an order (R9). Uploads are the raw body;
//! downloads go out as attachments the browser must not sniff, render inline or run, whatever
//! their type, so an uploaded HTML or SVG file never runs script in the host's origin.

use super::AppState;
use super::contract::{Created, segment};
use super::error::AppError;
use super::extract::{Caller, Params, read_limited};
use crate::domain::attachment::Attachment;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The query of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The document's file name; folders are dropped and odd characters replaced.
    #[param(pattern = "[A-Za-z0-9()-][^/\\\\]*$")]
    pub filename: String,
}

/// An order's documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attachments {
    /// In the order they were added.
    pub attachments: Vec<Attachment>,
}

/// Attaches a document: the request body is its bytes.
#[utoipa::path(post, path = "/v1/orders/{id}/attachments", tag = "orders", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment, description = "attached"),
              (status = 200, body = Attachment, description = "this document was attached already"),
              (status = 413, description = "larger than the host accepts (25 MiB unless the operator set otherwise)")))]
pub async fn upload(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Params(q): Params<UploadQuery>,
    req: Request,
) -> Result<Response, AppError> {
    // Whoever may not see the order hears so before the body is read.
    s.approvals.order(&p, &id).await?;
    let bytes = read_limited(req, s.approvals.attachment_limit()).await?;
    let (attachment, new) = s.approvals.add_attachment(&p, &id, &q.filename, bytes).await?;
    let location = format!("/v1/orders/{}/attachments/{}", segment(&id), segment(&attachment.sha256));
    Ok(if new { Created(location, attachment).into_response() } else { Json(attachment).into_response() })
}

/// Lists an order's documents.
#[utoipa::path(get, path = "/v1/orders/{id}/attachments", tag = "orders", responses((status = 200, body = Attachments)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<Attachments>, AppError> {
    Ok(Json(Attachments { attachments: s.approvals.attachments(&p, &id).await? }))
}

/// Downloads a document.
#[utoipa::path(get, path = "/v1/orders/{id}/attachments/{sha256}", tag = "orders",
    responses((status = 200, content_type = "application/octet-stream", description = "the document's bytes")))]
pub async fn download(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (a, bytes) = s.approvals.attachment(&p, &id, &sha256).await?;
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    let content_type =
        HeaderValue::from_str(&a.content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(CONTENT_TYPE, content_type);
    // Sanitized names are printable ASCII without quotes or backslashes.
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", a.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(CONTENT_DISPOSITION, disposition);
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(resp)
}
