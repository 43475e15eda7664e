//! Request extractors that answer in the API's error format: the caller from the bearer token,
//! JSON bodies with the path of the offending field, query strings, and the client's address.

use super::AppState;
use super::error::AppError;
use crate::domain::directory::Principal;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether a report is wanted as CSV: `format=csv` (for download links) or `json`, else an
/// `Accept` header naming `text/csv`.
pub fn wants_csv(format: Option<&str>, headers: &axum::http::HeaderMap) -> Result<bool, AppError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(AppError::invalid("format", format!("format: '{other}' is neither csv nor json"))),
        None => Ok(headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"))),
    }
}

/// The proxies (by address) whose `X-Forwarded-For` the host believes; none unless the operator
/// names them (`serve --trusted-proxy`). Installed as a request extension by `serve`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpAddr>);

impl TrustedProxies {
    /// The proxies a request names, or none; borrowed, so no request copies the list.
    pub fn of(extensions: &axum::http::Extensions) -> &TrustedProxies {
        static NONE: TrustedProxies = TrustedProxies(Vec::new());
        extensions.get::<TrustedProxies>().unwrap_or(&NONE)
    }
}

/// The address a request came from: the peer's, or behind a trusted proxy the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy (the one the nearest trusted proxy saw;
/// anything left of it the client could have written). Unspecified when the server was not told
/// the peer (tests without a socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client's address from the peer's and the request's `X-Forwarded-For` headers.
    pub fn resolve(peer: Option<IpAddr>, trusted: &TrustedProxies, headers: &axum::http::HeaderMap) -> ClientAddr {
        let Some(peer) = peer else { return ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) };
        if !trusted.0.contains(&peer) {
            return ClientAddr(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop {
                Some(ip) if trusted.0.contains(ip) => continue,
                Some(ip) => return ClientAddr(*ip),
                // Garbage in the chain: nothing left of it can be believed.
                None => break,
            }
        }
        ClientAddr(peer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientAddr::resolve(peer, TrustedProxies::of(&parts.extensions), &parts.headers))
    }
}

/// Where the caller extractor leaves who called (tenant id, user), so the access log can say
/// who was refused a call for lack of a role. Installed by the API's tracking middleware.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(pub std::sync::Arc<std::sync::OnceLock<(String, String)>>);

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
            Some(p) => {
                if let Some(slot) = parts.extensions.get::<CallerSlot>() {
                    let _ = slot.0.set((p.tenant.id.clone(), p.user.name.clone()));
                }
                Ok(Caller(p))
            }
            None => Err(AppError::unauthorized("the token is not valid; ask your admin for a new one")),
        }
    }
}

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

/// Reads a request body of at most `limit` bytes; a longer one is a 413 as soon as it passes the
/// limit. What the client still sends is read and dropped by the API's `unread` layer before the
/// answer goes out, so it gets its 413 instead of a reset connection.
pub async fn read_limited(req: Request, limit: usize) -> Result<Vec<u8>, AppError> {
    let mut stream = req.into_body().into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::malformed(format!("could not read the body: {e}")))?;
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes; send less"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Parses JSON the way [`Body`] does: one JSON object (a 400 when it is not JSON at all, a 422
/// naming the field when it does not fit), no key twice in one object. A number written with a
/// zero fraction (`1500.0`) is the integer it equals, as JSON Schema counts it, wherever it is
/// (amounts, counts, attributes, configuration), as long as the float holds that integer exactly
/// (up to 2^53); any other fraction stays a fraction, and fields that take integers refuse it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut value = match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(v)) => v,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(AppError::invalid("", format!("the body is not a usable JSON document: {e}")));
        }
        Err(e) if e.to_string().starts_with("trailing characters") => {
            return Err(AppError::malformed(format!(
                "the body has more after its JSON document ({e}); send exactly one"
            )));
        }
        Err(e) => return Err(AppError::malformed(format!("the body is not valid JSON: {e}"))),
    };
    // Every body of this API is an object. serde would also read a struct from an array of its
    // fields in order (`[]` for one whose fields are all optional): not a form anyone documents.
    if !value.is_object() {
        return Err(AppError::invalid("", "the body must be a JSON object ({...})"));
    }
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let field = err.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let inner = err.into_inner();
        let msg = if field.is_empty() { inner.to_string() } else { format!("{field}: {inner}") };
        AppError::invalid(&field, msg)
    })
}

/// Rewrites every float with a zero fraction that holds its integer exactly as that integer.
fn integral_floats_to_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // ±2^53: every integer up to it has a float of its own.
            if f.fract() == 0.0 && (-9_007_199_254_740_992.0..=9_007_199_254_740_992.0).contains(&f) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// A JSON document read into a tree that, unlike `serde_json::Value`, refuses an object with the
/// same key twice (a typed body refuses it too; a tree would keep the last one silently).
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some((key, Strict(v))) = map.next_entry::<String, Strict>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("the key `{key}` is given twice")));
            }
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
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

#[cfg(test)]
mod tests {
    use super::{ClientAddr, TrustedProxies};
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy_and_only_up_to_the_first_untrusted_hop() {
        let proxy = TrustedProxies(vec![ip("10.0.0.1"), ip("10.0.0.2")]);
        let h = forwarded(&["6.6.6.6, 203.0.113.7, 10.0.0.2"]);
        // From a stranger, the header is the client's own word: ignored.
        assert_eq!(ClientAddr::resolve(Some(ip("198.51.100.9")), &proxy, &h).0, ip("198.51.100.9"));
        // Through the two trusted proxies: the address the outer one saw, not what the client
        // wrote left of it.
        assert_eq!(ClientAddr::resolve(Some(ip("10.0.0.1")), &proxy, &h).0, ip("203.0.113.7"));
        // Several header lines read as one list.
        let split = forwarded(&["6.6.6.6", "203.0.113.8"]);
        assert_eq!(ClientAddr::resolve(Some(ip("10.0.0.1")), &proxy, &split).0, ip("203.0.113.8"));
        // Garbage stops the walk: the proxy's own address is used.
        let garbage = forwarded(&["203.0.113.7, not-an-address"]);
        assert_eq!(ClientAddr::resolve(Some(ip("10.0.0.1")), &proxy, &garbage).0, ip("10.0.0.1"));
        // No header, or nobody trusted: the peer.
        assert_eq!(ClientAddr::resolve(Some(ip("10.0.0.1")), &proxy, &HeaderMap::new()).0, ip("10.0.0.1"));
        assert_eq!(ClientAddr::resolve(Some(ip("10.0.0.1")), &TrustedProxies::default(), &h).0, ip("10.0.0.1"));
        assert!(ClientAddr::resolve(None, &proxy, &h).0.is_unspecified());
    }
}
