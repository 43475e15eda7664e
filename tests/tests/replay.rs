//! Replay (R8, R12) against the real binary: an evaluation runs again with the exact script or
//! plugin version and configuration that made it, after both were replaced, and is identical; a
//! stored output edited in the database is reported, over HTTP and by the CLI's exit status; with
//! step instances reused (`--reuse-step-instances`), a replay (always in a fresh instance) shows
//! which step kept state from one order to the next.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Server, cli, order_body, plugins};
use serde_json::{Value, json};

const V1: &str = r#"fn evaluate(ctx) {
    if ctx.subtotal_minor >= ctx.config.threshold {
        return #{ flags: [#{ code: "large", severity: "info", message: `at least ${ctx.config.threshold}` }] };
    }
    #{}
}"#;

const V2: &str = r#"fn evaluate(ctx) { #{ verdict: "reject", reason: "version 2 rejects everything" } }"#;

fn replay(grace: &greenlight_tests::Client, id: &str, n: usize) -> Result<Value> {
    let r = grace.post(&format!("/v1/orders/{id}/evaluations/{n}/replay"), json!({}))?;
    ensure!(r.status == 200, "replay: {} {}", r.status, r.text);
    Ok(r.body)
}

#[test]
fn an_evaluation_replays_with_its_own_versions_and_an_edited_record_is_found() -> Result<()> {
    let mut s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let grace = admin.user("grace", &["auditor"], json!({}))?;
    admin.user("erin", &["executive"], json!({}))?;
    admin.enable_script("big-flag", V1, 10, json!({"threshold": 100}))?;
    s.install_plugin("large-order")?;
    let r = admin.put(
        "/v1/admin/extensions/large-order",
        json!({"enabled": true, "position": 20, "config": {"threshold_minor": 500}}),
    )?;
    ensure!(r.status == 200, "{}", r.text);

    let id = alice.order(order_body(1, 1_000))?;
    ensure!(alice.submit(&id)?.body["status"] == "pending_approval");
    let list = grace.get(&format!("/v1/orders/{id}/evaluations"))?;
    let first = list.body["evaluations"][0].clone();
    ensure!(first["n"] == 1 && first["context_hash"].as_str().map(str::len) == Some(64), "{}", list.text);
    let steps = first["steps"].as_array().context("steps")?;
    ensure!(steps.len() == 2 && steps[0]["config"]["threshold"] == 100, "{}", list.text);
    let (script_hash, plugin_hash) = (steps[0]["code_hash"].clone(), steps[1]["code_hash"].clone());

    // Both replaced: the script by a version that rejects everything, the plugin by other code
    // under its name, and the configuration changed.
    admin.enable_script("big-flag", V2, 10, json!({"threshold": 1}))?;
    let dir = tempfile::tempdir()?;
    let other = dir.path().join("large-order");
    std::fs::create_dir_all(&other)?;
    std::fs::copy(plugins().join("spend-limit/spend_limit.wasm"), other.join("spend_limit.wasm"))?;
    let manifest = std::fs::read_to_string(plugins().join("spend-limit/manifest.toml"))?
        .replace("name = \"spend-limit\"", "name = \"large-order\"")
        .replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(other.join("manifest.toml"), manifest)?;
    let (code, out, err) = cli(&s.db, &["plugin", "install", &other.join("manifest.toml").to_string_lossy()])?;
    ensure!(code == 0, "{out}{err}");

    let report = replay(&grace, &id, 1)?;
    ensure!(report["identical"] == true, "{report}");
    ensure!(report["steps"][0]["code_hash"] == script_hash && report["steps"][1]["code_hash"] == plugin_hash);
    let current: Value = admin.get("/v1/admin/extensions")?.body;
    let now = current["extensions"].as_array().context("list")?.iter().find(|e| e["name"] == "large-order").cloned();
    ensure!(now.is_some_and(|e| e["code_hash"] != plugin_hash), "the plugin's current version is another");
    // The CLI agrees, and exits 0.
    let (code, out, err) = cli(&s.db, &["replay", "--order", &id, "--evaluation", "1"])?;
    ensure!(code == 0 && out.contains("\"identical\": true"), "{out}{err}");

    // An output edited in the database is found, by the API and by the CLI's exit status.
    s.kill9();
    let db = rusqlite::Connection::open(&s.db)?;
    let changed = db.execute(
        "UPDATE evaluations SET runs = json_set(runs, '$[0].output.flags[0].message', 'edited') WHERE order_id = ?1",
        [&id],
    )?;
    ensure!(changed == 1);
    drop(db);
    let (code, out, _) = cli(&s.db, &["replay", "--order", &id])?;
    ensure!(code == 1 && out.contains("\"identical\": false") && out.contains("edited"), "{out}");
    let s = Server::on(&s.db)?;
    let report = replay(&s.client(&grace.token), &id, 1)?;
    ensure!(report["identical"] == false && report["steps"][0]["identical"] == false, "{report}");
    ensure!(report["steps"][0]["recorded"]["output"]["flags"][0]["message"] == "edited", "{report}");
    ensure!(report["steps"][1]["identical"] == true);
    // Only auditors and admins; an evaluation that does not exist is a 404.
    ensure!(s.client(&alice.token).get(&format!("/v1/orders/{id}/evaluations"))?.status == 403);
    ensure!(s.client(&grace.token).post(&format!("/v1/orders/{id}/evaluations/9/replay"), json!({}))?.status == 404);
    Ok(())
}

/// The first flag of step `name` in an order's first evaluation.
fn flag_of(grace: &greenlight_tests::Client, id: &str, name: &str) -> Result<String> {
    let list = grace.get(&format!("/v1/orders/{id}/evaluations"))?;
    let steps = list.body["evaluations"][0]["steps"].as_array().cloned().unwrap_or_default();
    let step = steps.iter().find(|s| s["name"] == name).with_context(|| format!("no {name}: {}", list.text))?;
    Ok(step["output"]["flags"][0]["code"].as_str().unwrap_or_default().to_string())
}

#[test]
fn with_instances_reused_a_replay_tells_a_step_that_keeps_state_from_one_that_does_not() -> Result<()> {
    let s = Server::start_with(&["--reuse-step-instances"])?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let grace = admin.user("grace", &["auditor"], json!({}))?;
    admin.user("erin", &["executive"], json!({}))?;
    for (name, position, config) in
        [("tp-counter", 10, json!({})), ("large-order", 20, json!({"threshold_minor": 500}))]
    {
        s.install_plugin(name)?;
        let r = admin.put(
            &format!("/v1/admin/extensions/{name}"),
            json!({"enabled": true, "position": position, "config": config}),
        )?;
        ensure!(r.status == 200, "{}", r.text);
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = alice.order(order_body(1, 1_000))?;
        ensure!(alice.submit(&id)?.body["status"] == "pending_approval");
        ids.push(id);
    }
    // tp-counter's one instance served the three orders: its count went on.
    let counts: Vec<String> = ids.iter().map(|id| flag_of(&grace, id, "tp-counter")).collect::<Result<_>>()?;
    ensure!(counts == ["calls-1", "calls-2", "calls-3"], "reuse is on: {counts:?}");
    // A replay runs in a fresh instance: the stateful step differs, the deterministic one does not.
    let report = replay(&grace, &ids[2], 1)?;
    ensure!(report["identical"] == false, "{report}");
    let steps = report["steps"].as_array().context("steps")?;
    let counter = steps.iter().find(|s| s["name"] == "tp-counter").context("tp-counter")?;
    ensure!(counter["identical"] == false, "{report}");
    ensure!(counter["recorded"]["output"]["flags"][0]["code"] == "calls-3", "{report}");
    ensure!(counter["replayed"]["output"]["flags"][0]["code"] == "calls-1", "{report}");
    let large = steps.iter().find(|s| s["name"] == "large-order").context("large-order")?;
    ensure!(large["identical"] == true, "{report}");
    Ok(())
}
