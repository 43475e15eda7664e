//! Outbound HTTP through the host (connectors and notifiers). The host only lets requests reach
//! origins your manifest declares and the tenant allows, and adds any secret headers itself.

pub use crate::__bindings::greenlight::plugin1_1_0::http::{HttpError, Request, Response};

/// Sends a request through the host.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    #[cfg(target_arch = "wasm32")]
    return crate::__bindings::greenlight::plugin1_1_0::http::send(request);
    #[cfg(not(target_arch = "wasm32"))]
    Err(HttpError::Failed(format!("no host to send {} {} through outside WebAssembly", request.method, request.url)))
}

/// A GET request with no headers.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request { method: "GET".into(), url: url.into(), headers: Vec::new(), body: None })
}

/// A POST of a JSON body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, HttpError> {
    send(&Request {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(body.to_string().into_bytes()),
    })
}
