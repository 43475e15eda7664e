//! The second factor end to end, in the dashboard over HTTP: set up with the secret the page
//! shows (codes computed here, independently of the host, per RFC 6238), recovery codes shown
//! once and each usable once, a code never accepted twice, failures and uses audited, the
//! review showing it, and an admin's reset.

use anyhow::{Context, Result, ensure};
use greenlight_tests::totp::{base32_decode, code as totp, now_step};
use greenlight_tests::{Client, Server, sign_in_form};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// A signed-in browser without redirects: its cookie and the form token of its pages.
struct Browser {
    agent: ureq::Agent,
    url: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    fn sign_in(s: &Server, name: &str) -> Result<Browser> {
        let agent = Client::agent(None);
        let (status, cookie) = sign_in_form(&s.url, &agent, ("acme", name, PASSWORD), None)?;
        ensure!(status == 303, "{name} signs in: {status}");
        let cookie = cookie.context("a session cookie")?;
        let mut b = Browser { agent, url: s.url.clone(), cookie, csrf: String::new() };
        let (_, page) = b.get("/security")?;
        b.csrf = between(&page, "name=\"csrf\" value=\"", "\"").context("a form token")?;
        Ok(b)
    }

    fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut r = self.agent.get(format!("{}{path}", self.url)).header("Cookie", &self.cookie).call()?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Result<(u16, String)> {
        let mut form: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let mut r = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .config()
            .max_redirects(0)
            .build()
            .send_form(form)?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

#[test]
fn set_up_with_the_qr_secret_recovery_codes_once_codes_never_twice_and_an_admin_reset() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    admin.user("bob", &["approver"], json!({}))?;
    let r = admin.put("/v1/admin/users/bob/password", json!({"password": PASSWORD}))?;
    ensure!(r.status == 204, "{}", r.text);
    let bob = Browser::sign_in(&s, "bob")?;
    let (_, page) = bob.get("/security")?;
    ensure!(page.contains("Two-step verification is off"), "{page}");

    // Set up: a QR code and the secret to type in.
    let (status, page) = bob.post("/security/setup", &[])?;
    ensure!(status == 200 && page.contains("<svg role=\"img\" aria-label=\"QR code"), "{status}: {page}");
    let secret = between(&page, "<code id=\"totp-secret\">", "</code>").context("the secret")?;
    let key = base32_decode(&secret)?;
    ensure!(key.len() == 20, "160 bits: {secret}");
    let (status, page) = bob.post("/security/confirm", &[("code", "000000")])?;
    ensure!(status == 422 && page.contains("does not match"), "a wrong first code: {status} {page}");
    let step = now_step();
    let code = totp(&key, step)?;
    let (status, page) = bob.post("/security/confirm", &[("code", &code)])?;
    ensure!(status == 200 && page.contains("Two-step verification is on"), "{status}: {page}");
    let list = between(&page, "<ul class=\"codes\" id=\"recovery-codes\">", "</ul>").context("recovery codes")?;
    let codes: Vec<String> =
        list.split("<code>").skip(1).filter_map(|c| c.split("</code>").next()).map(str::to_string).collect();
    ensure!(codes.len() == 10, "ten recovery codes: {codes:?}");
    let (_, page) = bob.get("/security")?;
    ensure!(page.contains("10 recovery codes left") && !page.contains(&codes[0]), "shown once: {page}");
    ensure!(page.contains("critical actions are open for"), "enrolling confirmed it was him: {page}");
    ensure!(bob.post("/security/setup", &[])?.0 == 409, "a second set-up needs a reset first");

    // The code just used is not accepted again; a recovery code is, once.
    let (status, page) = bob.post("/security/step-up", &[("code", &code)])?;
    ensure!(status == 422, "a replayed code: {status} {page}");
    let (status, page) = bob.post("/security/step-up", &[("code", &codes[0].to_uppercase())])?;
    ensure!(status == 200 && page.contains("Confirmed with a recovery code; 9 left"), "{status}: {page}");
    ensure!(bob.post("/security/step-up", &[("code", &codes[0])])?.0 == 422, "each recovery code once");
    // The next step's code works (the host accepts one step of drift), and takes you back.
    let next = totp(&key, step + 1)?;
    let (status, _) = bob.post("/security/step-up", &[("code", &next), ("next", "/inbox")])?;
    ensure!(status == 303, "back to where the critical action was: {status}");
    let valid: Vec<String> = (step - 1..=step + 2).map(|s| totp(&key, s)).collect::<Result<_>>()?;
    let wrong = (0..).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).context("a wrong code")?;
    ensure!(bob.post("/security/step-up", &[("code", &wrong), ("next", "https://evil.test/")])?.0 == 422);

    // Guessing codes from a session locks the account: the lock is audited and the admins are
    // told through the outbox (this host has no mail relay, so the notice's delivery is dead
    // with the reason; the mail itself is tested in `access_attempts`).
    let answers: Vec<u16> =
        (0..9).map(|_| bob.post("/security/step-up", &[("code", &wrong)]).map(|r| r.0)).collect::<Result<_>>()?;
    // The wrong code before made one failure; two more are checked, then each waits, and the
    // tenth failure in a row locks.
    ensure!(answers == [422, 422, 429, 429, 429, 429, 429, 429, 429], "{answers:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dead = loop {
        let r = admin.get("/v1/admin/deliveries?state=dead")?.body;
        let found = r["deliveries"].as_array().and_then(|d| d.iter().find(|d| d["kind"] == "mail").cloned());
        match found {
            Some(d) => break d,
            None if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(100)),
            None => anyhow::bail!("no dead notice delivery: {r}"),
        }
    };
    ensure!(dead["event"] == "account_locked", "{dead}");
    ensure!(dead["last_error"].as_str().is_some_and(|e| e.contains("--smtp-relay")), "says what to do: {dead}");

    // The review shows it; an admin resets it; then it is off.
    let review = admin.get("/v1/admin/access-review")?.body;
    let b = review["users"].as_array().and_then(|u| u.iter().find(|u| u["name"] == "bob")).cloned().unwrap_or_default();
    ensure!(b["second_factor"] == true, "{b}");
    let bob_api =
        Client::new(&s.url, admin.post_empty("/v1/admin/users/bob/tokens")?.body["token"].as_str().unwrap_or_default());
    ensure!(bob_api.post_empty("/v1/admin/users/bob/second-factor/reset")?.status == 403, "admins only");
    ensure!(admin.post_empty("/v1/admin/users/bob/second-factor/reset")?.status == 204);
    ensure!(admin.post_empty("/v1/admin/users/bob/second-factor/reset")?.status == 404, "nothing left to reset");
    let (_, page) = bob.get("/security")?;
    ensure!(page.contains("Two-step verification is off"), "{page}");

    let db = rusqlite::Connection::open(&s.db)?;
    let count = |action: &str| -> Result<i64> {
        Ok(db.query_row("SELECT count(*) FROM audit_log WHERE action = ?1", [action], |r| r.get(0))?)
    };
    ensure!(count("second_factor_enrolled")? == 1 && count("second_factor_reset")? == 1);
    ensure!(count("second_factor_used")? == 2, "the recovery code and the next step's code");
    let checked = 2;
    ensure!(
        count("second_factor_failed")? == 4 + checked,
        "a wrong first code, a replay, a used recovery code, a wrong code, and the guesses checked before the throttle"
    );
    let lock: String = db.query_row("SELECT data FROM audit_log WHERE action = 'account_locked'", [], |r| r.get(0))?;
    let lock: serde_json::Value = serde_json::from_str(&lock)?;
    ensure!(lock["user"] == "bob" && lock["during"] == "step_up" && lock["failures"] == 10, "{lock}");
    let stored: String = db.query_row("SELECT group_concat(hash) FROM recovery_codes", [], |r| {
        r.get::<_, Option<String>>(0).map(Option::unwrap_or_default)
    })?;
    ensure!(codes.iter().all(|c| !stored.contains(c.as_str())), "recovery codes are stored hashed");
    Ok(())
}

#[test]
fn over_the_api_critical_actions_need_a_token_marked_for_them() -> Result<()> {
    let s = Server::start()?;
    // The operator's token (from `tenant create`) is marked; a second admin's token is not.
    let operator = s.tenant("acme")?;
    let second = operator.user("second-admin", &["admin"], json!({}))?;
    let r = second.put("/v1/admin/settings", json!({"one_stage_per_person": false}))?;
    ensure!(r.status == 403 && r.code() == "second_factor_required", "{} {}", r.status, r.text);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    ensure!(
        message.starts_with("changing settings is a critical action") && message.contains("token an admin marked"),
        "{message}"
    );
    // Nor may it mark one for itself, or do the other critical actions.
    ensure!(
        second.post("/v1/admin/users/second-admin/tokens", json!({"critical": true}))?.code()
            == "second_factor_required"
    );
    ensure!(
        second.post("/v1/admin/users", json!({"name": "eve", "roles": ["admin"]}))?.code() == "second_factor_required"
    );
    // Not even its own password: a token alone must not become a dashboard sign-in.
    let r = second.put("/v1/admin/users/second-admin/password", json!({"password": "correct horse battery"}))?;
    ensure!(r.code() == "second_factor_required", "{}", r.text);
    let r = second.post("/v1/admin/cost-centers", json!({"code": "CC-9", "manager": "second-admin"}))?;
    ensure!(r.code() == "second_factor_required", "{}", r.text);
    let r = second.put("/v1/admin/extensions/anything", json!({"enabled": false}))?;
    ensure!(r.code() == "second_factor_required", "{}", r.text);
    // Reading stays open.
    ensure!(second.get("/v1/admin/access-review")?.status == 200);
    // A token the operator's admin marks works; an unmarked one issued the same way does not.
    let r = operator.post("/v1/admin/users/second-admin/tokens", json!({"critical": true}))?;
    ensure!(r.status == 201, "{}", r.text);
    let marked = Client::new(&s.url, r.body["token"].as_str().unwrap_or_default());
    let r = marked.put("/v1/admin/settings", json!({"one_stage_per_person": false}))?;
    ensure!(r.status == 200 && r.body["one_stage_per_person"] == false, "{}", r.text);
    let r = operator.post_empty("/v1/admin/users/second-admin/tokens")?;
    let unmarked = Client::new(&s.url, r.body["token"].as_str().unwrap_or_default());
    ensure!(unmarked.put("/v1/admin/settings", json!({}))?.code() == "second_factor_required");
    let db = rusqlite::Connection::open(&s.db)?;
    let marked: Vec<String> = db
        .prepare("SELECT data FROM audit_log WHERE action = 'token_issued' ORDER BY seq")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ensure!(
        marked.len() == 2 && marked[0].contains("\"critical\":true") && marked[1].contains("\"critical\":false"),
        "{marked:?}"
    );
    Ok(())
}

#[test]
fn the_tenant_sets_which_roles_need_a_second_factor_and_above_which_total_approving_is_critical() -> Result<()> {
    let s = Server::start()?;
    let operator = s.tenant("acme")?;
    let alice = operator.user("alice", &["requester"], json!({}))?;
    let bob = operator.user("bob", &["approver"], json!({}))?;
    let review = r#"fn evaluate(ctx) { #{ stages: [#{ key: "review", level: 1, approvers: #{ role: "approver" }, reason: "reviewed" }] } }"#;
    operator.enable_script("review", review, 10, json!({}))?;
    ensure!(operator.put("/v1/admin/settings", json!({"second_factor_roles": ["Bad Role"]}))?.status == 422);
    ensure!(operator.put("/v1/admin/settings", json!({"step_up_above_minor": -1}))?.status == 422);
    let r = operator.put(
        "/v1/admin/settings",
        json!({"step_up_above_minor": 100_000, "second_factor_roles": ["finance", "admin"]}),
    )?;
    ensure!(r.status == 200, "{}", r.text);
    ensure!(
        r.body["step_up_above_minor"] == 100_000 && r.body["second_factor_roles"] == json!(["admin", "finance"]),
        "{}",
        r.text
    );

    let order = |total: i64| -> Result<String> {
        let id = alice
            .order(json!({"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price_minor": total}]}))?;
        ensure!(alice.submit(&id)?.body["status"] == "pending_approval");
        Ok(id)
    };
    let (big, small) = (order(200_000)?, order(50_000)?);
    let r = bob.decide(&big, "review", "approve", None)?;
    ensure!(r.status == 403 && r.code() == "second_factor_required", "{} {}", r.status, r.text);
    ensure!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("approving an order above 100000 minor units")
    );
    ensure!(bob.decide(&big, "review", "reject", Some("too much"))?.status == 200, "rejecting is not critical");
    ensure!(bob.decide(&small, "review", "approve", None)?.body["status"] == "approved", "below the amount");
    // Off again with null.
    let r = operator.put("/v1/admin/settings", json!({"step_up_above_minor": null}))?;
    ensure!(r.status == 200 && r.body["step_up_above_minor"].is_null(), "{}", r.text);
    let bigger = order(300_000)?;
    ensure!(bob.decide(&bigger, "review", "approve", None)?.body["status"] == "approved");
    Ok(())
}
