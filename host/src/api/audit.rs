//! `/v1/audit/*`: export as JSON lines and verification.

use super::AppState;
use super::error::AppError;
use super::extract::{Caller, Params};
use crate::domain::audit::VerifyReport;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Export parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Only entries after this sequence number (0 to 2^63 − 1).
    pub after_seq: Option<u64>,
}

const PAGE: usize = 2_000;

/// The tenant's audit log as JSON lines, streamed page by page.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", description = "one entry per line")))]
pub async fn export(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<ExportQuery>,
) -> Result<Response, AppError> {
    let after_seq = q.after_seq.unwrap_or(0);
    if i64::try_from(after_seq).is_err() {
        return Err(AppError::invalid("after_seq", format!("after_seq: must be 0 to {}", i64::MAX)));
    }
    let first = s.approvals.audit_page(&p, after_seq, PAGE).await?;
    let approvals = s.approvals.clone();
    let stream = futures_stream(approvals, p, first);
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

fn futures_stream(
    approvals: crate::approvals::Approvals,
    p: crate::store::directory::Principal,
    first: Vec<crate::domain::audit::AuditEntry>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut page = first;
        while let Some(last) = page.last().map(|e| e.seq) {
            let mut buf = Vec::with_capacity(page.len() * 300);
            for e in &page {
                if serde_json::to_writer(&mut buf, e).is_err() {
                    break;
                }
                buf.push(b'\n');
            }
            if tx.send(Ok(buf)).await.is_err() || page.len() < PAGE {
                break;
            }
            match approvals.audit_page(&p, last, PAGE).await {
                Ok(next) => page = next,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Verifies the tenant's hash chain.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, body = VerifyReport)))]
pub async fn verify(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<VerifyReport>, AppError> {
    Ok(Json(s.approvals.audit_verify(&p).await?))
}
