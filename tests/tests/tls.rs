//! HTTPS and reverse proxies end to end: `serve --tls-cert --tls-key` with certificates made by
//! the test (rcgen), a client that trusts only them, HSTS and `Secure` cookies, a renewed
//! certificate served without a restart, a broken renewal that keeps the old one, a pair that
//! does not match refused at start; and `--trusted-proxy`, whose `X-Forwarded-For` tells the
//! client's address to the sign-in throttle.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Client, Server, bin, cli, sign_in_form};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// A self-signed certificate for the loopback address, as PEM (certificate, key).
fn certificate() -> Result<(String, String)> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    Ok((made.cert.pem(), made.signing_key.serialize_pem()))
}

/// An agent that trusts exactly this certificate.
fn trusting(cert_pem: &str) -> Result<ureq::Agent> {
    let cert = Certificate::from_pem(cert_pem.as_bytes())?;
    let roots = RootCerts::Specific(Arc::new(vec![cert]));
    Ok(Client::agent(Some(TlsConfig::builder().root_certs(roots).build())))
}

/// Writes a file the way a renewal tool does: beside it, then renamed over it.
fn replace(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[test]
fn https_with_hsts_secure_cookies_and_certificates_renewed_without_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert, key) = certificate()?;
    std::fs::write(&cert_file, &cert)?;
    std::fs::write(&key_file, &key)?;
    let s =
        Server::start_with(&["--tls-cert", &cert_file.to_string_lossy(), "--tls-key", &key_file.to_string_lossy()])?;
    ensure!(s.url.starts_with("https://127.0.0.1:"), "the server announces https: {}", s.url);

    // The API over TLS, with a client that trusts the test's certificate.
    let (code, token, err) = cli(&s.db, &["tenant", "create", "acme"])?;
    ensure!(code == 0, "tenant create: {err}");
    let admin = Client::with_agent(&s.url, token.trim(), trusting(&cert)?);
    let r = admin.post(
        "/v1/orders",
        json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1, "unit_price_minor": 100}]}),
    )?;
    ensure!(r.status == 201, "an order created over https: {} {}", r.status, r.text);
    let health = admin.download("/healthz")?;
    ensure!(health.status == 200);
    ensure!(
        health.header("strict-transport-security") == Some("max-age=31536000"),
        "HSTS over TLS: {:?}",
        health.headers
    );

    // A client that trusts only the public roots refuses the self-signed certificate, and plain
    // HTTP to the TLS port gets no answer.
    let stranger = Client::new(&s.url, token.trim());
    ensure!(stranger.get("/healthz").is_err(), "an untrusted certificate must fail the handshake");
    let plain = Client::new(&s.url.replacen("https://", "http://", 1), token.trim());
    ensure!(plain.get("/healthz").map(|r| r.status != 200).unwrap_or(true), "plain HTTP must not be served");

    // The dashboard's session cookie is Secure (TLS implies it).
    let r = admin.put("/v1/admin/users/admin/password", json!({"password": "correct horse battery"}))?;
    ensure!(r.status == 204, "password: {} {}", r.status, r.text);
    let agent = trusting(&cert)?;
    let signed = agent.post(format!("{}/sign-in", s.url)).config().max_redirects(0).build().send_form([
        ("tenant", "acme"),
        ("name", "admin"),
        ("password", "correct horse battery"),
    ])?;
    let cookie = signed.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    ensure!(cookie.starts_with("gl_session=") && cookie.contains("; Secure"), "cookie: {cookie:?}");

    // A renewal: new key and certificate written over the old files; the server presents the
    // new one within seconds, without a restart, and the old one no more.
    let (renewed, renewed_key) = certificate()?;
    replace(&key_file, &renewed_key)?;
    replace(&cert_file, &renewed)?;
    let fresh = Client::with_agent(&s.url, token.trim(), trusting(&renewed)?);
    let deadline = Instant::now() + Duration::from_secs(15);
    while fresh.get("/healthz").is_err() {
        ensure!(Instant::now() < deadline, "the renewed certificate was not served within 15 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // (Connections opened before keep their session; a new one sees the new certificate.)
    let old = Client::with_agent(&s.url, token.trim(), trusting(&cert)?);
    ensure!(old.get("/healthz").is_err(), "the replaced certificate must no longer be presented");

    // A broken renewal (not a certificate) is logged and the one in use stays.
    replace(&cert_file, "not a certificate")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.log().contains("TLS certificate not reloaded") {
        ensure!(Instant::now() < deadline, "the broken renewal was not reported: {}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A new connection (a new agent) still completes its handshake with the renewed pair.
    let again = Client::with_agent(&s.url, token.trim(), trusting(&renewed)?);
    let r = again.get("/v1/orders")?;
    ensure!(r.status == 200, "still served with the certificate in use: {} {}", r.status, r.text);
    Ok(())
}

#[test]
fn a_key_that_does_not_match_its_certificate_stops_the_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, _) = certificate()?;
    let (_, other_key) = certificate()?;
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert)?;
    std::fs::write(&key_file, other_key)?;
    let out = std::process::Command::new(bin())
        .arg("--db")
        .arg(dir.path().join("g.db"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .output()
        .context("running serve")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "serve must refuse the pair");
    ensure!(err.contains("cannot serve the certificate"), "the reason names the pair: {err}");
    ensure!(!dir.path().join("g.db").exists(), "nothing was created before the refusal");
    Ok(())
}

#[test]
fn behind_a_trusted_proxy_sign_in_failures_count_against_the_forwarded_address() -> Result<()> {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1"])?;
    let agent = Client::agent(None);
    let attempt = |from: &str, name: &str| -> Result<u16> {
        Ok(sign_in_form(&s.url, &agent, ("acme", name, "wrong"), Some(from))?.0)
    };
    // Twenty failures from one client, each for another name (so no user is held up), then the
    // address must wait.
    for i in 0..20 {
        let status = attempt("203.0.113.7", &format!("guess{i}"))?;
        ensure!(status == 401, "failure {i}: {status}");
    }
    ensure!(attempt("203.0.113.7", "guess20")? == 429, "the forwarded address must wait now");
    // Another client behind the same proxy is not held up by the first one's failures.
    ensure!(attempt("203.0.113.8", "someone")? == 401, "another forwarded address is unaffected");
    // What a client writes left of the address the proxy saw is not believed.
    ensure!(attempt("203.0.113.7, 203.0.113.9", "someone")? == 401, "the proxy saw .9, not .7");
    Ok(())
}
