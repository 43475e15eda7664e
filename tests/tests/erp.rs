//! Release through the ERP (issue 5): an approved order is exported through the outbox by the
//! `erp-rest` connector to a local ERP test server that speaks the documented REST contract —
//! including a timeout and a 500 — and shows `released` with the ERP's reference.

use anyhow::Result;
use greenlight_tests::{Received, Receiver, Server, order_body};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Fast retries so the tests need not wait: 4 attempts in all.
fn args() -> Vec<&'static str> {
    greenlight_tests::fast_delivery("4")
}

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
        } else if r.request_line.starts_with("GET /api/customers/C-300 ") {
            let c = json!({"id": "C-300", "name": "Umbrella plc", "email": "buyer@umbrella.test",
                "credit_limit_minor": 1_000_000, "currency": "EUR", "account_manager": "erin"});
            (200, c.to_string())
        } else if r.request_line.starts_with("GET /api/customers/C-300/invoices?status=open ") {
            let inv =
                json!([{"id": "ERP-INV-9", "amount_minor": 150_000, "currency": "EUR", "due_date": "2026-10-31"}]);
            (200, inv.to_string())
        } else if r.request_line.starts_with("POST /api/customers/C-300/credit ") {
            // The customer's credit line after booking the order on top of the open invoice.
            let amount = r.json()["amount_minor"].as_i64().unwrap_or_default();
            let line =
                json!({"credit_limit_minor": 1_000_000, "credit_used_minor": 150_000 + amount, "currency": "EUR"});
            (200, line.to_string())
        } else if r.request_line.starts_with("GET /api/customers/C-503") {
            (503, json!({"error": "maintenance"}).to_string())
        } else {
            (404, json!({"error": "unknown"}).to_string())
        }
    })
}

/// A tenant with the erp-rest connector pointed at `erp`.
fn tenant_with_erp(s: &Server, erp: &Receiver) -> Result<greenlight_tests::Client> {
    s.install_plugin("erp-rest")?;
    let admin = s.tenant("acme")?;
    let config = json!({"base_url": format!("{}/api", erp.origin)});
    let r = admin.put(
        "/v1/admin/extensions/erp-rest",
        json!({"enabled": true, "config": config, "grants": {"http": [erp.origin]}}),
    )?;
    anyhow::ensure!(r.status == 200, "{}", r.text);
    Ok(admin)
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
    let s = Server::start_with(&args())?;
    let admin = tenant_with_erp(&s, &erp)?;
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
    let s = Server::start_with(&args())?;
    let admin = tenant_with_erp(&s, &erp)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let mut body = order_body(1, 1_000);
    body["vendor_id"] = json!("BAD-VENDOR");
    let id = alice.order(body)?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    let dead = admin.wait_dead_delivery(Duration::from_secs(20))?;
    assert_eq!(
        (dead["kind"].as_str(), dead["attempts"].as_i64()),
        (Some("export"), Some(1)),
        "a refusal is not retried"
    );
    assert!(dead["last_error"].as_str().is_some_and(|e| e.contains("refused")), "{dead}");
    assert_eq!(alice.get(&format!("/v1/orders/{id}"))?.body["status"], "approved");
    Ok(())
}

#[test]
fn r4_the_customer_comes_from_the_erp_and_is_stored_with_the_evaluation() -> Result<()> {
    let erp = erp()?;
    let s = Server::start_with(&args())?;
    let admin = tenant_with_erp(&s, &erp)?;
    admin.enable_shipped("customer-authorization", 40)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    // The people who decide the stages the script and the plugin add.
    for (name, role) in [("dave", "compliance"), ("erin", "finance"), ("frank", "executive"), ("fiona", "executive")] {
        admin.user(name, &[role], json!({}))?;
    }
    // C-300 is not in the script's config: its profile and its debt come from the ERP.
    let mut body = order_body(1, 200_000);
    body["customer_id"] = json!("C-300");
    body["lines"][0]["tax_category"] = json!("reduced");
    let id = alice.order(body)?;
    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    assert_eq!((r.body["tax_minor"].as_i64(), r.body["total_minor"].as_i64()), (Some(14_000), Some(214_000)));
    let flags: Vec<&str> =
        r.body["flags"].as_array().into_iter().flatten().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(flags, ["debt-over-threshold"]);
    // The inputs are stored with the evaluation, so the decision can be replayed.
    let db = rusqlite::Connection::open(&s.db)?;
    let context: String =
        db.query_row("SELECT context FROM evaluations WHERE order_id = ?1 ORDER BY id DESC", [&id], |r| r.get(0))?;
    let context: serde_json::Value = serde_json::from_str(&context)?;
    assert_eq!(context["customer"]["name"], "Umbrella plc");
    assert_eq!(context["customer"]["open_invoices"][0]["id"], "ERP-INV-9");
    // A WASM step reads the same records (plugin API 1.1): C-300 has 1,000,000 credit and
    // 150,000 unpaid, so an order of 900,000 goes to finance's credit review.
    s.install_plugin("customer-credit")?;
    let r = admin.put("/v1/admin/extensions/customer-credit", json!({"enabled": true, "position": 45}))?;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut body = order_body(1, 900_000);
    body["customer_id"] = json!("C-300");
    let big = alice.order(body)?;
    let r = alice.submit(&big)?;
    let flags: Vec<&str> =
        r.body["flags"].as_array().into_iter().flatten().filter_map(|f| f["code"].as_str()).collect();
    assert!(flags.contains(&"customer-credit-exceeded"), "{}", r.text);
    let review = r.body["plan"]["stages"].as_array().into_iter().flatten().find(|st| st["key"] == "credit-review");
    let review = review.ok_or_else(|| anyhow::anyhow!("no credit review stage: {}", r.text))?;
    assert!(review["reason"].as_str().is_some_and(|m| m.contains("available credit of 850000")), "{review}");
    // A customer the ERP does not know, or an ERP that is down: the order is held, never approved.
    for (customer, why) in [("C-404", "customer C-404 (not found)"), ("C-503", "customer C-503 (unavailable)")] {
        let mut body = order_body(1, 1_000);
        body["customer_id"] = json!(customer);
        let id = alice.order(body)?;
        let r = alice.submit(&id)?;
        assert_eq!(r.body["status"], "on_hold", "{}", r.text);
        assert!(r.body["hold_reason"].as_str().is_some_and(|h| h.contains(why)), "{}", r.text);
    }
    Ok(())
}

#[test]
fn r4_the_customer_hears_of_the_decision_and_the_account_manager_of_the_approval() -> Result<()> {
    let erp = erp()?;
    let smtp = greenlight_tests::SmtpSink::start()?;
    let sms = Receiver::start(|_| 201, Duration::ZERO)?;
    let relay = smtp.url();
    let mut args = args();
    args.extend(["--smtp-relay", relay.as_str()]);
    let s = Server::start_with(&args)?;
    let admin = tenant_with_erp(&s, &erp)?;
    admin.enable_shipped("customer-authorization", 40)?;
    for p in ["notify-email", "notify-sms"] {
        s.install_plugin(p)?;
    }
    let r = admin.put(
        "/v1/admin/extensions/notify-email",
        json!({"enabled": true, "config": {"events": ["order_approved", "order_rejected"]}, "grants": {"mail": true}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.put(
        "/v1/admin/extensions/notify-sms",
        json!({"enabled": true, "config": {"url": format!("{}/sms", sms.origin), "events": ["order_approved"]}, "grants": {"http": [sms.origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let alice = admin.user("alice", &["requester"], json!({"email": "alice@acme.test"}))?;
    let dave = admin.user("dave", &["compliance"], json!({}))?;
    let fin = admin.user("fin", &["finance"], json!({}))?;
    let _erin = admin.user("erin", &["requester"], json!({"phone": "+4915100000001"}))?;
    let execs = [admin.user("frank", &["executive"], json!({}))?, admin.user("fiona", &["executive"], json!({}))?];
    let order = || {
        let mut body = order_body(1, 200_000);
        body["customer_id"] = json!("C-300");
        body
    };
    // Rejected: the customer gets the reason.
    let id = alice.order(order())?;
    alice.submit(&id)?;
    assert_eq!(
        dave.decide(&id, "compliance-review", "reject", Some("export licence missing"))?.body["status"],
        "rejected"
    );
    let mails = smtp.wait_for(2, Duration::from_secs(20))?;
    let to_customer = mails.iter().find(|m| m.header("to") == Some("buyer@umbrella.test"));
    let to_customer = to_customer.ok_or_else(|| anyhow::anyhow!("no mail to the customer: {mails:?}"))?;
    assert!(to_customer.body.contains("export licence missing"), "{}", to_customer.body);
    // Approved: the customer gets the news, the account manager an SMS.
    let id = alice.order(order())?;
    alice.submit(&id)?;
    dave.decide(&id, "compliance-review", "approve", None)?;
    fin.decide(&id, "financial-audit", "approve", None)?;
    for e in &execs {
        e.decide(&id, "executive-approval", "approve", None)?;
    }
    assert_eq!(
        alice.get(&format!("/v1/orders/{id}"))?.body["status"].as_str().map(|s| s == "approved" || s == "released"),
        Some(true)
    );
    let got = sms.wait_until(Duration::from_secs(20), "the account manager's SMS", |g| !g.is_empty())?;
    assert_eq!(got[0].json()["to"], "+4915100000001");
    let mails = smtp.wait_for(4, Duration::from_secs(20))?;
    let approved: Vec<_> =
        mails.iter().filter(|m| m.header("subject").is_some_and(|s| s.starts_with("Approved"))).collect();
    let to: std::collections::BTreeSet<&str> = approved.iter().filter_map(|m| m.header("to")).collect();
    assert_eq!(to, ["alice@acme.test", "buyer@umbrella.test"].into_iter().collect());
    // The approval issued the authorization certificate, its hash in the audit chain.
    let r = fin.get("/v1/authorizations?customer_id=C-300")?;
    let certs = r.body["authorizations"].as_array().cloned().unwrap_or_default();
    assert_eq!(certs.len(), 1, "only the approved order has one: {}", r.text);
    let cert = &certs[0];
    assert_eq!((cert["order_id"].as_str(), cert["customer_name"].as_str()), (Some(id.as_str()), Some("Umbrella plc")));
    assert_eq!(cert["total_minor"], 238_000, "200000 plus 19% standard tax");
    assert_eq!(cert["flags"], json!(["debt-over-threshold"]));
    let who: Vec<&str> = cert["approvals"].as_array().into_iter().flatten().filter_map(|a| a["by"].as_str()).collect();
    assert_eq!(who, ["dave", "fin", "frank", "fiona"]);
    let entry = admin.audit_entry(&id, "authorization_issued")?;
    assert_eq!(entry["data"]["sha256"], cert["sha256"]);
    assert_eq!(alice.get("/v1/authorizations")?.status, 403, "a requester does not read certificates");
    // And the ERP books the order against the customer's credit line, keyed by the delivery's
    // id: a retry (this ERP may be busy past the host's time limit with the slow export) carries
    // the same key. The line the ERP reports is in the audit chain.
    let credit = erp.wait_until(Duration::from_secs(30), "the credit update", |g| {
        g.iter().any(|r| r.request_line.starts_with("POST /api/customers/C-300/credit "))
    })?;
    let credit: Vec<_> =
        credit.into_iter().filter(|r| r.request_line.starts_with("POST /api/customers/C-300/credit ")).collect();
    let keys: std::collections::BTreeSet<Option<&str>> = credit.iter().map(|r| r.header("idempotency-key")).collect();
    assert_eq!(keys.len(), 1, "every attempt of the one credit update has one key: {keys:?}");
    assert_eq!(credit[0].json()["amount_minor"], 238_000);
    assert_eq!(credit[0].json()["order_id"], json!(id));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while admin.audit(&id)?.iter().all(|e| e["action"] != "customer_credit_updated") {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the credit update was never recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let entry = admin.audit_entry(&id, "customer_credit_updated")?;
    assert_eq!(entry["actor"], "greenlight:release");
    assert_eq!(entry["data"]["credit_line"]["credit_used_minor"], 388_000);
    let key = credit[0].header("idempotency-key").map(str::to_string);
    assert_eq!(key.as_deref(), entry["data"]["delivery"].as_str(), "the delivery id is the idempotency key");
    // A delivery of its own beside the export (which this ERP makes retry): kind `credit`.
    let delivered = admin.get("/v1/admin/deliveries?state=delivered")?.body;
    let credits: Vec<&str> = delivered["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["order_id"] == json!(id) && d["kind"] == "credit" && d["channel"] == "erp-rest")
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(credits, [key.as_deref().unwrap_or_default()], "{delivered}");
    Ok(())
}

#[test]
fn an_approval_revoked_while_the_erp_books_it_is_not_released_and_is_left_for_an_admin() -> Result<()> {
    // A slow ERP: it takes every order, after two seconds.
    let erp = Receiver::serve(0, |_, r: &Received| {
        if r.request_line.starts_with("POST /api/orders ") {
            std::thread::sleep(Duration::from_secs(2));
            (201, json!({"external_id": "SO-7"}).to_string())
        } else {
            (404, String::new())
        }
    })?;
    let s = Server::start_with(&args())?;
    let admin = tenant_with_erp(&s, &erp)?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 1_000))?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    erp.wait_until(Duration::from_secs(20), "the export to start", |g| !g.is_empty())?;
    // While the ERP books it, an admin revokes the approval.
    let r = admin.post(&format!("/v1/orders/{id}/revoke"), json!({"reason": "wrong supplier"}))?;
    assert_eq!(r.status, 200, "{}", r.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let r = admin.get("/v1/admin/deliveries?state=dead")?;
        if let Some(d) = r.body["deliveries"].as_array().and_then(|d| d.first()).cloned() {
            break d;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no dead export: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    };
    // Nothing half-written: no release, no reference, no order_released entry; the delivery says
    // what happened so an admin can reconcile the ERP.
    assert!(dead["last_error"].as_str().is_some_and(|e| e.contains("took the order as SO-7")), "{dead}");
    let order = alice.get(&format!("/v1/orders/{id}"))?.body;
    assert_eq!(order["status"], "on_hold", "revoked with no stage to re-open: {order}");
    assert!(order["external_ref"].is_null());
    assert!(admin.audit_entry(&id, "order_released")?.is_null());
    Ok(())
}
