//! Release through the ERP (issue 5): an approved order is exported through the outbox by the
//! `erp-rest` connector to a local ERP test server that speaks the documented REST contract —
//! including a timeout and a 500 — and shows `released` with the ERP's reference.

use anyhow::Result;
use greenlight_tests::{Received, Receiver, Server, order_body};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ARGS: &[&str] = &[
    "--allow-private-network",
    "--delivery-backoff-ms",
    "100",
    "--delivery-max-delay-secs",
    "1",
    "--delivery-max-attempts",
    "4",
    "--dispatch-interval-ms",
    "50",
];

/// The ERP: the first export times out (it answers after the host's 5-second limit), the second
/// gets a 500, then orders are taken as SO-1001, SO-1002, ...; orders for vendor BAD-VENDOR are
/// refused with 422, as a real ERP refuses an unknown vendor.
fn erp() -> Result<Receiver> {
    let exports = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    Receiver::serve(0, move |_, r: &Received| {
        if r.request_line.starts_with("POST /api/orders ") {
            let body = r.json();
            if body["vendor_id"] == "BAD-VENDOR" {
                return (422, json!({"error": "unknown vendor"}).to_string());
            }
            match exports.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    std::thread::sleep(Duration::from_secs(6));
                    (503, String::new())
                }
                1 => (500, json!({"error": "database is locked"}).to_string()),
                _ => {
                    let n = taken.fetch_add(1, Ordering::SeqCst) + 1001;
                    (201, json!({"external_id": format!("SO-{n}"), "message": "booked"}).to_string())
                }
            }
        } else {
            (404, json!({"error": "not in the contract"}).to_string())
        }
    })
}

fn wait_status(c: &greenlight_tests::Client, id: &str, status: &str, secs: u64) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = c.get(&format!("/v1/orders/{id}"))?;
        if r.body["status"] == status {
            return Ok(r.body);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "order never became {status}: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_approved_order_is_released_to_the_erp_through_timeouts_and_500s() -> Result<()> {
    let erp = erp()?;
    let s = Server::start_with(ARGS)?;
    s.install_plugin("erp-rest")?;
    let admin = s.tenant("acme")?;
    let config = json!({"base_url": format!("{}/api", erp.origin)});
    let r = admin.put(
        "/v1/admin/extensions/erp-rest",
        json!({"enabled": true, "config": config, "grants": {"http": [erp.origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(3, 2_500))?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    let order = wait_status(&alice, &id, "released", 60)?;
    assert_eq!(order["external_ref"], "SO-1001");
    // Three attempts reached the ERP (timeout, 500, success), all with the same idempotency key.
    let exports: Vec<Received> =
        erp.received().into_iter().filter(|r| r.request_line.starts_with("POST /api/orders ")).collect();
    assert_eq!(exports.len(), 3);
    assert!(exports.iter().all(|r| r.header("idempotency-key") == Some(id.as_str())));
    let body = exports[2].json();
    assert_eq!((body["id"].as_str(), body["subtotal_minor"].as_i64()), (Some(id.as_str()), Some(7_500)));
    assert_eq!(body["lines"][0]["quantity"], 3);
    // The release is audited by the host, with the reference and the connector.
    let entry = admin.audit_entry(&id, "order_released")?;
    assert_eq!(entry["actor"], "greenlight:release");
    assert_eq!(
        (entry["data"]["external_ref"].as_str(), entry["data"]["connector"].as_str()),
        (Some("SO-1001"), Some("erp-rest"))
    );
    let delivered = admin.get("/v1/admin/deliveries?state=delivered")?;
    let export =
        delivered.body["deliveries"].as_array().and_then(|d| d.iter().find(|d| d["kind"] == "export")).cloned();
    assert_eq!(export.map(|e| e["attempts"].clone()), Some(json!(3)), "{}", delivered.text);
    Ok(())
}

#[test]
fn an_order_the_erp_refuses_stays_approved_and_its_export_is_dead() -> Result<()> {
    let erp = erp()?;
    let s = Server::start_with(ARGS)?;
    s.install_plugin("erp-rest")?;
    let admin = s.tenant("acme")?;
    let config = json!({"base_url": format!("{}/api", erp.origin)});
    let r = admin.put(
        "/v1/admin/extensions/erp-rest",
        json!({"enabled": true, "config": config, "grants": {"http": [erp.origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let mut body = order_body(1, 1_000);
    body["vendor_id"] = json!("BAD-VENDOR");
    let id = alice.order(body)?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let r = admin.get("/v1/admin/deliveries?state=dead")?;
        if let Some(d) = r.body["deliveries"].as_array().and_then(|d| d.first()).cloned() {
            break d;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the refused export never went dead: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (dead["kind"].as_str(), dead["attempts"].as_i64()),
        (Some("export"), Some(1)),
        "a refusal is not retried"
    );
    assert!(dead["last_error"].as_str().is_some_and(|e| e.contains("refused")), "{dead}");
    assert_eq!(alice.get(&format!("/v1/orders/{id}"))?.body["status"], "approved");
    Ok(())
}
