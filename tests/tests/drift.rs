//! Drift checks (R8) against the real binary: a change of rules makes `serve` flag the pending
//! orders it would plan differently, with the difference, audited and announced to the
//! tenant's admins; a change made behind the server's back (the command line) is found by the
//! schedule, and a change back clears the flag; the drift report lists drift and overrides.

use anyhow::{Context, Result, bail, ensure};
use greenlight_tests::{Client, Receiver, Server, cli, fast_delivery, order_body};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn order(client: &Client, id: &str) -> Result<Value> {
    Ok(client.get(&format!("/v1/orders/{id}"))?.body)
}

fn drift_flag(o: &Value) -> Option<Value> {
    o["flags"].as_array()?.iter().find(|f| f["code"] == "policy_drift").cloned()
}

/// Waits until `pred` holds for the order, up to 30 s (the worker runs every 2 s here).
fn wait_order(client: &Client, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = order(client, id)?;
        if pred(&o) {
            return Ok(o);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting until {what}: {o}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn changed_rules_flag_pending_orders_the_schedule_finds_changes_made_behind_its_back_and_the_report_lists_it_all()
-> Result<()> {
    let hook = Receiver::start(|_| 200, Duration::ZERO)?;
    let mut args = fast_delivery("3");
    args.extend(["--drift-interval", "2"]);
    let s = Server::start_with(&args)?;
    s.install_plugin("notify-webhook")?;
    let admin = s.tenant("acme")?;
    let hook_config = json!({"url": format!("{}/hooks", hook.origin), "signing_secret": "a-shared-secret-for-tests", "events": ["policy_drift"]});
    let r = admin.put(
        "/v1/admin/extensions/notify-webhook",
        json!({"enabled": true, "config": hook_config, "grants": {"http": [hook.origin]}}),
    )?;
    ensure!(r.status == 200, "{}", r.text);
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let erin = admin.user("erin", &["executive"], json!({}))?;
    let auditor = admin.user("audrey", &["auditor"], json!({}))?;
    admin.enable_shipped("executive-threshold", 10)?;
    let threshold = |minor: i64| json!({"enabled": true, "config": {"threshold_minor": minor, "level": 10}});
    ensure!(admin.put("/v1/admin/extensions/executive-threshold", threshold(1_000_000))?.status == 200);
    let from = chrono::Utc::now().to_rfc3339();

    // Two pending orders that need the executive under a threshold of 10,000.00.
    let (small, large) = (alice.order(order_body(1, 2_000_000))?, alice.order(order_body(1, 9_000_000))?);
    for id in [&small, &large] {
        ensure!(alice.submit(id)?.body["status"] == "pending_approval");
    }
    let (code, out, err) = cli(&s.db, &["drift-check", "--tenant", "acme"])?;
    ensure!(code == 0, "{err}");
    let check: Value = serde_json::from_str(&out)?;
    ensure!(check["orders_checked"] == 2 && check["flagged"] == 0, "nothing drifts while the rules stand: {check}");
    ensure!(drift_flag(&order(&admin, &small)?).is_none());

    // The threshold goes up to 30,000.00: the 20,000.00 order would now be approved at once.
    ensure!(admin.put("/v1/admin/extensions/executive-threshold", threshold(3_000_000))?.status == 200);
    let o = wait_order(&admin, &small, "the small order is flagged", |o| drift_flag(o).is_some())?;
    let flag = drift_flag(&o).context("flag")?;
    let message = flag["message"].as_str().unwrap_or_default();
    ensure!(message.contains("the verdict would be approved instead of pending_approval"), "{flag}");
    ensure!(message.contains("stages removed: executive"), "{flag}");
    ensure!(o["status"] == "pending_approval" && o["plan"]["stages"][0]["key"] == "executive", "only flagged: {o}");
    let entry = admin.audit_entry(&small, "policy_drift")?;
    ensure!(entry["actor"] == "greenlight:drift-check", "{entry}");
    ensure!(entry["data"]["difference"]["stages_removed"] == json!(["executive"]), "{entry}");
    ensure!(drift_flag(&order(&admin, &large)?).is_none(), "the large order still needs the executive");
    // The admins hear of it.
    let got = hook.wait_until(Duration::from_secs(20), "the drift notification", |g| {
        g.iter().any(|r| r.json()["event"] == "policy_drift")
    })?;
    let note = got.iter().map(|r| r.json()).find(|b| b["event"] == "policy_drift").context("note")?;
    ensure!(note["order"]["id"] == json!(small), "{note}");
    ensure!(note["recipients"].as_array().is_some_and(|r| r.iter().all(|x| x["name"] == "admin")), "{note}");
    ensure!(note["reason"].as_str().is_some_and(|r| r.contains("stages removed: executive")), "{note}");

    // The operator puts the threshold back from the command line, which the server does not
    // hear of: its next scheduled look finds the rules changed and clears the flag.
    let (code, _, err) = cli(
        &s.db,
        &[
            "extension",
            "set",
            "--tenant",
            "acme",
            "executive-threshold",
            "--enabled",
            "true",
            "--config",
            r#"{"threshold_minor": 1000000, "level": 10}"#,
        ],
    )?;
    ensure!(code == 0, "{err}");
    wait_order(&admin, &small, "the flag is cleared", |o| drift_flag(o).is_none())?;
    ensure!(admin.audit_entry(&small, "policy_drift_cleared")?["actor"] == "greenlight:drift-check");

    // Overrides: an approval revoked, and an order released by hand.
    ensure!(erin.decide(&large, "executive", "approve", None)?.body["status"] == "approved");
    let r = admin.post(&format!("/v1/orders/{large}/revoke"), json!({"reason": "signed off by mistake"}))?;
    ensure!(r.status == 200 && r.body["status"] == "pending_approval", "{}", r.text);
    ensure!(erin.decide(&large, "executive", "approve", None)?.body["status"] == "approved");
    let r = admin.post(&format!("/v1/orders/{large}/release"), json!({}))?;
    ensure!(r.status == 200 && r.body["status"] == "released", "{}", r.text);

    let report = auditor.get(&format!("/v1/reports/drift?from={}", urlencode(&from)))?;
    ensure!(report.status == 200, "{}", report.text);
    let b = &report.body;
    ensure!(b["drifted"].as_array().map(Vec::len) == Some(1), "{b}");
    ensure!(b["drifted"][0]["order_id"] == json!(small), "{b}");
    ensure!(b["drifted"][0]["difference"]["after"] == "approved", "{b}");
    ensure!(b["cleared"][0]["order_id"] == json!(small), "{b}");
    let kinds: Vec<(&str, &str)> = b["overrides"]
        .as_array()
        .context("overrides")?
        .iter()
        .map(|o| (o["kind"].as_str().unwrap_or(""), o["actor"].as_str().unwrap_or("")))
        .collect();
    ensure!(kinds == [("revoked", "admin"), ("released_by_hand", "admin")], "{b}");
    ensure!(b["overrides"][0]["details"]["reason"] == "signed off by mistake", "{b}");
    ensure!(b["truncated"] == false);
    ensure!(alice.get("/v1/reports/drift")?.status == 403, "requesters do not read reports");
    ensure!(auditor.get("/v1/reports/drift?from=2026-13-01")?.status == 422);

    // The operator can run a check at once.
    let (code, out, err) = cli(&s.db, &["drift-check", "--tenant", "acme"])?;
    ensure!(code == 0, "{err}");
    let check: Value = serde_json::from_str(&out)?;
    ensure!(check["trigger"] == "request" && check["orders_checked"] == 1 && check["flagged"] == 0, "{check}");
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
