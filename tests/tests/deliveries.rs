//! Notifications through the outbox (issue 5), against the real binary and a real HTTP receiver
//! on loopback: signed webhooks with stable delivery ids, retries, dead letters re-driven by an
//! admin, and kill -9 in the middle of a burst of deliveries.

use anyhow::Result;
use greenlight_tests::{Client, Received, Receiver, Server, SmtpSink, order_body};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Fast retries so the tests need not wait: 3 attempts in all.
fn fast() -> Vec<&'static str> {
    greenlight_tests::fast_delivery("3")
}

const SECRET: &str = "a-shared-secret-for-tests";

/// A tenant whose admin enabled the webhook channel towards `origin`.
fn tenant_with_webhook(s: &Server, origin: &str) -> Result<Client> {
    s.install_plugin("notify-webhook")?;
    let admin = s.tenant("acme")?;
    let config = json!({"url": format!("{origin}/hooks/greenlight"), "signing_secret": SECRET});
    let r = admin.put(
        "/v1/admin/extensions/notify-webhook",
        json!({"enabled": true, "position": 1, "config": config, "grants": {"http": [origin]}}),
    )?;
    anyhow::ensure!(r.status == 200, "enabling notify-webhook: {}", r.text);
    Ok(admin)
}

fn verify_signature(r: &Received) -> bool {
    let (Some(ts), Some(sig)) = (r.header("x-greenlight-timestamp"), r.header("x-greenlight-signature")) else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else { return false };
    let Ok(bytes) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()) else { return false };
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    mac.verify_slice(&bytes).is_ok()
}

fn events(got: &[Received]) -> Vec<String> {
    got.iter().filter_map(|r| r.json()["event"].as_str().map(String::from)).collect()
}

#[test]
fn the_webhook_gets_each_event_signed_with_a_delivery_id() -> Result<()> {
    let hook = Receiver::start(|_| 204, Duration::ZERO)?;
    let s = Server::start_with(&fast())?;
    let admin = tenant_with_webhook(&s, &hook.origin)?;
    let alice = admin.user("alice", &["requester"], json!({"email": "alice@example.com"}))?;
    let id = alice.order(order_body(1, 1_000))?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    let got = hook.wait_until(Duration::from_secs(20), "two events", |g| g.len() >= 2)?;
    // Deliveries go out several at once: no order between them (each carries `occurred_at`).
    let mut got_events = events(&got);
    got_events.sort();
    assert_eq!(got_events, ["order_approved", "order_submitted"]);
    for r in &got {
        assert_eq!(r.request_line, "POST /hooks/greenlight HTTP/1.1");
        assert!(verify_signature(r), "bad signature on {:?}", r.headers);
        let body = r.json();
        assert_eq!(r.header("x-greenlight-delivery"), body["delivery_id"].as_str());
        assert_eq!(r.header("x-greenlight-event"), body["event"].as_str());
        assert_eq!(body["order"]["id"], id.as_str());
        assert_eq!(body["order"]["total_minor"], 1_000);
        assert_eq!(body["recipients"], json!([{"name": "alice", "email": "alice@example.com", "phone": null}]));
        assert_eq!(body["data"]["attempt"], 1);
    }
    // A tampered body fails the check a receiver makes.
    let mut forged = got[0].clone();
    forged.body = forged.body.iter().map(|b| if *b == b'1' { b'9' } else { *b }).collect();
    assert!(!verify_signature(&forged));
    // Delivered deliveries are listed as such.
    let r = admin.get("/v1/admin/deliveries?state=delivered")?;
    assert_eq!(r.body["deliveries"].as_array().map(Vec::len), Some(2), "{}", r.text);
    assert!(admin.get("/v1/admin/deliveries")?.body["deliveries"].as_array().is_some_and(Vec::is_empty));
    // Only admins see deliveries.
    assert_eq!(alice.get("/v1/admin/deliveries")?.status, 403);
    assert_eq!(admin.get("/v1/admin/deliveries?state=lost")?.status, 422);
    Ok(())
}

#[test]
fn temporary_failures_are_retried_with_the_same_delivery_id() -> Result<()> {
    // The receiver fails the first two attempts with 503, then accepts.
    let hook = Receiver::start(|n| if n < 2 { 503 } else { 200 }, Duration::ZERO)?;
    let s = Server::start_with(&fast())?;
    let admin = tenant_with_webhook(&s, &hook.origin)?;
    let r = admin.put(
        "/v1/admin/extensions/notify-webhook",
        json!({"enabled": true, "config": {"url": format!("{}/h", hook.origin), "signing_secret": SECRET, "events": ["order_approved"]}, "grants": {"http": [hook.origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 1_000))?;
    alice.submit(&id)?;
    let got = hook.wait_until(Duration::from_secs(20), "three attempts", |g| g.len() >= 3)?;
    let ids: BTreeSet<&str> = got.iter().filter_map(|r| r.header("x-greenlight-delivery")).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same delivery id");
    let attempts: Vec<i64> = got.iter().filter_map(|r| r.json()["data"]["attempt"].as_i64()).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(events(&got), ["order_approved"; 3], "the channel's event filter drops the others");
    Ok(())
}

#[test]
fn a_dead_channel_ends_in_dead_letters_that_an_admin_redrives() -> Result<()> {
    // A receiver that is down: the port is free, nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let origin = format!("http://127.0.0.1:{port}");
    let s = Server::start_with(&fast())?;
    let admin = tenant_with_webhook(&s, &origin)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 1_000))?;
    alice.submit(&id)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let r = admin.get("/v1/admin/deliveries?state=dead")?;
        let dead = r.body["deliveries"].as_array().cloned().unwrap_or_default();
        if dead.len() == 2 {
            break dead;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "deliveries never went dead: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    };
    for d in &dead {
        assert_eq!(d["attempts"], 3, "{d}");
        assert!(d["last_error"].as_str().is_some_and(|e| e.contains("gave up after 3 attempts")), "{d}");
    }
    // The default listing shows the troubled ones too.
    assert_eq!(admin.get("/v1/admin/deliveries")?.body["deliveries"].as_array().map(Vec::len), Some(2));
    // The receiver comes back; the admin re-drives both; both arrive with their delivery ids.
    let hook = Receiver::on_port(port, |_| 200, Duration::ZERO)?;
    for d in &dead {
        let r = admin.post_empty(&format!("/v1/admin/deliveries/{}/retry", d["id"].as_str().unwrap_or_default()))?;
        assert_eq!((r.status, r.body["state"].as_str()), (200, Some("pending")), "{}", r.text);
    }
    let got = hook.wait_until(Duration::from_secs(20), "the re-driven events", |g| g.len() >= 2)?;
    let want: BTreeSet<&str> = dead.iter().filter_map(|d| d["id"].as_str()).collect();
    let have: BTreeSet<&str> = got.iter().filter_map(|r| r.header("x-greenlight-delivery")).collect();
    assert_eq!(have, want);
    let entry = admin.audit_entry(&id, "delivery_redriven")?;
    assert_eq!(entry["actor"], "admin", "{entry}");
    // A delivered one cannot be re-driven; an unknown one is 404.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = want.iter().next().copied().unwrap_or_default();
    loop {
        let r = admin.post_empty(&format!("/v1/admin/deliveries/{first}/retry"))?;
        if r.status == 409 {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "still re-drivable after delivery: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(admin.post_empty("/v1/admin/deliveries/nope/retry")?.status, 404);
    Ok(())
}

#[test]
fn kill9_during_a_burst_of_deliveries_loses_none() -> Result<()> {
    // A slow receiver (30 ms per request), so the kill lands in the middle of the burst.
    let hook = Receiver::start(|_| 200, Duration::from_millis(30))?;
    let mut s = Server::start_with(&fast())?;
    let admin = tenant_with_webhook(&s, &hook.origin)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let mut orders = Vec::new();
    for _ in 0..30 {
        let id = alice.order(order_body(1, 1_000))?;
        assert_eq!(alice.submit(&id)?.status, 200);
        orders.push(id);
    }
    hook.wait_until(Duration::from_secs(30), "the first deliveries", |g| g.len() >= 5)?;
    s.kill9();
    let before = hook.received().len();
    assert!(before < 60, "the burst finished before the kill ({before}); the test proves nothing");
    let db = s.db.clone();
    let dir = s.take_dir();
    let s2 = Server::on_with(&db, &fast())?;
    let got = hook.wait_until(Duration::from_secs(60), "every event after the restart", |g| {
        let pairs: BTreeSet<(String, String)> = g
            .iter()
            .map(|r| {
                (
                    r.json()["order"]["id"].as_str().unwrap_or("").to_string(),
                    r.json()["event"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        pairs.len() >= 60
    })?;
    // Every (order, event) arrived, and every copy of one carries the same delivery id.
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in &got {
        let b = r.json();
        let key = (b["order"]["id"].as_str().unwrap_or("").to_string(), b["event"].as_str().unwrap_or("").to_string());
        ids.entry(key).or_default().insert(r.header("x-greenlight-delivery").unwrap_or("").to_string());
    }
    for id in &orders {
        for event in ["order_submitted", "order_approved"] {
            let copies = ids.get(&(id.clone(), event.to_string()));
            assert_eq!(copies.map(BTreeSet::len), Some(1), "{event} of {id}: {copies:?}");
        }
    }
    let duplicates = got.len() - ids.len();
    eprintln!("kill -9 after {before} of 60 deliveries; {} received in all, {duplicates} duplicates", got.len());
    drop(s2);
    drop(dir);
    Ok(())
}

#[test]
fn email_goes_through_the_hosts_smtp_relay_to_a_real_smtp_server() -> Result<()> {
    let smtp = SmtpSink::start()?;
    let relay = smtp.url();
    let mut args = fast();
    args.extend(["--smtp-relay", relay.as_str(), "--mail-from", "approvals@acme.test"]);
    let s = Server::start_with(&args)?;
    s.install_plugin("notify-email")?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({"email": "alice@acme.test"}))?;
    let bob = admin.user("bob", &["cost_center_manager"], json!({"email": "bob@acme.test"}))?;
    assert_eq!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob"}))?.status, 201);
    admin.enable_shipped("cost-center", 10)?;
    let templates = json!({"order_rejected": {"subject": "Order {order_id} was turned down", "body": "Dear {recipient}, {reason}."}});
    let r = admin.put(
        "/v1/admin/extensions/notify-email",
        json!({"enabled": true, "config": {"templates": templates, "events": ["stage_opened", "order_rejected"]}, "grants": {"mail": true}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut body = order_body(2, 25_000);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    alice.submit(&id)?;
    let mails = smtp.wait_for(1, Duration::from_secs(20))?;
    let m = &mails[0];
    assert_eq!(m.header("to"), Some("bob@acme.test"));
    assert_eq!(m.header("from"), Some("approvals@acme.test"));
    assert_eq!(m.header("subject"), Some(format!("Approval needed: order {id} (50000 EUR)").as_str()));
    assert!(m.body.contains("Hello bob") && m.body.contains("stage 'cost-center'"), "{}", m.body);
    assert!(m.header("x-greenlight-tenant").is_some());
    let r = bob.decide(&id, "cost-center", "reject", Some("chairs come from the facilities budget"))?;
    assert_eq!(r.body["status"], "rejected");
    let mails = smtp.wait_for(2, Duration::from_secs(20))?;
    let m = mails.iter().find(|m| m.header("to") == Some("alice@acme.test")).cloned();
    let m = m.ok_or_else(|| anyhow::anyhow!("no mail to alice: {mails:?}"))?;
    assert_eq!(m.header("subject"), Some(format!("Order {id} was turned down").as_str()));
    assert!(m.body.contains("Dear alice, chairs come from the facilities budget."), "{}", m.body);
    // order_submitted was not subscribed: exactly two mails.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.messages().len(), 2);
    Ok(())
}

#[test]
fn mail_without_the_tenants_grant_is_denied_and_dead() -> Result<()> {
    let smtp = SmtpSink::start()?;
    let relay = smtp.url();
    let mut args = fast();
    args.extend(["--smtp-relay", relay.as_str()]);
    let s = Server::start_with(&args)?;
    s.install_plugin("notify-email")?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({"email": "alice@acme.test"}))?;
    assert_eq!(admin.put("/v1/admin/extensions/notify-email", json!({"enabled": true}))?.status, 200);
    let id = alice.order(order_body(1, 1_000))?;
    alice.submit(&id)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = admin.get("/v1/admin/deliveries?state=dead")?;
        let dead = r.body["deliveries"].as_array().cloned().unwrap_or_default();
        if dead.len() == 2 {
            assert!(
                dead.iter().all(|d| d["last_error"].as_str().is_some_and(|e| e.contains("grant `mail`"))),
                "{}",
                r.text
            );
            assert_eq!(dead[0]["attempts"], 1, "a denial is permanent: no retries");
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "not dead: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(smtp.messages().is_empty());
    Ok(())
}

#[test]
fn sms_goes_to_the_providers_api_with_the_operators_credentials() -> Result<()> {
    let provider = Receiver::start(|_| 201, Duration::ZERO)?;
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        format!(
            "[[http]]\norigin = \"{}\"\nheaders = {{ Authorization = \"Bearer sms-provider-key\" }}\n",
            provider.origin
        ),
    )?;
    let secrets = secrets.to_string_lossy().to_string();
    let mut args = fast();
    args.extend(["--secrets", secrets.as_str()]);
    let s = Server::start_with(&args)?;
    s.install_plugin("notify-sms")?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let _bob = admin.user("bob", &["cost_center_manager"], json!({"phone": "+4915112345678"}))?;
    assert_eq!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob"}))?.status, 201);
    admin.enable_shipped("cost-center", 10)?;
    let config = json!({"url": format!("{}/v1/messages", provider.origin), "events": ["stage_opened"]});
    let r = admin.put(
        "/v1/admin/extensions/notify-sms",
        json!({"enabled": true, "config": config, "grants": {"http": [provider.origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    // The tenant's config cannot smuggle credentials in: the key is not among the plugin's keys.
    let r = admin.put("/v1/admin/extensions/notify-sms", json!({"enabled": true, "config": {"api_key": "x"}}))?;
    assert_eq!(r.status, 422, "{}", r.text);
    let mut body = order_body(1, 30_000);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    alice.submit(&id)?;
    let got = provider.wait_until(Duration::from_secs(20), "one SMS", |g| !g.is_empty())?;
    let sms = &got[0];
    assert_eq!(sms.request_line, "POST /v1/messages HTTP/1.1");
    assert_eq!(sms.header("authorization"), Some("Bearer sms-provider-key"), "added by the host from --secrets");
    let payload = sms.json();
    assert_eq!(payload["to"], "+4915112345678");
    assert_eq!(
        payload["text"],
        format!("Greenlight: order {id} by alice (30000 EUR) waits for your approval").as_str()
    );
    assert!(sms.header("idempotency-key").is_some_and(|k| k.ends_with(":+4915112345678")));
    Ok(())
}

#[test]
fn a_host_name_that_resolves_to_loopback_is_refused_without_allow_private_network() -> Result<()> {
    let hook = Receiver::start(|_| 204, Duration::ZERO)?;
    // The same receiver, named so that only a lookup tells where it is.
    let by_name = format!("http://localhost:{}", hook.port());
    let s = Server::start_with(&["--delivery-backoff-ms", "100", "--dispatch-interval-ms", "50"])?;
    let admin = tenant_with_webhook(&s, &by_name)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 1_000))?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    let dead = admin.wait_dead_delivery(Duration::from_secs(20))?;
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("localhost resolves to a loopback or private address"), "{dead}");
    assert!(hook.received().is_empty(), "nothing reached the loopback receiver");
    Ok(())
}
