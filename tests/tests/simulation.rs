//! What-if simulation (R12) against the real binary: candidate rule changes tried on past
//! orders report exactly the plans and verdicts that would change, and change nothing.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Server, cli, order_body};
use serde_json::{Value, json};

#[test]
fn candidate_changes_report_what_would_change_and_write_nothing() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let carol = admin.user("carol", &["approver"], json!({}))?;
    admin.user("erin", &["executive"], json!({}))?;
    admin.enable_shipped("executive-threshold", 10)?;
    let r = admin.put(
        "/v1/admin/extensions/executive-threshold",
        json!({"enabled": true, "config": {"threshold_minor": 1_000_000, "level": 10}}),
    )?;
    ensure!(r.status == 200, "{}", r.text);
    let mut ids = Vec::new();
    for price in [500, 5_000, 2_000_000] {
        let id = alice.order(order_body(1, price))?;
        alice.submit(&id)?;
        ids.push(id);
    }
    let draft = alice.order(order_body(1, 5_000))?;
    let versions = |ids: &[String]| -> Result<Vec<Value>> {
        ids.iter().map(|id| Ok(alice.get(&format!("/v1/orders/{id}"))?.body["version"].clone())).collect()
    };
    let before = versions(&ids)?;

    let simulate = |body: Value| -> Result<Value> {
        let r = admin.post("/v1/admin/simulations", body)?;
        ensure!(r.status == 200, "{} {}", r.status, r.text);
        Ok(r.body)
    };
    // A lower threshold: the 50.00 order would need an executive; the others keep their plans.
    let lower = simulate(
        json!({"changes": [{"extension": "executive-threshold", "config": {"threshold_minor": 1_000, "level": 10}}]}),
    )?;
    ensure!(lower["orders_evaluated"] == 3 && lower["orders_skipped"] == 1, "{lower}");
    ensure!(lower["plans_changed"] == 1 && lower["verdicts_changed"] == 1, "{lower}");
    let d = &lower["differences"][0];
    ensure!(d["order_id"] == json!(ids[1]) && d["before"] == "approved" && d["after"] == "pending_approval", "{d}");
    ensure!(d["stages_added"] == json!(["executive"]), "{d}");
    ensure!(lower["candidate_hash"].as_str().map(str::len) == Some(64));

    // Disabling the rule: the large order would no longer need the executive.
    let off = simulate(
        json!({"changes": [{"extension": "executive-threshold", "enabled": false}], "orders": {"status": "pending_approval"}}),
    )?;
    ensure!(off["orders_evaluated"] == 1 && off["verdicts_changed"] == 1, "{off}");
    ensure!(off["differences"][0]["stages_removed"] == json!(["executive"]), "{off}");

    // A new script that is not installed: orders from 40.00 would be rejected.
    let source = r#"fn evaluate(ctx) { if ctx.subtotal_minor >= 4000 { #{ verdict: "reject", reason: "too much" } } else { #{} } }"#;
    let new =
        simulate(json!({"changes": [{"extension": "cap", "source": source, "position": 1}], "orders": {"limit": 10}}))?;
    let after: Vec<&str> =
        new["differences"].as_array().context("list")?.iter().filter_map(|d| d["after"].as_str()).collect();
    ensure!(new["verdicts_changed"] == 2 && after == ["rejected", "rejected"], "{new}");

    // The command line gives the same answer as a table.
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(
        file.path(),
        r#"[{"extension": "executive-threshold", "config": {"threshold_minor": 1000, "level": 10}}]"#,
    )?;
    let (code, out, err) = cli(&s.db, &["simulate", "--tenant", "acme", "--changes", &file.path().to_string_lossy()])?;
    ensure!(code == 0, "{err}");
    ensure!(out.contains(&ids[1]) && out.contains("approved") && out.contains("+stage executive"), "{out}");
    ensure!(
        out.contains("3 orders evaluated (1 skipped: never evaluated), 1 plans and 1 verdicts would change"),
        "{out}"
    );

    // Nothing was written but the audit entries.
    ensure!(versions(&ids)? == before, "no order changed");
    ensure!(alice.get(&format!("/v1/orders/{draft}"))?.body["status"] == "draft");
    let db = rusqlite::Connection::open(&s.db)?;
    let runs: i64 = db.query_row("SELECT count(*) FROM audit_log WHERE action = 'simulation_run'", [], |r| r.get(0))?;
    ensure!(runs == 4, "three over HTTP, one from the command line: {runs}");

    // Bad candidates are 422 naming the change; only admins simulate.
    let r = admin.post("/v1/admin/simulations", json!({"changes": [{"extension": "nope", "enabled": true}]}))?;
    ensure!(r.status == 422 && r.text.contains("changes[0].extension"), "{}", r.text);
    let r = admin.post("/v1/admin/simulations", json!({"changes": [{"extension": "x", "source": "fn nope("}]}))?;
    ensure!(r.status == 422 && r.text.contains("changes[0].source"), "{}", r.text);
    let r = carol
        .post("/v1/admin/simulations", json!({"changes": [{"extension": "executive-threshold", "enabled": false}]}))?;
    ensure!(r.status == 403, "{}", r.text);
    Ok(())
}
