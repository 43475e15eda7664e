//! `greenlight:plugin/http`: outbound requests through the host, only to origins the manifest
//! declares and the tenant grants, never to loopback or private addresses unless the operator
//! allows it, with the host adding secrets (API keys) the plugin never sees, and with time and
//! size limits.

use super::PluginState;
use super::bindings::http;
use crate::runtime::manifest::parse_origin;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// What one plugin call may reach over HTTP.
#[derive(Debug, Clone, Default)]
pub struct HttpGrant {
    /// Allowed origins: manifest ∩ tenant grant, as (scheme, host, port).
    pub origins: Vec<(String, String, u16)>,
    /// Headers the host adds per origin (`scheme://host:port` → headers): operator secrets.
    pub secrets: Vec<(String, Vec<(String, String)>)>,
    /// Whether loopback and private addresses may be called (tests, on-premise ERPs).
    pub allow_private: bool,
    /// Time limit per request.
    pub timeout: Duration,
    /// Largest response body.
    pub max_response_bytes: u64,
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn split_url(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h.to_string(), p.parse().ok()?),
        _ => (authority.to_string(), default),
    };
    (!host.is_empty()).then(|| (scheme.to_string(), host.to_ascii_lowercase(), port))
}

/// Why a name lookup gave no address.
#[derive(Debug)]
enum Lookup {
    /// It took longer than the request may.
    TimedOut,
    /// The resolver said no.
    Failed(String),
}

/// Resolves a host name within `timeout`. The system resolver blocks without a deadline of its
/// own, so the lookup runs on a thread of its own and is abandoned when the time is up.
fn resolve(host: &str, port: u16, timeout: std::time::Duration) -> Result<Vec<SocketAddr>, Lookup> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = (host.to_string(), port);
    std::thread::Builder::new()
        .name("greenlight-dns".into())
        .spawn(move || {
            let found = target.to_socket_addrs().map(|a| a.take(16).collect::<Vec<_>>()).map_err(|e| e.to_string());
            let _ = tx.send(found);
        })
        .map_err(|e| Lookup::Failed(format!("no thread for the lookup: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(found) => found.map_err(Lookup::Failed),
        Err(_) => Err(Lookup::TimedOut),
    }
}

/// Answers the client's name lookup with the addresses the host already resolved and checked,
/// so the connection goes to exactly what the private-address check saw: a second lookup could
/// be answered differently by a hostile DNS server (DNS rebinding). TLS still verifies the
/// certificate against the URL's host name.
#[derive(Debug)]
struct Pinned(Vec<SocketAddr>);

impl Resolver for Pinned {
    fn resolve(&self, _: &Uri, _: &Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for a in &self.0 {
            out.push(*a);
        }
        if self.0.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

impl http::Host for PluginState {
    fn send(&mut self, request: http::Request) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let Some(grant) = self.call.http.clone() else {
            self.denied = Some("http: this plugin or tenant has no http capability".into());
            return Ok(Err(http::HttpError::Denied("no http capability granted".into())));
        };
        let Some(origin) = split_url(&request.url) else {
            return Ok(Err(http::HttpError::Failed(format!("'{}' is not an absolute http(s) URL", request.url))));
        };
        if !grant.origins.contains(&origin) {
            let why =
                format!("{}://{}:{} is not an allowed origin for this plugin and tenant", origin.0, origin.1, origin.2);
            self.denied = Some(format!("http: {why}"));
            return Ok(Err(http::HttpError::Denied(why)));
        }
        // Resolved once: the connection goes to exactly these addresses (see `Pinned`).
        let addrs = match resolve(&origin.1, origin.2, grant.timeout) {
            Ok(a) => a,
            Err(Lookup::TimedOut) => return Ok(Err(http::HttpError::Timeout)),
            Err(Lookup::Failed(e)) => {
                return Ok(Err(http::HttpError::Failed(format!("cannot resolve {}: {e}", origin.1))));
            }
        };
        if addrs.is_empty() {
            return Ok(Err(http::HttpError::Failed(format!("{} resolves to no address", origin.1))));
        }
        if !grant.allow_private && addrs.iter().any(|a| is_private(a.ip())) {
            let why =
                format!("{} resolves to a loopback or private address, which the operator does not allow", origin.1);
            self.denied = Some(format!("http: {why}"));
            return Ok(Err(http::HttpError::Denied(why)));
        }
        let method = request.method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            return Ok(Err(http::HttpError::Failed(format!("method {method} is not supported"))));
        }
        // No proxy from the environment: the connection goes to the pinned addresses, which a
        // proxy's name lookup would be answered with as well.
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(grant.timeout))
            .max_redirects(0)
            .build();
        let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), Pinned(addrs));
        let key = format!("{}://{}:{}", origin.0, origin.1, origin.2);
        let secret: Vec<&(String, String)> = grant
            .secrets
            .iter()
            .filter(|(o, _)| parse_origin(o).as_ref() == Some(&origin))
            .flat_map(|(_, h)| h.iter())
            .collect();
        let mut builder = ureq::http::Request::builder().method(method.as_str()).uri(&request.url);
        for (k, v) in &request.headers {
            // The host owns Host, and any header it sets from the operator's secrets.
            if k.eq_ignore_ascii_case("host") || secret.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)) {
                continue;
            }
            builder = builder.header(k, v);
        }
        for (k, v) in secret {
            builder = builder.header(k, v);
        }
        let body = request.body.unwrap_or_default();
        let req = match builder.body(body) {
            Ok(r) => r,
            Err(e) => return Ok(Err(http::HttpError::Failed(format!("bad request: {e}")))),
        };
        let started = std::time::Instant::now();
        let resp = match agent.run(req) {
            Ok(r) => r,
            Err(ureq::Error::Timeout(_)) => return Ok(Err(http::HttpError::Timeout)),
            Err(e) => return Ok(Err(http::HttpError::Failed(e.to_string()))),
        };
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> =
            resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        let mut body = resp.into_body();
        let bytes = match body.with_config().limit(grant.max_response_bytes).read_to_vec() {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(_)) => return Ok(Err(http::HttpError::TooLarge)),
            Err(ureq::Error::Timeout(_)) => return Ok(Err(http::HttpError::Timeout)),
            Err(e) => return Ok(Err(http::HttpError::Failed(e.to_string()))),
        };
        tracing::debug!(target: "greenlight::plugin", plugin = %self.call.plugin, %key, status, ms = started.elapsed().as_millis() as u64, "http");
        Ok(Ok(http::Response { status, headers, body: bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origins() {
        assert_eq!(split_url("https://erp.example.com/api?x=1"), Some(("https".into(), "erp.example.com".into(), 443)));
        assert_eq!(split_url("http://127.0.0.1:8080/x"), Some(("http".into(), "127.0.0.1".into(), 8080)));
        assert_eq!(split_url("http://user@evil.example/"), None);
        assert_eq!(split_url("ftp://x/"), None);
    }

    #[test]
    fn the_client_connects_only_to_the_checked_addresses() {
        let checked: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        let pinned = Pinned(vec![checked]);
        let uri: Uri = "https://rebinding.example/x".parse().expect("uri");
        let config = ureq::Agent::config_builder().build();
        let got = pinned.resolve(&uri, &config, NextTimeout::default()).expect("resolved");
        assert_eq!((got.len(), got[0]), (1, checked));
        assert!(Pinned(vec![]).resolve(&uri, &config, NextTimeout::default()).is_err());
    }

    #[test]
    fn a_lookup_answers_within_its_time_or_says_why_not() {
        let found = resolve("127.0.0.1", 8080, Duration::from_secs(5)).expect("a literal address resolves");
        assert_eq!(found, vec!["127.0.0.1:8080".parse::<SocketAddr>().expect("addr")]);
        assert!(matches!(resolve("no such host name.invalid", 80, Duration::from_secs(5)), Err(Lookup::Failed(_))));
    }

    #[test]
    fn private_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1"] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }
}
