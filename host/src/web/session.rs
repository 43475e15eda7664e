//! Signing in and out, the session cookie, and who is looking at a page. The cookie holds a
//! random value whose hash is the session's key in the store (`HttpOnly`, `SameSite=Strict`,
//! `Secure` behind TLS); every state-changing form carries the session's form token, compared
//! in constant time, and a form posted from another origin is refused.

use super::WebState;
use super::error::PageError;
use super::view::Nav;
use crate::api::extract::ClientAddr;
use crate::approvals::ApprovalError;
use crate::domain::directory::Principal;
use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "gl_session";

/// The value of the session cookie in the request, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether a request's `Origin`, when it sends one, is this host.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    !host.is_empty() && origin_host == host
}

/// The signed-in user looking at a page. Extracting it from a request without a live session
/// sends the browser to the sign-in page.
pub struct Viewer {
    /// Who, in which tenant.
    pub principal: Principal,
    csrf: String,
    cookie: String,
    same_origin: bool,
}

impl Viewer {
    /// The page header for page `current`.
    pub fn nav(&self, current: &'static str) -> Nav {
        Nav::of(&self.principal, &self.csrf, current)
    }

    /// The session's cookie value (to mark the session stepped up).
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Checks the form token a form sent back and that the form came from this site.
    pub fn check(&self, sent: &str) -> Result<(), PageError> {
        let (a, b) = (sent.as_bytes(), self.csrf.as_bytes());
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same && self.same_origin { Ok(()) } else { Err(PageError::Csrf) }
    }
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, PageError> {
        let value = cookie(&parts.headers).ok_or(PageError::SignIn)?;
        let session = state.approvals.session(&value).await?.ok_or(PageError::SignIn)?;
        // Someone whose role requires a second factor sets one up before anything else.
        if session.must_enroll && !parts.uri.path().starts_with("/security") && parts.uri.path() != "/sign-out" {
            return Err(PageError::MustEnroll);
        }
        Ok(Viewer {
            principal: session.principal,
            csrf: session.csrf,
            cookie: value,
            same_origin: same_origin(&parts.headers),
        })
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    nav: Nav,
    tenant: String,
    name: String,
    error: String,
}

/// `GET /sign-in`.
pub async fn sign_in_page() -> Result<Html<String>, PageError> {
    let page = SignInPage { nav: Nav::anonymous(), tenant: String::new(), name: String::new(), error: String::new() };
    Ok(Html(page.render()?))
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    tenant: String,
    name: String,
    password: String,
}

/// `POST /sign-in`: on success the session cookie and the inbox; otherwise the form again with
/// what went wrong (never which of tenant, name or password).
pub async fn sign_in(
    State(s): State<WebState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError::Csrf);
    }
    let (tenant, name) = (f.tenant.trim().to_string(), f.name.trim().to_string());
    let refused = |status: StatusCode, error: String| -> Result<Response, PageError> {
        let page = SignInPage { nav: Nav::anonymous(), tenant: tenant.clone(), name: name.clone(), error };
        Ok((status, Html(page.render()?)).into_response())
    };
    match s.approvals.sign_in(&tenant, &name, &f.password, from).await {
        Ok(signed) => {
            let secure = if s.secure_cookies { "; Secure" } else { "" };
            let max_age = crate::domain::session::ABSOLUTE.num_seconds();
            let cookie = format!(
                "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
                signed.cookie
            );
            Ok(([(SET_COOKIE, cookie)], Redirect::to("/inbox")).into_response())
        }
        Err(e @ ApprovalError::SignInFailed) => refused(StatusCode::UNAUTHORIZED, e.to_string()),
        Err(e @ ApprovalError::TooManyAttempts(_)) => refused(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        Err(e) => Err(e.into()),
    }
}

/// A form that only carries the form token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// The form token.
    pub csrf: String,
}

/// `POST /sign-out`: ends the session and clears the cookie.
pub async fn sign_out(State(s): State<WebState>, v: Viewer, Form(f): Form<TokenForm>) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    s.approvals.sign_out(&v.cookie).await?;
    let clear = format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(SET_COOKIE, clear)], Redirect::to("/sign-in")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others_and_origins_must_match() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; gl_session=abc; b=2"));
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
    }
}
