//! Operator secrets stay in the operator's files: after a run that uses every one of them (an
//! SMS provider's key from `--secrets`, the link-signing key from `--link-keys`, the TLS key),
//! with the server logging everything down to debug, neither the database (with its WAL) nor the
//! log holds any of their values.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Client, Receiver, Server, SmtpSink, fast_delivery, order_body};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

const SMS_KEY: &str = "sms-provider-key-8c1f4e0b93d2";
const LINK_KEY: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

/// Every byte the server wrote for the database: the file, its WAL and its shared memory.
fn database_bytes(db: &std::path::Path) -> Vec<u8> {
    ["", "-wal", "-shm"]
        .iter()
        .flat_map(|suffix| std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_operator_secret_reaches_the_database_or_the_log() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let provider = Receiver::start(|_| 201, Duration::ZERO)?;
    let secrets = dir.path().join("secrets.toml");
    let header = format!("Bearer {SMS_KEY}");
    std::fs::write(
        &secrets,
        format!("[[http]]\norigin = \"{}\"\nheaders = {{ Authorization = \"{header}\" }}\n", provider.origin),
    )?;
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, format!("[[keys]]\nid = \"k1\"\nsecret = \"{LINK_KEY}\"\n"))?;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, made.cert.pem())?;
    let tls_key = made.signing_key.serialize_pem();
    std::fs::write(&key_file, &tls_key)?;
    // The body of the PEM key: what would show if the key were ever copied anywhere.
    let tls_key_body = tls_key.lines().nth(1).context("a PEM body line")?.to_string();

    let smtp = SmtpSink::start()?;
    let relay = smtp.url();
    let (secrets, keys) = (secrets.to_string_lossy().to_string(), keys.to_string_lossy().to_string());
    let (cert, key) = (cert_file.to_string_lossy().to_string(), key_file.to_string_lossy().to_string());
    let mut args = fast_delivery("3");
    args.extend(["--secrets", &secrets, "--smtp-relay", &relay, "--link-keys", &keys]);
    args.extend(["--tls-cert", &cert, "--tls-key", &key]);
    let s = Server::start_logging_with("debug", &args)?;
    for p in ["notify-sms", "notify-email"] {
        s.install_plugin(p)?;
    }
    let trust = RootCerts::Specific(Arc::new(vec![Certificate::from_der(made.cert.der()).to_owned()]));
    let agent = Client::agent(Some(TlsConfig::builder().root_certs(trust).build()));
    let (code, token, err) = greenlight_tests::cli(&s.db, &["tenant", "create", "acme"])?;
    ensure!(code == 0, "{err}");
    let admin = Client::with_agent(&s.url, token.trim(), agent.clone());
    let r = admin.post("/v1/admin/users", json!({"name": "alice", "roles": ["requester"]}))?;
    let alice = Client::with_agent(&s.url, r.body["token"].as_str().unwrap_or_default(), agent.clone());
    let r = admin.post(
        "/v1/admin/users",
        json!({"name": "bob", "roles": ["cost_center_manager"], "email": "bob@acme.test", "phone": "+4915112345678"}),
    )?;
    ensure!(r.status == 201, "{}", r.text);
    ensure!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob"}))?.status == 201);
    admin.enable_shipped("cost-center", 10)?;
    let config = json!({"url": format!("{}/v1/messages", provider.origin), "events": ["stage_opened"]});
    let r = admin.put(
        "/v1/admin/extensions/notify-sms",
        json!({"enabled": true, "config": config, "grants": {"http": [provider.origin]}}),
    )?;
    ensure!(r.status == 200, "{}", r.text);
    let r = admin.put(
        "/v1/admin/extensions/notify-email",
        json!({"enabled": true, "config": {"events": ["stage_opened"]}, "grants": {"mail": true}}),
    )?;
    ensure!(r.status == 200, "{}", r.text);

    // An order whose stage is announced by SMS (with the provider's key) and by e-mail (with a
    // signed link), decided through the link.
    let mut body = order_body(2, 25_000);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    ensure!(alice.submit(&id)?.status == 200);
    let got = provider.wait_until(Duration::from_secs(20), "one SMS", |g| !g.is_empty())?;
    ensure!(got[0].header("authorization") == Some(header.as_str()), "the key was used");
    let deadline = Instant::now() + Duration::from_secs(20);
    let link = loop {
        let found = smtp.messages().iter().find_map(|m| {
            m.body.lines().find_map(|l| l.trim().strip_prefix("Approve: ").map(|u| u.trim().to_string()))
        });
        if let Some(link) = found {
            break link;
        }
        ensure!(Instant::now() < deadline, "no stage e-mail with a link");
        std::thread::sleep(Duration::from_millis(50));
    };
    let r = agent.post(&link).header("Origin", &s.url).send_form([("reason", "")])?;
    ensure!(r.status().as_u16() == 200, "the link decided: {}", r.status());
    ensure!(admin.get(&format!("/v1/orders/{id}"))?.body["status"] == "approved");

    let log = s.log();
    ensure!(log.contains("DEBUG") || log.contains("debug"), "the log was verbose: {} bytes", log.len());
    let db = database_bytes(&s.db);
    ensure!(!db.is_empty());
    for (what, secret) in [("the SMS key", SMS_KEY), ("the link key", LINK_KEY), ("the TLS key", tls_key_body.as_str())]
    {
        ensure!(!contains(&db, secret), "{what} is in the database");
        ensure!(!log.contains(secret), "{what} is in the log");
    }
    Ok(())
}
