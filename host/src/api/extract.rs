//! Request extractors that answer in the API's error format: the caller from the bearer token,
//! JSON bodies with the path of the offending field, and query strings.

use super::AppState;
use super::error::AppError;
use crate::domain::directory::Principal;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// The authenticated caller. The tenant comes from the token and nowhere else.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| AppError::unauthorized("send `Authorization: Bearer <token>`; tokens come from `greenlight tenant create` or POST /v1/admin/users"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| AppError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        match state.approvals.authenticate(token).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(AppError::unauthorized("the token is not valid; ask your admin for a new one")),
        }
    }
}

/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// A JSON body. Malformed JSON is a 400; a missing, unknown or mistyped field is a 422 naming
/// the field's path; a body over the limit is a 413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        // The API speaks only JSON and authenticates by bearer header (no cookies, so no CSRF);
        // the declared content type is not trusted or required: `curl -d` works as typed.
        let _ = state;
        let bytes = read_limited(req, super::BODY_LIMIT).await?;
        parse_json(&bytes).map(Body)
    }
}

/// Reads a request body of at most `limit` bytes. Beyond it, the rest is drained (and dropped)
/// up to a bound, so a client that sends too much still gets its 413 instead of a reset
/// connection.
pub async fn read_limited(req: Request, limit: usize) -> Result<Vec<u8>, AppError> {
    let drain = limit.saturating_add(DRAIN_LIMIT);
    let mut stream = req.into_body().into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::malformed(format!("could not read the body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            if seen > drain {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if seen > limit {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {limit} bytes; send less"),
        ));
    }
    Ok(bytes)
}

/// Parses JSON the way [`Body`] does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        // One JSON document and nothing after it but whitespace: `{...}garbage` is not a body.
        Ok(v) => de.end().map(|()| v).map_err(|e| {
            AppError::malformed(format!("the body has more after its JSON document ({e}); send exactly one"))
        }),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { String::new() } else { path };
                    let msg = if field.is_empty() { inner.to_string() } else { format!("{field}: {inner}") };
                    Err(AppError::invalid(&field, msg))
                }
                _ => Err(AppError::malformed(format!("the body is not valid JSON: {inner}"))),
            }
        }
    }
}

/// Query-string parameters; a bad one is a 422.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| AppError::invalid("query", format!("bad query parameter: {}", e.body_text())))
    }
}

/// The page size of a list endpoint: 50 by default, 1 to 200, else a 422 naming `limit`.
pub fn page_limit(limit: Option<usize>) -> Result<usize, AppError> {
    let limit = limit.unwrap_or(50);
    if (1..=200).contains(&limit) { Ok(limit) } else { Err(AppError::invalid("limit", "limit: must be 1 to 200")) }
}
