//! `/security`: the signed-in user's second factor. Setting it up shows a QR code (and the
//! secret, for typing in) and asks for the first code; then the recovery codes, once. With a
//! second factor, the page confirms it is you (a step-up) before critical actions, and says for
//! how long the last one holds.

use super::WebState;
use super::error::PageError;
use super::session::{TokenForm, Viewer};
use super::view::Nav;
use crate::api::extract::ClientAddr;
use crate::approvals::ApprovalError;
use crate::approvals::second_factor::{STEP_UP_VALID, StepUpMethod};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    nav: Nav,
    enrolled: bool,
    recovery_left: usize,
    /// Minutes the last step-up still holds, if it does.
    fresh_minutes: Option<i64>,
    /// Setting up: the QR code (SVG), the secret and its address.
    qr_svg: String,
    secret: String,
    /// Just enrolled: the recovery codes, shown this once.
    recovery_codes: Vec<String>,
    /// Where to go after a step-up.
    next: String,
    done: String,
    error: String,
}

/// The QR code of an address as inline SVG, labelled for screen readers.
fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else { return String::new() };
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    let svg = svg.find("<svg").map(|i| &svg[i..]).unwrap_or(&svg).to_string();
    svg.replacen("<svg ", "<svg role=\"img\" aria-label=\"QR code of your new second factor\" ", 1)
}

/// Only a path of this site is a place to go back to: it starts with one `/`, and holds no
/// backslash, space or control character (browsers drop tabs and newlines, which would turn
/// `/<tab>/evil.example` into `//evil.example`).
fn local(next: &str) -> String {
    let plain = next.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if plain && next.starts_with('/') && !next.starts_with("//") { next.to_string() } else { String::new() }
}

async fn page(s: &WebState, v: &Viewer, next: String) -> Result<SecurityPage, PageError> {
    let state = s.approvals.second_factor_state(&v.principal).await?;
    let fresh = s.approvals.fresh_step_up(v.cookie()).await?;
    let fresh_minutes = fresh.map(|at| ((at + STEP_UP_VALID - chrono::Utc::now()).num_seconds() + 59) / 60);
    Ok(SecurityPage {
        nav: v.nav("security"),
        enrolled: state.enrolled,
        recovery_left: state.recovery_left,
        fresh_minutes,
        qr_svg: String::new(),
        secret: String::new(),
        recovery_codes: Vec::new(),
        next,
        done: String::new(),
        error: String::new(),
    })
}

/// The page's query: where to return after a step-up.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    /// Sent here because the user's role requires a second factor.
    #[serde(default)]
    required: Option<String>,
}

/// `GET /security`.
pub async fn security(
    State(s): State<WebState>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Result<Html<String>, PageError> {
    let mut p = page(&s, &v, local(&q.next)).await?;
    if q.required.is_some() && !p.enrolled {
        p.error = "Your role requires two-step verification: set it up to continue".into();
    }
    Ok(Html(p.render()?))
}

/// `POST /security/setup`: a new secret, shown as a QR code.
pub async fn setup(State(s): State<WebState>, v: Viewer, Form(f): Form<TokenForm>) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let mut p = page(&s, &v, String::new()).await?;
    match s.approvals.begin_enrollment(&v.principal).await {
        Ok(e) => {
            p.qr_svg = qr_svg(&e.uri);
            p.secret = e.secret;
            Ok(Html(p.render()?).into_response())
        }
        Err(ApprovalError::Conflict(m)) => {
            p.error = m;
            Ok((StatusCode::CONFLICT, Html(p.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A form with a code.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
    #[serde(default)]
    next: String,
}

/// `POST /security/confirm`: the first code turns the second factor on; the recovery codes are
/// shown once.
pub async fn confirm(State(s): State<WebState>, v: Viewer, Form(f): Form<CodeForm>) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    match s.approvals.confirm_enrollment(&v.principal, Some(v.cookie()), &f.code).await {
        Ok(codes) => {
            let mut p = page(&s, &v, String::new()).await?;
            p.recovery_codes = codes;
            p.done = "Two-step verification is on".into();
            Ok(Html(p.render()?).into_response())
        }
        Err(ApprovalError::Invalid { message, .. } | ApprovalError::Conflict(message)) => {
            let mut p = page(&s, &v, String::new()).await?;
            p.error = format!("{message}. Start again to get a new QR code");
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(p.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /security/step-up`: a fresh code for critical actions; back to `next` if given.
pub async fn step_up(
    State(s): State<WebState>,
    v: Viewer,
    ClientAddr(from): ClientAddr,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let next = local(&f.next);
    let (s, v) = (&s, &v);
    let refused = |status: StatusCode, message: String| {
        let next = next.clone();
        async move {
            let mut p = page(s, v, next).await?;
            p.error = message;
            Ok::<_, PageError>((status, Html(p.render()?)).into_response())
        }
    };
    match s.approvals.step_up(&v.principal, v.cookie(), &f.code, from).await {
        Ok(method) if !next.is_empty() && method == StepUpMethod::Totp => Ok(Redirect::to(&next).into_response()),
        Ok(method) => {
            let mut p = page(s, v, next.clone()).await?;
            p.done = match method {
                StepUpMethod::Totp => "Confirmed".into(),
                StepUpMethod::RecoveryCode => format!(
                    "Confirmed with a recovery code; {} left. If you lost your phone, ask an admin to reset your second factor",
                    p.recovery_left
                ),
            };
            Ok(Html(p.render()?).into_response())
        }
        Err(ApprovalError::Invalid { message, .. } | ApprovalError::Conflict(message)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, message).await
        }
        Err(e @ ApprovalError::TooManyAttempts(_)) => refused(StatusCode::TOO_MANY_REQUESTS, e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_local_paths_are_places_to_return_to() {
        for ok in ["/inbox", "/orders/1?x=y"] {
            assert_eq!(super::local(ok), ok);
        }
        for bad in
            ["//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "inbox", "/a b", "/\n/x"]
        {
            assert_eq!(super::local(bad), "", "{bad:?}");
        }
    }
}
