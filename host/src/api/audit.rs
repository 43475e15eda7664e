//! `/v1/audit/*`: export as JSON lines and verification.

use super::AppState;
use super::error::AppError;
use super::extract::{Caller, Params};
use crate::approvals::BlobCheck;
use crate::domain::audit::{AuditEntry, VerifyReport};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Export parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    let stream = pages(first, move |after| {
        let (approvals, p) = (approvals.clone(), p.clone());
        async move { approvals.audit_page(&p, after, PAGE).await.map_err(|e| e.to_string()) }
    });
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

/// The export as a stream of JSON lines, one chunk per page, asking `next` for the page after
/// the last sequence number sent. A page that cannot be read or written ends the stream with an
/// error, which aborts the response: the client sees a failed download, never a complete-looking
/// export with entries missing.
fn pages<F, Fut>(first: Vec<AuditEntry>, mut next: F) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<AuditEntry>, String>> + Send,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        let mut page = first;
        while let Some(last) = page.last().map(|e| e.seq) {
            let mut buf = Vec::with_capacity(page.len() * 300);
            let written: std::io::Result<()> = page.iter().try_for_each(|e| {
                serde_json::to_writer(&mut buf, e)?;
                buf.push(b'\n');
                Ok(())
            });
            if let Err(e) = written {
                let _ =
                    tx.send(Err(std::io::Error::other(format!("entry after {last} could not be written: {e}")))).await;
                break;
            }
            if tx.send(Ok(buf)).await.is_err() || page.len() < PAGE {
                break;
            }
            match next(last).await {
                Ok(more) => page = more,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    break;
                }
            }
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn entries(from: u64, n: u64) -> Vec<AuditEntry> {
        (from..from + n)
            .map(|seq| AuditEntry {
                seq,
                at: "2026-12-01T00:00:00.000000Z".into(),
                actor: "a".into(),
                action: "x".into(),
                order_id: None,
                data: serde_json::json!({}),
                prev_hash: String::new(),
                hash: String::new(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_page_that_cannot_be_read_fails_the_export_instead_of_ending_it() {
        let full = PAGE as u64;
        let stream = pages(entries(1, full), move |after| async move {
            if after == full { Err("the database is gone".to_string()) } else { Ok(Vec::new()) }
        });
        let chunks: Vec<_> = stream.collect().await;
        assert_eq!(chunks.len(), 2, "the first page, then the failure");
        assert_eq!(chunks[0].as_ref().map(|b| b.iter().filter(|c| **c == b'\n').count()).ok(), Some(PAGE));
        assert!(chunks[1].as_ref().is_err_and(|e| e.to_string().contains("the database is gone")));
    }

    #[tokio::test]
    async fn a_short_page_ends_the_export() {
        let chunks: Vec<_> = pages(entries(1, 3), |_| async { Err("not asked".to_string()) }).collect().await;
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].is_ok());
    }
}

/// Verify parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Also rehash every document attached to the tenant's orders (R9).
    #[serde(default)]
    pub deep: bool,
}

/// The chain's verification, and with `deep` the documents'.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// The chain's report; `ok` is false too if a document changed.
    #[serde(flatten)]
    pub chain: VerifyReport,
    /// The documents, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<BlobCheck>,
}

/// Verifies the tenant's hash chain (and, with `deep=true`, every attached document).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyQuery), responses((status = 200, body = Verification)))]
pub async fn verify(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<VerifyQuery>,
) -> Result<Json<Verification>, AppError> {
    let mut chain = s.approvals.audit_verify(&p).await?;
    let documents = if q.deep { Some(s.approvals.verify_documents(&p).await?) } else { None };
    if let Some(d) = documents.as_ref().filter(|d| !d.changed.is_empty()) {
        chain.ok = false;
        chain
            .problem
            .get_or_insert_with(|| format!("attached document {} no longer matches its SHA-256", d.changed[0]));
    }
    Ok(Json(Verification { chain, documents }))
}
