//! The requester's and approver's pages: the inbox, the request view, the order with its plan,
//! documents and audit trail, new orders, decisions, and attachments.

use super::WebState;
use super::error::PageError;
use super::session::{TokenForm, Viewer};
use super::view::{self, LineView, Nav, OrderRow};
use crate::approvals::ApprovalError;
use crate::domain::attachment::Attachment;
use crate::domain::audit::AuditEntry;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::plan::Verdict;
use crate::domain::report::parse_bound;
use crate::store::orders::OrderFilter;
use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

/// `GET /`: the inbox (or the sign-in page, through the inbox's redirect).
pub async fn home() -> Redirect {
    Redirect::to("/inbox")
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Nav,
    rows: Vec<OrderRow>,
    next: String,
    done: String,
}

/// Inbox parameters.
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /inbox`: the orders awaiting the viewer (own roles, cost centers managed, delegations
/// received), the most urgent first: due ones by due time, then the oldest.
pub async fn inbox(
    State(s): State<WebState>,
    v: Viewer,
    Query(q): Query<InboxQuery>,
) -> Result<Html<String>, PageError> {
    let (orders, next) = s.approvals.inbox(&v.principal, 50, q.cursor).await?;
    let now = Utc::now();
    let me = v.principal.user.actor();
    let mut rows: Vec<(Option<chrono::DateTime<Utc>>, OrderRow)> = orders
        .iter()
        .map(|o| {
            let mut row = OrderRow::of(o, now);
            let decidable: Vec<_> = o.plan.stages.iter().filter(|st| st.state.is_decidable()).collect();
            let mine: Vec<String> = decidable.iter().filter(|st| st.admits(&me)).map(|st| st.key.clone()).collect();
            // Stages decided under a delegation do not name the viewer; the use case finds whose.
            row.stages = if mine.is_empty() { decidable.iter().map(|st| st.key.clone()).collect() } else { mine };
            (o.next_due_at(), row)
        })
        .collect();
    rows.sort_by(|(a, ra), (b, rb)| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => ra.id.cmp(&rb.id),
    });
    let page = InboxPage {
        nav: v.nav("inbox"),
        rows: rows.into_iter().map(|(_, r)| r).collect(),
        next: next.unwrap_or_default(),
        done: q.done.unwrap_or_default(),
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "orders.html")]
struct ListPage {
    nav: Nav,
    q: ListQuery,
    statuses: Vec<(&'static str, &'static str)>,
    rows: Vec<OrderRow>,
    count: String,
    next: String,
    error: String,
}

/// Request view parameters: every filter is optional; an empty field is no filter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    cost_center: String,
    #[serde(default)]
    budget_category: String,
    #[serde(default)]
    requester: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

impl ListQuery {
    /// This query with another cursor, as a link.
    fn with_cursor(&self, cursor: &str) -> String {
        let pairs = [
            ("status", &self.status),
            ("department", &self.department),
            ("cost_center", &self.cost_center),
            ("budget_category", &self.budget_category),
            ("requester", &self.requester),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let mut out = String::from("/orders?");
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            out.push_str(&format!("{k}={}&", urlencode(v)));
        }
        out.push_str(&format!("cursor={}", urlencode(cursor)));
        out
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn some(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The most orders the request view counts before saying "more than".
const COUNT_CAP: u64 = 100_000;

/// `GET /orders`: the request view (R10), filtered, newest first, 50 per page, with the count.
pub async fn list(State(s): State<WebState>, v: Viewer, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    let statuses = OrderStatus::ALL.iter().map(|st| (st.as_str(), view::status(*st))).collect();
    let mut error = String::new();
    let status = match some(&q.status).map(|st| st.parse::<OrderStatus>()).transpose() {
        Ok(st) => st,
        Err(e) => {
            error = e;
            None
        }
    };
    let bound = |field: &str, value: &str, error: &mut String| {
        let v = some(value)?;
        let t = parse_bound(&v);
        if t.is_none() {
            *error = format!("{field}: '{v}' is not a date; use YYYY-MM-DD");
        }
        t
    };
    let from = bound("from", &q.from, &mut error);
    let to = bound("to", &q.to, &mut error).map(|t| t + chrono::TimeDelta::days(1));
    let filter = OrderFilter {
        status,
        cost_center: some(&q.cost_center),
        department: some(&q.department),
        budget_category: some(&q.budget_category),
        requester: some(&q.requester),
        limit: 50,
        cursor: some(&q.cursor),
        created_from: from,
        created_before: to,
    };
    let status_code = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let (rows, next, count) = if error.is_empty() {
        let counted = s.approvals.count(&v.principal, OrderFilter { cursor: None, ..filter.clone() }, COUNT_CAP);
        let (page, next) = s.approvals.list(&v.principal, filter).await?;
        let n = counted.await?;
        let now = Utc::now();
        let count = if n > COUNT_CAP { format!("more than {COUNT_CAP}") } else { n.to_string() };
        (
            page.iter().map(|o| OrderRow::of(o, now)).collect(),
            next.map(|c| q.with_cursor(&c)).unwrap_or_default(),
            count,
        )
    } else {
        (Vec::new(), String::new(), "0".into())
    };
    let page = ListPage { nav: v.nav("orders"), q, statuses, rows, count, next, error };
    Ok((status_code, Html(page.render()?)).into_response())
}

/// A stage as the order page shows it.
struct StageView {
    key: String,
    title: String,
    level: u32,
    approvers: String,
    quorum: String,
    state: &'static str,
    reason: String,
    source: String,
    due: String,
    decidable: bool,
    decisions: Vec<DecisionView>,
}

struct DecisionView {
    by: String,
    on_behalf_of: String,
    verdict: &'static str,
    comment: String,
    at: String,
}

struct FlagView {
    code: String,
    severity: &'static str,
    message: String,
    source: String,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    nav: Nav,
    id: String,
    requester: String,
    status: &'static str,
    mine: bool,
    draft: bool,
    editable: bool,
    withdrawable: bool,
    cost_center: String,
    department: String,
    vendor: String,
    customer: String,
    recurrence: String,
    subscription: String,
    hold_reason: String,
    rejection: String,
    lines: Vec<LineView>,
    subtotal: String,
    tax: String,
    total: String,
    flags: Vec<FlagView>,
    stages: Vec<StageView>,
    attachments: Vec<Attachment>,
    audit: Vec<AuditEntry>,
    decide_stage: String,
    decide_error: String,
    upload_error: String,
}

fn order_page(v: &Viewer, o: &Order, attachments: Vec<Attachment>, audit: Vec<AuditEntry>) -> OrderPage {
    let c = o.input.currency;
    let me = v.principal.user.actor();
    let stages: Vec<StageView> = o
        .plan
        .stages
        .iter()
        .map(|st| StageView {
            key: st.key.clone(),
            title: st.title.clone(),
            level: st.level,
            approvers: view::approvers(&st.approvers),
            quorum: format!("{} of {}", st.approvals(), st.needed()),
            state: view::stage_state(st.state),
            reason: st.reason.clone(),
            source: st.source.clone(),
            due: st.due_at.map(view::when).unwrap_or_default(),
            decidable: st.state.is_decidable() && o.requester != me.name,
            decisions: st
                .decisions
                .iter()
                .map(|d| DecisionView {
                    by: d.by.clone(),
                    on_behalf_of: d.on_behalf_of.clone().unwrap_or_default(),
                    verdict: match d.decision {
                        Verdict::Approve => "approved",
                        Verdict::Reject => "rejected",
                    },
                    comment: d.comment.clone().unwrap_or_default(),
                    at: view::when(d.at),
                })
                .collect(),
        })
        .collect();
    let decide_stage = stages
        .iter()
        .find(|s| s.decidable && o.plan.stage(&s.key).is_some_and(|st| st.admits(&me)))
        .or_else(|| stages.iter().find(|s| s.decidable))
        .map(|s| s.key.clone())
        .unwrap_or_default();
    OrderPage {
        nav: v.nav("orders"),
        id: o.id.clone(),
        requester: o.requester.clone(),
        status: view::status(o.status),
        mine: o.requester == me.name,
        draft: o.status == OrderStatus::Draft,
        editable: o.requester == me.name && matches!(o.status, OrderStatus::Draft | OrderStatus::PendingApproval),
        withdrawable: o.requester == me.name
            && matches!(o.status, OrderStatus::Draft | OrderStatus::PendingApproval | OrderStatus::OnHold),
        cost_center: o.input.cost_center.clone().unwrap_or_default(),
        department: o.input.department.clone().unwrap_or_default(),
        vendor: o.input.vendor_id.clone().unwrap_or_default(),
        customer: o.input.customer_id.clone().unwrap_or_default(),
        recurrence: o.input.recurrence.as_ref().map(|r| r.interval.clone()).unwrap_or_default(),
        subscription: o.subscription.as_ref().map(|s| format!("{:?}", s.state).to_lowercase()).unwrap_or_default(),
        hold_reason: o.hold_reason.clone().unwrap_or_default(),
        rejection: o.rejection.as_ref().map(|r| format!("{}: {}", r.by, r.reason)).unwrap_or_default(),
        lines: LineView::of(o),
        subtotal: view::money(c, o.subtotal_minor),
        tax: view::money(c, o.tax_minor()),
        total: view::money(c, o.total_minor()),
        flags: o
            .flags
            .iter()
            .map(|f| FlagView {
                code: f.code.clone(),
                severity: match f.severity {
                    crate::domain::flag::Severity::Info => "info",
                    crate::domain::flag::Severity::Warning => "warning",
                    crate::domain::flag::Severity::High => "high",
                },
                message: f.message.clone(),
                source: f.source.clone(),
            })
            .collect(),
        stages,
        attachments,
        audit,
        decide_stage,
        decide_error: String::new(),
        upload_error: String::new(),
    }
}

async fn load_page(s: &WebState, v: &Viewer, id: &str) -> Result<OrderPage, PageError> {
    let order = s.approvals.order(&v.principal, id).await?;
    let attachments = s.approvals.attachments(&v.principal, id).await?;
    let audit = s.approvals.order_audit(&v.principal, id).await?;
    Ok(order_page(v, &order, attachments, audit))
}

/// `GET /orders/{id}`: the order; another tenant's (or one the viewer may not see) is a 404.
pub async fn show(State(s): State<WebState>, v: Viewer, Path(id): Path<String>) -> Result<Html<String>, PageError> {
    Ok(Html(load_page(&s, &v, &id).await?.render()?))
}

/// A decision from the inbox or the order page.
#[derive(Debug, Deserialize)]
pub struct DecideForm {
    csrf: String,
    stage: String,
    decision: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    back: String,
}

#[derive(Template)]
#[template(
    source = r#"<tr class="decided"><td colspan="6" role="status">{{ verdict }} stage {{ stage }} of <a href="/orders/{{ id }}">order {{ id }}</a>: {{ status }}.</td></tr>"#,
    ext = "html"
)]
struct DecidedRow<'a> {
    verdict: &'a str,
    stage: &'a str,
    id: &'a str,
    status: &'a str,
}

/// `POST /orders/{id}/decide`: approve (one click) or reject (a reason required: without one,
/// the order page again with the message at the field). From the inbox through htmx
/// (`HX-Request`), the answer is the inbox row saying what happened, swapped in place.
pub async fn decide(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    Form(f): Form<DecideForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let verdict = match f.decision.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => return Err(PageError::BadRequest(format!("'{other}' is neither approve nor reject"))),
    };
    let comment = some(&f.comment);
    let refused = |message: String| async {
        let mut page = load_page(&s, &v, &id).await?;
        page.decide_stage = f.stage.clone();
        page.decide_error = message;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
    };
    if verdict == Verdict::Reject && comment.is_none() {
        return refused("give a reason for the rejection: the requester reads it".into()).await;
    }
    let partial = headers.get("hx-request").is_some_and(|h| h == "true") && f.back == "inbox";
    match s.approvals.decide(&v.principal, &id, f.stage.clone(), verdict, comment).await {
        // htmx swaps only successful answers: a refusal is a row saying why.
        Err(e) if partial => {
            let row = DecidedRow { verdict: "Could not decide", stage: &f.stage, id: &id, status: &e.to_string() };
            Ok(Html(row.render()?).into_response())
        }
        Ok(order) if partial => {
            let verdict = if verdict == Verdict::Approve { "Approved" } else { "Rejected" };
            let now = format!("it is now {}", view::status(order.status));
            let row = DecidedRow { verdict, stage: &f.stage, id: &id, status: &now };
            Ok(Html(row.render()?).into_response())
        }
        Ok(_) if f.back == "inbox" => Ok(Redirect::to(&format!("/inbox?done={}", urlencode(&id))).into_response()),
        Ok(_) => Ok(Redirect::to(&format!("/orders/{id}")).into_response()),
        Err(ApprovalError::Invalid { message, .. }) => refused(message).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /orders/{id}/submit`.
pub async fn submit(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Redirect, PageError> {
    v.check(&f.csrf)?;
    s.approvals.submit(&v.principal, &id).await?;
    Ok(Redirect::to(&format!("/orders/{id}")))
}

/// `POST /orders/{id}/withdraw`.
pub async fn withdraw(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Redirect, PageError> {
    v.check(&f.csrf)?;
    s.approvals.withdraw(&v.principal, &id).await?;
    Ok(Redirect::to(&format!("/orders/{id}")))
}

/// `POST /orders/{id}/attachments`: a document from a file field `file` (multipart), with the
/// form token in the field `csrf` before it.
pub async fn upload(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    let bad = |e: axum::extract::multipart::MultipartError| {
        PageError::BadRequest(format!("the upload could not be read: {e}"))
    };
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(bad)?,
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_string();
                file = Some((name, field.bytes().await.map_err(bad)?.to_vec()));
            }
            _ => {}
        }
    }
    v.check(&csrf)?;
    let refused = |message: String| async {
        let mut page = load_page(&s, &v, &id).await?;
        page.upload_error = message;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
    };
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return refused("choose a file to attach".into()).await;
    };
    match s.approvals.add_attachment(&v.principal, &id, &name, bytes).await {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{id}#documents")).into_response()),
        Err(ApprovalError::Invalid { message, .. }) => refused(message).await,
        Err(e) => Err(e.into()),
    }
}

/// `GET /orders/{id}/attachments/{sha256}`: the document, always as a download, never run.
pub async fn download(
    State(s): State<WebState>,
    v: Viewer,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (a, bytes) = s.approvals.attachment(&v.principal, &id, &sha).await?;
    let disposition = format!("attachment; filename=\"{}\"", a.filename);
    Ok((
        [
            (CONTENT_TYPE, a.content_type),
            (CONTENT_DISPOSITION, disposition),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox".to_string()),
        ],
        bytes,
    )
        .into_response())
}
