//! The dashboard: server-rendered HTML for the people of the seeds — requesters, approvers,
//! auditors and admins — on the API's listener. Pages call the use cases ([`crate::approvals`])
//! directly, never the HTTP API. Every flow works without JavaScript (plain forms, redirects
//! after posts); the vendored htmx only spares a page reload where it is loaded.
//!
//! - [`session`]: sign-in and sign-out, the session cookie, the viewer of a page and the form
//!   token (CSRF) every state-changing form carries.
//! - `orders`: the inbox, the request view, the order page, decisions, attachments;
//!   `order_form`: new and edited orders.
//! - `oversight`: the auditor's chain verification and the reports page with its charts.
//! - `access`: the access review (roles, activity, delegations, dormant users), recent access
//!   attempts, disabling and enabling users.
//! - `admin`: extensions, users and passwords, cost centers, settings, failing deliveries.
//! - `security`: the user's second factor: setting it up, recovery codes, confirming it is them.
//! - `decision_links`: the confirmation pages behind the approve and reject links of e-mails.
//! - `delegations`: lending one's authority for a period, ending it early.
//! - `view`: what the pages show of the domain (amounts, statuses, charts), and `error`: the one
//!   page error type.
//!
//! Templates live in `host/templates/` (askama: checked at compile time, HTML-escaped); assets
//! are embedded in the binary and served from `/assets/`, with nothing from a CDN.

mod access;
mod admin;
mod decision_links;
mod delegations;
mod error;
mod order_form;
mod orders;
mod oversight;
mod security;
pub mod session;
mod view;

use crate::approvals::Approvals;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The use cases.
    pub approvals: Approvals,
    /// Whether cookies are marked `Secure` (the host is reached over TLS, directly or behind a
    /// proxy that terminates it).
    pub secure_cookies: bool,
}

/// The vendored htmx, pinned (`assets/README.md` says where it comes from).
const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.4.min.js");
/// The dashboard's style sheet.
const CSS: &[u8] = include_bytes!("../../assets/greenlight.css");

/// Scripts and styles only from this origin; no framing; forms post only here. Documents a user
/// uploaded are served by the API with their own stricter policy.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // A download keeps its own, stricter policy.
    h.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A page that carries a secret in its address (a decision link) keeps its stricter policy.
    h.entry(REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    h.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=86400")], bytes).into_response()
}

/// Largest form the dashboard reads; uploads have the attachment limit instead.
const FORM_LIMIT: usize = 256 * 1024;

/// The dashboard's routes. Merge with [`crate::api::app`] on one listener.
pub fn app(state: WebState) -> Router {
    let upload_limit = state.approvals.attachment_limit() + 64 * 1024;
    let uploads = Router::new()
        .route("/orders/{id}/attachments", post(orders::upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    Router::new()
        .route("/", get(orders::home))
        .route("/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/password", get(admin::password_page).post(admin::change_password))
        .route("/security", get(security::security))
        .route("/security/setup", post(security::setup))
        .route("/security/confirm", post(security::confirm))
        .route("/security/step-up", post(security::step_up))
        .route("/inbox", get(orders::inbox))
        .route("/orders", get(orders::list).post(order_form::create))
        .route("/orders/new", get(order_form::new_order))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/edit", get(order_form::edit_page).post(order_form::edit))
        .route("/orders/{id}/decide", post(orders::decide))
        .route("/orders/{id}/submit", post(orders::submit))
        .route("/orders/{id}/withdraw", post(orders::withdraw))
        .route("/orders/{id}/attachments/{sha256}", get(orders::download))
        .route("/audit", get(oversight::audit).post(oversight::verify))
        .route("/reports", get(oversight::reports))
        .route("/reports.csv", get(oversight::reports_csv))
        .route("/access", get(access::access))
        .route("/access.csv", get(access::access_csv))
        .route("/access/{name}/{change}", post(access::change))
        .route("/admin/extensions", get(admin::extensions))
        .route("/admin/extensions/{name}", post(admin::update_extension))
        .route("/admin/extensions/{name}/try", post(admin::try_extension))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{name}/password", post(admin::set_password))
        .route("/admin/cost-centers", get(admin::cost_centers).post(admin::create_cost_center))
        .route("/admin/settings", get(admin::settings).post(admin::save_settings))
        .route("/admin/deliveries", get(admin::deliveries))
        .route("/admin/deliveries/{id}/retry", post(admin::redrive))
        .route("/decide/{token}", get(decision_links::open).post(decision_links::confirm))
        .route("/delegations", get(delegations::delegations).post(delegations::delegate))
        .route("/delegations/{id}/end", post(delegations::end))
        .route("/audit/export", get(oversight::export))
        .route("/assets/htmx-2.0.4.min.js", get(|| async { asset(HTMX, "text/javascript; charset=utf-8") }))
        .route("/assets/greenlight.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .merge(uploads)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests;
