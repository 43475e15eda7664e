//! The order lifecycle over HTTP against the real binary.

use anyhow::Result;
use greenlight_tests::{Server, order_body};
use serde_json::json;

/// A tenant with cost center CC-1 (manager bob) and the R1 scripts enabled.
fn r1_tenant(
    s: &Server,
) -> Result<(greenlight_tests::Client, greenlight_tests::Client, greenlight_tests::Client, greenlight_tests::Client)> {
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester", "approver"], json!({"spend_limit_minor": 10_000}))?;
    let bob = admin.user("bob", &["cost_center_manager"], json!({}))?;
    let carol = admin.user("carol", &["approver"], json!({}))?;
    let r = admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob"}))?;
    assert_eq!(r.status, 201, "{}", r.text);
    admin.enable_shipped("cost-center", 10)?;
    admin.enable_shipped("spend-limit", 20)?;
    Ok((admin, alice, bob, carol))
}

#[test]
fn create_submit_approve() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, bob, carol) = r1_tenant(&s)?;
    let mut body = order_body(3, 5_000);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    let r = alice.get(&format!("/v1/orders/{id}"))?;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("draft")));
    assert_eq!(r.body["total_minor"], 15_000);

    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    let stages: Vec<_> = r.body["plan"]["stages"]
        .as_array()
        .map(|a| a.iter().map(|s| (s["key"].clone(), s["level"].clone(), s["state"].clone())).collect())
        .unwrap_or_default();
    assert_eq!(
        stages,
        vec![(json!("cost-center"), json!(1), json!("open")), (json!("user-approval"), json!(2), json!("waiting"))]
    );

    // Inbox: bob sees it now, carol only after the cost center decided; alice never.
    assert_eq!(bob.get("/v1/inbox")?.body["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(carol.get("/v1/inbox")?.body["orders"].as_array().map(Vec::len), Some(0));
    assert_eq!(alice.get("/v1/inbox")?.body["orders"].as_array().map(Vec::len), Some(0));

    // Deciding a later level before an earlier one: 409.
    let r = carol.decide(&id, "user-approval", "approve", None)?;
    assert_eq!((r.status, r.code()), (409, "invalid_state"), "{}", r.text);

    let r = bob.decide(&id, "cost-center", "approve", Some("ok"))?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(carol.get("/v1/inbox")?.body["orders"].as_array().map(Vec::len), Some(1));
    let r = carol.decide(&id, "user-approval", "approve", None)?;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("approved")), "{}", r.text);

    let audit = alice.audit(&id)?;
    let evaluated = alice.audit_entry(&id, "order_evaluated")?;
    let ran: Vec<&str> = evaluated["data"]["extensions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ran, ["cost-center", "spend-limit"], "the evaluation names the exact code it ran");
    assert_eq!(evaluated["data"]["extensions"][0]["code_hash"].as_str().map(str::len), Some(64));
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "order_created",
            "order_evaluated",
            "order_submitted",
            "stage_opened",
            "decision_recorded",
            "stage_approved",
            "stage_opened",
            "decision_recorded",
            "stage_approved",
            "order_approved"
        ]
    );
    let actors: Vec<&str> = audit.iter().filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(actors.last(), Some(&"carol"));
    Ok(())
}

#[test]
fn create_submit_reject_needs_a_reason() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, bob, _) = r1_tenant(&s)?;
    let mut body = order_body(1, 500);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    assert_eq!(alice.submit(&id)?.body["status"], "pending_approval");
    let r = bob.decide(&id, "cost-center", "reject", None)?;
    assert_eq!((r.status, r.code()), (422, "invalid_input"), "{}", r.text);
    let r = bob.decide(&id, "cost-center", "reject", Some("   "))?;
    assert_eq!(r.status, 422);
    let r = bob.decide(&id, "cost-center", "reject", Some("not in this quarter's plan"))?;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("rejected")));
    assert_eq!(r.body["rejection"]["reason"], "not in this quarter's plan");
    let audit = alice.get(&format!("/v1/orders/{id}/audit"))?;
    assert!(audit.text.contains("not in this quarter's plan"));
    Ok(())
}

#[test]
fn nothing_to_approve_goes_straight_through() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, _, _) = r1_tenant(&s)?;
    let id = alice.order(order_body(1, 500))?;
    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "approved", "{}", r.text);
    assert_eq!(r.body["plan"]["stages"], json!([]));
    Ok(())
}

#[test]
fn self_approval_is_forbidden_even_with_the_role() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, _, _) = r1_tenant(&s)?;
    let id = alice.order(order_body(2, 10_000))?; // over alice's spend limit: approver stage
    let r = alice.submit(&id)?;
    assert_eq!(r.body["plan"]["stages"][0]["key"], "user-approval", "{}", r.text);
    let r = alice.decide(&id, "user-approval", "approve", None)?;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    Ok(())
}

#[test]
fn another_tenants_order_is_404() -> Result<()> {
    let s = Server::start()?;
    let acme = s.tenant("acme")?;
    let globex = s.tenant("globex")?;
    let id = acme.order(order_body(1, 100))?;
    for r in [
        globex.get(&format!("/v1/orders/{id}"))?,
        globex.submit(&id)?,
        globex.decide(&id, "x", "approve", None)?,
        globex.get(&format!("/v1/orders/{id}/audit"))?,
        globex.patch(&format!("/v1/orders/{id}"), json!({"department": "x"}))?,
    ] {
        assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.text);
    }
    assert_eq!(globex.get("/v1/orders")?.body["orders"], json!([]));
    Ok(())
}

#[test]
fn invalid_input_is_422_naming_the_field() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let cases = [
        (json!({"currency": "EUR", "lines": []}), "lines"),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 0, "unit_price_minor": 1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": -2, "unit_price_minor": 1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1, "unit_price_minor": -1}]}),
            "lines[0].unit_price_minor",
        ),
        (json!({"currency": "EURO", "lines": [{"sku": "a", "quantity": 1, "unit_price_minor": 1}]}), "currency"),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1, "unit_price_minor": 1}], "colour": "red"}),
            "colour",
        ),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1.5, "unit_price_minor": 1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"currency": "EUR", "lines": [{"sku": "a", "quantity": 1, "unit_price_minor": 1}], "cost_center": "NOPE"}),
            "cost_center",
        ),
    ];
    for (body, field) in cases {
        let r = admin.post("/v1/orders", body.clone())?;
        assert_eq!(r.status, 422, "{body} → {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap_or("").contains(field), "{body} → {}", r.text);
    }
    let r = admin.post_raw("/v1/orders", "{\"currency\": \"EUR\", ")?;
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    let huge = format!("{{\"currency\":\"EUR\",\"lines\":[],\"attributes\":{{\"x\":\"{}\"}}}}", "a".repeat(2 << 20));
    assert_eq!(admin.post_raw("/v1/orders", &huge)?.status, 413);
    Ok(())
}

#[test]
fn an_endless_script_puts_the_order_on_hold() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    admin.enable_script("spin", "fn evaluate(ctx) { loop { } }", 10, json!({}))?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let id = alice.order(order_body(1, 100))?;
    let r = alice.submit(&id)?;
    assert_eq!(r.body["status"], "on_hold", "{}", r.text);
    let reason = r.body["hold_reason"].as_str().unwrap_or("");
    assert!(reason.contains("spin") && reason.contains("operation budget"), "{reason}");
    let metrics = greenlight_tests::Client::new(&s.url, "").get("/metrics")?;
    assert!(metrics.text.contains("greenlight_step_failures_total 1"), "{}", metrics.text);
    assert!(alice.get(&format!("/v1/orders/{id}/audit"))?.text.contains("order_held"));
    Ok(())
}

#[test]
fn concurrent_decisions_on_one_stage_exactly_one_wins() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let approvers: Vec<_> =
        (0..8).map(|i| admin.user(&format!("ap{i}"), &["approver"], json!({}))).collect::<Result<_>>()?;
    admin.enable_script(
        "gate",
        r#"fn evaluate(ctx) { #{ stages: [#{ key: "gate", approvers: #{ role: "approver" }, reason: "every order" }] } }"#,
        10,
        json!({}),
    )?;
    for round in 0..10 {
        let id = alice.order(order_body(1, 100 + round))?;
        assert_eq!(alice.submit(&id)?.body["status"], "pending_approval");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(approvers.len()));
        let handles: Vec<_> = approvers
            .iter()
            .cloned()
            .map(|c| {
                let (id, barrier) = (id.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.decide(&id, "gate", "approve", None).map(|r| r.status)
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("thread")).collect::<Result<_>>()?;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), approvers.len() - 1, "round {round}: {statuses:?}");
        let order = alice.get(&format!("/v1/orders/{id}"))?;
        assert_eq!(order.body["plan"]["stages"][0]["decisions"].as_array().map(Vec::len), Some(1));
    }
    Ok(())
}

#[test]
fn one_person_one_stage_unless_the_setting_is_off() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let bob = admin.user("bob", &["approver", "compliance"], json!({}))?;
    admin.enable_script(
        "two",
        r#"fn evaluate(ctx) { #{ stages: [
            #{ key: "first", level: 1, approvers: #{ role: "approver" }, reason: "r" },
            #{ key: "second", level: 2, approvers: #{ role: "compliance" }, reason: "r" } ] } }"#,
        10,
        json!({}),
    )?;
    let id = alice.order(order_body(1, 100))?;
    alice.submit(&id)?;
    assert_eq!(bob.decide(&id, "first", "approve", None)?.status, 200);
    let r = bob.decide(&id, "second", "approve", None)?;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(admin.put("/v1/admin/settings", json!({"one_stage_per_person": false}))?.status, 200);
    let r = bob.decide(&id, "second", "approve", None)?;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("approved")), "{}", r.text);
    Ok(())
}

#[test]
fn withdraw_revoke_and_subscriptions() -> Result<()> {
    let s = Server::start()?;
    let (admin, alice, bob, carol) = r1_tenant(&s)?;
    // Withdraw.
    let id = alice.order(order_body(1, 100))?;
    assert_eq!(bob.post_empty(&format!("/v1/orders/{id}/withdraw"))?.status, 403);
    assert_eq!(alice.post_empty(&format!("/v1/orders/{id}/withdraw"))?.body["status"], "withdrawn");
    // A subscription needs approval once; deactivate/reactivate keeps it approved.
    let mut body = order_body(1, 20_000);
    body["cost_center"] = json!("CC-1");
    body["recurrence"] = json!({"interval": "P1M"});
    let id = alice.order(body)?;
    alice.submit(&id)?;
    bob.decide(&id, "cost-center", "approve", None)?;
    let r = carol.decide(&id, "user-approval", "approve", None)?;
    assert_eq!((r.body["status"].as_str(), r.body["subscription_state"].as_str()), (Some("approved"), Some("active")));
    let r = alice.post_empty(&format!("/v1/orders/{id}/deactivate"))?;
    assert_eq!(
        (r.body["status"].as_str(), r.body["subscription_state"].as_str()),
        (Some("approved"), Some("inactive"))
    );
    let r = alice.post_empty(&format!("/v1/orders/{id}/reactivate"))?;
    assert_eq!((r.body["status"].as_str(), r.body["subscription_state"].as_str()), (Some("approved"), Some("active")));
    assert_eq!(bob.get("/v1/inbox")?.body["orders"], json!([]));
    // Revoke: admin only, with a reason; back to pending with fresh stages.
    assert_eq!(alice.post(&format!("/v1/orders/{id}/revoke"), json!({"reason": "x"}))?.status, 403);
    assert_eq!(admin.post(&format!("/v1/orders/{id}/revoke"), json!({"reason": ""}))?.status, 422);
    let r = admin.post(&format!("/v1/orders/{id}/revoke"), json!({"reason": "wrong supplier"}))?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    assert!(admin.get(&format!("/v1/orders/{id}/audit"))?.text.contains("approval_revoked"));
    Ok(())
}

#[test]
fn request_view_filters_and_pages() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let bob = admin.user("bob", &["requester"], json!({}))?;
    for i in 0..5 {
        let mut b = order_body(1, 100 + i);
        b["department"] = json!(if i % 2 == 0 { "IT" } else { "HR" });
        b["lines"][0]["budget_category"] = json!("hardware");
        alice.order(b)?;
    }
    bob.order(order_body(1, 1))?;
    let all = admin.get("/v1/orders?limit=2")?;
    assert_eq!(all.body["orders"].as_array().map(Vec::len), Some(2));
    let next = all.body["next_cursor"].as_str().unwrap_or_default().to_string();
    let page2 = admin.get(&format!("/v1/orders?limit=2&cursor={next}"))?;
    assert_ne!(page2.body["orders"][0]["id"], all.body["orders"][0]["id"]);
    let it = admin.get("/v1/orders?department=IT&budget_category=hardware&status=draft")?;
    assert_eq!(it.body["orders"].as_array().map(Vec::len), Some(3));
    // A plain requester sees only their own orders.
    assert_eq!(bob.get("/v1/orders")?.body["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(admin.get("/v1/orders?status=bogus")?.status, 422);
    Ok(())
}

#[test]
fn a_manager_ordering_on_their_own_cost_center_is_escalated_not_self_approved() -> Result<()> {
    let s = Server::start()?;
    let (admin, _, _, _) = r1_tenant(&s)?;
    let frank = admin.user("frank", &["executive"], json!({}))?;
    let boss = admin.user("boss", &["cost_center_manager", "requester"], json!({}))?;
    assert_eq!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-9", "manager": "boss"}))?.status, 201);
    let mut body = order_body(1, 500);
    body["cost_center"] = json!("CC-9");
    let id = boss.order(body)?;
    let r = boss.submit(&id)?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    // The shipped cost-center script escalates to `executive` when the requester is the manager.
    assert_eq!(r.body["plan"]["stages"][0]["approvers"], json!({"kind": "role", "role": "executive"}));
    assert_eq!(boss.decide(&id, "cost-center", "approve", None)?.status, 403);
    let r = frank.decide(&id, "cost-center", "approve", None)?;
    assert_eq!(r.body["status"], "approved", "{}", r.text);
    Ok(())
}

/// A tenant where every order gets one stage, `review`, for role approver: alice requests,
/// carol approves.
fn review_tenant(s: &Server) -> Result<(greenlight_tests::Client, greenlight_tests::Client, greenlight_tests::Client)> {
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let carol = admin.user("carol", &["approver"], json!({}))?;
    let review = r#"fn evaluate(ctx) { #{ stages: [#{ key: "review", approvers: #{ role: "approver" }, reason: "every order" }] } }"#;
    admin.enable_script("review", review, 10, json!({}))?;
    Ok((admin, alice, carol))
}

#[test]
fn a_withdrawn_subscription_is_not_reactivated_and_nobody_hears_it_was() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, carol) = review_tenant(&s)?;
    let mut body = order_body(1, 1_000);
    body["recurrence"] = json!({"interval": "P1M"});
    let id = alice.order(body)?;
    assert_eq!(alice.submit(&id)?.body["status"], "pending_approval");
    assert_eq!(carol.decide(&id, "review", "approve", None)?.body["status"], "approved");
    let r = alice.post_empty(&format!("/v1/orders/{id}/deactivate"))?;
    assert_eq!(r.body["subscription_state"], "inactive", "{}", r.text);
    let r = alice.patch(&format!("/v1/orders/{id}"), json!({"department": "IT"}))?;
    assert_eq!(r.body["status"], "pending_approval", "{}", r.text);
    let r = alice.post_empty(&format!("/v1/orders/{id}/withdraw"))?;
    assert_eq!(r.body["status"], "withdrawn", "{}", r.text);

    let r = alice.post_empty(&format!("/v1/orders/{id}/reactivate"))?;
    assert_eq!((r.status, r.code()), (409, "invalid_state"), "{}", r.text);
    assert!(r.text.contains("withdrawn"), "{}", r.text);
    let after = alice.get(&format!("/v1/orders/{id}"))?;
    assert_eq!(
        (after.body["status"].as_str(), after.body["subscription_state"].as_str()),
        (Some("withdrawn"), Some("inactive"))
    );
    let db = rusqlite::Connection::open(&s.db)?;
    let reactivated: i64 = db.query_row(
        "SELECT COUNT(*) FROM outbox WHERE order_id = ?1 AND event = 'subscription_reactivated'",
        [&id],
        |r| r.get(0),
    )?;
    assert_eq!(reactivated, 0, "no notification of a reactivation that did not happen");
    assert_eq!(alice.audit_entry(&id, "subscription_reactivated")?, serde_json::Value::Null);
    Ok(())
}

#[test]
fn the_inbox_is_paged_oldest_first_without_a_cap() -> Result<()> {
    let s = Server::start()?;
    let (_, alice, carol) = review_tenant(&s)?;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = alice.order(order_body(1, 100 + i))?;
        assert_eq!(alice.submit(&id)?.body["status"], "pending_approval");
        ids.push(id);
    }
    // One decided already is no longer in the inbox.
    assert_eq!(carol.decide(&ids[1], "review", "approve", None)?.status, 200);
    let mut seen = Vec::new();
    let mut path = "/v1/inbox?limit=2".to_string();
    loop {
        let r = carol.get(&path)?;
        assert_eq!(r.status, 200, "{}", r.text);
        let page: Vec<String> = r.body["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["id"].as_str().map(String::from))
            .collect();
        assert!(page.len() <= 2, "{}", r.text);
        seen.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/inbox?limit=2&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<String> = ids.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, id)| id.clone()).collect();
    assert_eq!(seen, expected, "every open order once, oldest first");
    assert_eq!(carol.get("/v1/inbox?limit=0")?.status, 422);
    Ok(())
}
