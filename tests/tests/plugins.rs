//! WASM plugins through the real binary: install with the CLI, enable per tenant over HTTP,
//! and watch orders evaluated by them (and held when a plugin fails).

use anyhow::Result;
use greenlight_tests::{Server, cli, order_body, plugins};
use serde_json::json;

#[test]
fn an_installed_plugin_is_enabled_per_tenant_and_decides_orders() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let other = s.tenant("globex")?;
    let installed = s.install_plugin("large-order")?;
    let hash = installed["code_hash"].as_str().unwrap_or_default().to_string();

    let list = admin.get("/v1/admin/extensions")?;
    let ext = list.body["extensions"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "large-order"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (ext["kind"].as_str(), ext["world"].as_str(), ext["enabled"].as_bool()),
        (Some("wasm"), Some("approval-step"), Some(false))
    );

    // Configuration is checked against the manifest; steps get no capabilities.
    let r =
        admin.put("/v1/admin/extensions/large-order", json!({"enabled": true, "config": {"threshhold_minor": 5}}))?;
    assert_eq!(r.status, 422, "{}", r.text);
    let r =
        admin.put("/v1/admin/extensions/large-order", json!({"enabled": true, "config": {"threshold_minor": "5"}}))?;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = admin.put(
        "/v1/admin/extensions/large-order",
        json!({"enabled": true, "grants": {"http": ["https://x.example:443"]}}),
    )?;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = admin.put(
        "/v1/admin/extensions/large-order",
        json!({"enabled": true, "config": {"threshold_minor": 10_000, "level": 3}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);

    let alice = admin.user("alice", &["requester"], json!({}))?;
    // The stage is for role executive: someone must hold it, or nobody could decide it.
    admin.user("frank", &["executive"], json!({}))?;
    let id = alice.order(order_body(2, 10_000))?;
    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    assert_eq!(r.body["plan"]["stages"][0]["key"], "large-order");
    assert_eq!(r.body["plan"]["stages"][0]["level"], 3);
    assert_eq!(r.body["plan"]["stages"][0]["source"], "large-order");
    // The decision is traced to the exact code in the audit trail.
    let evaluated = alice.audit_entry(&id, "order_evaluated")?;
    assert_eq!(evaluated["data"]["extensions"][0]["code_hash"], json!(hash));
    assert_eq!(evaluated["data"]["extensions"][0]["kind"], "wasm");

    // The other tenant did not enable it: its orders go straight through.
    let bob = other.user("bob", &["requester"], json!({}))?;
    let id = bob.order(order_body(2, 10_000))?;
    assert_eq!(bob.submit(&id)?.body["status"], "approved");
    Ok(())
}

#[test]
fn a_failing_plugin_holds_the_order_with_its_reason() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    s.install_plugin("tp-panic")?;
    // Enabled through the CLI this time.
    let (code, _, err) = cli(&s.db, &["extension", "set", "--tenant", "acme", "tp-panic", "--enabled", "true"])?;
    assert_eq!(code, 0, "{err}");
    // The operator acts as the operator, not as some user of the tenant.
    let export = admin.get("/v1/audit/export")?;
    let configured = export
        .text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["action"] == "extension_configured")
        .ok_or_else(|| anyhow::anyhow!("no extension_configured entry: {}", export.text))?;
    assert_eq!(configured["actor"], "greenlight:operator", "{configured}");
    let (code, _, err) = cli(&s.db, &["extension", "set", "--tenant", "nope", "tp-panic", "--enabled", "true"])?;
    assert!(code != 0 && err.contains("no tenant named 'nope'"), "{err}");
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 100))?;
    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "on_hold", "{}", r.text);
    let reason = r.body["hold_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("tp-panic") && reason.contains("panicked") && reason.contains("customer record missing"),
        "{reason}"
    );
    let held = alice.audit_entry(&id, "order_held")?;
    assert!(held["data"]["reason"].as_str().unwrap_or_default().contains("panicked"));
    Ok(())
}

#[test]
fn step_test_runs_a_plugin_and_reports_what_it_used() -> Result<()> {
    let order = greenlight_tests::workspace().join("scripts/examples/executive-threshold/above-threshold.order.json");
    let manifest = plugins().join("large-order/manifest.toml");
    let out = std::process::Command::new(greenlight_tests::bin())
        .args(["step", "test", "--plugin"])
        .arg(&manifest)
        .arg("--order")
        .arg(&order)
        .env("GREENLIGHT_LOG", "warn")
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(printed["stages"][0]["key"], "large-order");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(stats.contains("time ") && stats.contains("fuel ") && stats.contains("peak memory "), "{stats}");
    Ok(())
}

#[test]
fn each_failing_fixture_holds_the_order_with_a_reason_of_its_own() -> Result<()> {
    let s = Server::start()?;
    let fixtures = [
        // Stopped by fuel or by the deadline, whichever comes first on this machine.
        ("tp-spin", "operation budget|deadline"),
        ("tp-hog", "memory"),
        ("tp-panic", "panicked"),
        ("tp-garbage", "invalid result"),
        ("tp-flood", "oversized result"),
    ];
    let mut reasons = Vec::new();
    for (plugin, expected) in fixtures {
        s.install_plugin(plugin)?;
        let admin = s.tenant(&format!("t-{plugin}"))?;
        assert_eq!(admin.put(&format!("/v1/admin/extensions/{plugin}"), json!({"enabled": true}))?.status, 200);
        let id = admin.order(order_body(1, 100))?;
        let r = admin.submit(&id)?;
        assert_eq!(r.body["status"], "on_hold", "{plugin}: {}", r.text);
        let reason = r.body["hold_reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.contains(plugin) && expected.split('|').any(|e| reason.contains(e)), "{plugin}: {reason}");
        reasons.push(reason);
    }
    let mut distinct = reasons.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), reasons.len());
    Ok(())
}

#[test]
fn no_state_survives_between_calls_orders_or_tenants() -> Result<()> {
    // tp-counter counts its calls in a global: every call must see a fresh instance, also now
    // that pooled memory slots are reset in place rather than unmapped.
    let s = Server::start()?;
    s.install_plugin("tp-counter")?;
    let mut flags = Vec::new();
    for tenant in ["acme", "globex"] {
        let admin = s.tenant(tenant)?;
        let r = admin.put("/v1/admin/extensions/tp-counter", json!({"enabled": true, "config": {"label": tenant}}))?;
        assert_eq!(r.status, 200, "{}", r.text);
        let alice = admin.user("alice", &["requester"], json!({}))?;
        for _ in 0..5 {
            let id = alice.order(order_body(1, 100))?;
            let r = alice.submit(&id)?;
            let codes: Vec<String> = r.body["flags"]
                .as_array()
                .map(|f| f.iter().filter_map(|x| x["code"].as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            flags.push(codes);
        }
    }
    assert_eq!(flags.len(), 10);
    assert!(flags.iter().all(|f| f == &["calls-1"]), "a call saw an earlier call's state: {flags:?}");
    Ok(())
}
