//! The shipped catalog against the real binary: a fresh database offers the shipped extensions
//! without a command-line step, an admin enables one and it takes effect, restarting changes
//! nothing, and a newer catalog version is offered, never swapped in under the tenant.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Client, Server, cli, order_body, plugins, workspace};
use serde_json::{Value, json};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

/// A catalog of two shipped plugins and three shipped scripts (one of which has a plugin's
/// name, so the plugin is the form offered).
fn catalog(dir: &Path) -> Result<()> {
    for name in ["cost-center", "spend-limit"] {
        copy_dir(&plugins().join(name), &dir.join("plugins").join(name))?;
    }
    std::fs::create_dir_all(dir.join("scripts"))?;
    for file in
        ["vendor-eligibility.rhai", "vendor-eligibility.config.json", "executive-threshold.rhai", "cost-center.rhai"]
    {
        std::fs::copy(workspace().join("scripts").join(file), dir.join("scripts").join(file))?;
    }
    Ok(())
}

fn extension(admin: &Client, name: &str) -> Result<Value> {
    let r = admin.get("/v1/admin/extensions")?;
    let all = r.body["extensions"].as_array().context("a list")?;
    all.iter().find(|e| e["name"] == name).cloned().with_context(|| format!("{name} is not offered: {}", r.text))
}

fn offered_entries(db: &Path) -> Result<i64> {
    let c = rusqlite::Connection::open(db)?;
    Ok(c.query_row("SELECT count(*) FROM audit_log WHERE action = 'extension_offered'", [], |r| r.get(0))?)
}

#[test]
fn a_fresh_host_offers_the_catalog_and_never_swaps_a_tenants_version() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cat = dir.path().join("catalog");
    catalog(&cat)?;
    let db = dir.path().join("greenlight.db");
    // A tenant exists before the catalog arrives, so the installs are audited in its chain.
    let (code, _, err) = cli(&db, &["tenant", "create", "globex"])?;
    ensure!(code == 0, "{err}");
    let args = ["--catalog", cat.to_str().context("path")?];
    let s = Server::on_with(&db, &args)?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;

    // Offered without any CLI step: the plugins installed, the scripts offered with their
    // shipped configuration; the script named like a plugin is not offered twice.
    let cc = extension(&admin, "cost-center")?;
    ensure!(cc["kind"] == "wasm" && cc["enabled"] == false, "{cc}");
    let ve = extension(&admin, "vendor-eligibility")?;
    ensure!(ve["kind"] == "script" && ve["offered"] == true && ve["enabled"] == false, "{ve}");
    ensure!(ve["config"]["blocked"] == json!(["SHADY-CORP"]), "{ve}");
    let all = admin.get("/v1/admin/extensions")?.body;
    let named = |n: &str| all["extensions"].as_array().map(|a| a.iter().filter(|e| e["name"] == n).count());
    ensure!(named("cost-center") == Some(1), "{all}");
    let installs = offered_entries(&db)?;
    ensure!(installs == 4, "two plugins and two scripts offered to globex: {installs}");

    // Enabling adopts a copy with the shipped configuration; it takes effect on the next order.
    let r = admin.put("/v1/admin/extensions/vendor-eligibility", json!({"enabled": true}))?;
    ensure!(r.status == 200 && r.body["offered"] == false && r.body["enabled"] == true, "{}", r.text);
    let mut body = order_body(1, 100);
    body["vendor_id"] = json!("SHADY-CORP");
    let id = alice.order(body)?;
    ensure!(alice.submit(&id)?.body["status"] == "rejected");
    let adopted: String = rusqlite::Connection::open(&db)?.query_row(
        "SELECT data FROM audit_log WHERE action = 'script_installed'",
        [],
        |r| r.get(0),
    )?;
    ensure!(adopted.contains("\"from_catalog\":true"), "{adopted}");
    let first_hash = extension(&admin, "vendor-eligibility")?["code_hash"].clone();

    // Restarting with the same catalog changes nothing.
    drop(s);
    let s = Server::on_with(&db, &args)?;
    ensure!(offered_entries(&db)? == installs, "a second start installs nothing");

    // A newer script in the catalog is offered, not swapped in: the tenant keeps its version
    // until its admin takes the upgrade.
    drop(s);
    let path = cat.join("scripts").join("vendor-eligibility.rhai");
    let newer = std::fs::read_to_string(&path)? + "\n// 1.1: the same rule, reworded\n";
    std::fs::write(&path, newer)?;
    let s = Server::on_with(&db, &args)?;
    let admin = s.client(&admin.token);
    let ve = extension(&admin, "vendor-eligibility")?;
    ensure!(ve["code_hash"] == first_hash && ve["upgrade"]["code_hash"].is_string(), "{ve}");
    ensure!(offered_entries(&db)? > installs, "the offer is audited");
    let r = admin.put("/v1/admin/extensions/vendor-eligibility", json!({"enabled": true, "upgrade": true}))?;
    ensure!(r.status == 200 && r.body["code_hash"] == ve["upgrade"]["code_hash"], "{}", r.text);
    ensure!(r.body.get("upgrade").is_none(), "{}", r.text);
    let again = admin.put("/v1/admin/extensions/vendor-eligibility", json!({"enabled": true, "upgrade": true}))?;
    ensure!(again.status == 409, "{}", again.text);
    // A plugin's version is host-wide: a tenant's admin cannot swap it.
    let r = admin.put("/v1/admin/extensions/cost-center", json!({"enabled": true, "upgrade": true}))?;
    ensure!(r.status == 409 && r.text.contains("greenlight plugin upgrade"), "{}", r.text);
    Ok(())
}
