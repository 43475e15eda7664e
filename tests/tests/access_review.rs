//! Access review end to end: who holds which role, delegations given and received, last sign-in
//! and decision, token ages, dormant users, the CSV export, each review in the audit chain; and
//! disabling a user, which ends their tokens, sessions and delegations at once; a mover's new
//! roles, counting at once, critical and audited.

use anyhow::{Result, ensure};
use greenlight_tests::{Client, Server, order_body, sign_in_form};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// Everyone's order is reviewed by an approver.
const REVIEW: &str = r#"fn evaluate(ctx) {
    #{ stages: [#{ key: "review", level: 1, approvers: #{ role: "approver" }, reason: "every order is reviewed" }] }
}"#;

fn sign_in(s: &Server, name: &str) -> Result<(u16, Option<String>)> {
    sign_in_form(&s.url, &Client::agent(None), ("acme", name, PASSWORD), None)
}

fn user<'a>(review: &'a Value, name: &str) -> &'a Value {
    review["users"].as_array().and_then(|us| us.iter().find(|u| u["name"] == name)).unwrap_or(&Value::Null)
}

#[test]
fn the_access_review_lists_roles_activity_and_delegations_and_disabling_ends_access_at_once() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let bob = admin.user("bob", &["approver"], json!({}))?;
    let carol = admin.user("carol", &["approver"], json!({}))?;
    admin.user("dave", &["auditor"], json!({}))?;
    admin.enable_script("review", REVIEW, 10, json!({}))?;
    let r = admin.put("/v1/admin/users/bob/password", json!({"password": PASSWORD}))?;
    ensure!(r.status == 204, "{}", r.text);

    // Bob signs in, decides a stage and lends his authority to carol.
    let (status, bob_cookie) = sign_in(&s, "bob")?;
    ensure!(status == 303 && bob_cookie.is_some(), "bob signs in: {status}");
    let id = alice.order(order_body(1, 1_000))?;
    ensure!(alice.submit(&id)?.body["status"] == "pending_approval");
    ensure!(bob.decide(&id, "review", "approve", None)?.body["status"] == "approved");
    let until = (chrono::Utc::now() + chrono::TimeDelta::days(7)).to_rfc3339();
    let r = bob.post("/v1/delegations", json!({"delegate": "carol", "until": until}))?;
    ensure!(r.status == 201, "delegation: {}", r.text);

    // Dave has done nothing for two years (his creation and token moved back in the database).
    let db = rusqlite::Connection::open(&s.db)?;
    db.execute("UPDATE users SET created_at = '2024-01-01T00:00:00.000000Z' WHERE name = 'dave'", [])?;
    db.execute("UPDATE tokens SET created_at = '2024-01-01T00:00:00.000000Z' WHERE user_name = 'dave'", [])?;

    let r = admin.get("/v1/admin/access-review")?;
    ensure!(r.status == 200, "{}", r.text);
    let review = &r.body;
    let names: Vec<&str> =
        review["users"].as_array().into_iter().flatten().filter_map(|u| u["name"].as_str()).collect();
    ensure!(names == ["admin", "alice", "bob", "carol", "dave"], "every user, by name: {names:?}");
    ensure!(review["dormant_after_days"] == 90 && review["dormant"] == 1 && review["disabled"] == 0, "{review}");
    let b = user(review, "bob");
    ensure!(b["roles"] == json!(["approver"]) && b["has_password"] == true && b["tokens"] == 1, "{b}");
    ensure!(b["oldest_token_days"] == 0, "a token made today: {b}");
    ensure!(b["last_sign_in_at"].is_string() && b["last_decision_at"].is_string(), "{b}");
    ensure!(b["delegations_given"][0]["with"] == "carol" && b["delegations_received"] == json!([]), "{b}");
    ensure!(user(review, "carol")["delegations_received"][0]["with"] == "bob");
    ensure!(user(review, "carol")["last_decision_at"].is_null());
    ensure!(user(review, "alice")["last_activity_at"].is_string() && user(review, "alice")["dormant"] == false);
    let d = user(review, "dave");
    ensure!(d["dormant"] == true && d["oldest_token_days"].as_i64().unwrap_or(0) > 600, "{d}");

    // The auditor may review too, as CSV; the requester may not.
    let csv = Client::new(&s.url, &admin.user("erin", &["auditor"], json!({}))?.token)
        .download("/v1/admin/access-review?format=csv")?;
    ensure!(csv.status == 200 && csv.header("content-type") == Some("text/csv; charset=utf-8"));
    let text = String::from_utf8(csv.body)?;
    ensure!(text.lines().count() == 7 && text.starts_with("name,roles,"), "a header and six users: {text}");
    ensure!(text.lines().any(|l| l.starts_with("dave,auditor,") && l.ends_with(",true")), "{text}");
    ensure!(alice.get("/v1/admin/access-review")?.status == 403);
    let reviews: i64 =
        db.query_row("SELECT count(*) FROM audit_log WHERE action = 'access_reviewed'", [], |r| r.get(0))?;
    ensure!(reviews == 2, "each review is on record: {reviews}");

    // Disabling bob: refused for oneself, by a non-admin, for nobody; then done.
    ensure!(admin.post_empty("/v1/admin/users/admin/disable")?.status == 409);
    ensure!(carol.post_empty("/v1/admin/users/bob/disable")?.status == 403);
    ensure!(admin.post_empty("/v1/admin/users/nobody/disable")?.status == 404);
    let r = admin.post_empty("/v1/admin/users/bob/disable")?;
    ensure!(r.status == 200, "{}", r.text);
    ensure!(r.body == json!({"tokens_revoked": 1, "sessions_ended": 1, "delegations_ended": 1}), "{}", r.text);
    // At once: his token, his session, his password, the delegation he gave.
    ensure!(bob.get("/v1/orders")?.status == 401, "the old token right after is refused");
    let inbox = Client::agent(None)
        .get(format!("{}/inbox", s.url))
        .header("Cookie", bob_cookie.as_deref().unwrap_or_default())
        .config()
        .max_redirects(0)
        .build()
        .call()?;
    ensure!(inbox.status().as_u16() == 303, "the old session is over: {}", inbox.status());
    ensure!(sign_in(&s, "bob")?.0 == 401, "a disabled user cannot sign in");
    ensure!(carol.get("/v1/delegations")?.body["delegations"] == json!([]), "the delegation ended");
    let review = admin.get("/v1/admin/access-review")?.body;
    let b = user(&review, "bob");
    ensure!(b["disabled_at"].is_string() && b["roles"] == json!(["approver"]) && b["tokens"] == 0, "{b}");
    ensure!(b["dormant"] == false && review["disabled"] == 1);
    ensure!(admin.post_empty("/v1/admin/users/bob/disable")?.status == 409, "already disabled");
    let r = admin.post("/v1/admin/users", json!({"name": "bob", "roles": ["requester"]}))?;
    ensure!(r.status == 409, "a disabled user keeps the name: {}", r.text);

    // Enabled again: nothing of before comes back until a new token is issued.
    ensure!(admin.post_empty("/v1/admin/users/bob/enable")?.status == 204);
    ensure!(admin.post_empty("/v1/admin/users/bob/enable")?.status == 409, "not disabled any more");
    ensure!(admin.post_empty("/v1/admin/users/nobody/enable")?.status == 404, "no such user");
    ensure!(bob.get("/v1/orders")?.status == 401, "the old token stays revoked");
    ensure!(sign_in(&s, "bob")?.0 == 401, "the old password went with the disabling");
    let r = admin.post_empty("/v1/admin/users/bob/tokens")?;
    ensure!(r.status == 201, "{}", r.text);
    let bob = Client::new(&s.url, r.body["token"].as_str().unwrap_or_default());
    ensure!(bob.get("/v1/orders")?.status == 200, "the new token works");
    let actions: Vec<String> = db
        .prepare("SELECT action FROM audit_log WHERE action IN ('user_disabled', 'user_enabled', 'token_issued') ORDER BY seq")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ensure!(actions == ["user_disabled", "user_enabled", "token_issued"], "{actions:?}");
    Ok(())
}

#[test]
fn a_mover_gets_new_roles_at_once_as_a_critical_audited_action() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let bob = admin.user("bob", &["approver"], json!({}))?;
    admin.user("carol", &["approver"], json!({}))?;
    admin.user("erin", &["admin"], json!({}))?;
    admin.user("mia", &["cost_center_manager"], json!({}))?;
    ensure!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-7", "manager": "mia"}))?.status == 201);
    admin.enable_script("review", REVIEW, 10, json!({}))?;
    let first = alice.order(order_body(1, 1_000))?;
    ensure!(alice.submit(&first)?.body["status"] == "pending_approval");
    let until = (chrono::Utc::now() + chrono::TimeDelta::days(7)).to_rfc3339();
    ensure!(bob.post("/v1/delegations", json!({"delegate": "carol", "until": until}))?.status == 201);

    // Bob moves from approving to buying: from now on he requests and cannot decide, and the
    // delegation he gave (which lent his approver role) ends.
    let r = admin.put("/v1/admin/users/bob/roles", json!({"roles": ["requester", "requester"]}))?;
    ensure!(r.status == 200, "{}", r.text);
    let want = json!({"user": "bob", "before": ["approver"], "roles": ["requester"], "delegations_ended": 1});
    ensure!(r.body == want, "{}", r.text);
    let r = bob.decide(&first, "review", "approve", None)?;
    ensure!([403, 404].contains(&r.status), "the role he lost counts no more: {}", r.text);
    ensure!(admin.get(&format!("/v1/orders/{first}"))?.body["status"] == "pending_approval");
    ensure!(bob.order(order_body(1, 500)).is_ok(), "the one he gained counts at once");

    // What is refused, and why.
    let refused = |body: Value, path: &str, status: u16, says: &str| -> Result<()> {
        let r = admin.put(path, body)?;
        ensure!(r.status == status && r.text.contains(says), "{path}: {} {}", r.status, r.text);
        Ok(())
    };
    refused(json!({"roles": []}), "/v1/admin/users/bob/roles", 422, "at least one role")?;
    refused(json!({"roles": ["Boss"]}), "/v1/admin/users/bob/roles", 422, "roles")?;
    refused(json!({"roles": ["auditor"]}), "/v1/admin/users/nobody/roles", 404, "no user 'nobody'")?;
    refused(json!({"roles": ["approver"]}), "/v1/admin/users/mia/roles", 409, "still manages the cost centers CC-7")?;
    ensure!(alice.put("/v1/admin/users/bob/roles", json!({"roles": ["admin"]}))?.status == 403);
    // Over the API it is a critical action: erin's plain token is refused.
    let erin = s.client(admin.post_empty("/v1/admin/users/erin/tokens")?.body["token"].as_str().unwrap_or_default());
    let r = erin.put("/v1/admin/users/bob/roles", json!({"roles": ["approver"]}))?;
    ensure!(r.status == 403 && r.body["error"]["code"] == "second_factor_required", "{}", r.text);
    // Erin stops being an admin; then the first admin is the last one and stays one.
    ensure!(admin.put("/v1/admin/users/erin/roles", json!({"roles": ["auditor"]}))?.status == 200);
    refused(json!({"roles": ["auditor"]}), "/v1/admin/users/admin/roles", 409, "last admin")?;
    // A disabled user is enabled first.
    ensure!(admin.post_empty("/v1/admin/users/alice/disable")?.status == 200);
    refused(
        json!({"roles": ["approver"]}),
        "/v1/admin/users/alice/roles",
        409,
        "alice is disabled: enable them first",
    )?;

    let audit = admin.get("/v1/audit/export")?.text;
    let changes: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "roles_changed")
        .collect();
    ensure!(changes.len() == 2, "bob's and erin's, the refused ones not: {changes:?}");
    ensure!(changes[0]["actor"] == "admin" && changes[0]["data"] == want, "{}", changes[0]);
    let review = admin.get("/v1/admin/access-review")?.body;
    ensure!(user(&review, "bob")["roles"] == json!(["requester"]), "{review}");
    ensure!(user(&review, "carol")["delegations_received"] == json!([]), "{review}");
    Ok(())
}
