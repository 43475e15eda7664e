//! The pages behind the approve and reject links of stage e-mails. `GET /decide/{token}` shows
//! the order and what the link would do, and changes nothing (mail scanners fetch links);
//! `POST /decide/{token}` decides. The signed, single-use token in the address stands in for
//! the session and its form token; a post from another origin is refused all the same.

use super::WebState;
use super::error::PageError;
use super::session::same_origin;
use super::view::{self, LineView, Nav};
use crate::approvals::{LinkRefusal, LinkedDecision};
use crate::domain::decision_link::LinkError;
use crate::domain::plan::Verdict;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::REFERRER_POLICY};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "decide_link.html")]
struct ConfirmPage {
    nav: Nav,
    token: String,
    tenant: String,
    order_id: String,
    requester: String,
    status: &'static str,
    cost_center: String,
    lines: Vec<LineView>,
    total: String,
    flags: Vec<String>,
    stage_title: String,
    approver: String,
    approve: bool,
    expires: String,
    reason: String,
    error: String,
}

#[derive(Template)]
#[template(path = "decided_link.html")]
struct DonePage {
    nav: Nav,
    order_id: String,
    stage_title: String,
    approved: bool,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct RefusedPage {
    nav: Nav,
    status: u16,
    title: &'static str,
    message: String,
    /// Never: a link's refusal is not about a second factor.
    step_up: bool,
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct Confirm {
    #[serde(default)]
    reason: String,
}

fn confirm_page(token: String, d: LinkedDecision, reason: String, error: String) -> ConfirmPage {
    let o = &d.order;
    ConfirmPage {
        nav: Nav::anonymous(),
        token,
        tenant: d.tenant,
        order_id: o.id.clone(),
        requester: o.requester.clone(),
        status: view::status(o.status),
        cost_center: o.input.cost_center.clone().unwrap_or_default(),
        lines: LineView::of(o),
        total: view::money(o.input.currency, o.total_minor()),
        flags: o.flags.iter().map(|f| format!("{}: {}", f.code, f.message)).collect(),
        stage_title: if d.stage_title.is_empty() { d.stage } else { d.stage_title },
        approver: d.approver,
        approve: d.verdict == Verdict::Approve,
        expires: view::when(d.expires),
        reason,
        error,
    }
}

/// A refused link: a page that says why and what to do instead.
fn refused(r: LinkRefusal) -> Response {
    let r = match r {
        LinkRefusal::Refused(e) => return no_referrer(PageError::Approval(e).into_response()),
        other => other,
    };
    let (status, title) = match &r {
        LinkRefusal::NotAccepted | LinkRefusal::Gone => (StatusCode::NOT_FOUND, "Link not usable"),
        LinkRefusal::Link(LinkError::Malformed) => (StatusCode::BAD_REQUEST, "Link damaged"),
        LinkRefusal::Link(LinkError::Forged) => (StatusCode::FORBIDDEN, "Link not valid"),
        LinkRefusal::Link(LinkError::Expired(_)) => (StatusCode::GONE, "Link expired"),
        LinkRefusal::Used(_) => (StatusCode::CONFLICT, "Link already used"),
        LinkRefusal::Changed => (StatusCode::CONFLICT, "The order changed"),
        LinkRefusal::Refused(_) => (StatusCode::CONFLICT, "Not possible now"),
    };
    let page =
        RefusedPage { nav: Nav::anonymous(), status: status.as_u16(), title, message: r.to_string(), step_up: false };
    let html = page.render().unwrap_or_else(|_| r.to_string());
    no_referrer((status, Html(html)).into_response())
}

/// The token is in the address: no other site may learn it from a `Referer`.
fn no_referrer(mut resp: Response) -> Response {
    resp.headers_mut().insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// `GET /decide/{token}`: what the link would do; nothing happens until it is confirmed.
pub async fn open(State(s): State<WebState>, Path(token): Path<String>) -> Result<Response, PageError> {
    match s.approvals.open_link(&token).await {
        Ok(d) => Ok(no_referrer(Html(confirm_page(token, d, String::new(), String::new()).render()?).into_response())),
        Err(r) => Ok(refused(r)),
    }
}

/// `POST /decide/{token}`: decides as the link says.
pub async fn confirm(
    State(s): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<Confirm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError::Csrf);
    }
    let reason = Some(f.reason.trim().to_string()).filter(|r| !r.is_empty());
    match s.approvals.decide_by_link(&token, reason).await {
        Ok(d) => {
            let page = DonePage {
                nav: Nav::anonymous(),
                order_id: d.order.id.clone(),
                stage_title: d.stage_title,
                approved: d.verdict == Verdict::Approve,
                status: view::status(d.order.status),
            };
            Ok(no_referrer(Html(page.render()?).into_response()))
        }
        // A missing reason: the same page again, saying so, with nothing lost.
        Err(LinkRefusal::Refused(crate::approvals::ApprovalError::Invalid { message, .. })) => {
            match s.approvals.open_link(&token).await {
                Ok(d) => {
                    let page = confirm_page(token, d, f.reason, message);
                    Ok(no_referrer((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response()))
                }
                Err(r) => Ok(refused(r)),
            }
        }
        Err(r) => Ok(refused(r)),
    }
}
