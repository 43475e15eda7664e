//! One scenario per seed rule (R1-R12 of the design document), driving the real binary over HTTP with the
//! shipped WASM plugins (cost-center, spend-limit, subscription, compliance) and Rhai scripts
//! (customer-authorization) installed and enabled, as a customer would run them.

use anyhow::Result;
use greenlight_tests::{Client, Server, order_body};
use serde_json::{Value, json};

struct Tenant {
    _server: Server,
    admin: Client,
    alice: Client,
    bob: Client,
    carol: Client,
    dave: Client,
    erin: Client,
    frank: Client,
    fiona: Client,
}

/// A tenant with one user per role, cost center CC-1 (manager bob, budget 1,000,000), and the
/// shipped extensions enabled in their usual order.
fn tenant() -> Result<Tenant> {
    let s = Server::start()?;
    for p in ["cost-center", "spend-limit", "subscription", "compliance"] {
        s.install_plugin(p)?;
    }
    let admin = s.tenant("acme")?;
    let alice = admin.user(
        "alice",
        &["requester", "approver"],
        json!({"spend_limit_minor": 50_000, "budget_minor": 200_000}),
    )?;
    let bob = admin.user("bob", &["cost_center_manager"], json!({}))?;
    let carol = admin.user("carol", &["approver"], json!({}))?;
    let dave = admin.user("dave", &["compliance"], json!({}))?;
    let erin = admin.user("erin", &["finance"], json!({}))?;
    let frank = admin.user("frank", &["executive"], json!({}))?;
    let fiona = admin.user("fiona", &["executive"], json!({}))?;
    let r =
        admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob", "budget_minor": 1_000_000}))?;
    anyhow::ensure!(r.status == 201, "{}", r.text);
    for (name, position, config) in [
        ("compliance", 5, json!({"blocked_vendors": ["SHADY-CORP"], "approved_vendors": ["ACME", "GLOBEX"]})),
        ("cost-center", 10, json!({})),
        ("spend-limit", 20, json!({})),
        ("subscription", 30, json!({})),
    ] {
        let r = admin.put(
            &format!("/v1/admin/extensions/{name}"),
            json!({"enabled": true, "position": position, "config": config}),
        )?;
        anyhow::ensure!(r.status == 200, "enabling {name}: {}", r.text);
    }
    admin.enable_shipped("customer-authorization", 40)?;
    Ok(Tenant { _server: s, admin, alice, bob, carol, dave, erin, frank, fiona })
}

fn stages(order: &Value) -> Vec<(String, u64, String)> {
    order["plan"]["stages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["key"].as_str().unwrap_or("").to_string(),
                        s["level"].as_u64().unwrap_or(0),
                        s["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn actions(c: &Client, id: &str) -> Result<Vec<String>> {
    Ok(c.audit(id)?.iter().filter_map(|e| e["action"].as_str().map(String::from)).collect())
}

fn on_cc(mut body: Value) -> Value {
    body["cost_center"] = json!("CC-1");
    body
}

#[test]
fn r1_cost_center_only_needs_its_manager() -> Result<()> {
    let t = tenant()?;
    let id = t.alice.order(on_cc(order_body(1, 10_000)))?;
    let r = t.alice.submit(&id)?;
    assert_eq!(stages(&r.body), [("cost-center".into(), 1, "open".into())], "{}", r.text);
    assert_eq!(
        r.body["plan"]["stages"][0]["approvers"],
        json!({"kind": "cost_center_manager", "cost_center": "CC-1", "manager": "bob"})
    );
    assert_eq!(t.carol.decide(&id, "cost-center", "approve", None)?.status, 403);
    assert_eq!(t.bob.decide(&id, "cost-center", "approve", None)?.body["status"], "approved");
    Ok(())
}

#[test]
fn r1_spend_limit_only_needs_an_approver() -> Result<()> {
    let t = tenant()?;
    let id = t.alice.order(order_body(1, 60_000))?;
    let r = t.alice.submit(&id)?;
    assert_eq!(stages(&r.body), [("user-approval".into(), 2, "open".into())], "{}", r.text);
    assert_eq!(r.body["plan"]["stages"][0]["quorum"], "any");
    assert_eq!(t.carol.decide(&id, "user-approval", "approve", None)?.body["status"], "approved");
    Ok(())
}

#[test]
fn r1_both_cost_center_first_then_user_specific() -> Result<()> {
    let t = tenant()?;
    let id = t.alice.order(on_cc(order_body(1, 60_000)))?;
    let r = t.alice.submit(&id)?;
    assert_eq!(
        stages(&r.body),
        [("cost-center".into(), 1, "open".into()), ("user-approval".into(), 2, "waiting".into())]
    );
    let r = t.carol.decide(&id, "user-approval", "approve", None)?;
    assert_eq!(r.status, 409, "an approver cannot decide before the cost center has: {}", r.text);
    t.bob.decide(&id, "cost-center", "approve", None)?;
    assert_eq!(t.carol.decide(&id, "user-approval", "approve", None)?.body["status"], "approved");
    Ok(())
}

#[test]
fn r1_neither_is_approved_at_submit() -> Result<()> {
    let t = tenant()?;
    let id = t.alice.order(order_body(1, 1_000))?;
    let r = t.alice.submit(&id)?;
    assert_eq!((r.body["status"].as_str(), stages(&r.body).len()), (Some("approved"), 0), "{}", r.text);
    Ok(())
}

#[test]
fn r2_rejection_needs_a_reason_and_keeps_it() -> Result<()> {
    let t = tenant()?;
    let id = t.alice.order(on_cc(order_body(1, 10_000)))?;
    t.alice.submit(&id)?;
    assert_eq!(t.bob.decide(&id, "cost-center", "reject", None)?.status, 422);
    let r = t.bob.decide(&id, "cost-center", "reject", Some("duplicate of last week's order"))?;
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["rejection"]["reason"], "duplicate of last week's order");
    let audit = t.alice.get(&format!("/v1/orders/{id}/audit"))?;
    assert!(audit.text.contains("duplicate of last week's order"));
    // Approvers see everything awaiting them in one inbox.
    let id2 = t.alice.order(on_cc(order_body(1, 10_000)))?;
    t.alice.submit(&id2)?;
    let inbox = t.bob.get("/v1/inbox")?;
    assert_eq!(
        inbox.body["orders"].as_array().map(|a| a.iter().map(|o| o["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(id2)])
    );
    Ok(())
}

#[test]
fn r3_a_subscription_is_approved_once_and_reopened_by_an_edit() -> Result<()> {
    let t = tenant()?;
    // Under every limit, yet both stages are needed.
    let mut body = on_cc(order_body(1, 1_000));
    body["recurrence"] = json!({"interval": "P1M"});
    let id = t.alice.order(body)?;
    let r = t.alice.submit(&id)?;
    assert_eq!(
        stages(&r.body),
        [("cost-center".into(), 1, "open".into()), ("user-approval".into(), 2, "waiting".into())],
        "{}",
        r.text
    );
    assert!(r.body["plan"]["stages"][1]["reason"].as_str().unwrap_or("").contains("every month"));
    t.bob.decide(&id, "cost-center", "approve", None)?;
    let r = t.carol.decide(&id, "user-approval", "approve", None)?;
    assert_eq!((r.body["status"].as_str(), r.body["subscription_state"].as_str()), (Some("approved"), Some("active")));
    let plan = r.body["plan"].clone();
    // Deactivate and reactivate: still approved, no new stages, audited.
    assert_eq!(t.alice.post_empty(&format!("/v1/orders/{id}/deactivate"))?.body["subscription_state"], "inactive");
    let r = t.alice.post_empty(&format!("/v1/orders/{id}/reactivate"))?;
    assert_eq!((r.body["status"].as_str(), r.body["subscription_state"].as_str()), (Some("approved"), Some("active")));
    assert_eq!(r.body["plan"], plan, "no new stages");
    let acts = actions(&t.alice, &id)?;
    assert!(
        acts.ends_with(&["subscription_deactivated".to_string(), "subscription_reactivated".to_string()]),
        "{acts:?}"
    );
    // Editing its price is a new commitment: approval re-opens.
    let r = t.alice.patch(
        &format!("/v1/orders/{id}"),
        json!({"lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 2_000}]}),
    )?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    assert_eq!(stages(&r.body)[0], ("cost-center".into(), 1, "open".into()));
    Ok(())
}

#[test]
fn r4_customer_authorization_taxes_flags_and_routes() -> Result<()> {
    let t = tenant()?;
    // A salesperson without a personal spend limit places customer orders.
    let sam = t.admin.user("sam", &["requester"], json!({}))?;
    // C-200 owes 125,000 on two invoices (threshold 100,000) and has a 300,000 credit limit.
    let mut body = order_body(3, 100_000);
    body["customer_id"] = json!("C-200");
    let id = sam.order(body)?;
    let r = sam.submit(&id)?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    assert_eq!(
        (r.body["subtotal_minor"].as_i64(), r.body["tax_minor"].as_i64(), r.body["total_minor"].as_i64()),
        (Some(300_000), Some(57_000), Some(357_000))
    );
    let codes: Vec<&str> =
        r.body["flags"].as_array().map(|a| a.iter().filter_map(|f| f["code"].as_str()).collect()).unwrap_or_default();
    assert!(codes.contains(&"debt-over-threshold") && codes.contains(&"credit-limit-exceeded"), "{codes:?}");
    let s = stages(&r.body);
    assert!(
        s.contains(&("compliance-review".into(), 5, "open".into()))
            && s.contains(&("financial-audit".into(), 5, "open".into())),
        "{s:?}"
    );
    assert!(s.contains(&("executive-approval".into(), 6, "waiting".into())));
    // Flagged: two executives must agree (stricter routing).
    let exec = r.body["plan"]["stages"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["key"] == "executive-approval"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(exec["quorum"], 2);
    // Finance first this time, then compliance; the executive only after both.
    t.erin.decide(&id, "financial-audit", "approve", None)?;
    assert_eq!(t.frank.decide(&id, "executive-approval", "approve", None)?.status, 409);
    t.dave.decide(&id, "compliance-review", "approve", None)?;
    assert_eq!(t.frank.decide(&id, "executive-approval", "approve", None)?.body["status"], "pending_approval");
    assert_eq!(t.fiona.decide(&id, "executive-approval", "approve", None)?.body["status"], "approved");
    // A customer in good standing: one executive; compliance before finance also works.
    let mut body = order_body(1, 10_000);
    body["customer_id"] = json!("C-100");
    let id = sam.order(body)?;
    let r = sam.submit(&id)?;
    assert_eq!(r.body["flags"], json!([]), "{}", r.text);
    t.dave.decide(&id, "compliance-review", "approve", None)?;
    t.erin.decide(&id, "financial-audit", "approve", None)?;
    assert_eq!(t.frank.decide(&id, "executive-approval", "approve", None)?.body["status"], "approved");
    Ok(())
}

#[test]
fn r5_blocked_vendor_rejected_and_budget_overrun_needs_elevated_clearance() -> Result<()> {
    let t = tenant()?;
    let mut body = order_body(1, 1_000);
    body["vendor_id"] = json!("SHADY-CORP");
    let id = t.alice.order(body)?;
    let r = t.alice.submit(&id)?;
    assert_eq!(r.body["status"], "rejected", "{}", r.text);
    assert_eq!(r.body["rejection"]["reason"], "vendor SHADY-CORP is on the blocked vendor list");
    assert_eq!(r.body["flags"][0]["code"], "vendor-blocked");
    // A vendor not on the approved list: compliance reviews, and the flag says why.
    let mut body = order_body(1, 1_000);
    body["vendor_id"] = json!("NEWCO");
    let id = t.alice.order(body)?;
    let r = t.alice.submit(&id)?;
    assert_eq!(stages(&r.body), [("compliance".into(), 5, "open".into())]);
    assert!(r.body["flags"][0]["message"].as_str().unwrap_or("").contains("not on the approved vendor list"));
    // Over the cost center's budget: elevated clearance by an executive, at the last level.
    let id = t.alice.order(on_cc(order_body(1, 1_200_000)))?;
    let r = t.alice.submit(&id)?;
    let s = stages(&r.body);
    assert_eq!(s.last().map(|x| (x.0.as_str(), x.1)), Some(("elevated-clearance", 90)), "{s:?}");
    assert!(
        r.body["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["code"] == "budget-overrun" && f["severity"] == "high"))
    );
    Ok(())
}

fn inbox_ids(c: &Client) -> Result<Vec<String>> {
    let r = c.get("/v1/inbox")?;
    anyhow::ensure!(r.status == 200, "{}", r.text);
    Ok(r.body["orders"].as_array().into_iter().flatten().filter_map(|o| o["id"].as_str().map(String::from)).collect())
}

/// Polls an order until `pred` holds (the escalator runs every second in tests).
fn wait_for(c: &Client, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = c.get(&format!("/v1/orders/{id}"))?;
        if pred(&r.body) {
            return Ok(r.body);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn r6_routing_by_threshold_and_escalation_of_an_overdue_stage() -> Result<()> {
    let t = tenant()?;
    let grace = t.admin.user("grace", &["requester"], json!({}))?;
    // Routing by threshold and role: big orders need an executive at the last level. The stage is
    // due at once (`due_in_hours: 0`, so the test need not wait hours) and escalates to grace.
    let source = std::fs::read_to_string(greenlight_tests::workspace().join("scripts/executive-threshold.rhai"))?;
    let config =
        json!({"threshold_minor": 100_000, "level": 10, "due_in_hours": 0, "escalate_to": {"users": ["grace"]}});
    t.admin.enable_script("executive-threshold", &source, 50, config)?;
    // Below the threshold: no executive stage.
    let small = t.alice.order(order_body(1, 1_000))?;
    assert_eq!(t.alice.submit(&small)?.body["status"], "approved");
    // Above: cost center first (level 1), then the executive (level 10).
    let id = t.alice.order(on_cc(order_body(1, 150_000)))?;
    let r = t.alice.submit(&id)?;
    let keys: Vec<String> = stages(&r.body).into_iter().map(|s| s.0).collect();
    assert_eq!(keys, ["cost-center", "user-approval", "executive"], "{}", r.text);
    assert_eq!(t.bob.decide(&id, "cost-center", "approve", None)?.status, 200);
    assert_eq!(t.carol.decide(&id, "user-approval", "approve", None)?.status, 200);
    // (That grace may not decide before the escalation is the domain's unit test
    // `an_overdue_stage_escalates_and_its_target_may_decide_it`; here the sweep races us.)
    let order = wait_for(&t.admin, &id, "the executive stage to escalate", |o| {
        o["plan"]["stages"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["key"] == "executive" && s["state"] == "escalated"))
    })?;
    let exec = order["plan"]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == "executive"))
        .cloned()
        .unwrap_or_default();
    assert!(exec["due_at"].is_string(), "{exec}");
    let entry = t.admin.audit_entry(&id, "stage_escalated")?;
    assert_eq!(entry["actor"], "greenlight:escalator");
    assert_eq!(entry["data"]["stage"], "executive");
    assert_eq!(entry["data"]["escalated_to"], json!({"kind": "users", "users": ["grace"]}));
    // The target now has it in the inbox and decides it; the executives still could have.
    assert_eq!(inbox_ids(&grace)?, vec![id.as_str()]);
    assert_eq!(inbox_ids(&t.frank)?, vec![id.as_str()]);
    let r = grace.decide(&id, "executive", "approve", None)?;
    assert_eq!(r.body["status"], "approved", "{}", r.text);
    Ok(())
}

#[test]
fn r6_delegation_lets_a_colleague_decide_in_the_approvers_name() -> Result<()> {
    let t = tenant()?;
    let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    // Bad delegations are refused with the field named.
    for (body, field) in [
        (json!({"delegate": "bob", "until": until}), "delegate"),
        (json!({"delegate": "nobody", "until": until}), "delegate"),
        (json!({"delegate": "carol", "until": "2020-01-01T00:00:00Z"}), "until"),
    ] {
        let r = t.bob.post("/v1/delegations", body)?;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (422, Some(field)), "{}", r.text);
    }
    // bob (cost-center manager) is away: carol decides his stages for a week.
    let id = t.alice.order(on_cc(order_body(1, 10_000)))?;
    t.alice.submit(&id)?;
    assert!(inbox_ids(&t.carol)?.is_empty());
    assert_eq!(t.carol.decide(&id, "cost-center", "approve", None)?.status, 403);
    let r = t.bob.post("/v1/delegations", json!({"delegate": "carol", "until": until}))?;
    assert_eq!(r.status, 201, "{}", r.text);
    let delegation = r.body["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(t.carol.get("/v1/delegations")?.body["delegations"][0]["delegator"], "bob");
    assert_eq!(inbox_ids(&t.carol)?, vec![id.as_str()]);
    let r = t.carol.decide(&id, "cost-center", "approve", Some("for bob, on leave"))?;
    assert_eq!(r.body["status"], "approved", "{}", r.text);
    let decision = &r.body["plan"]["stages"][0]["decisions"][0];
    assert_eq!((decision["by"].as_str(), decision["on_behalf_of"].as_str()), (Some("carol"), Some("bob")));
    let entry = t.admin.audit_entry(&id, "decision_recorded")?;
    assert_eq!((entry["actor"].as_str(), entry["data"]["on_behalf_of"].as_str()), (Some("carol"), Some("bob")));
    // The delegation itself is in the tamper-evident log.
    let export = t.admin.get("/v1/audit/export")?.text;
    assert!(export.lines().any(|l| l.contains("\"delegation_granted\"") && l.contains("\"carol\"")), "{export}");
    // Nobody decides their own order under a delegation either: bob's delegate alice may not
    // take the cost-center stage of her own order.
    let r = t.bob.post("/v1/delegations", json!({"delegate": "alice", "until": until}))?;
    assert_eq!(r.status, 201, "{}", r.text);
    let own = t.alice.order(on_cc(order_body(1, 10_000)))?;
    t.alice.submit(&own)?;
    assert_eq!(t.alice.decide(&own, "cost-center", "approve", None)?.status, 403);
    assert!(!inbox_ids(&t.alice)?.contains(&own));
    // Ended early, the delegation no longer carries authority.
    assert_eq!(t.bob.delete(&format!("/v1/delegations/{delegation}"))?.status, 204);
    assert_eq!(t.carol.decide(&own, "cost-center", "approve", None)?.status, 403);
    assert!(inbox_ids(&t.carol)?.is_empty());
    assert_eq!(t.carol.delete(&format!("/v1/delegations/{delegation}"))?.status, 404, "only the delegator ends it");
    Ok(())
}

#[test]
fn r7_segregation_of_duties() -> Result<()> {
    let t = tenant()?;
    // The requester holds the approver role and still cannot approve her own order.
    let id = t.alice.order(order_body(1, 60_000))?;
    t.alice.submit(&id)?;
    assert_eq!(t.alice.decide(&id, "user-approval", "approve", None)?.status, 403);
    // One person cannot take two stages of one order...
    let boss = t.admin.user("boss", &["cost_center_manager", "approver"], json!({}))?;
    assert_eq!(t.admin.post("/v1/admin/cost-centers", json!({"code": "CC-2", "manager": "boss"}))?.status, 201);
    let mut body = order_body(1, 60_000);
    body["cost_center"] = json!("CC-2");
    let id = t.alice.order(body)?;
    t.alice.submit(&id)?;
    assert_eq!(boss.decide(&id, "cost-center", "approve", None)?.status, 200);
    assert_eq!(boss.decide(&id, "user-approval", "approve", None)?.status, 403);
    // ...unless the tenant turns the setting off.
    assert_eq!(t.admin.put("/v1/admin/settings", json!({"one_stage_per_person": false}))?.status, 200);
    assert_eq!(boss.decide(&id, "user-approval", "approve", None)?.body["status"], "approved");
    Ok(())
}

#[test]
fn fail_closed_a_broken_plugin_holds_orders_never_approves() -> Result<()> {
    let t = tenant()?;
    t._server.install_plugin("tp-panic")?;
    assert_eq!(t.admin.put("/v1/admin/extensions/tp-panic", json!({"enabled": true, "position": 99}))?.status, 200);
    // An order that would otherwise be approved at once.
    let id = t.alice.order(order_body(1, 1_000))?;
    let r = t.alice.submit(&id)?;
    assert_eq!(r.body["status"], "on_hold", "{}", r.text);
    assert!(actions(&t.alice, &id)?.contains(&"order_held".to_string()));
    Ok(())
}

#[test]
fn department_rule_a_tenant_role_decides_its_stage() -> Result<()> {
    let t = tenant()?;
    t.admin.enable_shipped("it-security", 45)?;
    let ivan = t.admin.user("ivan", &["it-security"], json!({}))?;
    let sam = t.admin.user("sam", &["requester"], json!({}))?;
    let mut body = order_body(2, 150_000);
    body["department"] = json!("IT");
    body["lines"][0]["budget_category"] = json!("hardware");
    let id = sam.order(body)?;
    let r = sam.submit(&id)?;
    assert_eq!(stages(&r.body), [("it-security".into(), 3, "open".into())], "{}", r.text);
    // Someone holding only the tenant's own role sees the order in the inbox, can read it, and decides.
    assert_eq!(ivan.get("/v1/inbox")?.body["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(ivan.get(&format!("/v1/orders/{id}"))?.status, 200);
    assert_eq!(ivan.decide(&id, "it-security", "approve", None)?.body["status"], "approved");
    // Someone with neither a role nor a stage on it still gets 404.
    let other = t.admin.user("olga", &["requester"], json!({}))?;
    assert_eq!(other.get(&format!("/v1/orders/{id}"))?.status, 404);
    Ok(())
}
