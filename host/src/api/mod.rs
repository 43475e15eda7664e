//! The HTTP API v1, described by the OpenAPI document it serves at `/v1/openapi.json`. [`app`] builds the whole router so tests can drive it
//! without a socket; [`serve`] binds it.
//!
//! - [`error`]: the one error type, `AppError: IntoResponse`.
//! - [`contract`]: what the OpenAPI document promises for every operation (the error body and
//!   statuses, `Location` on a 201).
//! - [`extract`]: caller from the bearer token, JSON bodies, query strings.
//! - [`orders`], [`evaluations`], [`attachments`], [`authorizations`], [`delegations`], [`admin`], [`deliveries`], [`audit`], [`reports`], [`simulations`]: the handlers.
//! - [`metrics`]: Prometheus text at `/metrics`.
//! - [`users`]: the access review and the user lifecycle (disable, enable, tokens).
//! - [`tls`]: HTTPS with certificates reloaded when their files change.
//! - `unread`: what a handler left of a request body is read before the answer, so that the
//!   connection is never dropped under a client.

pub mod admin;
pub mod attachments;
pub mod audit;
pub mod authorizations;
pub mod contract;
pub mod delegations;
pub mod deliveries;
pub mod error;
pub mod evaluations;
pub mod extract;
pub mod metrics;
pub mod orders;
pub mod reports;
pub mod simulations;
pub mod tls;
mod unread;
pub mod users;

use crate::approvals::Approvals;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::Contract;
use error::AppError;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;

/// Largest request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub approvals: Approvals,
    /// The metrics registry.
    pub metrics: Arc<metrics::Metrics>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Greenlight API", version = "1.0.0", description = "Order approval: requesters create and submit orders, approvers decide their stages, auditors read the hash-chained audit log. Money is integer minor units, at most 10^15 per amount."),
    paths(
        orders::create, orders::get, orders::edit, orders::submit, orders::decide, orders::withdraw,
        orders::revoke, orders::release, orders::deactivate, orders::reactivate, orders::audit,
        orders::list, orders::inbox, attachments::upload, attachments::list, attachments::download,
        delegations::create, delegations::list, delegations::get, delegations::end, authorizations::list,
        admin::create_user, admin::set_password, admin::create_cost_center, admin::cost_center, admin::extensions,
        admin::extension, admin::update_extension, admin::add_script, admin::settings, users::review, users::attempts,
        users::user, users::change_roles, users::disable, users::enable, users::issue_token, users::reset_second_factor, deliveries::list, deliveries::retry,
        audit::export, audit::verify, reports::summary, reports::drift, evaluations::list, evaluations::replay, simulations::run,
    ),
    modifiers(&BearerAuth, &Contract),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.approvals.health().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "the database is not reachable")
                .into_response()
        }
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let counters = s.approvals.counters();
    let text = s.metrics.render(
        counters.evaluations.load(std::sync::atomic::Ordering::Relaxed),
        counters.step_failures.load(std::sync::atomic::Ordering::Relaxed),
        s.approvals.store().writer_stats(),
        s.approvals.access_log(),
    );
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn track(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let caller = extract::CallerSlot::default();
    req.extensions_mut().insert(caller.clone());
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let address = extract::ClientAddr::resolve(peer, extract::TrustedProxies::of(req.extensions()), req.headers()).0;
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if let Some(error::Unsent(cause)) = resp.extensions().get::<error::Unsent>() {
        tracing::error!(%method, %route, status, %cause, "request failed");
    }
    if let Some(error::Refused(why)) = resp.extensions().get::<error::Refused>() {
        use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome, Channel};
        let outcome = if status == 401 { AttemptOutcome::Unauthorized } else { AttemptOutcome::Forbidden };
        let (tenant, user) = caller.0.get().cloned().unzip();
        let reason = format!("{method} {route}: {why}");
        let attempt =
            AccessAttempt::new(chrono::Utc::now(), tenant, Channel::Api, user.as_deref(), address, outcome, &reason);
        s.approvals.access_log().record(attempt);
    }
    s.metrics
        .requests
        .get_or_create(&metrics::RequestLabels { method: method.clone(), route: route.clone(), status })
        .inc();
    s.metrics.latency.get_or_create(&metrics::RouteLabels { method, route }).observe(start.elapsed().as_secs_f64());
    resp
}

/// A handler that panicked answers 500 with an error id instead of dropping the connection.
fn handler_panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::internal(&crate::approvals::report_panic("a request", payload.as_ref())).into_response()
}

async fn not_found() -> AppError {
    AppError::not_found("no such endpoint; see /v1/openapi.json")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

/// The whole API.
pub fn app(approvals: Approvals) -> Router {
    let state = AppState { approvals, metrics: Arc::new(metrics::Metrics::new()) };
    Router::new()
        .route("/v1/orders", post(orders::create).get(orders::list))
        .route("/v1/orders/{id}", get(orders::get).patch(orders::edit))
        .route("/v1/orders/{id}/submit", post(orders::submit))
        .route("/v1/orders/{id}/decisions", post(orders::decide))
        .route("/v1/orders/{id}/withdraw", post(orders::withdraw))
        .route("/v1/orders/{id}/revoke", post(orders::revoke))
        .route("/v1/orders/{id}/release", post(orders::release))
        .route("/v1/orders/{id}/deactivate", post(orders::deactivate))
        .route("/v1/orders/{id}/reactivate", post(orders::reactivate))
        .route("/v1/orders/{id}/audit", get(orders::audit))
        .route("/v1/orders/{id}/evaluations", get(evaluations::list))
        .route("/v1/orders/{id}/evaluations/{n}/replay", post(evaluations::replay))
        .route("/v1/orders/{id}/attachments", post(attachments::upload).get(attachments::list))
        .route("/v1/orders/{id}/attachments/{sha256}", get(attachments::download))
        .route("/v1/inbox", get(orders::inbox))
        .route("/v1/authorizations", get(authorizations::list))
        .route("/v1/delegations", post(delegations::create).get(delegations::list))
        .route("/v1/delegations/{id}", get(delegations::get).delete(delegations::end))
        .route("/v1/admin/users", post(admin::create_user))
        .route("/v1/admin/users/{name}", get(users::user))
        .route("/v1/admin/users/{name}/password", axum::routing::put(admin::set_password))
        .route("/v1/admin/users/{name}/roles", axum::routing::put(users::change_roles))
        .route("/v1/admin/users/{name}/disable", post(users::disable))
        .route("/v1/admin/users/{name}/enable", post(users::enable))
        .route("/v1/admin/users/{name}/tokens", post(users::issue_token))
        .route("/v1/admin/users/{name}/second-factor/reset", post(users::reset_second_factor))
        .route("/v1/admin/access-review", get(users::review))
        .route("/v1/admin/access-attempts", get(users::attempts))
        .route("/v1/admin/cost-centers", post(admin::create_cost_center))
        .route("/v1/admin/cost-centers/{code}", get(admin::cost_center))
        .route("/v1/admin/extensions", get(admin::extensions))
        .route("/v1/admin/extensions/{name}", get(admin::extension).put(admin::update_extension))
        .route("/v1/admin/scripts", post(admin::add_script))
        .route("/v1/admin/settings", axum::routing::put(admin::settings))
        .route("/v1/admin/simulations", post(simulations::run))
        .route("/v1/admin/deliveries", get(deliveries::list))
        .route("/v1/admin/deliveries/{id}/retry", post(deliveries::retry))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/reports/summary", get(reports::summary))
        .route("/v1/reports/drift", get(reports::drift))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(unread::drain))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(handler_panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves a router (the API, with the dashboard merged in by the binary) on a bound listener
/// until Ctrl-C or SIGTERM, over TLS when given. Handlers may read the client's address
/// (`ConnectInfo`).
pub async fn serve(listener: tokio::net::TcpListener, app: Router, tls: Option<&tls::Tls>) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    use std::net::SocketAddr;
    match tls {
        None => {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await
        }
        Some(tls) => {
            let service = app
                .layer(middleware::map_response(strict_transport))
                .into_make_service_with_connect_info::<SocketAddr>();
            // `tap_io` gives the TLS listener axum's `ConnectInfo<SocketAddr>`.
            let listener = tls.listen(listener)?.tap_io(|_| ());
            axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await
        }
    }
}

/// Over TLS, browsers are told to use nothing else for this host for a year (HSTS), so a
/// signed-in session never travels in the clear after the first visit.
async fn strict_transport(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests;
