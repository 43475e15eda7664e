//! The auditor's pages: verifying the hash chain (and the attached documents), the export, and
//! the reports with their charts — each chart an SVG with a title, a description and the same
//! figures as a table beside it.

use super::WebState;
use super::error::PageError;
use super::session::{TokenForm, Viewer};
use super::view::{self, Bar, Nav};
use crate::domain::report::{GroupBy, Summary, SummaryQuery, parse_bound};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::Utc;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    checked: bool,
    ok: bool,
    entries: u64,
    head_hash: String,
    problem: String,
    documents: u64,
    changed_documents: Vec<String>,
}

/// `GET /audit`: what the auditor can check.
pub async fn audit(v: Viewer) -> Result<Html<String>, PageError> {
    let page = AuditPage {
        nav: v.nav("audit"),
        checked: false,
        ok: false,
        entries: 0,
        head_hash: String::new(),
        problem: String::new(),
        documents: 0,
        changed_documents: Vec::new(),
    };
    Ok(Html(page.render()?))
}

/// `POST /audit`: verifies the tenant's chain and every attached document now.
pub async fn verify(State(s): State<WebState>, v: Viewer, Form(f): Form<TokenForm>) -> Result<Html<String>, PageError> {
    v.check(&f.csrf)?;
    let report = s.approvals.audit_verify(&v.principal).await?;
    let blobs = s.approvals.verify_documents(&v.principal).await?;
    let problem = match (report.first_bad_seq, report.problem) {
        (Some(seq), Some(p)) => format!("entry {seq}: {p}"),
        (Some(seq), None) => format!("entry {seq} does not check out"),
        (None, p) => p.unwrap_or_default(),
    };
    let page = AuditPage {
        nav: v.nav("audit"),
        checked: true,
        ok: report.ok && blobs.changed.is_empty(),
        entries: report.entries,
        head_hash: report.head_hash,
        problem,
        documents: blobs.checked,
        changed_documents: blobs.changed,
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    nav: Nav,
    from: String,
    to: String,
    summary: Summary,
    times: Vec<Bar>,
    outcomes: Vec<Bar>,
    csv: String,
    error: String,
}

/// Reports parameters: the period, as dates.
#[derive(Debug, Deserialize)]
pub struct ReportsQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `GET /reports.csv`: the same summary by month as CSV, for a spreadsheet.
pub async fn reports_csv(
    State(s): State<WebState>,
    v: Viewer,
    Query(q): Query<ReportsQuery>,
) -> Result<axum::response::Response, PageError> {
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    use axum::response::IntoResponse;
    let bound = |field: &str, v: &str| -> Result<Option<chrono::DateTime<Utc>>, PageError> {
        if v.trim().is_empty() {
            return Ok(None);
        }
        parse_bound(v.trim())
            .map(Some)
            .ok_or_else(|| PageError::BadRequest(format!("{field}: '{v}' is not a date YYYY-MM-DD")))
    };
    let (from, to) = (bound("from", &q.from)?, bound("to", &q.to)?.map(|t| t + chrono::TimeDelta::days(1)));
    let query = SummaryQuery::new(from, to, Some(GroupBy::Month), false, Utc::now()).map_err(PageError::BadRequest)?;
    let summary = s.approvals.summary(&v.principal, query).await?;
    let headers = [
        (CONTENT_TYPE, "text/csv; charset=utf-8"),
        (CONTENT_DISPOSITION, "attachment; filename=\"greenlight-summary.csv\""),
    ];
    Ok((headers, summary.to_csv()).into_response())
}

/// `GET /reports`: the summary by month over a period, with the median approval time per month
/// and the outcomes of the period as charts, and the CSV of the same.
pub async fn reports(
    State(s): State<WebState>,
    v: Viewer,
    Query(q): Query<ReportsQuery>,
) -> Result<Html<String>, PageError> {
    let now = Utc::now();
    let bound = |v: &str| if v.trim().is_empty() { Ok(None) } else { parse_bound(v.trim()).map(Some).ok_or(()) };
    let (from, to) = match (bound(&q.from), bound(&q.to)) {
        (Ok(f), Ok(t)) => (f, t.map(|t| t + chrono::TimeDelta::days(1))),
        _ => (None, None),
    };
    let mut error = if bound(&q.from).is_err() || bound(&q.to).is_err() {
        "a period needs dates as YYYY-MM-DD; showing the last year".to_string()
    } else {
        String::new()
    };
    let query = match SummaryQuery::new(from, to, Some(GroupBy::Month), false, now) {
        Ok(query) => query,
        Err(e) => {
            error = format!("{e}; showing the last year");
            SummaryQuery::new(None, None, Some(GroupBy::Month), false, now).map_err(PageError::BadRequest)?
        }
    };
    let summary = s.approvals.summary(&v.principal, query).await?;
    let month = |g: &crate::domain::report::Group| g.key.clone().unwrap_or_default();
    let times: Vec<(String, i64)> =
        summary.groups.iter().map(|g| (month(g), g.figures.median_approval_seconds.unwrap_or(0) / 60)).collect();
    let t = &summary.total;
    let outcomes = vec![
        ("approved".to_string(), t.approved as i64),
        ("rejected: compliance".to_string(), t.rejected_compliance as i64),
        ("rejected: other".to_string(), t.rejected.saturating_sub(t.rejected_compliance) as i64),
        ("withdrawn".to_string(), t.withdrawn as i64),
    ];
    let (from_date, to_date) = (
        summary.from.format("%Y-%m-%d").to_string(),
        (summary.to - chrono::TimeDelta::days(1)).format("%Y-%m-%d").to_string(),
    );
    let csv = format!("/reports.csv?from={from_date}&to={to_date}");
    let page = ReportsPage {
        nav: v.nav("reports"),
        from: from_date,
        to: to_date,
        times: view::bars(&times),
        outcomes: view::bars(&outcomes),
        summary,
        csv,
        error,
    };
    Ok(Html(page.render()?))
}

/// Entries per page of the export.
const EXPORT_PAGE: usize = 2_000;

/// `GET /audit/export`: the whole chain as JSON lines, a download streamed page by page (the
/// same lines as `GET /v1/audit/export`). A page that cannot be read ends the stream with an
/// error, so the browser shows a failed download, never a complete-looking partial one.
pub async fn export(State(s): State<WebState>, v: Viewer) -> Result<axum::response::Response, PageError> {
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    use axum::response::IntoResponse;
    // The first page is read before answering, so a caller without the role gets its page.
    let first = s.approvals.audit_page(&v.principal, 0, EXPORT_PAGE).await?;
    let (approvals, p) = (s.approvals.clone(), v.principal.clone());
    let stream = futures_util::stream::unfold(Some(first), move |page| {
        let (approvals, p) = (approvals.clone(), p.clone());
        async move {
            let page = page?;
            let last = page.last()?.seq;
            let mut buf = Vec::with_capacity(page.len() * 300);
            for e in &page {
                if let Err(err) = serde_json::to_writer(&mut buf, e) {
                    return Some((Err(std::io::Error::other(err.to_string())), None));
                }
                buf.push(b'\n');
            }
            let next = if page.len() < EXPORT_PAGE {
                None
            } else {
                match approvals.audit_page(&p, last, EXPORT_PAGE).await {
                    Ok(more) => Some(more),
                    Err(err) => return Some((Err(std::io::Error::other(err.to_string())), None)),
                }
            };
            Some((Ok::<_, std::io::Error>(buf), next.filter(|n| !n.is_empty())))
        }
    });
    Ok((
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CONTENT_DISPOSITION, "attachment; filename=\"greenlight-audit.jsonl\""),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
