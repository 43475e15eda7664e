//! Lending one's authority while away (R6): the delegations a user gave and received, a form to
//! lend for a period, and ending one early.

use super::WebState;
use super::error::PageError;
use super::session::{TokenForm, Viewer};
use super::view::{self, Nav};
use crate::approvals::ApprovalError;
use crate::approvals::delegation::NewDelegation;
use crate::domain::report::parse_bound;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

struct Row {
    id: String,
    delegator: String,
    delegate: String,
    from: String,
    until: String,
    mine: bool,
}

#[derive(Template)]
#[template(path = "delegations.html")]
struct DelegationsPage {
    nav: Nav,
    rows: Vec<Row>,
    delegate: String,
    from: String,
    until: String,
    error: String,
}

async fn page(s: &WebState, v: &Viewer, form: Option<(&DelegateForm, String)>) -> Result<DelegationsPage, PageError> {
    let me = v.principal.user.name.clone();
    let rows = s
        .approvals
        .delegations(&v.principal)
        .await?
        .into_iter()
        .map(|d| Row {
            mine: d.delegator == me,
            id: d.id,
            delegator: d.delegator,
            delegate: d.delegate,
            from: view::when(d.from),
            until: view::when(d.until),
        })
        .collect();
    let (f, error) = match form {
        Some((f, e)) => ((f.delegate.clone(), f.from.clone(), f.until.clone()), e),
        None => (Default::default(), String::new()),
    };
    Ok(DelegationsPage { nav: v.nav("delegations"), rows, delegate: f.0, from: f.1, until: f.2, error })
}

/// `GET /delegations`.
pub async fn delegations(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(page(&s, &v, None).await?.render()?))
}

/// Lending authority: to whom, from when (empty: now) until when (dates, UTC midnight).
#[derive(Debug, Deserialize)]
pub struct DelegateForm {
    csrf: String,
    delegate: String,
    #[serde(default)]
    from: String,
    until: String,
}

/// `POST /delegations`.
pub async fn delegate(
    State(s): State<WebState>,
    v: Viewer,
    Form(f): Form<DelegateForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let refuse = |message: String| async {
        let p = page(&s, &v, Some((&f, message))).await?;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, Html(p.render()?)).into_response())
    };
    let from = match f.from.trim() {
        "" => None,
        t => match parse_bound(t) {
            Some(t) => Some(t),
            None => return refuse(format!("from: '{t}' is not a date YYYY-MM-DD")).await,
        },
    };
    let Some(until) = parse_bound(f.until.trim()) else {
        return refuse(format!("until: '{}' is not a date YYYY-MM-DD", f.until.trim())).await;
    };
    let body = NewDelegation { delegate: f.delegate.trim().to_string(), from, until };
    match s.approvals.delegate(&v.principal, body).await {
        Ok(_) => Ok(Redirect::to("/delegations").into_response()),
        Err(ApprovalError::Invalid { message, .. } | ApprovalError::NotFound(message)) => refuse(message).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /delegations/{id}/end`: the delegator ends it now.
pub async fn end(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Redirect, PageError> {
    v.check(&f.csrf)?;
    s.approvals.end_delegation(&v.principal, &id).await?;
    Ok(Redirect::to("/delegations"))
}
